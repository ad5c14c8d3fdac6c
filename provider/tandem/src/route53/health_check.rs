//! `tandem_route53_health_check`: an HTTP(S), string-match, TCP or
//! calculated health check, with the cross-field checks AWS only makes at
//! apply time (or, in emulators, never) done at plan time. The
//! HealthCheckVersion read with the state is kept in private state and sent
//! with the update, so an edit made after the plan is refused by Route 53
//! rather than overwritten.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    HealthCheck, HealthCheckConfig, HealthCheckRegion, HealthCheckType, ResettableElementName,
    TagResourceType,
};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostics, IdentitySchema, Plan,
    ReadResult, Resource, Schema, Type, Value,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::{ok_if_gone, tags, Aws, Stoppable};

use super::error::Route53Error;
use super::{find, names, wait};

/// Health check types this resource manages.
pub const TYPES: &[&str] = &[
    "HTTP",
    "HTTPS",
    "HTTP_STR_MATCH",
    "HTTPS_STR_MATCH",
    "TCP",
    "CALCULATED",
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

/// Arguments that cannot change in place: AWS keeps them for the check's life.
const REPLACE_ON: &[&str] = &["type", "request_interval", "measure_latency"];
/// Computed values a replacement recomputes.
const RECOMPUTED: &[&str] = &["id", "arn", "port", "regions", "enable_sni"];

/// The health check resource type.
pub struct HealthCheckResource;

#[async_trait]
impl Resource<Aws> for HealthCheckResource {
    fn type_name(&self) -> &'static str {
        "tandem_route53_health_check"
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema::strings(&[("id", "The health check ID.")]))
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "A Route 53 health check, for failover record sets. Cross-field mistakes (an HTTP check without an \
                 endpoint, a search string on a plain HTTP check, children on a non-calculated check, ...) are \
                 reported at plan time. Updates use `HealthCheckVersion`, so a concurrent change is never overwritten \
                 silently. Import with the health check ID.",
            )
            .attr(Attribute::computed("id", Type::String, "The health check ID."))
            .attr(Attribute::computed("arn", Type::String, "The ARN of the health check."))
            .attr(Attribute::required(
                "type",
                Type::String,
                "One of `HTTP`, `HTTPS`, `HTTP_STR_MATCH`, `HTTPS_STR_MATCH`, `TCP`, `CALCULATED`. Changing it replaces \
                 the health check.",
            ))
            .attr(Attribute::optional(
                "fqdn",
                Type::String,
                "Domain name of the endpoint to check. Endpoint checks need this or `ip_address`; with both, Route 53 \
                 connects to `ip_address` and sends `fqdn` as the Host header.",
            ))
            .attr(Attribute::optional("ip_address", Type::String, "IPv4 or IPv6 address of the endpoint to check."))
            .attr(Attribute::optional_computed(
                "port",
                Type::Number,
                "Port of the endpoint (1-65535). Required for `TCP`; defaults to 80 for HTTP and 443 for HTTPS checks.",
            ))
            .attr(Attribute::optional(
                "resource_path",
                Type::String,
                "Path requested by HTTP(S) checks, starting with `/`, e.g. `/healthz`. Not for `TCP` or `CALCULATED`.",
            ))
            .attr(Attribute::optional(
                "search_string",
                Type::String,
                "String that must appear in the first 5120 bytes of the response body. Required by, and only \
                 allowed for, `HTTP_STR_MATCH` and `HTTPS_STR_MATCH`. At most 255 characters.",
            ))
            .attr(Attribute::optional_computed(
                "failure_threshold",
                Type::Number,
                "Consecutive failed (or passed) checks that change the status, 1-10. Default 3. Not for `CALCULATED`.",
            ))
            .attr(Attribute::optional_computed(
                "request_interval",
                Type::Number,
                "Seconds between checks: 30 (standard) or 10 (fast, extra cost). Default 30. Changing it replaces the \
                 health check. Not for `CALCULATED`.",
            ))
            .attr(Attribute::optional_computed(
                "measure_latency",
                Type::Bool,
                "Record latency graphs in CloudWatch. Default `false`. Changing it replaces the health check. Not for \
                 `CALCULATED`.",
            ))
            .attr(Attribute::optional_computed(
                "regions",
                Type::set(Type::String),
                "Checker regions (at least 3) among `us-east-1`, `us-west-1`, `us-west-2`, `eu-west-1`, \
                 `ap-southeast-1`, `ap-southeast-2`, `ap-northeast-1`, `sa-east-1`. When unset, Route 53 uses its \
                 defaults and the plan shows no diff.",
            ))
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
                    "Stop checking; Route 53 then considers the endpoint healthy. Default `false`.",
                )
                .default(false),
            )
            .attr(Attribute::optional_computed(
                "enable_sni",
                Type::Bool,
                "Send the `fqdn` in the TLS handshake (SNI). Only for `HTTPS` and `HTTPS_STR_MATCH`; Route 53 \
                 defaults it to `true` there.",
            ))
            .attr(Attribute::optional(
                "child_healthchecks",
                Type::set(Type::String),
                "IDs of the health checks a `CALCULATED` check combines. Only for `CALCULATED`.",
            ))
            .attr(Attribute::optional(
                "child_health_threshold",
                Type::Number,
                "How many of `child_healthchecks` must be healthy for a `CALCULATED` check to be healthy (0-256, at \
                 most the number of children). Only for `CALCULATED`.",
            ))
            .attr(super::tags_attribute("health check"))
            .attr(super::tags_all_attribute("health check")),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check_config(config, diags);
        super::zone::check_tags(config, diags);
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        plan_defaults(plan);
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
        let ty = planned.get("type").as_str().unwrap_or_default().to_string();
        let target = planned
            .get("fqdn")
            .as_str()
            .or(planned.get("ip_address").as_str())
            .unwrap_or("children");
        let doing = format!("creating Route 53 health check ({ty} {target})");
        let hc_config = HealthCheckModel::from_value(planned, &doing)?
            .config()
            .map_err(|message| Route53Error::Request {
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
        let Some(id) = out.health_check().map(|h| h.id().to_string()) else {
            return Err(Route53Error::Incomplete {
                doing,
                field: "HealthCheck",
            }
            .into());
        };
        let mut state = planned.clone();
        state.set("id", Value::string(&id));
        let partial = |e: Route53Error| {
            let mut s = state.clone();
            if let Value::Map(m) = &mut s {
                m.values_mut()
                    .filter(|v| v.is_unknown())
                    .for_each(|v| *v = Value::Null);
            }
            ApplyError {
                diagnostics: e.into(),
                partial: Some(s),
            }
        };
        let all_tags = tags::from_value(planned.get("tags_all"));
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
            return Err(partial(Route53Error::aws(
                format!("tagging Route 53 health check ({id})"),
                e,
            )));
        }
        match refresh(ctx, aws, &state).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(partial(Route53Error::Lookup {
                doing: format!("reading Route 53 health check ({id})"),
                reason: "the health check vanished right after creation".into(),
            })),
            Err(e) => Err(partial(e)),
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        Ok(match refresh(ctx, aws, state).await? {
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
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        let doing = format!("updating Route 53 health check ({id})");
        if health_fields_changed(prior, planned) {
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
            let old = HealthCheckModel::from_value(prior, &doing)?;
            let new = HealthCheckModel::from_value(planned, &doing)?;
            update_health_check(client, cancel, &id, version, &old, &new)
                .await
                .map_err(|e| {
                    if e.is(&["HealthCheckVersionMismatch"]) {
                        Route53Error::Concurrent {
                            doing: doing.clone(),
                            source: e,
                        }
                    } else {
                        Route53Error::aws(&doing, e)
                    }
                })?;
        }
        let old = tags::from_value(prior.get("tags_all"));
        let new = tags::from_value(planned.get("tags_all"));
        wait::update_tags(
            client,
            cancel,
            TagResourceType::Healthcheck,
            &id,
            &old,
            &new,
        )
        .await
        .map_err(|e| {
            Route53Error::aws(format!("updating tags of Route 53 health check ({id})"), e)
        })?;
        let mut state = planned.clone();
        state.set("id", Value::string(&id));
        match refresh(ctx, aws, &state).await? {
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
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        let span = tracing::debug_span!("route53.DeleteHealthCheck", health_check_id = %id);
        let res = aws
            .route53()
            .delete_health_check()
            .health_check_id(&id)
            .send()
            .instrument(span)
            .stoppable(ctx.cancel_token())
            .await;
        ok_if_gone(res, |e| e.is(find::NO_HEALTH_CHECK)).map_err(|e| {
            Route53Error::aws(format!("deleting Route 53 health check ({id})"), e).into()
        })
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
        Ok(Value::object([("id", Value::string(id))]))
    }
}

fn caller_reference() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tandem-hc-{nanos}")
}

/// Route 53's defaults, planned explicitly so that removing an argument
/// from the configuration returns it to its default (and `CALCULATED`
/// checks, which have no interval or threshold, plan null).
fn plan_defaults(plan: &mut Plan) {
    let Some(ty) = plan.config.get("type").as_str().map(str::to_string) else {
        return;
    };
    let calculated = ty == "CALCULATED";
    for (attr, default) in [
        ("failure_threshold", Value::int(DEFAULT_FAILURE_THRESHOLD)),
        ("request_interval", Value::int(DEFAULT_REQUEST_INTERVAL)),
        ("measure_latency", Value::Bool(false)),
    ] {
        if plan.config.get(attr).is_null() {
            plan.planned
                .set(attr, if calculated { Value::Null } else { default });
        }
    }
    if !ty.starts_with("HTTPS") && plan.config.get("enable_sni").is_null() {
        plan.planned.set("enable_sni", Value::Null);
    }
    if calculated && plan.config.get("port").is_null() {
        plan.planned.set("port", Value::Null);
    }
}

fn str_set(v: &Value) -> Vec<String> {
    v.as_list()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The typed model of a planned or prior state, for building requests.
/// Planning and validation keep working on [`Value`], where unknown and
/// null must stay apart.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct HealthCheckModel {
    r#type: String,
    fqdn: Option<String>,
    ip_address: Option<String>,
    port: Option<i64>,
    resource_path: Option<String>,
    search_string: Option<String>,
    failure_threshold: Option<i64>,
    request_interval: Option<i64>,
    measure_latency: Option<bool>,
    regions: Option<Vec<String>>,
    invert_healthcheck: Option<bool>,
    disabled: Option<bool>,
    enable_sni: Option<bool>,
    child_healthchecks: Option<Vec<String>>,
    child_health_threshold: Option<i64>,
}

fn int(n: Option<i64>) -> Option<i32> {
    n.and_then(|n| i32::try_from(n).ok())
}

impl HealthCheckModel {
    /// Reads the model; computed values still unknown (`id`) read as absent.
    fn from_value(v: &Value, doing: &str) -> Result<HealthCheckModel, Route53Error> {
        v.to_model_lossy().map_err(|e| Route53Error::Request {
            doing: doing.to_string(),
            message: format!("reading the planned values: {e}"),
        })
    }

    fn calculated(&self) -> bool {
        self.r#type == "CALCULATED"
    }

    fn https(&self) -> bool {
        self.r#type.starts_with("HTTPS")
    }

    fn regions(&self) -> Option<Vec<HealthCheckRegion>> {
        self.regions.as_ref().filter(|r| !r.is_empty()).map(|r| {
            r.iter()
                .map(|x| HealthCheckRegion::from(x.as_str()))
                .collect()
        })
    }

    /// The CreateHealthCheck configuration.
    fn config(&self) -> Result<HealthCheckConfig, String> {
        let mut b = HealthCheckConfig::builder()
            .r#type(HealthCheckType::from(self.r#type.as_str()))
            .set_fully_qualified_domain_name(self.fqdn.clone())
            .set_ip_address(self.ip_address.clone())
            .set_port(int(self.port))
            .set_resource_path(self.resource_path.clone())
            .set_search_string(self.search_string.clone())
            .set_inverted(self.invert_healthcheck)
            .set_disabled(self.disabled)
            .set_regions(self.regions());
        if self.calculated() {
            b = b
                .set_child_health_checks(Some(self.child_healthchecks.clone().unwrap_or_default()))
                .set_health_threshold(int(self.child_health_threshold));
        } else {
            b = b
                .set_failure_threshold(int(self.failure_threshold))
                .set_request_interval(int(self.request_interval))
                .set_measure_latency(self.measure_latency);
        }
        if self.https() {
            b = b.set_enable_sni(self.enable_sni);
        }
        b.build().map_err(|e| e.to_string())
    }
}

const UPDATABLE: &[&str] = &[
    "fqdn",
    "ip_address",
    "port",
    "resource_path",
    "search_string",
    "failure_threshold",
    "regions",
    "invert_healthcheck",
    "disabled",
    "enable_sni",
    "child_healthchecks",
    "child_health_threshold",
];

fn health_fields_changed(prior: &Value, planned: &Value) -> bool {
    UPDATABLE.iter().any(|a| prior.get(a) != planned.get(a))
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
) -> Result<(), crate::aws::AwsError> {
    let mut req = client
        .update_health_check()
        .health_check_id(id)
        .health_check_version(version)
        .set_fully_qualified_domain_name(p.fqdn.clone())
        .set_ip_address(p.ip_address.clone())
        .set_port(int(p.port))
        .set_resource_path(p.resource_path.clone())
        .set_search_string(p.search_string.clone())
        .set_inverted(p.invert_healthcheck)
        .set_disabled(p.disabled)
        .set_regions(p.regions());
    if p.calculated() {
        req = req
            .set_child_health_checks(Some(p.child_healthchecks.clone().unwrap_or_default()))
            .set_health_threshold(int(p.child_health_threshold));
    } else {
        req = req.set_failure_threshold(int(p.failure_threshold));
    }
    if p.https() {
        req = req.set_enable_sni(p.enable_sni);
    }
    // Values removed from the configuration must be reset explicitly;
    // leaving them out of the request would keep them.
    for (was, now, element) in [
        (
            prior.fqdn.is_some(),
            p.fqdn.is_some(),
            ResettableElementName::FullyQualifiedDomainName,
        ),
        (
            prior.resource_path.is_some(),
            p.resource_path.is_some(),
            ResettableElementName::ResourcePath,
        ),
        (
            prior.regions.is_some(),
            p.regions.is_some(),
            ResettableElementName::Regions,
        ),
        (
            prior.child_healthchecks.is_some(),
            p.child_healthchecks.is_some(),
            ResettableElementName::ChildHealthChecks,
        ),
    ] {
        if was && !now {
            req = req.reset_elements(element);
        }
    }
    let span = tracing::debug_span!("route53.UpdateHealthCheck", health_check_id = id);
    req.send().instrument(span).stoppable(cancel).await?;
    Ok(())
}

/// The health check's current state, with its version as private state;
/// `None` when it is gone.
async fn refresh(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    state: &Value,
) -> Result<Option<Applied>, Route53Error> {
    let client = aws.route53();
    let cancel = ctx.cancel_token();
    let id = state.get("id").as_str().unwrap_or_default().to_string();
    let Some(hc) = find::find_health_check(client, cancel, &id)
        .await
        .map_err(|e| Route53Error::aws(format!("reading Route 53 health check ({id})"), e))?
    else {
        return Ok(None);
    };
    let actual = find::find_tags(client, cancel, TagResourceType::Healthcheck, &id)
        .await
        .map_err(|e| {
            Route53Error::aws(format!("reading tags of Route 53 health check ({id})"), e)
        })?;
    let (own, all) = super::tags_state(ctx, state.get("tags"), &actual);
    Ok(Some(Applied {
        state: health_check_value(&hc, state, own, all),
        private: Private {
            health_check_version: hc.health_check_version(),
        }
        .encode(),
    }))
}

fn opt_int(v: Option<i32>) -> Value {
    v.map(|n| Value::int(i64::from(n))).unwrap_or(Value::Null)
}

/// Keeps the prior order of a set whose members did not change, so the
/// state does not churn.
fn set_value(prior: &Value, actual: Vec<String>) -> Value {
    if actual.is_empty() {
        return Value::Null;
    }
    let a: BTreeSet<&str> = actual.iter().map(String::as_str).collect();
    let p: BTreeSet<String> = str_set(prior).into_iter().collect();
    if p.iter().map(String::as_str).collect::<BTreeSet<_>>() == a {
        return prior.clone();
    }
    Value::List(actual.into_iter().map(Value::String).collect())
}

fn health_check_value(hc: &HealthCheck, prior: &Value, tags: Value, tags_all: Value) -> Value {
    let Some(c) = hc.health_check_config() else {
        return Value::object([("id", Value::string(hc.id()))]);
    };
    let ty = c.r#type().as_str().to_string();
    let calculated = ty == "CALCULATED";
    let endpoint = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string).into();
    Value::object([
        ("id", Value::string(hc.id())),
        (
            "arn",
            Value::string(format!("arn:aws:route53:::healthcheck/{}", hc.id())),
        ),
        ("type", Value::string(&ty)),
        (
            "fqdn",
            c.fully_qualified_domain_name()
                .filter(|s| !s.is_empty())
                .map(|f| Value::string(names::keep_spelling(prior.get("fqdn").as_str(), f)))
                .unwrap_or(Value::Null),
        ),
        ("ip_address", endpoint(c.ip_address())),
        (
            "port",
            if calculated {
                Value::Null
            } else {
                opt_int(c.port())
            },
        ),
        ("resource_path", endpoint(c.resource_path())),
        ("search_string", endpoint(c.search_string())),
        (
            "failure_threshold",
            if calculated {
                Value::Null
            } else {
                opt_int(c.failure_threshold())
            },
        ),
        (
            "request_interval",
            if calculated {
                Value::Null
            } else {
                opt_int(c.request_interval())
            },
        ),
        (
            "measure_latency",
            if calculated {
                Value::Null
            } else {
                Value::Bool(c.measure_latency().unwrap_or(false))
            },
        ),
        (
            "regions",
            set_value(
                prior.get("regions"),
                c.regions().iter().map(|r| r.as_str().to_string()).collect(),
            ),
        ),
        (
            "invert_healthcheck",
            Value::Bool(c.inverted().unwrap_or(false)),
        ),
        ("disabled", Value::Bool(c.disabled().unwrap_or(false))),
        (
            "enable_sni",
            if ty.starts_with("HTTPS") {
                Value::Bool(c.enable_sni().unwrap_or(true))
            } else {
                Value::Null
            },
        ),
        (
            "child_healthchecks",
            set_value(
                prior.get("child_healthchecks"),
                c.child_health_checks().to_vec(),
            ),
        ),
        (
            "child_health_threshold",
            if calculated {
                opt_int(c.health_threshold())
            } else {
                Value::Null
            },
        ),
        ("tags", tags),
        ("tags_all", tags_all),
    ])
}

/// Every cross-field mistake in a health check configuration, each at its
/// attribute. Unknown values are not judged.
pub fn check_config(c: &Value, d: &mut Diagnostics) {
    let at = AttrPath::root;
    let Some(ty) = c.get("type").as_str() else {
        return;
    };
    if !TYPES.contains(&ty) {
        d.error_at(
            at("type"),
            "Unsupported health check type",
            format!("{ty:?} is not one of {}.", TYPES.join(", ")),
        );
        return;
    }
    let calculated = ty == "CALCULATED";
    let str_match = ty.ends_with("_STR_MATCH");
    // Set to a known value. An unknown one (a module variable during
    // validate, say) may still turn out null: it is judged at plan time.
    let set = |a: &str| {
        let v = c.get(a);
        !v.is_null() && !v.is_unknown()
    };

    if calculated {
        for a in [
            "fqdn",
            "ip_address",
            "port",
            "resource_path",
            "search_string",
            "request_interval",
            "failure_threshold",
            "measure_latency",
            "regions",
            "enable_sni",
        ] {
            if set(a) {
                d.error_at(
                    at(a),
                    "Argument not allowed for a CALCULATED health check",
                    format!("A CALCULATED check only combines `child_healthchecks`; `{a}` applies to endpoint checks. Remove it."),
                );
            }
        }
    } else {
        if c.get("fqdn").is_null() && c.get("ip_address").is_null() {
            d.error_at(
                at("fqdn"),
                "Missing endpoint",
                format!("A {ty} health check needs `fqdn` or `ip_address` (or both) to know what to check."),
            );
        }
        for a in ["child_healthchecks", "child_health_threshold"] {
            if set(a) {
                d.error_at(
                    at(a),
                    "Children only apply to CALCULATED health checks",
                    format!(
                        "`{a}` is only allowed with `type = \"CALCULATED\"`; this check is {ty}."
                    ),
                );
            }
        }
    }
    if ty == "TCP" && c.get("port").is_null() {
        d.error_at(
            at("port"),
            "Missing port",
            "A TCP health check needs `port`: there is no default port for TCP.",
        );
    }
    if let Some(p) = c.get("port").as_i64() {
        if !(1..=65535).contains(&p) {
            d.error_at(
                at("port"),
                "Invalid port",
                format!("Ports are 1-65535, got {p}."),
            );
        }
    }
    if set("search_string") && !str_match && !calculated {
        d.error_at(
            at("search_string"),
            "search_string needs a *_STR_MATCH type",
            format!("`search_string` is only used by HTTP_STR_MATCH and HTTPS_STR_MATCH checks; this check is {ty}. Change `type` or remove `search_string`."),
        );
    }
    if str_match && c.get("search_string").is_null() {
        d.error_at(
            at("search_string"),
            "Missing search_string",
            format!("A {ty} check needs the `search_string` to look for in the response."),
        );
    }
    if let Some(s) = c.get("search_string").as_str() {
        if s.len() > MAX_STRING_LEN {
            d.error_at(
                at("search_string"),
                "search_string too long",
                format!("At most {MAX_STRING_LEN} characters, got {}.", s.len()),
            );
        }
    }
    if let Some(path) = c.get("resource_path").as_str() {
        if ty == "TCP" {
            d.error_at(
                at("resource_path"),
                "resource_path on a TCP check",
                "TCP checks only open a connection; `resource_path` applies to HTTP(S) checks.",
            );
        } else if !path.starts_with('/') || path.len() > MAX_STRING_LEN {
            d.error_at(
                at("resource_path"),
                "Invalid resource_path",
                format!(
                    "{path:?} must start with `/` and have at most {MAX_STRING_LEN} characters."
                ),
            );
        }
    }
    if let Some(ip) = c.get("ip_address").as_str() {
        if ip.parse::<IpAddr>().is_err() {
            d.error_at(
                at("ip_address"),
                "Invalid IP address",
                format!("{ip:?} is not an IPv4 or IPv6 address; use `fqdn` for names."),
            );
        }
    }
    if let Some(f) = c.get("fqdn").as_str() {
        if let Some(problem) = names::check(f) {
            d.error_at(at("fqdn"), "Invalid fqdn", problem);
        }
    }
    if let Some(n) = c.get("failure_threshold").as_i64() {
        if !(1..=10).contains(&n) {
            d.error_at(
                at("failure_threshold"),
                "Invalid failure_threshold",
                format!("Must be between 1 and 10, got {n}."),
            );
        }
    }
    if let Some(n) = c.get("request_interval").as_i64() {
        if n != 10 && n != 30 {
            d.error_at(
                at("request_interval"),
                "Invalid request_interval",
                format!("Route 53 checks every 10 or 30 seconds, got {n}."),
            );
        }
    }
    if set("enable_sni") && !ty.starts_with("HTTPS") && !calculated {
        d.error_at(
            at("enable_sni"),
            "enable_sni needs an HTTPS check",
            format!("SNI is part of TLS; a {ty} check has no TLS handshake."),
        );
    }
    if let Some(regions) = c.get("regions").as_list() {
        if !calculated {
            if regions.iter().all(|r| !r.is_unknown()) && regions.len() < MIN_REGIONS {
                d.error_at(
                    at("regions"),
                    "Too few checker regions",
                    format!("Route 53 needs at least {MIN_REGIONS} checker regions, got {}. Remove `regions` to use its defaults.", regions.len()),
                );
            }
            for r in regions.iter().filter_map(Value::as_str) {
                if !CHECKER_REGIONS.contains(&r) {
                    d.error_at(
                        at("regions"),
                        "Not a health checker region",
                        format!(
                            "{r:?} has no Route 53 health checkers; choose from {}.",
                            CHECKER_REGIONS.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if calculated {
        let children = c.get("child_healthchecks").as_list();
        if let Some(ch) = children {
            if ch.len() > MAX_CHILDREN {
                d.error_at(
                    at("child_healthchecks"),
                    "Too many child health checks",
                    format!("At most {MAX_CHILDREN}, got {}.", ch.len()),
                );
            }
        }
        if let Some(t) = c.get("child_health_threshold").as_i64() {
            let n = children.map(<[Value]>::len);
            let known = children.is_some_and(|l| l.iter().all(|v| !v.is_unknown()))
                || c.get("child_healthchecks").is_null();
            if !(0..=MAX_CHILDREN as i64).contains(&t) {
                d.error_at(
                    at("child_health_threshold"),
                    "Invalid child_health_threshold",
                    format!("Must be 0-{MAX_CHILDREN}, got {t}."),
                );
            } else if known && t > n.unwrap_or(0) as i64 {
                d.error_at(
                    at("child_health_threshold"),
                    "child_health_threshold exceeds the children",
                    format!("{t} healthy children are required but only {} are listed, so the check could never be healthy.", n.unwrap_or(0)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn errors(c: &Value) -> Vec<String> {
        let mut d = Diagnostics::new();
        HealthCheckResource.validate(c, &mut d);
        d.0.iter()
            .map(|x| x.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    fn list(xs: &[&str]) -> Value {
        Value::List(xs.iter().map(|x| s(x)).collect())
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
    }

    #[test]
    fn failure_threshold_is_one_to_ten() {
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("failure_threshold", Value::int(11))
            ])),
            vec!["failure_threshold"]
        );
        assert_eq!(
            errors(&cfg(&[
                ("type", s("HTTP")),
                ("fqdn", s("a.com")),
                ("failure_threshold", Value::int(0))
            ])),
            vec!["failure_threshold"]
        );
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
            vec!["port", "resource_path"]
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
            vec!["port", "ip_address"]
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
    fn defaults_are_planned_and_calculated_has_none() {
        let config = cfg(&[("type", s("HTTP")), ("fqdn", s("a.com"))]);
        let mut plan = Plan {
            prior: Value::Null,
            config: config.clone(),
            planned: config,
            requires_replace: vec![],
            private: vec![],
        };
        plan_defaults(&mut plan);
        assert_eq!(plan.planned.get("failure_threshold"), &Value::int(3));
        assert_eq!(plan.planned.get("request_interval"), &Value::int(30));
        let config = cfg(&[("type", s("CALCULATED"))]);
        let mut plan = Plan {
            prior: Value::Null,
            config: config.clone(),
            planned: config,
            requires_replace: vec![],
            private: vec![],
        };
        plan_defaults(&mut plan);
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
            config: config.clone(),
            planned: cfg(&[
                ("type", s("HTTP")),
                ("id", s("h1")),
                ("request_interval", Value::int(10)),
            ]),
            requires_replace: vec![],
            private: vec![],
        };
        plan_defaults(&mut plan);
        super::super::replace_if_changed(&mut plan, REPLACE_ON, RECOMPUTED);
        assert_eq!(
            plan.requires_replace,
            vec![AttrPath::root("request_interval")]
        );
        assert_eq!(plan.planned.get("id"), &Value::Unknown);
    }
}
