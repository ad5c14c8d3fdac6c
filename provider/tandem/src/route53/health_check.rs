//! `tandem_route53_health_check`: an HTTP(S), string-match, TCP,
//! calculated, CloudWatch-alarm or recovery-control health check. Value
//! rules (types, ranges, lengths, formats) are schema validators; the code
//! here keeps the rules that depend on `type`, which AWS only checks at
//! apply time (or, in emulators, never). The HealthCheckVersion read with
//! the state is kept in private state and sent with the update, so an edit
//! made after the plan is refused by Route 53 rather than overwritten.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AlarmIdentifier, CloudWatchRegion, HealthCheck, HealthCheckConfig, HealthCheckRegion,
    HealthCheckType, InsufficientDataHealthStatus, ResettableElementName, TagResourceType,
};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostics, Field, IdentitySchema, Plan,
    ReadResult, Resource, Schema, Type, Validator, Value,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::partition::Partition;
use crate::aws::tags::{split_tags, Tags};
use crate::aws::{ok_if_gone, Aws, Stoppable};
use crate::model::{self, ModelError};

use super::error::Route53Error;
use super::{find, names, wait};

const TYPE_NAME: &str = "tandem_route53_health_check";

/// What kind of health check, from `type`: which arguments apply follows
/// from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `HTTP`
    Http,
    /// `HTTPS`
    Https,
    /// `HTTP_STR_MATCH`
    HttpStrMatch,
    /// `HTTPS_STR_MATCH`
    HttpsStrMatch,
    /// `TCP`
    Tcp,
    /// `CALCULATED`: combines other health checks.
    Calculated,
    /// `CLOUDWATCH_METRIC`: follows a CloudWatch alarm.
    CloudWatchMetric,
    /// `RECOVERY_CONTROL`: follows a Route 53 ARC routing control.
    RecoveryControl,
}

impl Kind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Kind; 8] = [
        Kind::Http,
        Kind::Https,
        Kind::HttpStrMatch,
        Kind::HttpsStrMatch,
        Kind::Tcp,
        Kind::Calculated,
        Kind::CloudWatchMetric,
        Kind::RecoveryControl,
    ];

    /// The `type` value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "HTTP",
            Kind::Https => "HTTPS",
            Kind::HttpStrMatch => "HTTP_STR_MATCH",
            Kind::HttpsStrMatch => "HTTPS_STR_MATCH",
            Kind::Tcp => "TCP",
            Kind::Calculated => "CALCULATED",
            Kind::CloudWatchMetric => "CLOUDWATCH_METRIC",
            Kind::RecoveryControl => "RECOVERY_CONTROL",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Checks an endpoint (address, port, interval, checker regions).
    fn endpoint(self) -> bool {
        matches!(
            self,
            Kind::Http | Kind::Https | Kind::HttpStrMatch | Kind::HttpsStrMatch | Kind::Tcp
        )
    }

    /// Sends HTTP requests (path, search string).
    fn http(self) -> bool {
        self.endpoint() && self != Kind::Tcp
    }

    /// Speaks TLS (SNI).
    fn https(self) -> bool {
        matches!(self, Kind::Https | Kind::HttpsStrMatch)
    }

    /// Looks for a string in the body.
    fn str_match(self) -> bool {
        matches!(self, Kind::HttpStrMatch | Kind::HttpsStrMatch)
    }

    fn calculated(self) -> bool {
        self == Kind::Calculated
    }

    fn cloudwatch(self) -> bool {
        self == Kind::CloudWatchMetric
    }

    fn recovery_control(self) -> bool {
        self == Kind::RecoveryControl
    }
}

/// Health check types this resource manages.
pub const TYPES: &[&str] = &[
    "HTTP",
    "HTTPS",
    "HTTP_STR_MATCH",
    "HTTPS_STR_MATCH",
    "TCP",
    "CALCULATED",
    "CLOUDWATCH_METRIC",
    "RECOVERY_CONTROL",
];

/// Regions Route 53 runs health checkers in.
pub const CHECKER_REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];

/// What a CloudWatch alarm check reports while the alarm lacks data.
pub const INSUFFICIENT_DATA_STATUSES: &[&str] = &["Healthy", "Unhealthy", "LastKnownStatus"];

/// Route 53's default failure threshold: three failed checks in a row.
const DEFAULT_FAILURE_THRESHOLD: i64 = 3;
/// Route 53's default (standard, not fast) check interval, in seconds.
const DEFAULT_REQUEST_INTERVAL: i64 = 30;
/// AWS requires at least this many checker regions when any are listed.
const MIN_REGIONS: usize = 3;
/// AWS limit on `search_string` and `resource_path`.
const MAX_STRING_LEN: usize = 255;
/// AWS limit on child health checks of a calculated check.
const MAX_CHILDREN: usize = 256;
/// CloudWatch's limit on alarm names.
const MAX_ALARM_NAME: usize = 255;
/// The highest failure threshold Route 53 accepts.
const MAX_FAILURE_THRESHOLD: i64 = 10;

/// Arguments that cannot change in place: AWS keeps them for the check's
/// life (UpdateHealthCheck has no field for them).
const REPLACE_ON: &[&str] = &[
    "type",
    "request_interval",
    "measure_latency",
    "routing_control_arn",
];
/// Computed values a replacement recomputes.
const RECOMPUTED: &[&str] = &[
    "id",
    "arn",
    "port",
    "regions",
    "enable_sni",
    "insufficient_data_health_status",
];

fn ip_address(v: &str) -> Result<(), String> {
    v.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| "use `fqdn` for names".into())
}

fn resource_path(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        Ok(())
    } else {
        Err("it does not start with `/`".into())
    }
}

/// A region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`): lowercase
/// words joined by `-`, ending in a number. CloudWatch adds regions more
/// often than this provider is released, so the shape is checked, not a list.
fn region(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('-').collect();
    let shaped = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if shaped {
        Ok(())
    } else {
        Err("expected a region name such as `us-east-1`".into())
    }
}

/// An ARC routing control ARN:
/// `arn:PARTITION:route53-recovery-control::ACCOUNT:controlpanel/ID/routingcontrol/ID`.
fn routing_control_arn(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", p, "route53-recovery-control", "", account, resource]
            if !p.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.starts_with("controlpanel/")
                && resource.contains("/routingcontrol/") =>
        {
            Ok(())
        }
        _ => Err(
            "expected arn:PARTITION:route53-recovery-control::ACCOUNT:controlpanel/ID/routingcontrol/ID"
                .into(),
        ),
    }
}

fn schema() -> Schema {
    Schema::new(
        Block::new(
            "A Route 53 health check, for failover record sets. Mistakes that depend on `type` (an HTTP check without \
             an endpoint, a search string on a plain HTTP check, children on a non-calculated check, an alarm on an \
             endpoint check, ...) are reported at plan time. Updates use `HealthCheckVersion`, so a concurrent change \
             is never overwritten silently. Import with the health check ID.",
        )
        .attr(Attribute::computed("id", Type::String, "The health check ID."))
        .attr(Attribute::computed(
            "arn",
            Type::String,
            "The ARN of the health check, in the partition of the provider's region.",
        ))
        .attr(
            Attribute::required(
                "type",
                Type::String,
                "What to check: an endpoint (`HTTP`, `HTTPS`, `HTTP_STR_MATCH`, `HTTPS_STR_MATCH`, `TCP`), other \
                 health checks (`CALCULATED`), a CloudWatch alarm (`CLOUDWATCH_METRIC`) or an Application Recovery \
                 Controller routing control (`RECOVERY_CONTROL`). Changing it replaces the health check.",
            )
            .validate(Validator::one_of(TYPES)),
        )
        .attr(
            Attribute::optional(
                "fqdn",
                Type::String,
                "Domain name of the endpoint to check. Endpoint checks need this or `ip_address`; with both, Route 53 \
                 connects to `ip_address` and sends `fqdn` as the Host header.",
            )
            .validate(Validator::format(names::NAME, names::valid_name)),
        )
        .attr(
            Attribute::optional("ip_address", Type::String, "Address of the endpoint to check.")
                .validate(Validator::format("an IPv4 or IPv6 address", ip_address)),
        )
        .attr(
            Attribute::optional_computed(
                "port",
                Type::Number,
                "Port of the endpoint. Required for `TCP`; defaults to 80 for HTTP and 443 for HTTPS checks.",
            )
            .validate(Validator::between(1, 65535)),
        )
        .attr(
            Attribute::optional(
                "resource_path",
                Type::String,
                "Path requested by HTTP(S) checks, e.g. `/healthz`.",
            )
            .validate(Validator::length(1, MAX_STRING_LEN))
            .validate(Validator::format("a path starting with `/`", resource_path)),
        )
        .attr(
            Attribute::optional(
                "search_string",
                Type::String,
                "String that must appear in the first 5120 bytes of the response body. Required by, and only \
                 allowed for, `HTTP_STR_MATCH` and `HTTPS_STR_MATCH`.",
            )
            .validate(Validator::length(1, MAX_STRING_LEN)),
        )
        .attr(
            Attribute::optional_computed(
                "failure_threshold",
                Type::Number,
                "Consecutive failed (or passed) checks that change the status of an endpoint check. Default 3.",
            )
            .validate(Validator::between(1, MAX_FAILURE_THRESHOLD)),
        )
        .attr(
            Attribute::optional_computed(
                "request_interval",
                Type::Number,
                "Seconds between checks of an endpoint: 30 (standard) or 10 (fast, extra cost). Default 30. \
                 Changing it replaces the health check.",
            )
            .validate(Validator::one_of_ints(&[10, 30])),
        )
        .attr(Attribute::optional_computed(
            "measure_latency",
            Type::Bool,
            "Record latency graphs of an endpoint check in CloudWatch. Default `false`. Changing it replaces the \
             health check.",
        ))
        .attr(
            Attribute::optional_computed(
                "regions",
                Type::set(Type::String),
                "Checker regions of an endpoint check. When unset, Route 53 uses its defaults and the plan shows \
                 no diff.",
            )
            .validate(Validator::size_at_least(MIN_REGIONS))
            .validate(Validator::each(Validator::one_of(CHECKER_REGIONS))),
        )
        .attr(
            Attribute::optional(
                "invert_healthcheck",
                Type::Bool,
                "Report healthy when the check fails and unhealthy when it passes. Default `false`.",
            )
            .default(false),
        )
        .attr(
            Attribute::optional(
                "disabled",
                Type::Bool,
                "Stop checking; Route 53 then considers the health check healthy. Default `false`.",
            )
            .default(false),
        )
        .attr(Attribute::optional_computed(
            "enable_sni",
            Type::Bool,
            "Send the `fqdn` in the TLS handshake (SNI). Only for `HTTPS` and `HTTPS_STR_MATCH`; Route 53 \
             defaults it to `true` there.",
        ))
        .attr(
            Attribute::optional(
                "child_healthchecks",
                Type::set(Type::String),
                "IDs of the health checks a `CALCULATED` check combines. Only for `CALCULATED`.",
            )
            .validate(Validator::size_between(0, MAX_CHILDREN)),
        )
        .attr(
            Attribute::optional(
                "child_health_threshold",
                Type::Number,
                "How many of `child_healthchecks` must be healthy for a `CALCULATED` check to be healthy (at \
                 most the number of children). Only for `CALCULATED`.",
            )
            .validate(Validator::between(0, MAX_CHILDREN as i64)),
        )
        .attr(
            Attribute::optional(
                "cloudwatch_alarm_name",
                Type::String,
                "Name of the CloudWatch alarm a `CLOUDWATCH_METRIC` check follows: healthy while the alarm is \
                 `OK`, unhealthy in `ALARM`. Required for, and only allowed with, `CLOUDWATCH_METRIC`.",
            )
            .validate(Validator::length(1, MAX_ALARM_NAME))
            .validate(Validator::also_requires(&["cloudwatch_alarm_region"])),
        )
        .attr(
            Attribute::optional(
                "cloudwatch_alarm_region",
                Type::String,
                "Region of that CloudWatch alarm.",
            )
            .validate(Validator::format("a region name such as `us-east-1`", region))
            .validate(Validator::also_requires(&["cloudwatch_alarm_name"])),
        )
        .attr(
            Attribute::optional_computed(
                "insufficient_data_health_status",
                Type::String,
                "Status of a `CLOUDWATCH_METRIC` check while CloudWatch has too little data to decide the alarm \
                 state. When unset, Route 53's default applies.",
            )
            .validate(Validator::one_of(INSUFFICIENT_DATA_STATUSES)),
        )
        .attr(
            Attribute::optional(
                "routing_control_arn",
                Type::String,
                "ARN of the Application Recovery Controller routing control a `RECOVERY_CONTROL` check follows: \
                 healthy while it is On. Required for, and only allowed with, `RECOVERY_CONTROL`. Changing it \
                 replaces the health check.",
            )
            .validate(Validator::format("a routing control ARN", routing_control_arn)),
        )
        .attr(super::tags_attribute("health check"))
        .attr(super::tags_all_attribute("health check")),
    )
}

/// The resource's configuration, plan and state. Unknowns (a `fqdn` from a
/// resource not yet created, the `id` before create) stay apart from nulls.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct HealthCheckModel {
    id: Field<String>,
    arn: Field<String>,
    r#type: Field<String>,
    fqdn: Field<String>,
    ip_address: Field<String>,
    port: Field<i64>,
    resource_path: Field<String>,
    search_string: Field<String>,
    failure_threshold: Field<i64>,
    request_interval: Field<i64>,
    measure_latency: Field<bool>,
    regions: Field<Vec<String>>,
    invert_healthcheck: Field<bool>,
    disabled: Field<bool>,
    enable_sni: Field<bool>,
    child_healthchecks: Field<Vec<String>>,
    child_health_threshold: Field<i64>,
    cloudwatch_alarm_name: Field<String>,
    cloudwatch_alarm_region: Field<String>,
    insufficient_data_health_status: Field<String>,
    routing_control_arn: Field<String>,
    tags: Field<Tags>,
    tags_all: Field<Tags>,
}

fn int(n: &Field<i64>) -> Option<i32> {
    n.known().and_then(|n| i32::try_from(*n).ok())
}

fn text(f: &Field<String>) -> Option<String> {
    f.known().cloned()
}

impl HealthCheckModel {
    fn read(v: &Value, what: &'static str) -> Result<HealthCheckModel, ModelError> {
        model::read(v, &schema(), TYPE_NAME, what)
    }

    fn write(&self) -> Result<Value, ModelError> {
        model::write(self, &schema(), TYPE_NAME)
    }

    fn kind(&self) -> Option<Kind> {
        self.r#type.known().and_then(|t| Kind::parse(t))
    }

    fn regions(&self) -> Option<Vec<HealthCheckRegion>> {
        self.regions.known().filter(|r| !r.is_empty()).map(|r| {
            r.iter()
                .map(|x| HealthCheckRegion::from(x.as_str()))
                .collect()
        })
    }

    fn alarm(&self) -> Result<Option<AlarmIdentifier>, String> {
        match (
            self.cloudwatch_alarm_name.known(),
            self.cloudwatch_alarm_region.known(),
        ) {
            (Some(name), Some(region)) => AlarmIdentifier::builder()
                .name(name)
                .region(CloudWatchRegion::from(region.as_str()))
                .build()
                .map(Some)
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }

    fn insufficient_data(&self) -> Option<InsufficientDataHealthStatus> {
        self.insufficient_data_health_status
            .known()
            .map(|s| InsufficientDataHealthStatus::from(s.as_str()))
    }

    /// The CreateHealthCheck configuration.
    fn config(&self) -> Result<HealthCheckConfig, String> {
        let kind = self.kind();
        let mut b = HealthCheckConfig::builder()
            .r#type(HealthCheckType::from(
                self.r#type.known().map(String::as_str).unwrap_or_default(),
            ))
            .set_fully_qualified_domain_name(text(&self.fqdn))
            .set_ip_address(text(&self.ip_address))
            .set_port(int(&self.port))
            .set_resource_path(text(&self.resource_path))
            .set_search_string(text(&self.search_string))
            .set_inverted(self.invert_healthcheck.known().copied())
            .set_disabled(self.disabled.known().copied())
            .set_regions(self.regions())
            .set_alarm_identifier(self.alarm()?)
            .set_insufficient_data_health_status(self.insufficient_data())
            .set_routing_control_arn(text(&self.routing_control_arn));
        if kind.is_some_and(Kind::calculated) {
            b = b
                .set_child_health_checks(Some(
                    self.child_healthchecks.known().cloned().unwrap_or_default(),
                ))
                .set_health_threshold(int(&self.child_health_threshold));
        }
        if kind.is_some_and(Kind::endpoint) {
            b = b
                .set_failure_threshold(int(&self.failure_threshold))
                .set_request_interval(int(&self.request_interval))
                .set_measure_latency(self.measure_latency.known().copied());
        }
        if kind.is_some_and(Kind::https) {
            b = b.set_enable_sni(self.enable_sni.known().copied());
        }
        b.build().map_err(|e| e.to_string())
    }

    /// What UpdateHealthCheck can change: everything but the identifiers,
    /// the tags (written separately) and what forces replacement.
    fn settings(&self) -> HealthCheckModel {
        HealthCheckModel {
            id: Field::Null,
            arn: Field::Null,
            tags: Field::Null,
            tags_all: Field::Null,
            ..self.clone()
        }
    }
}

#[async_trait]
impl Resource<Aws> for HealthCheckResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema::strings(&[("id", "The health check ID.")]))
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        match HealthCheckModel::read(config, "configuration") {
            Ok(m) => check_config(&m, diags),
            Err(e) => diags.extend(e.into()),
        }
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        plan_defaults(plan)?;
        super::keep_prior_spelling(plan, &["fqdn"]);
        super::replace_if_changed(plan, REPLACE_ON, RECOMPUTED);
        super::plan_tags_all(ctx, plan);
        Ok(())
    }

    async fn create(
        &self,
        ctx: &Ctx<Aws>,
        planned: &Value,
        _config: &Value,
    ) -> Result<Applied, ApplyError> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let cancel = ctx.cancel_token();
        let m = HealthCheckModel::read(planned, "plan")?;
        let ty = m.r#type.known().cloned().unwrap_or_default();
        let target = text(&m.fqdn)
            .or(text(&m.ip_address))
            .or(text(&m.cloudwatch_alarm_name))
            .or(text(&m.routing_control_arn))
            .unwrap_or_else(|| "children".into());
        let doing = format!("creating Route 53 health check ({ty} {target})");
        let hc_config = m.config().map_err(|message| Route53Error::Request {
            doing: doing.clone(),
            message,
        })?;
        let span = tracing::debug_span!("route53.CreateHealthCheck", r#type = %ty);
        let out = client
            .create_health_check()
            .caller_reference(caller_reference())
            .health_check_config(hc_config)
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await
            .map_err(|e| Route53Error::aws(&doing, e))?;
        let Some(hc) = out.health_check().cloned() else {
            return Err(Route53Error::Incomplete {
                doing,
                field: "HealthCheck",
            }
            .into());
        };
        let id = hc.id().to_string();
        let mut created = m.clone();
        created.id = Field::Known(id.clone());
        // What exists if a later step fails: the plan, with the unknowns it
        // still has as null (state must be known).
        let partial = |e: Diagnostics| ApplyError {
            diagnostics: e,
            partial: created.write().ok().map(|v| v.unknowns_to_null()),
        };
        let all_tags = m.tags_all.known().cloned().unwrap_or_default();
        if let Err(e) = wait::update_tags(
            client,
            cancel,
            TagResourceType::Healthcheck,
            &id,
            &Default::default(),
            &all_tags,
        )
        .await
        {
            return Err(partial(
                Route53Error::aws(format!("tagging Route 53 health check ({id})"), e).into(),
            ));
        }
        // The state is what Route 53 answered to the create and the tags
        // just written: reading both back would cost two more of the
        // account's five requests a second per check. The next refresh
        // still compares with what is there.
        aws.route53_snapshots()
            .health_check_changed(&id, Some((hc.clone(), all_tags.clone())));
        applied(ctx, aws, &created, &hc, &all_tags).map_err(partial)
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let prior = HealthCheckModel::read(state, "state")?;
        Ok(match refresh(ctx, aws, &prior, Source::Snapshot).await? {
            Some(a) => ReadResult::Found(a),
            None => ReadResult::Gone,
        })
    }

    async fn update(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        private: &[u8],
    ) -> Result<Applied, ApplyError> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let cancel = ctx.cancel_token();
        let old = HealthCheckModel::read(prior, "prior state")?;
        let mut new = HealthCheckModel::read(planned, "plan")?;
        let id = old.id.known().cloned().unwrap_or_default();
        let doing = format!("updating Route 53 health check ({id})");
        if old.settings() != new.settings() {
            let version = match Private::decode(private) {
                Some(p) => p.health_check_version,
                // State written before versions were kept: the version now
                // is the best there is (the next read records one).
                None => find::find_health_check(client, cancel, &id)
                    .await
                    .map_err(|e| Route53Error::aws(&doing, e))?
                    .ok_or_else(|| Route53Error::Lookup {
                        doing: doing.clone(),
                        reason: "the health check no longer exists".into(),
                    })?
                    .health_check_version(),
            };
            update_health_check(client, cancel, &id, version, &old, &new)
                .await
                .map_err(|e| match e {
                    UpdateError::Aws(e) if e.is(&["HealthCheckVersionMismatch"]) => {
                        Route53Error::Concurrent {
                            doing: doing.clone(),
                            source: e,
                        }
                    }
                    UpdateError::Aws(e) => Route53Error::aws(&doing, e),
                    UpdateError::Request(message) => Route53Error::Request {
                        doing: doing.clone(),
                        message,
                    },
                })?;
        }
        let before = old.tags_all.known().cloned().unwrap_or_default();
        let after = new.tags_all.known().cloned().unwrap_or_default();
        wait::update_tags(
            client,
            cancel,
            TagResourceType::Healthcheck,
            &id,
            &before,
            &after,
        )
        .await
        .map_err(|e| {
            Route53Error::aws(format!("updating tags of Route 53 health check ({id})"), e)
        })?;
        new.id = Field::Known(id);
        match refresh(ctx, aws, &new, Source::Fresh).await? {
            Some(a) => Ok(a),
            None => Err(Route53Error::Lookup {
                doing,
                reason: "the health check no longer exists".into(),
            }
            .into()),
        }
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        let m = HealthCheckModel::read(prior, "prior state")?;
        let id = m.id.known().cloned().unwrap_or_default();
        let span = tracing::debug_span!("route53.DeleteHealthCheck", health_check_id = %id);
        let res = aws
            .route53()
            .delete_health_check()
            .health_check_id(&id)
            .send()
            .instrument(span)
            .stoppable(ctx.cancel_token())
            .await;
        ok_if_gone(res, |e| e.is(find::NO_HEALTH_CHECK))
            .map_err(|e| Route53Error::aws(format!("deleting Route 53 health check ({id})"), e))?;
        aws.route53_snapshots().health_check_changed(&id, None);
        Ok(())
    }

    async fn import(&self, _ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let id = id.trim();
        if id.is_empty() || id.contains('/') || id.contains(' ') {
            return Err(Route53Error::ImportId {
                id: id.to_string(),
                reason: "expected a health check ID such as `abcdef11-2222-3333-4444-555555fedcba`"
                    .into(),
            }
            .into());
        }
        let m = HealthCheckModel {
            id: Field::Known(id.to_string()),
            ..HealthCheckModel::default()
        };
        Ok(m.write()?)
    }
}

/// The health check resource type.
pub struct HealthCheckResource;

fn caller_reference() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tandem-hc-{nanos}")
}

/// Route 53's defaults, planned explicitly so that removing an argument
/// from the configuration returns it to its default, and arguments a type
/// has no use for plan null.
fn plan_defaults(plan: &mut Plan) -> Result<(), ModelError> {
    let config = HealthCheckModel::read(&plan.config, "configuration")?;
    let read = HealthCheckModel::read(&plan.planned, "plan")?;
    let mut planned = read.clone();
    let Some(kind) = config.kind() else {
        return Ok(());
    };
    let endpoint_default = |configured: &Field<i64>, planned: &mut Field<i64>, default: i64| {
        if configured.is_null() {
            *planned = if kind.endpoint() {
                Field::Known(default)
            } else {
                Field::Null
            };
        }
    };
    endpoint_default(
        &config.failure_threshold,
        &mut planned.failure_threshold,
        DEFAULT_FAILURE_THRESHOLD,
    );
    endpoint_default(
        &config.request_interval,
        &mut planned.request_interval,
        DEFAULT_REQUEST_INTERVAL,
    );
    if config.measure_latency.is_null() {
        planned.measure_latency = if kind.endpoint() {
            Field::Known(false)
        } else {
            Field::Null
        };
    }
    if !kind.https() && config.enable_sni.is_null() {
        planned.enable_sni = Field::Null;
    }
    if !kind.endpoint() && config.port.is_null() {
        planned.port = Field::Null;
    }
    if !kind.endpoint() && config.regions.is_null() {
        planned.regions = Field::Null;
    }
    if !kind.cloudwatch() && config.insufficient_data_health_status.is_null() {
        planned.insufficient_data_health_status = Field::Null;
    }
    plan.planned = model::apply_changes(&plan.planned, &read, &planned, &schema(), TYPE_NAME)?;
    Ok(())
}

/// What this resource keeps in private state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Private {
    /// HealthCheckVersion when the state was read: the update sends it, so
    /// Route 53 refuses the update if anyone changed the check since.
    health_check_version: i64,
}

impl Private {
    fn encode(self) -> Vec<u8> {
        serde_json::to_vec(&self).unwrap_or_default()
    }

    /// `None` for state written before versions were kept.
    fn decode(bytes: &[u8]) -> Option<Private> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Why an UpdateHealthCheck was not made.
#[derive(Debug)]
enum UpdateError {
    /// AWS refused it.
    Aws(crate::aws::AwsError),
    /// It could not be built from the plan.
    Request(String),
}

/// UpdateHealthCheck with the version the plan was made from, so a change
/// made meanwhile by someone else fails (HealthCheckVersionMismatch)
/// instead of being overwritten. Removed optional values are reset
/// explicitly.
async fn update_health_check(
    client: &aws_sdk_route53::Client,
    cancel: &CancellationToken,
    id: &str,
    version: i64,
    prior: &HealthCheckModel,
    p: &HealthCheckModel,
) -> Result<(), UpdateError> {
    let kind = p.kind();
    let mut req = client
        .update_health_check()
        .health_check_id(id)
        .health_check_version(version)
        .set_fully_qualified_domain_name(text(&p.fqdn))
        .set_ip_address(text(&p.ip_address))
        .set_port(int(&p.port))
        .set_resource_path(text(&p.resource_path))
        .set_search_string(text(&p.search_string))
        .set_inverted(p.invert_healthcheck.known().copied())
        .set_disabled(p.disabled.known().copied())
        .set_regions(p.regions())
        .set_alarm_identifier(p.alarm().map_err(UpdateError::Request)?)
        .set_insufficient_data_health_status(p.insufficient_data());
    if kind.is_some_and(Kind::calculated) {
        req = req
            .set_child_health_checks(Some(
                p.child_healthchecks.known().cloned().unwrap_or_default(),
            ))
            .set_health_threshold(int(&p.child_health_threshold));
    }
    if kind.is_some_and(Kind::endpoint) {
        req = req.set_failure_threshold(int(&p.failure_threshold));
    }
    if kind.is_some_and(Kind::https) {
        req = req.set_enable_sni(p.enable_sni.known().copied());
    }
    // Values removed from the configuration must be reset explicitly;
    // leaving them out of the request would keep them.
    for (was, now, element) in [
        (
            prior.fqdn.is_known(),
            p.fqdn.is_known(),
            ResettableElementName::FullyQualifiedDomainName,
        ),
        (
            prior.resource_path.is_known(),
            p.resource_path.is_known(),
            ResettableElementName::ResourcePath,
        ),
        (
            prior.regions.is_known(),
            p.regions.is_known(),
            ResettableElementName::Regions,
        ),
        (
            prior.child_healthchecks.is_known(),
            p.child_healthchecks.is_known(),
            ResettableElementName::ChildHealthChecks,
        ),
    ] {
        if was && !now {
            req = req.reset_elements(element);
        }
    }
    let span = tracing::debug_span!("route53.UpdateHealthCheck", health_check_id = id);
    req.send()
        .instrument(span)
        .stoppable(cancel)
        .await
        .map_err(UpdateError::Aws)?;
    Ok(())
}

/// Where a refresh reads the health check from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The run's snapshot of all health checks (Terraform's refresh).
    Snapshot,
    /// Route 53 itself, right after this process wrote the check; the
    /// snapshot then learns the result.
    Fresh,
}

/// The health check's current state, with its version as private state;
/// `None` when it is gone.
async fn refresh(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    prior: &HealthCheckModel,
    source: Source,
) -> Result<Option<Applied>, Diagnostics> {
    let client = aws.route53();
    let cancel = ctx.cancel_token();
    let id = prior.id.known().cloned().unwrap_or_default();
    let doing = || format!("reading Route 53 health check ({id})");
    let found = match source {
        Source::Snapshot => aws
            .route53_snapshots()
            .health_check(client, cancel, &id)
            .await
            .map_err(|e| Route53Error::aws(doing(), e))?,
        Source::Fresh => {
            let Some(hc) = find::find_health_check(client, cancel, &id)
                .await
                .map_err(|e| Route53Error::aws(doing(), e))?
            else {
                aws.route53_snapshots().health_check_changed(&id, None);
                return Ok(None);
            };
            let tags = find::find_tags(client, cancel, TagResourceType::Healthcheck, &id)
                .await
                .map_err(|e| {
                    Route53Error::aws(format!("reading tags of Route 53 health check ({id})"), e)
                })?;
            aws.route53_snapshots()
                .health_check_changed(&id, Some((hc.clone(), tags.clone())));
            Some((hc, tags))
        }
    };
    let Some((hc, actual)) = found else {
        return Ok(None);
    };
    applied(ctx, aws, prior, &hc, &actual).map(Some)
}

/// The state of health check `hc` with tags `actual`, its version as
/// private state.
fn applied(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    prior: &HealthCheckModel,
    hc: &HealthCheck,
    actual: &Tags,
) -> Result<Applied, Diagnostics> {
    let (own, all) = split_tags(ctx, &prior.tags, actual);
    let state = health_check_model(aws.partition(), hc, prior, own, all);
    Ok(Applied {
        state: state.write()?,
        private: Private {
            health_check_version: hc.health_check_version(),
        }
        .encode(),
    })
}

/// Keeps the prior order of a set whose members did not change, so the
/// state does not churn.
fn set_value(prior: &Field<Vec<String>>, actual: Vec<String>) -> Field<Vec<String>> {
    if actual.is_empty() {
        return Field::Null;
    }
    if let Some(p) = prior.known() {
        let a: BTreeSet<&String> = actual.iter().collect();
        if p.iter().collect::<BTreeSet<_>>() == a {
            return Field::Known(p.clone());
        }
    }
    Field::Known(actual)
}

/// The state from what Route 53 returned. Values a type has no use for are
/// null, whatever an emulator reports for them (moto gives every check a
/// port, interval and threshold).
fn health_check_model(
    partition: Partition,
    hc: &HealthCheck,
    prior: &HealthCheckModel,
    tags: Field<Tags>,
    tags_all: Field<Tags>,
) -> HealthCheckModel {
    let mut m = HealthCheckModel {
        id: Field::Known(hc.id().to_string()),
        arn: Field::Known(partition.route53_arn(&format!("healthcheck/{}", hc.id()))),
        tags,
        tags_all,
        ..HealthCheckModel::default()
    };
    let Some(c) = hc.health_check_config() else {
        return m;
    };
    let ty = c.r#type().as_str().to_string();
    let kind = Kind::parse(&ty);
    let given = |v: Option<&str>| -> Field<String> {
        v.filter(|s| !s.is_empty()).map(str::to_string).into()
    };
    let number = |v: Option<i32>| -> Field<i64> { v.map(i64::from).into() };
    let endpoint = kind.is_some_and(Kind::endpoint);
    m.r#type = Field::Known(ty);
    m.fqdn = c
        .fully_qualified_domain_name()
        .filter(|s| !s.is_empty())
        .map(|f| names::keep_spelling(prior.fqdn.known().map(String::as_str), f))
        .into();
    m.ip_address = given(c.ip_address());
    m.resource_path = given(c.resource_path());
    m.search_string = given(c.search_string());
    if endpoint {
        m.port = number(c.port());
        m.failure_threshold = number(c.failure_threshold());
        m.request_interval = number(c.request_interval());
        m.measure_latency = Field::Known(c.measure_latency().unwrap_or(false));
        m.regions = set_value(
            &prior.regions,
            c.regions().iter().map(|r| r.as_str().to_string()).collect(),
        );
    }
    m.invert_healthcheck = Field::Known(c.inverted().unwrap_or(false));
    m.disabled = Field::Known(c.disabled().unwrap_or(false));
    if kind.is_some_and(Kind::https) {
        m.enable_sni = Field::Known(c.enable_sni().unwrap_or(true));
    }
    m.child_healthchecks = set_value(&prior.child_healthchecks, c.child_health_checks().to_vec());
    if kind.is_some_and(Kind::calculated) {
        m.child_health_threshold = number(c.health_threshold());
    }
    if let Some(a) = c.alarm_identifier() {
        m.cloudwatch_alarm_name = Field::Known(a.name().to_string());
        m.cloudwatch_alarm_region = Field::Known(a.region().as_str().to_string());
    }
    m.insufficient_data_health_status = c
        .insufficient_data_health_status()
        .map(|s| s.as_str().to_string())
        .into();
    m.routing_control_arn = given(c.routing_control_arn());
    m
}

/// Which arguments apply to which kinds of health check.
struct Applies {
    attr: &'static str,
    set: bool,
    to: fn(Kind) -> bool,
    which: &'static str,
}

/// The rules that depend on `type` (the schema's validators have checked
/// each value on its own), each at its attribute. Unknown values are not
/// judged.
fn check_config(c: &HealthCheckModel, d: &mut Diagnostics) {
    let at = AttrPath::root;
    let Some(kind) = c.kind() else {
        return;
    };
    let ty = kind.name();
    const ENDPOINT: &str = "endpoint checks (HTTP, HTTPS, HTTP_STR_MATCH, HTTPS_STR_MATCH, TCP)";
    let rules = [
        Applies {
            attr: "fqdn",
            set: c.fqdn.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "ip_address",
            set: c.ip_address.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "port",
            set: c.port.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "request_interval",
            set: c.request_interval.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "failure_threshold",
            set: c.failure_threshold.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "measure_latency",
            set: c.measure_latency.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "regions",
            set: c.regions.is_known(),
            to: Kind::endpoint,
            which: ENDPOINT,
        },
        Applies {
            attr: "resource_path",
            set: c.resource_path.is_known(),
            to: Kind::http,
            which: "HTTP(S) checks; TCP checks only open a connection",
        },
        Applies {
            attr: "search_string",
            set: c.search_string.is_known(),
            to: Kind::str_match,
            which: "HTTP_STR_MATCH and HTTPS_STR_MATCH checks",
        },
        Applies {
            attr: "enable_sni",
            set: c.enable_sni.is_known(),
            to: Kind::https,
            which: "HTTPS and HTTPS_STR_MATCH checks (SNI is part of TLS)",
        },
        Applies {
            attr: "child_healthchecks",
            set: c.child_healthchecks.is_known(),
            to: Kind::calculated,
            which: "CALCULATED checks",
        },
        Applies {
            attr: "child_health_threshold",
            set: c.child_health_threshold.is_known(),
            to: Kind::calculated,
            which: "CALCULATED checks",
        },
        Applies {
            attr: "cloudwatch_alarm_name",
            set: c.cloudwatch_alarm_name.is_known(),
            to: Kind::cloudwatch,
            which: "CLOUDWATCH_METRIC checks",
        },
        Applies {
            attr: "cloudwatch_alarm_region",
            set: c.cloudwatch_alarm_region.is_known(),
            to: Kind::cloudwatch,
            which: "CLOUDWATCH_METRIC checks",
        },
        Applies {
            attr: "insufficient_data_health_status",
            set: c.insufficient_data_health_status.is_known(),
            to: Kind::cloudwatch,
            which: "CLOUDWATCH_METRIC checks",
        },
        Applies {
            attr: "routing_control_arn",
            set: c.routing_control_arn.is_known(),
            to: Kind::recovery_control,
            which: "RECOVERY_CONTROL checks",
        },
    ];
    for r in rules.iter().filter(|r| r.set && !(r.to)(kind)) {
        d.error_at(
            at(r.attr),
            format!("Argument not allowed for a {ty} health check"),
            format!(
                "`{}` only applies to {}; this health check is {ty}. Remove it, or change `type`.",
                r.attr, r.which
            ),
        );
    }
    if kind.endpoint() && c.fqdn.is_null() && c.ip_address.is_null() {
        d.error_at(
            at("fqdn"),
            "Missing endpoint",
            format!(
                "A {ty} health check needs `fqdn` or `ip_address` (or both) to know what to check."
            ),
        );
    }
    if kind == Kind::Tcp && c.port.is_null() {
        d.error_at(
            at("port"),
            "Missing port",
            "A TCP health check needs `port`: there is no default port for TCP.",
        );
    }
    if kind.str_match() && c.search_string.is_null() {
        d.error_at(
            at("search_string"),
            "Missing search_string",
            format!("A {ty} check needs the `search_string` to look for in the response."),
        );
    }
    if kind.cloudwatch() && c.cloudwatch_alarm_name.is_null() {
        d.error_at(
            at("cloudwatch_alarm_name"),
            "Missing CloudWatch alarm",
            "A CLOUDWATCH_METRIC health check follows a CloudWatch alarm: set `cloudwatch_alarm_name` and \
             `cloudwatch_alarm_region`.",
        );
    }
    if kind.recovery_control() && c.routing_control_arn.is_null() {
        d.error_at(
            at("routing_control_arn"),
            "Missing routing control",
            "A RECOVERY_CONTROL health check follows a routing control: set `routing_control_arn`.",
        );
    }
    if kind.calculated() {
        let children = match &c.child_healthchecks {
            Field::Known(ch) => Some(ch.len()),
            Field::Null => Some(0),
            Field::Unknown => None,
        };
        if let (Some(t), Some(n)) = (c.child_health_threshold.known(), children) {
            if *t > n as i64 {
                d.error_at(
                    at("child_health_threshold"),
                    "child_health_threshold exceeds the children",
                    format!("{t} healthy children are required but only {n} are listed, so the check could never be healthy."),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::partition::{AWS, AWS_US_GOV};
    use crate::testing::{error_paths, validate_resource};

    /// A configuration of the schema's type: every attribute null but those given.
    fn cfg(pairs: &[(&str, Value)]) -> Value {
        let mut v = Value::from_json(&serde_json::json!({}), &schema().value_type()).unwrap();
        for (k, x) in pairs {
            v.set(k, x.clone());
        }
        v
    }

    fn errors(c: &Value) -> Vec<String> {
        error_paths(&validate_resource(&HealthCheckResource, c))
    }

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    fn list(xs: &[&str]) -> Value {
        Value::List(xs.iter().map(|x| s(x)).collect())
    }

    #[test]
    fn the_model_has_exactly_the_schema_attributes() {
        let m = HealthCheckModel::read(&cfg(&[]), "configuration").unwrap();
        assert_eq!(m, HealthCheckModel::default());
        assert_eq!(m.write().unwrap(), cfg(&[]));
    }

    #[test]
    fn a_good_http_check_passes() {
        let c = cfg(&[
            ("type", s("HTTPS")),
            ("fqdn", s("api.example.com")),
            ("resource_path", s("/healthz")),
            ("regions", list(&["us-east-1", "eu-west-1", "us-west-2"])),
        ]);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    }

    #[test]
    fn unknown_type_is_reported() {
        assert_eq!(errors(&cfg(&[("type", s("PING"))])), vec!["type"]);
    }

    #[test]
    fn http_needs_an_endpoint() {
        assert_eq!(errors(&cfg(&[("type", s("HTTP"))])), vec!["fqdn"]);
    }

    #[test]
    fn unknown_endpoint_is_not_judged() {
        assert!(errors(&cfg(&[("type", s("HTTP")), ("fqdn", Value::Unknown)])).is_empty());
    }

    #[test]
    fn search_string_only_for_str_match() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("search_string", s("ok"))
            ])),
            vec!["search_string"]
        );
    }

    #[test]
    fn str_match_needs_search_string() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTPS_STR_MATCH")),
                ("fqdn", s("a.com"))
            ])),
            vec!["search_string"]
        );
    }

    #[test]
    fn long_search_string_is_refused() {
        let long = "x".repeat(256);
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP_STR_MATCH")),
                ("fqdn", s("a.com")),
                ("search_string", s(&long))
            ])),
            vec!["search_string"]
        );
    }

    #[test]
    fn children_only_for_calculated() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("child_healthchecks", list(&["x"])),
                ("child_health_threshold", Value::int(1))
            ])),
            vec!["child_healthchecks", "child_health_threshold"]
        );
    }

    #[test]
    fn threshold_cannot_exceed_children() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("CALCULATED")),
                ("child_healthchecks", list(&["a", "b"])),
                ("child_health_threshold", Value::int(3))
            ])),
            vec!["child_health_threshold"]
        );
        // Children known only after apply: judged then.
        let partly = Value::List(vec![s("a"), Value::Unknown]);
        assert!(errors(&cfg(&[
            ("type", s("CALCULATED")),
            ("child_healthchecks", partly),
            ("child_health_threshold", Value::int(2))
        ]))
        .is_empty());
    }

    #[test]
    fn calculated_refuses_endpoint_arguments() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("CALCULATED")),
                ("fqdn", s("a.com")),
                ("request_interval", Value::int(10)),
                ("child_healthchecks", list(&["a"]))
            ])),
            vec!["fqdn", "request_interval"]
        );
    }

    #[test]
    fn unknown_optional_arguments_are_not_judged_yet() {
        let c = cfg(&[
            ("type", s("HTTP")),
            ("fqdn", s("a.com")),
            ("search_string", Value::Unknown),
            ("enable_sni", Value::Unknown),
            ("child_healthchecks", Value::Unknown),
        ]);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
        let c = cfg(&[
            ("type", s("CALCULATED")),
            ("fqdn", Value::Unknown),
            ("child_healthchecks", Value::Unknown),
        ]);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
        assert!(errors(&cfg(&[("type", Value::Unknown), ("fqdn", s("a.com"))])).is_empty());
    }

    #[test]
    fn failure_threshold_is_one_to_ten() {
        for bad in [0, 11] {
            assert_eq!(
                errors(&cfg(&[
                    ("type", s("HTTP")),
                    ("fqdn", s("a.com")),
                    ("failure_threshold", Value::int(bad))
                ])),
                vec!["failure_threshold"]
            );
        }
    }

    #[test]
    fn request_interval_is_ten_or_thirty() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("request_interval", Value::int(20))
            ])),
            vec!["request_interval"]
        );
    }

    #[test]
    fn regions_need_three_real_checker_regions() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("regions", list(&["us-east-1", "eu-west-1"]))
            ])),
            vec!["regions"]
        );
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("regions", list(&["us-east-1", "eu-west-1", "eu-central-1"]))
            ])),
            vec!["regions"]
        );
    }

    #[test]
    fn tcp_needs_port_and_no_path() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("TCP")),
                ("ip_address", s("192.0.2.1")),
                ("resource_path", s("/x"))
            ])),
            vec!["resource_path", "port"]
        );
    }

    #[test]
    fn port_range_and_ip_syntax() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("ip_address", s("999.1.1.1")),
                ("port", Value::int(70000))
            ])),
            vec!["ip_address", "port"]
        );
    }

    #[test]
    fn resource_path_starts_with_slash() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("resource_path", s("healthz"))
            ])),
            vec!["resource_path"]
        );
    }

    #[test]
    fn sni_needs_https() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("enable_sni", Value::Bool(true))
            ])),
            vec!["enable_sni"]
        );
    }

    #[test]
    fn cloudwatch_checks_need_an_alarm_and_only_they_take_one() {
        let alarm = [
            ("cloudwatch_alarm_name", s("api-5xx")),
            ("cloudwatch_alarm_region", s("eu-west-1")),
        ];
        let mut good = vec![("type", s("CLOUDWATCH_METRIC"))];
        good.extend(alarm.iter().cloned());
        good.push(("insufficient_data_health_status", s("LastKnownStatus")));
        assert!(errors(&cfg(&good)).is_empty(), "{:?}", errors(&cfg(&good)));
        assert_eq!(
            errors(&cfg(&[("type", s("CLOUDWATCH_METRIC"))])),
            vec!["cloudwatch_alarm_name"]
        );
        // Name and region go together.
        assert_eq!(
            errors(&cfg(&[
                ("type", s("CLOUDWATCH_METRIC")),
                ("cloudwatch_alarm_name", s("api-5xx")),
            ])),
            vec!["cloudwatch_alarm_name"]
        );
        assert_eq!(
            errors(&cfg(&[
                ("type", s("CLOUDWATCH_METRIC")),
                ("cloudwatch_alarm_name", s("api-5xx")),
                ("cloudwatch_alarm_region", s("Ireland")),
                ("insufficient_data_health_status", s("Unknown")),
            ])),
            vec!["cloudwatch_alarm_region", "insufficient_data_health_status"]
        );
        let mut on_http = vec![("type", s("HTTP")), ("fqdn", s("a.com"))];
        on_http.extend(alarm.iter().cloned());
        assert_eq!(
            errors(&cfg(&on_http)),
            vec!["cloudwatch_alarm_name", "cloudwatch_alarm_region"]
        );
        // A CloudWatch check has no endpoint.
        let mut with_endpoint = good.clone();
        with_endpoint.push(("fqdn", s("a.com")));
        assert_eq!(errors(&cfg(&with_endpoint)), vec!["fqdn"]);
    }

    #[test]
    fn recovery_control_checks_need_a_routing_control_arn() {
        let arn =
            "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/routingcontrol/def";
        assert!(errors(&cfg(&[
            ("type", s("RECOVERY_CONTROL")),
            ("routing_control_arn", s(arn))
        ]))
        .is_empty());
        assert_eq!(
            errors(&cfg(&[("type", s("RECOVERY_CONTROL"))])),
            vec!["routing_control_arn"]
        );
        assert_eq!(
            errors(&cfg(&[
                ("type", s("RECOVERY_CONTROL")),
                ("routing_control_arn", s("arn:aws:s3:::b"))
            ])),
            vec!["routing_control_arn"]
        );
        assert_eq!(
            errors(&cfg(&[
                ("type", s("TCP")),
                ("ip_address", s("192.0.2.1")),
                ("port", Value::int(22)),
                ("routing_control_arn", s(arn))
            ])),
            vec!["routing_control_arn"]
        );
    }

    fn plan_for(config: Value) -> Plan {
        Plan {
            prior: Value::Null,
            config: config.clone(),
            planned: config,
            requires_replace: vec![],
            private: vec![],
        }
    }

    #[test]
    fn defaults_are_planned_and_only_endpoint_checks_have_them() {
        let mut plan = plan_for(cfg(&[("type", s("HTTP")), ("fqdn", s("a.com"))]));
        plan_defaults(&mut plan).unwrap();
        assert_eq!(plan.planned.get("failure_threshold"), &Value::int(3));
        assert_eq!(plan.planned.get("request_interval"), &Value::int(30));
        for ty in ["CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL"] {
            // Computed attributes left unset plan unknown by default.
            let mut plan = plan_for(cfg(&[("type", s(ty))]));
            plan.planned.set("port", Value::Unknown);
            plan.planned.set("regions", Value::Unknown);
            plan_defaults(&mut plan).unwrap();
            for attr in ["request_interval", "failure_threshold", "port", "regions"] {
                assert!(plan.planned.get(attr).is_null(), "{ty} {attr}");
            }
        }
    }

    #[test]
    fn partly_unknown_children_are_planned_exactly_as_configured() {
        // Children created in the same apply: known count, unknown IDs.
        let children = Value::List(vec![Value::Unknown, Value::Unknown]);
        let mut plan = plan_for(cfg(&[
            ("type", s("CALCULATED")),
            ("child_healthchecks", children.clone()),
            ("child_health_threshold", Value::int(2)),
        ]));
        plan_defaults(&mut plan).unwrap();
        assert_eq!(plan.planned.get("child_healthchecks"), &children);
        assert!(plan.planned.get("request_interval").is_null());
    }

    #[test]
    fn private_state_round_trips_and_old_state_has_none() {
        let p = Private {
            health_check_version: 7,
        };
        assert_eq!(Private::decode(&p.encode()), Some(p));
        assert_eq!(Private::decode(&[]), None);
    }

    #[test]
    fn interval_change_replaces() {
        let prior = cfg(&[
            ("type", s("HTTP")),
            ("id", s("h1")),
            ("request_interval", Value::int(30)),
            ("measure_latency", Value::Bool(false)),
        ]);
        let config = cfg(&[("type", s("HTTP")), ("request_interval", Value::int(10))]);
        let mut plan = Plan {
            prior,
            config,
            planned: cfg(&[
                ("type", s("HTTP")),
                ("id", s("h1")),
                ("request_interval", Value::int(10)),
            ]),
            requires_replace: vec![],
            private: vec![],
        };
        plan_defaults(&mut plan).unwrap();
        super::super::replace_if_changed(&mut plan, REPLACE_ON, RECOMPUTED);
        assert_eq!(
            plan.requires_replace,
            vec![AttrPath::root("request_interval")]
        );
        assert_eq!(plan.planned.get("id"), &Value::Unknown);
    }

    fn read_back(config: HealthCheckConfig) -> HealthCheck {
        HealthCheck::builder()
            .id("h1")
            .caller_reference("r")
            .health_check_version(1)
            .health_check_config(config)
            .build()
            .unwrap()
    }

    #[test]
    fn cloudwatch_state_keeps_the_alarm_and_drops_what_an_emulator_invents() {
        // moto gives every check a port, interval and threshold.
        let hc = read_back(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::CloudwatchMetric)
                .port(80)
                .request_interval(30)
                .failure_threshold(3)
                .alarm_identifier(
                    AlarmIdentifier::builder()
                        .name("api-5xx")
                        .region(CloudWatchRegion::EuWest1)
                        .build()
                        .unwrap(),
                )
                .insufficient_data_health_status(InsufficientDataHealthStatus::Unhealthy)
                .build()
                .unwrap(),
        );
        let m = health_check_model(
            AWS_US_GOV,
            &hc,
            &HealthCheckModel::default(),
            Field::Null,
            Field::Null,
        );
        assert_eq!(m.cloudwatch_alarm_name, Field::Known("api-5xx".into()));
        assert_eq!(m.cloudwatch_alarm_region, Field::Known("eu-west-1".into()));
        assert_eq!(
            m.insufficient_data_health_status,
            Field::Known("Unhealthy".into())
        );
        assert!(m.port.is_null() && m.request_interval.is_null() && m.failure_threshold.is_null());
        assert_eq!(
            m.arn,
            Field::Known("arn:aws-us-gov:route53:::healthcheck/h1".into())
        );
        let request = m.config().unwrap();
        assert_eq!(request.alarm_identifier().unwrap().name(), "api-5xx");
        assert!(request.port().is_none() && request.request_interval().is_none());
    }

    #[test]
    fn recovery_control_state_keeps_its_arn() {
        let arn =
            "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/routingcontrol/def";
        let hc = read_back(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::RecoveryControl)
                .routing_control_arn(arn)
                .build()
                .unwrap(),
        );
        let m = health_check_model(
            AWS,
            &hc,
            &HealthCheckModel::default(),
            Field::Null,
            Field::Null,
        );
        assert_eq!(m.routing_control_arn, Field::Known(arn.into()));
        assert_eq!(
            m.config().unwrap().routing_control_arn(),
            Some(arn),
            "sent on create"
        );
    }
}
