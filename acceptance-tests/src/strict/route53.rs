//! The Route 53 rules of the strict lane (see the table in the module
//! above): the request rate, change propagation, what a change batch may
//! hold (TXT character-strings included), HealthCheckVersion, and health
//! checks that follow a CloudWatch alarm or a routing control.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use super::xml::{self, route53_error, ROUTE53_NS};
use super::{dns_name, Limiter, Reply, Req, State};

/// Route 53's limit on ResourceRecord elements per request.
const MAX_RECORDS: usize = 1000;
/// Route 53's limit on characters of `Value` elements per request.
const MAX_VALUE_CHARS: usize = 32_000;
/// DNS's limit on one character-string of a TXT record, in bytes.
const MAX_CHARACTER_STRING: usize = 255;

/// What moto drops of a health check and Route 53 keeps: the type (to know
/// which of moto's invented endpoint settings to hide), the CloudWatch
/// alarm, the insufficient-data status and the routing control.
#[derive(Debug, Clone, Default)]
pub(super) struct HealthCheckExtras {
    ty: String,
    alarm: Option<(String, String)>,
    insufficient_data: Option<String>,
    routing_control_arn: Option<String>,
}

impl HealthCheckExtras {
    /// Reads them from a CreateHealthCheck `HealthCheckConfig` or an
    /// UpdateHealthCheck request, over `self`.
    fn merge(mut self, e: &xml::Element) -> HealthCheckExtras {
        if let Some(t) = e.child_text("Type") {
            self.ty = t.to_string();
        }
        if let Some(a) = e.child("AlarmIdentifier") {
            self.alarm = Some((
                a.child_text("Region").unwrap_or_default().to_string(),
                a.child_text("Name").unwrap_or_default().to_string(),
            ));
        }
        if let Some(st) = e.child_text("InsufficientDataHealthStatus") {
            self.insufficient_data = Some(st.to_string());
        }
        if let Some(arn) = e.child_text("RoutingControlArn") {
            self.routing_control_arn = Some(arn.to_string());
        }
        self
    }

    /// A health check of an answer (`<HealthCheck>...</HealthCheck>`) as
    /// Route 53 would give it: no endpoint settings on a check without an
    /// endpoint, the alarm and routing control in its config.
    fn complete(&self, check: &str) -> String {
        let mut c = check.to_string();
        if matches!(self.ty.as_str(), "CLOUDWATCH_METRIC" | "RECOVERY_CONTROL") {
            for tag in [
                "Port",
                "RequestInterval",
                "FailureThreshold",
                "MeasureLatency",
                "EnableSNI",
            ] {
                c = xml::remove_element(&c, tag);
            }
        }
        let mut add = String::new();
        if let Some((region, name)) = &self.alarm {
            add.push_str(&format!(
                "<AlarmIdentifier><Region>{}</Region><Name>{}</Name></AlarmIdentifier>",
                xml::escape(region),
                xml::escape(name)
            ));
        }
        if let Some(st) = &self.insufficient_data {
            add.push_str(&format!(
                "<InsufficientDataHealthStatus>{}</InsufficientDataHealthStatus>",
                xml::escape(st)
            ));
        }
        if let Some(arn) = &self.routing_control_arn {
            add.push_str(&format!(
                "<RoutingControlArn>{}</RoutingControlArn>",
                xml::escape(arn)
            ));
        }
        c.replacen(
            "</HealthCheckConfig>",
            &format!("{add}</HealthCheckConfig>"),
            1,
        )
    }
}

pub(super) async fn handle(state: &State, req: &Req) -> Reply {
    let segments: Vec<&str> = req
        .path
        .trim_start_matches("/2013-04-01")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let op = operation(&req.method, &segments);
    if let Some(r) = throttle(state, &req.account) {
        *state
            .lock()
            .route53_calls
            .entry(format!("{op} (throttled)"))
            .or_default() += 1;
        return r;
    }
    *state.lock().route53_calls.entry(op).or_default() += 1;
    match (&req.method, segments.as_slice()) {
        (&Method::POST, ["hostedzone", zone, "rrset"]) => change_batch(state, req, zone).await,
        (&Method::GET, ["change", id]) => get_change(state, req, id).await,
        (&Method::POST, ["hostedzone"]) => {
            let r = state.forward(req).await;
            if r.status.is_success() {
                learn_zone(state, &r);
            }
            pending(state, r)
        }
        (&Method::DELETE, ["hostedzone", _]) => {
            let r = state.forward(req).await;
            pending(state, r)
        }
        (&Method::POST, ["healthcheck"]) => create_health_check(state, req).await,
        (&Method::POST, ["healthcheck", id]) => update_health_check(state, req, id).await,
        (&Method::DELETE, ["healthcheck", id]) => {
            let r = state.forward(req).await;
            if r.status.is_success() {
                let mut inner = state.lock();
                inner.health_checks.remove(*id);
                inner.health_check_extras.remove(*id);
            }
            r
        }
        (&Method::GET, ["healthcheck", ..]) => {
            let r = state.forward(req).await;
            complete_health_checks(state, versions(state, r))
        }
        _ => state.forward(req).await,
    }
}

/// The API operation a request calls, by its REST path.
fn operation(method: &Method, segments: &[&str]) -> String {
    let op = match (method, segments) {
        (&Method::POST, ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        (&Method::GET, ["hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        (&Method::GET, ["change", _]) => "GetChange",
        (&Method::POST, ["hostedzone"]) => "CreateHostedZone",
        (&Method::GET, ["hostedzone"]) => "ListHostedZones",
        (&Method::GET, ["hostedzone", _]) => "GetHostedZone",
        (&Method::POST, ["hostedzone", _]) => "UpdateHostedZoneComment",
        (&Method::DELETE, ["hostedzone", _]) => "DeleteHostedZone",
        (&Method::GET, ["hostedzonesbyname"]) => "ListHostedZonesByName",
        (&Method::POST, ["healthcheck"]) => "CreateHealthCheck",
        (&Method::GET, ["healthcheck"]) => "ListHealthChecks",
        (&Method::GET, ["healthcheck", _]) => "GetHealthCheck",
        (&Method::POST, ["healthcheck", _]) => "UpdateHealthCheck",
        (&Method::DELETE, ["healthcheck", _]) => "DeleteHealthCheck",
        (&Method::GET, ["tags", _, _]) => "ListTagsForResource",
        (&Method::POST, ["tags", _, _]) => "ChangeTagsForResource",
        (&Method::POST, ["tags", _]) => "ListTagsForResources",
        _ => return format!("{method} /{}", segments.first().unwrap_or(&"")),
    };
    op.to_string()
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::xml(status, route53_error(code, message))
}

/// Route 53's rate limit per account, or every request with the knob on.
fn throttle(state: &State, account: &str) -> Option<Reply> {
    let rate = f64::from(state.config.route53_requests_per_second);
    let mut inner = state.lock();
    let refused = inner.throttle_all || {
        if rate > 0.0 {
            let now = Instant::now();
            let l = inner
                .limiters
                .entry(account.to_string())
                .or_insert(Limiter {
                    tokens: rate,
                    last: now,
                });
            l.tokens = (l.tokens + now.duration_since(l.last).as_secs_f64() * rate).min(rate);
            l.last = now;
            if l.tokens >= 1.0 {
                l.tokens -= 1.0;
                false
            } else {
                true
            }
        } else {
            false
        }
    };
    if refused {
        inner.throttled += 1;
        return Some(error(
            StatusCode::BAD_REQUEST,
            "Throttling",
            "Rate exceeded",
        ));
    }
    None
}

fn learn_zone(state: &State, r: &Reply) {
    if let Some(z) = xml::parse(&r.body).and_then(|d| d.child("HostedZone").cloned()) {
        if let (Some(id), Some(name)) = (z.child_text("Id"), z.child_text("Name")) {
            state.lock().zones.insert(
                id.trim_start_matches("/hostedzone/").to_string(),
                dns_name(name),
            );
        }
    }
}

/// The zone's name, from the lane's memory or moto.
async fn zone_name(state: &State, zone: &str, account: &str) -> Option<String> {
    if let Some(n) = state.lock().zones.get(zone) {
        return Some(n.clone());
    }
    let r = state
        .moto
        .own(
            Method::GET,
            &format!("/2013-04-01/hostedzone/{zone}"),
            "route53",
            "us-east-1",
            account,
        )
        .await;
    let name = xml::parse(&r.body)?
        .child("HostedZone")?
        .child_text("Name")
        .map(dns_name)?;
    state.lock().zones.insert(zone.to_string(), name.clone());
    Some(name)
}

/// One change of a batch, as the rules need it.
#[derive(Debug, Clone)]
struct ChangeItem {
    action: String,
    name: String,
    ty: String,
    set_identifier: Option<String>,
    primary: bool,
    /// `PRIMARY` or `SECONDARY` for a failover record set.
    failover: Option<String>,
    alias: bool,
    health_check: bool,
    values: Vec<String>,
}

fn changes(doc: &xml::Element) -> Vec<ChangeItem> {
    doc.descendants("Change")
        .into_iter()
        .map(|c| {
            let set = c.child("ResourceRecordSet");
            let text = |n: &str| set.and_then(|s| s.child_text(n)).map(str::to_string);
            ChangeItem {
                action: c.child_text("Action").unwrap_or_default().to_string(),
                name: dns_name(&text("Name").unwrap_or_default()),
                ty: text("Type").unwrap_or_default(),
                set_identifier: text("SetIdentifier"),
                primary: text("Failover").as_deref() == Some("PRIMARY"),
                failover: text("Failover"),
                alias: set.and_then(|s| s.child("AliasTarget")).is_some(),
                health_check: text("HealthCheckId").is_some_and(|h| !h.is_empty()),
                values: set
                    .map(|s| {
                        s.descendants("Value")
                            .into_iter()
                            .map(|v| v.text.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The first rule a batch breaks, if any.
fn judge(batch: &[ChangeItem], zone_name: Option<&str>) -> Option<String> {
    let weight = |c: &ChangeItem| if c.action == "UPSERT" { 2 } else { 1 };
    let records: usize = batch.iter().map(|c| c.values.len() * weight(c)).sum();
    if records > MAX_RECORDS {
        return Some(format!(
            "Number of records limit of {MAX_RECORDS} exceeded."
        ));
    }
    let chars: usize = batch
        .iter()
        .map(|c| c.values.iter().map(|v| v.chars().count()).sum::<usize>() * weight(c))
        .sum();
    if chars > MAX_VALUE_CHARS {
        return Some(format!(
            "Number of characters limit of {MAX_VALUE_CHARS} exceeded in Value elements."
        ));
    }
    for c in batch.iter().filter(|c| c.action != "DELETE") {
        if matches!(c.ty.as_str(), "TXT" | "SPF") {
            if let Some(v) = c.values.iter().find(|v| {
                character_strings(v)
                    .iter()
                    .any(|n| *n > MAX_CHARACTER_STRING)
            }) {
                return Some(format!(
                    "[Invalid Resource Record: 'FATAL problem: CharacterStringTooLong (Value is too long) encountered with '{v}'']"
                ));
            }
        }
        if let Some(zone) = zone_name {
            if c.name != zone && !c.name.ends_with(&format!(".{zone}")) {
                return Some(format!(
                    "RRSet with DNS name {} is not permitted in zone {zone}",
                    c.name
                ));
            }
        }
        if c.primary && !c.alias && !c.health_check {
            return Some(format!(
                "A non-alias primary ResourceRecordSet must have an associated health check. No changes made. \
                 (RRSet with DNS name {}, type {}, SetIdentifier {})",
                c.name,
                c.ty,
                c.set_identifier.as_deref().unwrap_or("null")
            ));
        }
    }
    None
}

/// The byte length of each character-string of a TXT value as a DNS
/// server reads it: quoted strings with `\ddd` and `\X` escapes each one
/// byte; an unquoted value is one string.
fn character_strings(value: &str) -> Vec<usize> {
    let v = value.trim();
    if !v.starts_with('"') {
        return vec![v.len()];
    }
    let b = v.as_bytes();
    let (mut out, mut current, mut quoted, mut i) = (Vec::new(), 0usize, false, 0);
    while i < b.len() {
        match (b[i], quoted) {
            (b'"', true) => {
                out.push(current);
                current = 0;
                quoted = false;
            }
            (b'"', false) => quoted = true,
            (b'\\', true) => {
                let octal = b
                    .get(i + 1..i + 4)
                    .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
                i += if octal { 3 } else { 1 };
                current += 1;
            }
            (_, true) => current += 1,
            (_, false) => {}
        }
        i += 1;
    }
    out
}

async fn change_batch(state: &State, req: &Req, zone: &str) -> Reply {
    let lock = state.zone_lock(zone);
    let _one_writer = lock.lock().await;
    let Some(doc) = xml::parse(&req.body) else {
        return error(StatusCode::BAD_REQUEST, "InvalidInput", "Invalid XML");
    };
    let batch = changes(&doc);
    let zone_name = zone_name(state, zone, &req.account).await;
    if let Some(why) = judge(&batch, zone_name.as_deref()) {
        return error(StatusCode::BAD_REQUEST, "InvalidChangeBatch", &why);
    }
    let refused = {
        let mut inner = state.lock();
        batch
            .iter()
            .find(|c| c.action == "CREATE" && inner.refuse_create.remove(&c.name))
            .cloned()
    };
    if let Some(c) = refused {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidChangeBatch",
            &format!(
                "[Tried to create resource record set [name='{}', type='{}', set-identifier='{}'] but it already exists]",
                c.name,
                c.ty,
                c.set_identifier.as_deref().unwrap_or("")
            ),
        );
    }
    if let Some(why) = failover_role_taken(state, req, zone, &batch).await {
        return error(StatusCode::BAD_REQUEST, "InvalidChangeBatch", &why);
    }
    if let Some(why) = delete_mismatch(state, req, zone, &doc).await {
        return error(StatusCode::BAD_REQUEST, "InvalidChangeBatch", &why);
    }
    let mut r = state.forward(req).await;
    if is_journal_refusal(&r) && !genuine_conflict(state, req, zone, &batch).await {
        let body = String::from_utf8_lossy(&req.body)
            .replace("<Action>CREATE</Action>", "<Action>UPSERT</Action>");
        let mut again = req.clone();
        again.body = Bytes::from(body);
        r = state.forward(&again).await;
    }
    if r.status.is_success() {
        let mut inner = state.lock();
        for c in &batch {
            inner.change_log.push((c.action.clone(), c.name.clone()));
        }
    }
    pending(state, r)
}

/// A name and type hold one failover record set per role: a CREATE or
/// UPSERT of a PRIMARY (SECONDARY) where another set identifier already
/// has that role, and the batch does not delete it, is refused, as Route 53
/// does (and moto does not).
/// moto's answer to a listing of the record sets of `zone` from `name`
/// and `ty` on, as the caller's account (what Route 53 itself consults
/// before it accepts a change).
async fn listed_sets(state: &State, req: &Req, zone: &str, name: &str, ty: &str) -> Reply {
    let path = format!(
        "/2013-04-01/hostedzone/{zone}/rrset?name={}&type={ty}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC),
    );
    state
        .moto
        .own(Method::GET, &path, "route53", "us-east-1", &req.account)
        .await
}

async fn failover_role_taken(
    state: &State,
    req: &Req,
    zone: &str,
    batch: &[ChangeItem],
) -> Option<String> {
    for c in batch.iter().filter(|c| c.action != "DELETE") {
        let Some(role) = &c.failover else {
            continue;
        };
        let r = listed_sets(state, req, zone, &c.name, &c.ty).await;
        let doc = xml::parse(&r.body)?;
        let taken = doc.descendants("ResourceRecordSet").into_iter().any(|s| {
            let id = s.child_text("SetIdentifier").map(str::to_string);
            s.child_text("Name").map(dns_name).as_deref() == Some(c.name.as_str())
                && s.child_text("Type") == Some(c.ty.as_str())
                && s.child_text("Failover") == Some(role.as_str())
                && id != c.set_identifier
                && !batch.iter().any(|d| {
                    d.action == "DELETE"
                        && d.name == c.name
                        && d.ty == c.ty
                        && d.set_identifier == id
                })
        });
        if taken {
            return Some(format!(
                "[RRSet with DNS name {}, type {}, SetIdentifier {}, and Failover {role} cannot be created because \
                 a failover RRSet with the same name, type and failover already exists.]",
                c.name,
                c.ty,
                c.set_identifier.as_deref().unwrap_or("")
            ));
        }
    }
    None
}

/// What a DELETE must repeat of the record set it deletes.
fn deleted_fields(
    set: &xml::Element,
) -> (Option<String>, Vec<String>, Option<String>, Option<String>) {
    let text = |n: &str| set.child_text(n).map(|t| t.trim().to_string());
    let mut values: Vec<String> = set
        .descendants("Value")
        .into_iter()
        .map(|v| v.text.trim().to_string())
        .collect();
    values.sort();
    let alias = set
        .child("AliasTarget")
        .and_then(|a| a.child_text("DNSName"))
        .map(dns_name);
    // moto reports a TTL of 0 for alias record sets, which have none.
    let ttl = if alias.is_some() { None } else { text("TTL") };
    (ttl, values, text("HealthCheckId"), alias)
}

/// A DELETE must name a record set that exists, with its current TTL,
/// values, health check and alias target, or Route 53 refuses the whole
/// batch (moto deletes whatever has the set identifier).
async fn delete_mismatch(
    state: &State,
    req: &Req,
    zone: &str,
    doc: &xml::Element,
) -> Option<String> {
    for c in doc.descendants("Change") {
        if c.child_text("Action") != Some("DELETE") {
            continue;
        }
        let set = c.child("ResourceRecordSet")?;
        let name = dns_name(set.child_text("Name").unwrap_or_default());
        let ty = set.child_text("Type").unwrap_or_default();
        let id = set.child_text("SetIdentifier");
        let r = listed_sets(state, req, zone, &name, ty).await;
        let listed = xml::parse(&r.body)?;
        let current = listed
            .descendants("ResourceRecordSet")
            .into_iter()
            .find(|s| {
                s.child_text("Name").map(dns_name).as_deref() == Some(name.as_str())
                    && s.child_text("Type") == Some(ty)
                    && s.child_text("SetIdentifier") == id
            });
        let what = format!(
            "[Tried to delete resource record set [name='{name}', type='{ty}', set-identifier='{}']",
            id.unwrap_or("")
        );
        match current {
            None => return Some(format!("{what} but it was not found]")),
            Some(cur) if deleted_fields(cur) != deleted_fields(set) => {
                return Some(format!(
                    "{what} but the values provided do not match the current values]"
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// moto's refusal of a CREATE as already existing.
fn is_journal_refusal(r: &Reply) -> bool {
    r.status == StatusCode::BAD_REQUEST
        && xml::parse(&r.body).is_some_and(|d| {
            d.descendants("Code")
                .iter()
                .any(|c| c.text == "InvalidChangeBatch")
                && d.descendants("Message")
                    .iter()
                    .any(|m| m.text.contains("already exists"))
        })
}

/// Whether a CREATE of the batch meets a record that really exists and
/// that the batch does not delete first.
async fn genuine_conflict(state: &State, req: &Req, zone: &str, batch: &[ChangeItem]) -> bool {
    for c in batch.iter().filter(|c| c.action == "CREATE") {
        let deleted = batch.iter().any(|d| {
            d.action == "DELETE"
                && d.name == c.name
                && d.ty == c.ty
                && d.set_identifier == c.set_identifier
        });
        if deleted {
            continue;
        }
        let r = listed_sets(state, req, zone, &c.name, &c.ty).await;
        let exists = xml::parse(&r.body).is_some_and(|d| {
            d.descendants("ResourceRecordSet").iter().any(|s| {
                s.child_text("Name").map(dns_name).as_deref() == Some(c.name.as_str())
                    && s.child_text("Type") == Some(c.ty.as_str())
                    && s.child_text("SetIdentifier").map(str::to_string) == c.set_identifier
            })
        });
        if exists {
            return true;
        }
    }
    false
}

/// Gives each ChangeInfo in an answer an ID of the lane's own, PENDING
/// until the configured time has passed.
fn pending(state: &State, r: Reply) -> Reply {
    let wait = state.config.change_pending;
    if !r.status.is_success() || wait == Duration::ZERO {
        return r;
    }
    let text = r.text();
    if !text.contains("<ChangeInfo>") {
        return r;
    }
    let id = {
        let mut inner = state.lock();
        inner.next_change += 1;
        let id = format!("CSTRICT{:010}", inner.next_change);
        inner.changes.insert(id.clone(), Instant::now() + wait);
        id
    };
    let text = xml::rewrite_text(&text, "Id", |old, _| {
        old.starts_with("/change/").then(|| format!("/change/{id}"))
    });
    let text = xml::rewrite_text(&text, "Status", |old, _| {
        (old == "INSYNC").then(|| "PENDING".to_string())
    });
    r.with_body(text)
}

async fn get_change(state: &State, req: &Req, id: &str) -> Reply {
    let ready = state.lock().changes.get(id).copied();
    let Some(ready) = ready else {
        return state.forward(req).await;
    };
    let status = if Instant::now() >= ready {
        "INSYNC"
    } else {
        "PENDING"
    };
    Reply::xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\"?>\n<GetChangeResponse xmlns=\"{ROUTE53_NS}\"><ChangeInfo><Id>/change/{id}</Id><Status>{status}</Status><SubmittedAt>2025-01-01T00:00:00.000Z</SubmittedAt></ChangeInfo></GetChangeResponse>"
        ),
    )
}

/// CreateHealthCheck: a CloudWatch check needs its alarm and a recovery
/// control check its routing control, as Route 53 requires; what moto
/// drops of them is remembered.
async fn create_health_check(state: &State, req: &Req) -> Reply {
    let config = xml::parse(&req.body).and_then(|d| d.child("HealthCheckConfig").cloned());
    let extras = config
        .as_ref()
        .map(|c| HealthCheckExtras::default().merge(c))
        .unwrap_or_default();
    let missing = match extras.ty.as_str() {
        "CLOUDWATCH_METRIC" if extras.alarm.is_none() => Some("AlarmIdentifier"),
        "RECOVERY_CONTROL" if extras.routing_control_arn.is_none() => Some("RoutingControlArn"),
        _ => None,
    };
    if let Some(field) = missing {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            &format!(
                "Invalid parameter: {field} is required for a health check of type {}",
                extras.ty
            ),
        );
    }
    let r = state.forward(req).await;
    if r.status.is_success() {
        if let Some(id) = xml::parse(&r.body).and_then(|d| {
            d.child("HealthCheck")
                .and_then(|h| h.child_text("Id"))
                .map(str::to_string)
        }) {
            let mut inner = state.lock();
            inner.health_checks.insert(id.clone(), 1);
            inner.health_check_extras.insert(id, extras);
        }
    }
    complete_health_checks(state, versions(state, r))
}

/// Every health check of an answer as Route 53 would give it (see
/// [`HealthCheckExtras::complete`]).
fn complete_health_checks(state: &State, r: Reply) -> Reply {
    if !r.status.is_success() {
        return r;
    }
    let text = r.text();
    let (open, close) = ("<HealthCheck>", "</HealthCheck>");
    if !text.contains(open) {
        return r;
    }
    let extras = state.lock().health_check_extras.clone();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find(open) {
        let Some(len) = rest[i..].find(close) else {
            break;
        };
        let check = &rest[i..i + len];
        out.push_str(&rest[..i]);
        let id = xml::parse(format!("{check}{close}").as_bytes())
            .and_then(|h| h.child_text("Id").map(str::to_string));
        match id.and_then(|id| extras.get(&id)) {
            Some(x) => out.push_str(&x.complete(check)),
            None => out.push_str(check),
        }
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    r.with_body(out)
}

async fn update_health_check(state: &State, req: &Req, id: &str) -> Reply {
    let current = state.lock().health_checks.get(id).copied();
    let doc = xml::parse(&req.body);
    let asked = doc.as_ref().and_then(|d| {
        d.child_text("HealthCheckVersion")
            .and_then(|v| v.trim().parse::<i64>().ok())
    });
    if let (Some(cur), Some(asked)) = (current, asked) {
        if cur != asked {
            return error(
                StatusCode::CONFLICT,
                "HealthCheckVersionMismatch",
                &format!(
                    "The value of HealthCheckVersion in the request ({asked}) doesn't match the value of \
                     HealthCheckVersion in the health check ({cur})."
                ),
            );
        }
    }
    let r = state.forward(req).await;
    if r.status.is_success() {
        let mut inner = state.lock();
        if let Some(v) = inner.health_checks.get_mut(id) {
            *v += 1;
        }
        if let (Some(d), Some(x)) = (&doc, inner.health_check_extras.get_mut(id)) {
            *x = std::mem::take(x).merge(d);
        }
    }
    complete_health_checks(state, versions(state, r))
}

/// Puts the lane's HealthCheckVersion into every health check of an answer
/// (moto's never changes).
fn versions(state: &State, r: Reply) -> Reply {
    if !r.status.is_success() {
        return r;
    }
    let text = r.text();
    if !text.contains("<HealthCheckVersion>") {
        return r;
    }
    let known = state.lock().health_checks.clone();
    let text = xml::rewrite_text(&text, "HealthCheckVersion", |_, before| {
        let id_start = before.rfind("<Id>")? + "<Id>".len();
        let id_end = before[id_start..].find("</Id>")? + id_start;
        known.get(&before[id_start..id_end]).map(i64::to_string)
    });
    r.with_body(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(action: &str, name: &str, values: usize) -> ChangeItem {
        ChangeItem {
            action: action.into(),
            name: dns_name(name),
            ty: "A".into(),
            set_identifier: None,
            primary: false,
            failover: None,
            alias: false,
            health_check: false,
            values: vec!["192.0.2.1".into(); values],
        }
    }

    #[test]
    fn size_limits_count_upserts_twice() {
        assert!(judge(&[item("CREATE", "a.example.com", 1000)], None).is_none());
        let why = judge(&[item("UPSERT", "a.example.com", 501)], None).unwrap();
        assert!(why.contains("1000"), "{why}");
        let long = ChangeItem {
            values: vec!["x".repeat(16_001)],
            ..item("UPSERT", "a.example.com", 0)
        };
        assert!(judge(&[long], None).unwrap().contains("32000"));
    }

    #[test]
    fn names_must_be_in_the_zone_by_whole_labels() {
        let z = Some("example.com.");
        assert!(judge(&[item("CREATE", "api.example.com", 1)], z).is_none());
        assert!(judge(&[item("CREATE", "example.com", 1)], z).is_none());
        assert!(judge(&[item("CREATE", "badexample.com", 1)], z).is_some());
        assert!(judge(&[item("DELETE", "other.org", 1)], z).is_none());
    }

    #[test]
    fn a_primary_needs_a_health_check_unless_it_is_an_alias() {
        let p = ChangeItem {
            primary: true,
            ..item("CREATE", "api.example.com", 1)
        };
        assert!(judge(std::slice::from_ref(&p), None)
            .unwrap()
            .contains("must have an associated health check"));
        let with_check = ChangeItem {
            health_check: true,
            ..p.clone()
        };
        assert!(judge(&[with_check], None).is_none());
        let alias = ChangeItem { alias: true, ..p };
        assert!(judge(&[alias], None).is_none());
    }

    #[test]
    fn txt_character_strings_are_counted_in_bytes() {
        assert_eq!(character_strings("\"abc\" \"de\""), vec![3, 2]);
        assert_eq!(character_strings("\"\\303\\251\\\"\""), vec![3]);
        assert_eq!(character_strings("plain"), vec![5]);
        let txt = |v: String| ChangeItem {
            ty: "TXT".into(),
            values: vec![v],
            ..item("CREATE", "a.example.com", 0)
        };
        let ok = format!("\"{}\"", "\\303\\251".repeat(127));
        assert!(judge(&[txt(ok)], None).is_none());
        let too_long = format!("\"{}\"", "é".repeat(128));
        assert!(judge(&[txt(too_long)], None)
            .unwrap()
            .contains("CharacterStringTooLong"));
    }

    #[test]
    fn alarm_checks_read_back_with_their_alarm_and_without_a_port() {
        let req = xml::parse(
            br#"<HealthCheckConfig><Type>CLOUDWATCH_METRIC</Type><AlarmIdentifier><Region>eu-west-1</Region><Name>a&amp;b</Name></AlarmIdentifier></HealthCheckConfig>"#,
        )
        .unwrap();
        let x = HealthCheckExtras::default().merge(&req);
        let from_moto = "<HealthCheck><Id>h1</Id><HealthCheckConfig><Type>CLOUDWATCH_METRIC</Type><Port>80</Port><RequestInterval>30</RequestInterval></HealthCheckConfig></HealthCheck>";
        let out = x.complete(from_moto);
        assert!(
            !out.contains("<Port>") && !out.contains("<RequestInterval>"),
            "{out}"
        );
        assert!(
            out.contains("<AlarmIdentifier><Region>eu-west-1</Region><Name>a&amp;b</Name></AlarmIdentifier></HealthCheckConfig>"),
            "{out}"
        );
    }

    #[test]
    fn batches_are_read_from_the_request() {
        let doc = xml::parse(
            br#"<ChangeResourceRecordSetsRequest xmlns="x"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>API.example.com</Name><Type>A</Type><SetIdentifier>p</SetIdentifier><Failover>PRIMARY</Failover><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords><HealthCheckId>hc</HealthCheckId></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#,
        )
        .unwrap();
        let c = &changes(&doc)[0];
        assert_eq!(c.action, "UPSERT");
        assert_eq!(c.name, "api.example.com.");
        assert!(c.primary && c.health_check && !c.alias);
        assert_eq!(c.values, vec!["192.0.2.1"]);
    }
}
