//! The findings: which changes of which Tandem resources are risky for a
//! multi-region setup, each under a stable rule ID (SARIF, the guide, the
//! tests), with the attribute diff it is based on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value as Json;

use crate::plan::{Action, Mode, Plan, ResourceChange};
use crate::value::{AttrChange, Path, Shown};

/// How risky a finding is. Ordered, so a threshold can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Slows failover down or hides something; worth a look.
    Low,
    /// Changes where traffic or data goes; review carefully.
    Medium,
    /// Can cause an outage or lose data.
    High,
}

impl Risk {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown risk level name.
#[derive(Debug, thiserror::Error)]
#[error("unknown risk level {0:?} (use low, medium or high)")]
pub struct RiskError(pub String);

impl FromStr for Risk {
    type Err = RiskError;
    fn from_str(s: &str) -> Result<Risk, RiskError> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            _ => Err(RiskError(s.to_string())),
        }
    }
}

macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident = $id:literal, $risk:ident, $title:literal, $help:literal;)*) => {
        /// A kind of finding.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule, in the order the guide lists them.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable ID, e.g. `versioning-suspended`.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id,)* }
            }

            /// The risk of a typical finding; a finding may be rated lower
            /// where the rule says why.
            pub fn risk(self) -> Risk {
                match self { $(Rule::$variant => Risk::$risk,)* }
            }

            /// What changes, in a few words.
            pub fn title(self) -> &'static str {
                match self { $(Rule::$variant => $title,)* }
            }

            /// Why it matters.
            pub fn help(self) -> &'static str {
                match self { $(Rule::$variant => $help,)* }
            }
        }
    };
}

rules! {
    /// `tandem_route53_failover_record` destroyed.
    FailoverRecordDestroyed = "failover-record-destroyed", High,
        "a failover record set destroyed",
        "The name stops resolving: the PRIMARY and the SECONDARY record sets both go.";
    /// `tandem_route53_failover_record` replaced.
    FailoverRecordReplaced = "failover-record-replaced", High,
        "a failover record set replaced",
        "Both record sets are deleted and created again; the name does not resolve in between.";
    /// The records or alias of a side change.
    FailoverTargetChanged = "failover-target-changed", Medium,
        "a failover target changed (records or alias)",
        "Traffic goes somewhere else whenever that side answers.";
    /// A side loses its health check.
    FailoverHealthCheckRemoved = "failover-health-check-removed", High,
        "a failover side losing its health check",
        "Without a health check Route 53 treats the PRIMARY as always healthy (unless its alias evaluates the target's health), so it never fails over. A SECONDARY without one is only medium: it is the last resort anyway.";
    /// A side points at another health check.
    FailoverHealthCheckChanged = "failover-health-check-changed", Medium,
        "a failover side pointed at another health check",
        "Failover then follows another check. Low when the new ID is known only after apply because the check is being replaced: `health-check-replaced` covers that.";
    /// The TTL goes up.
    FailoverTtlRaised = "failover-ttl-raised", Low,
        "a failover record's TTL raised",
        "Resolvers keep an answer for up to the TTL, so after a failover clients reach the healthy region later.";
    /// `tandem_route53_health_check` destroyed.
    HealthCheckDestroyed = "health-check-destroyed", High,
        "a health check destroyed",
        "A failover record using it stops failing over.";
    /// `tandem_route53_health_check` replaced.
    HealthCheckReplaced = "health-check-replaced", High,
        "a health check replaced",
        "The new check gets a new ID and starts without data; records using it follow a check whose status starts over.";
    /// A health check disabled.
    HealthCheckDisabled = "health-check-disabled", Medium,
        "a health check disabled",
        "Route 53 treats a disabled check as healthy, so failover stops.";
    /// `failure_threshold` raised.
    HealthCheckSlower = "health-check-slower", Low,
        "a health check made slower to fail (failure_threshold raised)",
        "More failed checks are needed before Route 53 fails over.";
    /// A bucket, zone or published fleet config destroyed or replaced.
    StatefulDestroyed = "stateful-destroyed", High,
        "a bucket, hosted zone or published fleet config destroyed or replaced",
        "Its contents go with it: every object version, every record, or the config the proxies poll. Low for a fleet config with retain_on_destroy, which stays published.";
    /// `tandem_s3_bucket_replication` destroyed.
    ReplicationDestroyed = "replication-destroyed", High,
        "replication destroyed",
        "New writes stop reaching the other regions.";
    /// A replication rule removed.
    ReplicationRuleRemoved = "replication-rule-removed", High,
        "a replication rule removed",
        "Objects that rule replicated stop reaching its destination.";
    /// A replication rule disabled.
    ReplicationRuleDisabled = "replication-rule-disabled", High,
        "a replication rule disabled",
        "Objects that rule replicated stop reaching its destination.";
    /// A prefix or tag filter added or changed.
    ReplicationFilterNarrowed = "replication-filter-narrowed", Medium,
        "a replication rule narrowed (a prefix or tag filter added or changed)",
        "Objects outside the new filter stop replicating.";
    /// The destination bucket changes.
    ReplicationDestinationChanged = "replication-destination-changed", Medium,
        "a replication rule's destination changed",
        "New writes go to another bucket; the old destination stops getting them.";
    /// Delete-marker replication turned off.
    ReplicationDeleteMarkersOff = "replication-delete-markers-off", Medium,
        "delete-marker replication turned off",
        "Deletes no longer reach the replica, so a failover serves objects already deleted in the source.";
    /// Versioning suspended.
    VersioningSuspended = "versioning-suspended", High,
        "versioning suspended (or its resource destroyed)",
        "Replication from and to the bucket stops, and overwritten objects lose their history.";
    /// The fleet config drops a route.
    FleetRouteDropped = "fleet-route-dropped", High,
        "the fleet config dropping a bucket route",
        "Every proxy answers 404 for the route's paths once it loads the new config.";
    /// The fleet config drops a replica.
    FleetReplicaDropped = "fleet-replica-dropped", Medium,
        "the fleet config dropping a replica of a route",
        "One place fewer to fail over to.";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// A risky change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which rule.
    pub rule: Rule,
    /// How risky this one is.
    pub risk: Risk,
    /// Resource address.
    pub address: String,
    /// Its module, `None` for the root module.
    pub module: Option<String>,
    /// Resource type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The planned action.
    #[serde(serialize_with = "serialize_action")]
    pub action: Action,
    /// What happens, in one sentence.
    pub message: String,
    /// Why Terraform chose the action (from `action_reason`), in words.
    pub reason: Option<String>,
    /// The attributes that force a replacement.
    pub replace_paths: Vec<Path>,
    /// The attribute changes the finding is based on.
    pub changes: Vec<AttrChange>,
}

impl Finding {
    /// The address within its module, e.g. `tandem_s3_bucket.this[0]` for
    /// `module.eu.tandem_s3_bucket.this[0]`.
    pub fn local_address(&self) -> &str {
        self.module
            .as_deref()
            .and_then(|m| self.address.strip_prefix(m))
            .map(|a| a.trim_start_matches('.'))
            .unwrap_or(&self.address)
    }
}

fn serialize_action<S: serde::Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.verb())
}

/// The resource types whose destruction loses data or traffic, and what
/// goes with them.
const STATEFUL: &[(&str, &str)] = &[
    (
        "tandem_s3_bucket",
        "the bucket and every object version in it",
    ),
    (
        "tandem_route53_zone",
        "the hosted zone and every record in it",
    ),
    (
        "tandem_proxy_fleet",
        "the published fleet config the proxies poll",
    ),
];

/// Collects the findings of one resource change.
struct Check<'a> {
    rc: &'a ResourceChange,
    action: Action,
    diff: Vec<AttrChange>,
    out: &'a mut Vec<Finding>,
}

impl Check<'_> {
    fn before(&self, p: &Path) -> Shown {
        self.rc.change.before_at(p)
    }

    fn after(&self, p: &Path) -> Shown {
        self.rc.change.after_at(p)
    }

    /// The changes of the diff under any of `paths`.
    fn under(&self, paths: &[Path]) -> Vec<AttrChange> {
        self.diff
            .iter()
            .filter(|c| paths.iter().any(|p| c.path.starts_with(p)))
            .cloned()
            .collect()
    }

    fn add(&mut self, rule: Rule, risk: Risk, message: String, changes: Vec<AttrChange>) {
        self.out.push(Finding {
            rule,
            risk,
            address: self.rc.address.clone(),
            module: self.rc.module().map(str::to_string),
            ty: self.rc.ty.clone(),
            action: self.action,
            message,
            reason: self.rc.reason(),
            replace_paths: self.rc.change.replace_paths(),
            changes,
        });
    }

    /// A replace's evidence: what forces it, else everything that changes.
    fn replace_evidence(&self) -> Vec<AttrChange> {
        let paths = self.rc.change.replace_paths();
        let forced = self.under(&paths);
        if forced.is_empty() {
            self.diff.clone()
        } else {
            forced
        }
    }

    /// A pair of values at different paths (list elements matched by ID),
    /// shown under the path they have after the change.
    fn pair(&self, before: &Path, after: &Path) -> AttrChange {
        AttrChange {
            path: after.clone(),
            before: self.before(before),
            after: self.after(after),
        }
    }
}

/// Finds the risky changes of a plan, highest risk first, then by module
/// and address.
pub fn review(plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    for rc in plan
        .resource_changes
        .iter()
        .filter(|r| r.mode == Mode::Managed)
    {
        let action = rc.action();
        if !matches!(
            action,
            Action::Update | Action::Delete | Action::DeleteThenCreate | Action::CreateThenDelete
        ) {
            continue;
        }
        let mut c = Check {
            rc,
            action,
            diff: rc.change.diff(),
            out: &mut out,
        };
        stateful(&mut c);
        match rc.ty.as_str() {
            "tandem_route53_failover_record" => failover_record(&mut c),
            "tandem_route53_health_check" => health_check(&mut c),
            "tandem_s3_bucket_replication" => replication(&mut c),
            "tandem_s3_bucket_versioning" => versioning(&mut c),
            "tandem_proxy_fleet" => fleet(&mut c),
            _ => {}
        }
    }
    out.sort_by(|a, b| {
        b.risk
            .cmp(&a.risk)
            .then_with(|| a.module.cmp(&b.module))
            .then_with(|| a.address.cmp(&b.address))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    out
}

fn is_true(s: &Shown) -> bool {
    s.known() == Some(&Json::Bool(true))
}

fn stateful(c: &mut Check<'_>) {
    if !c.action.destroys() {
        return;
    }
    let Some((_, what)) = STATEFUL.iter().find(|(t, _)| *t == c.rc.ty) else {
        return;
    };
    let verb = if c.action.is_replace() {
        "replaced"
    } else {
        "destroyed"
    };
    let ids = [
        Path::keys(&["bucket"]),
        Path::keys(&["name"]),
        Path::keys(&["config_key"]),
    ];
    let mut evidence = if c.action.is_replace() {
        c.replace_evidence()
    } else {
        c.under(&ids)
    };
    let force = Path::keys(&["force_destroy"]);
    let retain = Path::keys(&["retain_on_destroy"]);
    // On a destroy the flags that decide what happens to the contents are
    // part of the evidence; a replace shows what forces it instead.
    let flag = |c: &Check<'_>, p: &Path| {
        if c.action == Action::Delete {
            c.under(std::slice::from_ref(p))
        } else {
            Vec::new()
        }
    };
    if c.rc.ty == "tandem_proxy_fleet" && is_true(&c.before(&retain)) {
        evidence.extend(flag(c, &retain));
        let message = format!("{verb}, but retain_on_destroy keeps the published config: running proxies keep it, and Terraform no longer manages it.");
        c.add(Rule::StatefulDestroyed, Risk::Low, message, evidence);
        return;
    }
    let extra = if is_true(&c.before(&force)) {
        evidence.extend(flag(c, &force));
        " force_destroy is set, so the contents are deleted too."
    } else if c.rc.ty == "tandem_s3_bucket" {
        " force_destroy is off, so the destroy fails while the bucket holds objects."
    } else {
        ""
    };
    let message = format!("{verb}: this removes {what}.{extra}");
    c.add(Rule::StatefulDestroyed, Risk::High, message, evidence);
}

fn failover_record(c: &mut Check<'_>) {
    let ids = [Path::keys(&["name"]), Path::keys(&["type"])];
    match c.action {
        Action::Delete => {
            let e = c.under(&ids);
            let m = "failover record set destroyed: the name stops resolving.".to_string();
            c.add(Rule::FailoverRecordDestroyed, Risk::High, m, e);
            return;
        }
        Action::DeleteThenCreate | Action::CreateThenDelete => {
            let e = c.replace_evidence();
            let m = "failover record set replaced: both record sets are deleted and created again, and the name does not resolve in between.".to_string();
            c.add(Rule::FailoverRecordReplaced, Risk::High, m, e);
            return;
        }
        _ => {}
    }
    for side in ["primary", "secondary"] {
        let block = c.rc.change.block(&Path::default(), side);
        for field in ["records", "alias"] {
            let p = block.key(field);
            let (b, a) = (c.before(&p), c.after(&p));
            if b != a {
                let e = c.under(std::slice::from_ref(&p));
                let m = format!("the {side} failover target changes ({field}).");
                c.add(Rule::FailoverTargetChanged, Risk::Medium, m, e);
            }
        }
        let p = block.key("health_check_id");
        let (b, a) = (c.before(&p), c.after(&p));
        let e = vec![c.pair(&p, &p)];
        match (&b, &a) {
            (Shown::Known(_), Shown::Null) => {
                let (risk, why) = if side == "primary" {
                    (
                        Risk::High,
                        "Route 53 treats it as always healthy, so it can no longer fail over",
                    )
                } else {
                    (Risk::Medium, "it stays the answer even when unhealthy")
                };
                let m = format!("the {side} loses its health check: {why}.");
                c.add(Rule::FailoverHealthCheckRemoved, risk, m, e);
            }
            (Shown::Known(x), Shown::Known(y)) if x != y => {
                let m = format!("the {side} follows another health check.");
                c.add(Rule::FailoverHealthCheckChanged, Risk::Medium, m, e);
            }
            (Shown::Known(_), Shown::Unknown) => {
                let m = format!("the {side}'s health check ID is known only after apply (its check is being replaced or created).");
                c.add(Rule::FailoverHealthCheckChanged, Risk::Low, m, e);
            }
            _ => {}
        }
    }
    let ttl = Path::keys(&["ttl"]);
    let num = |s: Shown| s.known().and_then(Json::as_f64);
    if let (Some(b), Some(a)) = (num(c.before(&ttl)), num(c.after(&ttl))) {
        if a > b {
            let e = c.under(&[ttl]);
            let m = format!("TTL raised from {b} s to {a} s: after a failover, resolvers keep the old answer that much longer.");
            c.add(Rule::FailoverTtlRaised, Risk::Low, m, e);
        }
    }
}

fn health_check(c: &mut Check<'_>) {
    match c.action {
        Action::Delete => {
            let e = c.under(&[Path::keys(&["fqdn"]), Path::keys(&["ip_address"])]);
            let m = "health check destroyed: a failover record using it stops failing over."
                .to_string();
            c.add(Rule::HealthCheckDestroyed, Risk::High, m, e);
            return;
        }
        Action::DeleteThenCreate | Action::CreateThenDelete => {
            let e = c.replace_evidence();
            let m = "health check replaced: it gets a new ID and starts without data; records using it follow a check whose status starts over.".to_string();
            c.add(Rule::HealthCheckReplaced, Risk::High, m, e);
            return;
        }
        _ => {}
    }
    let disabled = Path::keys(&["disabled"]);
    if !is_true(&c.before(&disabled)) && is_true(&c.after(&disabled)) {
        let e = c.under(&[disabled]);
        let m = "health check disabled: Route 53 then treats the endpoint as healthy, so failover stops.".to_string();
        c.add(Rule::HealthCheckDisabled, Risk::Medium, m, e);
    }
    let threshold = Path::keys(&["failure_threshold"]);
    let num = |s: Shown| s.known().and_then(Json::as_f64);
    if let (Some(b), Some(a)) = (num(c.before(&threshold)), num(c.after(&threshold))) {
        if a > b {
            let e = c.under(&[threshold]);
            let m = format!("failure_threshold raised from {b} to {a}: Route 53 needs more failed checks before it fails over.");
            c.add(Rule::HealthCheckSlower, Risk::Low, m, e);
        }
    }
}

/// The rules of a replication config by ID, with the path of each.
fn rules_by_id(v: &Shown, base: &Path) -> BTreeMap<String, Path> {
    let mut m = BTreeMap::new();
    if let Some(Json::Array(rules)) = v.known() {
        for (i, r) in rules.iter().enumerate() {
            let id = r.get("id").and_then(Json::as_str).unwrap_or("").to_string();
            m.insert(id, base.index(i));
        }
    }
    m
}

fn text(s: &Shown) -> String {
    s.known()
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn replication(c: &mut Check<'_>) {
    if c.action == Action::Delete {
        let e = c.under(&[Path::keys(&["bucket"])]);
        let m = "replication destroyed: new writes stop reaching the other regions.".to_string();
        c.add(Rule::ReplicationDestroyed, Risk::High, m, e);
        return;
    }
    let rule = Path::keys(&["rule"]);
    let after_rules = c.after(&rule);
    if after_rules == Shown::Unknown {
        return;
    }
    let before = rules_by_id(&c.before(&rule), &rule);
    let after = rules_by_id(&after_rules, &rule);
    for (id, bp) in &before {
        let Some(ap) = after.get(id) else {
            let e = vec![AttrChange {
                path: bp.key("id"),
                before: c.before(&bp.key("id")),
                after: Shown::Null,
            }];
            let m = format!("replication rule {id:?} removed: the objects it replicated stop reaching its destination.");
            c.add(Rule::ReplicationRuleRemoved, Risk::High, m, e);
            continue;
        };
        let status = |s: &Shown| s.known().and_then(Json::as_str) != Some("Disabled");
        let (sb, sa) = (c.before(&bp.key("status")), c.after(&ap.key("status")));
        if status(&sb) && sa.known().and_then(Json::as_str) == Some("Disabled") {
            let e = vec![c.pair(&bp.key("status"), &ap.key("status"))];
            let m = format!("replication rule {id:?} disabled: the objects it replicated stop reaching its destination.");
            c.add(Rule::ReplicationRuleDisabled, Risk::High, m, e);
        }
        let (fb, fa) = (
            c.rc.change.block(bp, "filter"),
            c.rc.change.block(ap, "filter"),
        );
        let (pb, pa) = (c.before(&fb.key("prefix")), c.after(&fa.key("prefix")));
        if pa != Shown::Unknown {
            let (pb, pa_text) = (text(&pb), text(&pa));
            if pa_text != pb && !pb.starts_with(&pa_text) {
                let e = vec![c.pair(&fb.key("prefix"), &fa.key("prefix"))];
                let m = format!("replication rule {id:?} narrowed: prefix {pb:?} → {pa_text:?}; objects outside it stop replicating.");
                c.add(Rule::ReplicationFilterNarrowed, Risk::Medium, m, e);
            }
        }
        let tags = |s: Shown| -> BTreeSet<(String, String)> {
            s.known()
                .and_then(Json::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default()
        };
        let ta_shown = c.after(&fa.key("tags"));
        if ta_shown != Shown::Unknown {
            let (tb, ta) = (tags(c.before(&fb.key("tags"))), tags(ta_shown));
            let added: Vec<String> = ta
                .difference(&tb)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !added.is_empty() {
                let e = vec![c.pair(&fb.key("tags"), &fa.key("tags"))];
                let m = format!(
                    "replication rule {id:?} narrowed: only objects tagged {} replicate now.",
                    added.join(", ")
                );
                c.add(Rule::ReplicationFilterNarrowed, Risk::Medium, m, e);
            }
        }
        let (db, da) = (
            c.rc.change.block(bp, "destination"),
            c.rc.change.block(ap, "destination"),
        );
        let (b, a) = (c.before(&db.key("bucket")), c.after(&da.key("bucket")));
        if let (Shown::Known(x), Shown::Known(y)) = (&b, &a) {
            if x != y {
                let e = vec![c.pair(&db.key("bucket"), &da.key("bucket"))];
                let m = format!("replication rule {id:?} sends new writes to {y} instead of {x}.");
                c.add(Rule::ReplicationDestinationChanged, Risk::Medium, m, e);
            }
        }
        let dm = "delete_marker_replication";
        if is_true(&c.before(&bp.key(dm)))
            && !is_true(&c.after(&ap.key(dm)))
            && c.after(&ap.key(dm)) != Shown::Unknown
        {
            let e = vec![c.pair(&bp.key(dm), &ap.key(dm))];
            let m = format!("replication rule {id:?} stops replicating delete markers: deletes no longer reach the replica, which keeps serving deleted objects after a failover.");
            c.add(Rule::ReplicationDeleteMarkersOff, Risk::Medium, m, e);
        }
    }
}

fn versioning(c: &mut Check<'_>) {
    let status = Path::keys(&["status"]);
    let enabled = |s: Shown| s.known().and_then(Json::as_str) == Some("Enabled");
    let was = enabled(c.before(&status));
    if c.action == Action::Delete && was {
        let e = c.under(&[Path::keys(&["bucket"]), status]);
        let m = "versioning resource destroyed: destroying it suspends versioning, so replication from and to the bucket stops.".to_string();
        c.add(Rule::VersioningSuspended, Risk::High, m, e);
    } else if c.action != Action::Delete
        && was
        && c.after(&status).known().and_then(Json::as_str) == Some("Suspended")
    {
        let e = c.under(&[status]);
        let m = "versioning suspended: replication from and to this bucket stops, and overwritten objects lose their history.".to_string();
        c.add(Rule::VersioningSuspended, Risk::High, m, e);
    }
}

/// Route names, and `route/replica` names with the path of each replica's
/// name.
fn fleet_names(v: &Shown, base: &Path) -> (BTreeMap<String, Path>, BTreeMap<String, Path>) {
    let mut routes = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    if let Some(Json::Array(list)) = v.known() {
        for (i, route) in list.iter().enumerate() {
            let name = route.get("name").and_then(Json::as_str).unwrap_or("");
            routes.insert(name.to_string(), base.index(i).key("name"));
            if let Some(Json::Array(rs)) = route.get("replica") {
                for (k, r) in rs.iter().enumerate() {
                    let rn = r.get("name").and_then(Json::as_str).unwrap_or("");
                    replicas.insert(
                        format!("{name}/{rn}"),
                        base.index(i).key("replica").index(k).key("name"),
                    );
                }
            }
        }
    }
    (routes, replicas)
}

fn fleet(c: &mut Check<'_>) {
    if c.action == Action::Delete {
        return;
    }
    let bucket = Path::keys(&["bucket"]);
    let after = c.after(&bucket);
    if after == Shown::Unknown {
        return;
    }
    let (rb, pb) = fleet_names(&c.before(&bucket), &bucket);
    let (ra, pa) = fleet_names(&after, &bucket);
    for (name, path) in &rb {
        if !ra.contains_key(name) {
            let e = vec![AttrChange {
                path: path.clone(),
                before: c.before(path),
                after: Shown::Null,
            }];
            let m = format!("the fleet config drops bucket route {name:?}: every proxy answers 404 for its paths once it loads the new config.");
            c.add(Rule::FleetRouteDropped, Risk::High, m, e);
        }
    }
    for (name, path) in &pb {
        let route = name.split('/').next().unwrap_or_default();
        if ra.contains_key(route) && !pa.contains_key(name) {
            let e = vec![AttrChange {
                path: path.clone(),
                before: c.before(path),
                after: Shown::Null,
            }];
            let m = format!(
                "the fleet config drops replica {name:?}: one place fewer to fail over to."
            );
            c.add(Rule::FleetReplicaDropped, Risk::Medium, m, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(changes: Json) -> Plan {
        Plan::parse(&json!({ "format_version": "1.2", "resource_changes": changes }).to_string())
            .unwrap()
    }

    fn rc(address: &str, ty: &str, actions: &[&str], before: Json, after: Json) -> Json {
        json!({"address": address, "type": ty, "name": "x", "mode": "managed",
               "change": {"actions": actions, "before": before, "after": after}})
    }

    fn ids(f: &[Finding]) -> Vec<(&'static str, Risk)> {
        f.iter().map(|f| (f.rule.id(), f.risk)).collect()
    }

    #[test]
    fn rule_ids_are_unique_and_kebab_case() {
        let mut seen = BTreeSet::new();
        for r in Rule::ALL {
            assert!(seen.insert(r.id()), "{} twice", r.id());
            assert!(r.id().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!r.help().is_empty() && !r.title().is_empty());
        }
    }

    #[test]
    fn the_guide_lists_exactly_these_rules_at_their_risk() {
        // The guide is what users read; a rule it promises must exist, and
        // a rule that exists must be in it.
        let guide = include_str!("../../../docs/guides/ci-plan-review.md");
        let mut listed = Vec::new();
        for row in guide.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let id = cells[1].trim_matches('`');
            if let Some(rule) = Rule::ALL.iter().find(|r| r.id() == id) {
                assert!(
                    cells[2].starts_with(rule.risk().name()),
                    "{id}: the guide says {:?}, the rule {}",
                    cells[2],
                    rule.risk()
                );
                listed.push(id);
            } else if !id.starts_with('-') && id.contains('-') && !id.contains(' ') {
                panic!("the guide promises {id}, which is no rule");
            }
        }
        let all: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(listed, all, "the guide's table, in order");
    }

    #[test]
    fn a_replaced_health_check_is_not_a_removed_one() {
        // The health check is replaced; the record's health_check_id is
        // then unknown, not null: only low, never "removed".
        let mut record = rc(
            "tandem_route53_failover_record.api",
            "tandem_route53_failover_record",
            &["update"],
            json!({"primary": {"records": ["192.0.2.1"], "health_check_id": "hc1"}, "secondary": {"records": ["192.0.2.2"]}}),
            json!({"primary": {"records": ["192.0.2.1"]}, "secondary": {"records": ["192.0.2.2"]}}),
        );
        record["change"]["after_unknown"] = json!({"primary": {"health_check_id": true}});
        let f = review(&plan(json!([record])));
        assert_eq!(ids(&f), [("failover-health-check-changed", Risk::Low)]);
        assert_eq!(
            f[0].changes[0].to_string(),
            "- primary.health_check_id = \"hc1\"\n+ primary.health_check_id = (known after apply)"
        );
    }

    #[test]
    fn retained_fleet_config_destroy_is_low_and_bucket_destroy_names_force_destroy() {
        let f = review(&plan(json!([
            rc(
                "p",
                "tandem_proxy_fleet",
                &["delete"],
                json!({"retain_on_destroy": true, "config_key": "k"}),
                Json::Null
            ),
            rc(
                "b",
                "tandem_s3_bucket",
                &["delete"],
                json!({"bucket": "assets", "force_destroy": true}),
                Json::Null
            ),
        ])));
        assert_eq!(
            ids(&f),
            [
                ("stateful-destroyed", Risk::High),
                ("stateful-destroyed", Risk::Low)
            ]
        );
        assert!(f[0].message.contains("force_destroy is set"));
        let shown: Vec<String> = f[0].changes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["- bucket = \"assets\"", "- force_destroy = true"]);
    }

    #[test]
    fn replication_rules_are_matched_by_id_not_position() {
        let rule = |id: &str, prefix: &str| {
            json!({"id": id, "status": "Enabled", "delete_marker_replication": true,
            "filter": {"prefix": prefix}, "destination": {"bucket": "arn:aws:s3:::b"}})
        };
        let before = json!({"rule": [rule("a", ""), rule("b", "img/")]});
        let after = json!({"rule": [rule("b", ""), rule("a", "")]});
        let f = review(&plan(json!([rc(
            "r",
            "tandem_s3_bucket_replication",
            &["update"],
            before,
            after
        )])));
        assert!(f.is_empty(), "reordering and widening are harmless: {f:?}");
    }

    #[test]
    fn unknown_rules_or_fleet_routes_say_nothing() {
        let mut r = rc(
            "r",
            "tandem_s3_bucket_replication",
            &["update"],
            json!({"rule": [{"id": "a"}]}),
            json!({}),
        );
        r["change"]["after_unknown"] = json!({"rule": true});
        let mut p = rc(
            "p",
            "tandem_proxy_fleet",
            &["update"],
            json!({"bucket": [{"name": "a"}]}),
            json!({}),
        );
        p["change"]["after_unknown"] = json!({"bucket": true});
        assert!(review(&plan(json!([r, p]))).is_empty());
    }

    #[test]
    fn findings_sort_by_risk_then_module_then_address() {
        let mut m = rc(
            "module.b.tandem_route53_zone.z",
            "tandem_route53_zone",
            &["delete"],
            json!({"name": "z"}),
            Json::Null,
        );
        m["module_address"] = json!("module.b");
        let f = review(&plan(json!([
            rc(
                "tandem_route53_health_check.h",
                "tandem_route53_health_check",
                &["update"],
                json!({"failure_threshold": 3}),
                json!({"failure_threshold": 5})
            ),
            m,
            rc(
                "tandem_route53_zone.a",
                "tandem_route53_zone",
                &["delete"],
                json!({"name": "a"}),
                Json::Null
            ),
        ])));
        let order: Vec<&str> = f.iter().map(|f| f.address.as_str()).collect();
        assert_eq!(
            order,
            [
                "tandem_route53_zone.a",
                "module.b.tandem_route53_zone.z",
                "tandem_route53_health_check.h"
            ]
        );
        assert_eq!(f[2].risk, Risk::Low);
    }

    #[test]
    fn risk_levels_parse_and_order() {
        assert!("HIGH".parse::<Risk>().unwrap() > Risk::Medium);
        assert!("critical".parse::<Risk>().is_err());
    }
}
