//! `tandem_route53_failover_record`: a PRIMARY and a SECONDARY record set
//! for one name and type, managed as one object. Every create, update and
//! delete writes both in a single ChangeResourceRecordSets batch, which
//! Route 53 applies atomically: there is never a moment with only one half.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use aws_sdk_route53::Client;
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostic, Diagnostics, IdentitySchema,
    NestedBlock, Plan, ReadResult, Resource, Schema, Type, Value,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::retry::RetryError;
use crate::aws::{Aws, AwsError, Emulator, Stoppable};

use super::error::Route53Error;
use super::{find, names, wait};

/// Default for each of the `timeouts`: Route 53 normally propagates a change
/// in about a minute, but documents no bound; 30 minutes matches
/// terraform-provider-aws and fails a truly stuck change eventually.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Record types a failover pair may have.
pub const TYPES: &[&str] = &[
    "A", "AAAA", "CAA", "CNAME", "MX", "NAPTR", "PTR", "SPF", "SRV", "TXT",
];

/// Route 53 limit on set identifiers.
const MAX_SET_IDENTIFIER: usize = 128;

/// The two halves of the pair, by block name.
const ROLES: [Role; 2] = [Role::Primary, Role::Secondary];

/// Which half of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves while healthy.
    Primary,
    /// Serves when the primary is unhealthy.
    Secondary,
}

impl Role {
    /// The block name.
    pub fn block(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }

    fn failover(self) -> ResourceRecordSetFailover {
        match self {
            Role::Primary => ResourceRecordSetFailover::Primary,
            Role::Secondary => ResourceRecordSetFailover::Secondary,
        }
    }
}

/// The set identifier used when the configuration gives none: unique per
/// name, which real Route 53 does not need but emulators such as moto do
/// (moto deletes every record sharing a set identifier, whatever its name).
pub fn default_set_identifier(name: &str, role: Role) -> String {
    let suffix = format!("-{}", role.block());
    let mut base = names::normalize(name);
    let room = MAX_SET_IDENTIFIER - suffix.len();
    if base.len() > room {
        let mut cut = room;
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        base.truncate(cut);
    }
    base + &suffix
}

/// The import ID and `id`: `ZONEID/name/TYPE`. Slashes, unlike `_`, cannot
/// appear in DNS names, so any name parses back unambiguously.
pub fn record_id(zone: &str, name: &str, ty: &str) -> String {
    format!("{}/{}/{}", names::zone_id(zone), names::normalize(name), ty)
}

/// Parses `ZONEID/name/TYPE`.
pub fn parse_record_id(id: &str) -> Result<(String, String, String), Route53Error> {
    let bad = |reason: &str| Route53Error::ImportId {
        id: id.to_string(),
        reason: format!("{reason}; expected ZONEID/name/TYPE, e.g. Z123EXAMPLE/api.example.com/A"),
    };
    let trimmed = id.trim().trim_start_matches("/hostedzone/");
    let (zone, rest) = trimmed
        .split_once('/')
        .ok_or_else(|| bad("no `/` separators"))?;
    let (name, ty) = rest
        .rsplit_once('/')
        .ok_or_else(|| bad("missing the record type"))?;
    if zone.is_empty() || name.is_empty() || ty.is_empty() {
        return Err(bad("an empty part"));
    }
    let ty = ty.to_ascii_uppercase();
    if !TYPES.contains(&ty.as_str()) {
        return Err(bad(&format!("{ty:?} is not a supported record type")));
    }
    if let Some(problem) = names::check(name) {
        return Err(bad(&problem));
    }
    Ok((zone.to_string(), names::normalize(name), ty))
}

/// The failover record pair resource type.
pub struct FailoverRecordResource;

fn target_block(role: Role) -> Block {
    let what = match role {
        Role::Primary => {
            "The PRIMARY record set: answers while its health check (or alias target) is healthy."
        }
        Role::Secondary => "The SECONDARY record set: answers when the primary is unhealthy.",
    };
    Block::new(what)
        .attr(Attribute::optional_computed(
            "set_identifier",
            Type::String,
            &format!(
                "Identifier distinguishing this record set from the other one of the same name and type (at most 128 \
                 characters). Default `<name>-{}`. Changing it is an in-place update (delete and create in one batch).",
                role.block()
            ),
        ))
        .attr(Attribute::optional(
            "records",
            Type::set(Type::String),
            "The record values, e.g. IP addresses for `A`. Set this or `alias`, not both; needs `ttl`.",
        ))
        .attr(Attribute::optional(
            "health_check_id",
            Type::String,
            "ID of the health check (e.g. `tandem_route53_health_check.x.id`) deciding whether this record set is \
             healthy. Without it, the primary is always considered healthy unless its alias evaluates target health.",
        ))
        .block(NestedBlock::single(
            "alias",
            Block::new("Answer with the records of an AWS resource (load balancer, CloudFront, S3 website, another record) instead of `records`.")
                .attr(Attribute::required("name", Type::String, "DNS name of the alias target, e.g. the load balancer's DNS name."))
                .attr(Attribute::required("zone_id", Type::String, "Hosted zone ID of the alias target (the load balancer's canonical zone ID, for instance)."))
                .attr(
                    Attribute::optional(
                        "evaluate_target_health",
                        Type::Bool,
                        "Consider the alias target's own health when answering. Default `false`.",
                    )
                    .default(false),
                ),
        ))
}

/// The typed model of a planned or prior state, for building requests.
/// Planning and validation keep working on [`Value`], where unknown and
/// null must stay apart.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct FailoverRecord {
    zone_id: String,
    name: String,
    r#type: String,
    ttl: Option<i64>,
    allow_overwrite: Option<bool>,
    primary: Option<Target>,
    secondary: Option<Target>,
    timeouts: Option<Timeouts>,
}

/// One half of the pair.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Target {
    set_identifier: Option<String>,
    records: Option<Vec<String>>,
    health_check_id: Option<String>,
    alias: Option<Alias>,
}

/// An alias target.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Alias {
    name: String,
    zone_id: String,
    evaluate_target_health: Option<bool>,
}

/// The `timeouts` block.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Timeouts {
    create: Option<String>,
    update: Option<String>,
    delete: Option<String>,
}

impl FailoverRecord {
    /// Reads the model from a planned or prior state; computed values still
    /// unknown at apply (`id`) read as absent.
    fn from_value(v: &Value, doing: &str) -> Result<FailoverRecord, Route53Error> {
        v.to_model_lossy().map_err(|e| Route53Error::Request {
            doing: doing.to_string(),
            message: format!("reading the planned values: {e}"),
        })
    }

    fn key(&self) -> Key {
        Key {
            zone: names::zone_id(&self.zone_id),
            name: names::normalize(&self.name),
            ty: self.r#type.clone(),
        }
    }

    fn target(&self, role: Role) -> Option<&Target> {
        match role {
            Role::Primary => self.primary.as_ref(),
            Role::Secondary => self.secondary.as_ref(),
        }
    }

    /// The wait bound of an operation, from `timeouts` or the default.
    fn timeout(&self, op: &str) -> Duration {
        let t = self.timeouts.as_ref();
        let s = match op {
            "create" => t.and_then(|t| t.create.as_deref()),
            "update" => t.and_then(|t| t.update.as_deref()),
            _ => t.and_then(|t| t.delete.as_deref()),
        };
        s.and_then(super::parse_duration).unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The two record sets this model asks for.
    fn desired_sets(&self) -> Result<Vec<ResourceRecordSet>, String> {
        let key = self.key();
        let mut out = Vec::new();
        for role in ROLES {
            let t = self.target(role).cloned().unwrap_or_default();
            let mut b = ResourceRecordSet::builder()
                .name(names::fqdn(&key.name))
                .r#type(RrType::from(key.ty.as_str()))
                .failover(role.failover())
                .set_identifier(
                    t.set_identifier
                        .unwrap_or_else(|| default_set_identifier(&key.name, role)),
                )
                .set_health_check_id(t.health_check_id);
            match t.alias {
                None => {
                    b = b.set_ttl(self.ttl);
                    for v in t.records.unwrap_or_default() {
                        b = b.resource_records(
                            ResourceRecord::builder()
                                .value(wire_value(&key.ty, &v))
                                .build()
                                .map_err(|e| e.to_string())?,
                        );
                    }
                }
                Some(a) => {
                    b = b.alias_target(
                        AliasTarget::builder()
                            .dns_name(names::fqdn(&a.name))
                            .hosted_zone_id(names::zone_id(&a.zone_id))
                            .evaluate_target_health(a.evaluate_target_health.unwrap_or(false))
                            .build()
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            out.push(b.build().map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Resource<Aws> for FailoverRecordResource {
    fn type_name(&self) -> &'static str {
        "tandem_route53_failover_record"
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema::strings(&[
            ("zone_id", "The hosted zone ID."),
            (
                "name",
                "The record name, normalised (lowercase, no trailing dot).",
            ),
            ("type", "The record type, e.g. `A`."),
        ]))
    }

    fn identity(&self, state: &Value) -> Option<Value> {
        let zone = state.get("zone_id").as_str()?;
        let name = state.get("name").as_str()?;
        let ty = state.get("type").as_str()?;
        Some(Value::object([
            ("zone_id", Value::string(names::zone_id(zone))),
            ("name", Value::string(names::normalize(name))),
            ("type", Value::string(ty)),
        ]))
    }

    fn import_id_from_identity(&self, identity: &Value) -> Option<String> {
        Some(record_id(
            identity.get("zone_id").as_str()?,
            identity.get("name").as_str()?,
            identity.get("type").as_str()?,
        ))
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "A failover pair: a PRIMARY and a SECONDARY record set for one name and type, created, changed and \
                 deleted together in one atomic Route 53 change batch, then awaited until INSYNC. Changing set \
                 identifiers, TTL or targets never leaves a half state. Import with `ZONEID/name/TYPE`, e.g. \
                 `terraform import tandem_route53_failover_record.api Z123EXAMPLE/api.example.com/A`.",
            )
            .attr(Attribute::computed("id", Type::String, "`ZONEID/name/TYPE`, with the name normalised."))
            .attr(Attribute::required(
                "zone_id",
                Type::String,
                "ID of the hosted zone holding the records. Changing it replaces the pair.",
            ))
            .attr(Attribute::required(
                "name",
                Type::String,
                "Fully qualified record name, e.g. `api.example.com`. Case, a trailing dot and the `\\052` escape of a \
                 leading `*` are ignored. Changing it replaces the pair.",
            ))
            .attr(Attribute::required(
                "type",
                Type::String,
                "Record type, uppercase: `A`, `AAAA`, `CAA`, `CNAME`, `MX`, `NAPTR`, `PTR`, `SPF`, `SRV` or `TXT`. \
                 Changing it replaces the pair.",
            ))
            .attr(Attribute::optional(
                "ttl",
                Type::Number,
                "TTL in seconds of the record sets that use `records`. Required when either block uses `records`; \
                 not allowed when both use `alias`.",
            ))
            .attr(
                Attribute::optional(
                    "allow_overwrite",
                    Type::Bool,
                    "Adopt record sets that already exist with this name and type instead of failing: the create \
                     then UPSERTs both halves and deletes any other record set of this name and type in the same \
                     batch. The plan warns when this will happen. Default `false`.",
                )
                .default(false),
            )
            .block(NestedBlock::single("primary", target_block(Role::Primary)))
            .block(NestedBlock::single("secondary", target_block(Role::Secondary)))
            .block(NestedBlock::single(
                "timeouts",
                Block::new("How long to wait for the change to be INSYNC, as `30m`, `1h` or `90s`.")
                    .attr(Attribute::optional("create", Type::String, "Timeout of a create. Default `30m`."))
                    .attr(Attribute::optional("update", Type::String, "Timeout of an update. Default `30m`."))
                    .attr(Attribute::optional("delete", Type::String, "Timeout of a delete. Default `30m`.")),
            )),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check_config(config, diags);
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        super::keep_prior_spelling(plan, &["name"]);
        if let (Some(p), Some(c)) = (
            plan.prior.get("zone_id").as_str(),
            plan.config.get("zone_id").as_str(),
        ) {
            if p != c && names::zone_id(p) == names::zone_id(c) {
                plan.planned.set("zone_id", Value::string(p));
            }
        }
        for role in ROLES {
            super::keep_prior_spelling(plan, &[role.block(), "alias", "name"]);
            keep_equivalent_records(plan, role);
        }
        super::replace_if_changed(plan, &["zone_id", "name", "type"], &["id"]);
        let replacing = !plan.requires_replace.is_empty();
        for role in ROLES {
            plan_set_identifier(plan, role, replacing);
        }
        if let (Some(z), Some(n), Some(t)) = (
            plan.planned.get("zone_id").as_str(),
            plan.planned.get("name").as_str(),
            plan.planned.get("type").as_str(),
        ) {
            plan.planned.set("id", Value::string(record_id(z, n, t)));
        }
        if plan.is_create() && plan.config.get("allow_overwrite").as_bool() == Some(true) {
            warn_if_adopting(ctx, plan).await;
        }
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
        let key = Key::from_value(planned);
        let doing = format!("creating Route 53 failover record set ({key})");
        let model = FailoverRecord::from_value(planned, &doing)?;
        let existing = existing_sets(client, ctx.cancel_token(), &key)
            .await
            .map_err(|e| Route53Error::retry(&doing, e))?;
        let overwrite = model.allow_overwrite == Some(true);
        let new_sets = model
            .desired_sets()
            .map_err(|message| Route53Error::Request {
                doing: doing.clone(),
                message,
            })?;
        let mut deletes = Vec::new();
        if !existing.is_empty() {
            if !overwrite {
                return Err(Route53Error::AlreadyExists {
                    doing,
                    existing: describe(&existing),
                }
                .into());
            }
            // Adopt: whatever else holds this name and type goes in the same batch.
            let ours: Vec<Option<&str>> = new_sets.iter().map(|s| s.set_identifier()).collect();
            deletes.extend(
                existing
                    .iter()
                    .filter(|o| !ours.contains(&o.set_identifier()))
                    .cloned(),
            );
        }
        let action = if overwrite {
            ChangeAction::Upsert
        } else {
            ChangeAction::Create
        };
        let timeout = model.timeout("create");
        let written = new_sets.clone();
        write_pair(
            aws,
            ctx.cancel_token(),
            &key,
            deletes,
            new_sets,
            action,
            timeout,
            &doing,
        )
        .await?;
        Ok(written_state(&written, planned, &doing)?.into())
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        Ok(refresh(aws.route53(), ctx.cancel_token(), state)
            .await?
            .into())
    }

    async fn update(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        _private: &[u8],
    ) -> Result<Applied, ApplyError> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let key = Key::from_value(planned);
        let doing = format!("updating Route 53 failover record set ({key})");
        let records_changed = ["ttl", "primary", "secondary"]
            .iter()
            .any(|a| prior.get(a) != planned.get(a));
        if records_changed {
            let existing =
                find::find_record_sets(client, ctx.cancel_token(), &key.zone, &key.name, &key.ty)
                    .await
                    .map_err(|e| Route53Error::aws(&doing, e))?
                    .unwrap_or_default();
            let model = FailoverRecord::from_value(planned, &doing)?;
            let new_sets = model
                .desired_sets()
                .map_err(|message| Route53Error::Request {
                    doing: doing.clone(),
                    message,
                })?;
            let new_ids: Vec<Option<&str>> = new_sets.iter().map(|s| s.set_identifier()).collect();
            let prior_ids: Vec<&str> = ROLES
                .iter()
                .filter_map(|r| prior.get(r.block()).get("set_identifier").as_str())
                .collect();
            // DELETE exactly what exists now (not what the prior state says,
            // which may have drifted), then CREATE the new pair: one batch.
            let deletes: Vec<ResourceRecordSet> = existing
                .iter()
                .filter(|o| {
                    o.failover().is_some()
                        || o.set_identifier().is_some_and(|i| prior_ids.contains(&i))
                        || new_ids.contains(&o.set_identifier())
                })
                .cloned()
                .collect();
            let timeout = model.timeout("update");
            let written = new_sets.clone();
            write_pair(
                aws,
                ctx.cancel_token(),
                &key,
                deletes,
                new_sets,
                ChangeAction::Create,
                timeout,
                &doing,
            )
            .await?;
            return Ok(written_state(&written, planned, &doing)?.into());
        }
        // Only arguments Route 53 does not hold (timeouts, allow_overwrite)
        // changed: nothing to send.
        Ok(planned.clone().into())
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let key = Key::from_value(prior);
        let doing = format!("deleting Route 53 failover record set ({key})");
        let Some(existing) =
            find::find_record_sets(client, ctx.cancel_token(), &key.zone, &key.name, &key.ty)
                .await
                .map_err(|e| Route53Error::aws(&doing, e))?
        else {
            // The zone is gone, and the records with it.
            return Ok(());
        };
        let deletes: Vec<ResourceRecordSet> = ROLES
            .iter()
            .filter_map(|r| owned(&existing, prior.get(r.block()), *r))
            .cloned()
            .collect();
        if deletes.is_empty() {
            return Ok(());
        }
        // A state too odd to model must not block deletion: use the default.
        let timeout = FailoverRecord::from_value(prior, &doing)
            .map(|m| m.timeout("delete"))
            .unwrap_or(DEFAULT_TIMEOUT);
        write_pair(
            aws,
            ctx.cancel_token(),
            &key,
            deletes,
            Vec::new(),
            ChangeAction::Create,
            timeout,
            &doing,
        )
        .await?;
        Ok(())
    }

    async fn import(&self, _ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (zone, name, ty) = parse_record_id(id)?;
        Ok(Value::object([
            ("id", Value::string(record_id(&zone, &name, &ty))),
            ("zone_id", Value::string(zone)),
            ("name", Value::string(name)),
            ("type", Value::string(ty)),
            ("allow_overwrite", Value::Bool(false)),
        ]))
    }
}

/// Zone, name and type: what identifies the pair.
#[derive(Debug, Clone)]
struct Key {
    zone: String,
    name: String,
    ty: String,
}

impl Key {
    fn from_value(v: &Value) -> Key {
        Key {
            zone: names::zone_id(v.get("zone_id").as_str().unwrap_or_default()),
            name: names::normalize(v.get("name").as_str().unwrap_or_default()),
            ty: v.get("type").as_str().unwrap_or_default().to_string(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.zone, self.name, self.ty)
    }
}

fn describe(sets: &[ResourceRecordSet]) -> String {
    sets.iter()
        .map(|s| {
            format!(
                "{} {} {}",
                names::normalize(s.name()),
                s.r#type().as_str(),
                s.set_identifier().unwrap_or("(no set identifier)")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn change(
    action: ChangeAction,
    set: ResourceRecordSet,
    doing: &str,
) -> Result<Change, Route53Error> {
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| Route53Error::Request {
            doing: doing.to_string(),
            message: e.to_string(),
        })
}

/// Record sets of this name and type; retries NoSuchHostedZone for a while,
/// since the zone may have been created moments ago in the same apply.
async fn existing_sets(
    client: &Client,
    cancel: &CancellationToken,
    key: &Key,
) -> Result<Vec<ResourceRecordSet>, RetryError> {
    wait::retry_new_zone(cancel, || async {
        find::find_record_sets(client, cancel, &key.zone, &key.name, &key.ty)
            .await?
            .ok_or_else(|| AwsError {
                code: Some("NoSuchHostedZone".into()),
                message: format!("No hosted zone found with ID: {}", key.zone),
                status: Some(404),
                cancelled: false,
            })
    })
    .await
}

/// Writes one atomic batch: DELETE `deletes`, then `action` (CREATE or
/// UPSERT) `news`; then waits for INSYNC.
///
/// A refused CREATE is reported, naming what now holds the names when a
/// listing finds it: someone else wrote them meanwhile, and only
/// `allow_overwrite` (an UPSERT from the start) may overwrite. The one
/// exception is moto, and only when the provider block says the endpoint
/// is moto: it refuses a CREATE identical to one in its change journal
/// whenever any record sorts after it, even once the record was deleted
/// (e.g. re-creating a pair after an out-of-band deletion); if nothing but
/// what this batch deletes holds the names, the batch is sent again with
/// UPSERTs, which is equivalent there.
#[allow(clippy::too_many_arguments)]
async fn write_pair(
    aws: &Aws,
    cancel: &CancellationToken,
    key: &Key,
    deletes: Vec<ResourceRecordSet>,
    news: Vec<ResourceRecordSet>,
    action: ChangeAction,
    timeout: Duration,
    doing: &str,
) -> Result<(), Route53Error> {
    let client = aws.route53();
    let mut changes = Vec::new();
    for d in &deletes {
        changes.push(change(ChangeAction::Delete, d.clone(), doing)?);
    }
    for n in &news {
        changes.push(change(action.clone(), n.clone(), doing)?);
    }
    let first = send_batch(client, cancel, key, changes).await;
    let info = match first {
        Ok(info) => info,
        Err(RetryError::Aws(e))
            if action == ChangeAction::Create && e.is(&["InvalidChangeBatch"]) =>
        {
            let now = find::find_record_sets(client, cancel, &key.zone, &key.name, &key.ty)
                .await
                .map_err(|e| Route53Error::aws(doing, e))?
                .unwrap_or_default();
            let deleting: Vec<Option<&str>> = deletes.iter().map(|d| d.set_identifier()).collect();
            let new_ids: Vec<Option<&str>> = news.iter().map(|n| n.set_identifier()).collect();
            let intruders: Vec<ResourceRecordSet> = now
                .iter()
                .filter(|s| !deleting.contains(&s.set_identifier()))
                .cloned()
                .collect();
            if !intruders.is_empty() {
                return Err(Route53Error::AlreadyExists {
                    doing: doing.to_string(),
                    existing: describe(&intruders),
                });
            }
            if aws.emulator() != Some(Emulator::Moto) {
                return Err(Route53Error::aws(doing, e));
            }
            tracing::debug!(error = %e, "CREATE refused although the records are absent; retrying as UPSERT");
            let mut changes = Vec::new();
            for d in deletes
                .iter()
                .filter(|d| !new_ids.contains(&d.set_identifier()))
            {
                changes.push(change(ChangeAction::Delete, d.clone(), doing)?);
            }
            for n in news {
                changes.push(change(ChangeAction::Upsert, n, doing)?);
            }
            send_batch(client, cancel, key, changes)
                .await
                .map_err(|e| Route53Error::retry(doing, e))?
        }
        Err(e) => return Err(Route53Error::retry(doing, e)),
    };
    if let Some((id, insync)) = info {
        if !insync {
            wait::wait_change_insync(client, cancel, &id, timeout)
                .await
                .map_err(|e| Route53Error::retry(format!("{doing}: waiting for INSYNC"), e))?;
        }
    }
    Ok(())
}

/// Sends one ChangeResourceRecordSets call; returns the change ID and
/// whether it is already INSYNC.
async fn send_batch(
    client: &Client,
    cancel: &CancellationToken,
    key: &Key,
    changes: Vec<Change>,
) -> Result<Option<(String, bool)>, RetryError> {
    let n = changes.len();
    let batch = ChangeBatch::builder()
        .comment(format!("tandem_route53_failover_record {key}"))
        .set_changes(Some(changes))
        .build()
        .map_err(|e| AwsError::local(format!("invalid change batch: {e}")))?;
    let span = tracing::info_span!("route53.ChangeResourceRecordSets", zone_id = %key.zone, name = %key.name, r#type = %key.ty, changes = n);
    let out = wait::retry_new_zone(cancel, || {
        client
            .change_resource_record_sets()
            .hosted_zone_id(&key.zone)
            .change_batch(batch.clone())
            .send()
            .instrument(span.clone())
            .stoppable(cancel)
    })
    .await?;
    Ok(out.change_info().map(|i| {
        (
            i.id().to_string(),
            *i.status() == aws_sdk_route53::types::ChangeStatus::Insync,
        )
    }))
}

/// The record set this resource owns for `role`: by the set identifier in
/// state, or, when state does not know it (just imported), by failover role.
fn owned<'a>(
    existing: &'a [ResourceRecordSet],
    block: &Value,
    role: Role,
) -> Option<&'a ResourceRecordSet> {
    match block.get("set_identifier").as_str() {
        Some(id) => existing.iter().find(|s| s.set_identifier() == Some(id)),
        None => existing
            .iter()
            .find(|s| s.failover() == Some(&role.failover())),
    }
}

/// The state after a successful write: the record sets as written, in the
/// user's spelling. Route 53 stores a batch exactly as accepted (INSYNC only
/// concerns propagation to its name servers), so reading it back would
/// repeat what we sent at the cost of one more call per pair; the next
/// refresh still compares with what is really there.
fn written_state(
    written: &[ResourceRecordSet],
    planned: &Value,
    doing: &str,
) -> Result<Value, Route53Error> {
    pair_value(written, planned).ok_or_else(|| Route53Error::Request {
        doing: doing.to_string(),
        message: "the change batch held neither half of the pair".into(),
    })
}

/// The current state of the pair; `None` when both halves (or the zone) are gone.
async fn refresh(
    client: &Client,
    cancel: &CancellationToken,
    state: &Value,
) -> Result<Option<Value>, Route53Error> {
    let key = Key::from_value(state);
    let Some(existing) = find::find_record_sets(client, cancel, &key.zone, &key.name, &key.ty)
        .await
        .map_err(|e| {
            Route53Error::aws(format!("reading Route 53 failover record set ({key})"), e)
        })?
    else {
        return Ok(None);
    };
    Ok(pair_value(&existing, state))
}

/// Builds the state from the record sets found; a half that is missing or
/// has lost its failover role becomes null, which the next plan shows.
fn pair_value(existing: &[ResourceRecordSet], prior: &Value) -> Option<Value> {
    let found: Vec<Option<&ResourceRecordSet>> = ROLES
        .iter()
        .map(|r| {
            owned(existing, prior.get(r.block()), *r)
                .filter(|s| s.failover() == Some(&r.failover()))
        })
        .collect();
    if found.iter().all(Option::is_none) {
        return None;
    }
    // One TTL for both halves: prefer a value that differs from the prior
    // state, so drift on either half shows up.
    // Alias sets have no TTL of their own (moto reports 0 for them anyway).
    let ttls: Vec<i64> = found
        .iter()
        .flatten()
        .filter(|s| s.alias_target().is_none())
        .filter_map(|s| s.ttl())
        .collect();
    let prior_ttl = prior.get("ttl").as_i64();
    let ttl = ttls
        .iter()
        .copied()
        .find(|t| Some(*t) != prior_ttl)
        .or(ttls.first().copied());
    let mut v = prior.clone();
    if v.as_map().is_none() {
        v = Value::object::<_, &str>([]);
    }
    let key = Key::from_value(prior);
    v.set(
        "id",
        Value::string(record_id(&key.zone, &key.name, &key.ty)),
    );
    v.set("ttl", ttl.map(Value::int).unwrap_or(Value::Null));
    if v.get("allow_overwrite").is_null() {
        v.set("allow_overwrite", Value::Bool(false));
    }
    for (role, set) in ROLES.iter().zip(found) {
        let block = set
            .map(|s| target_value(s, prior.get(role.block())))
            .unwrap_or(Value::Null);
        v.set(role.block(), block);
    }
    Some(v)
}

fn target_value(s: &ResourceRecordSet, prior: &Value) -> Value {
    let alias = match s.alias_target() {
        Some(a) => Value::object([
            (
                "name",
                Value::string(names::keep_spelling(
                    prior.get("alias").get("name").as_str(),
                    a.dns_name(),
                )),
            ),
            (
                "zone_id",
                match prior.get("alias").get("zone_id").as_str() {
                    Some(z) if names::zone_id(z) == names::zone_id(a.hosted_zone_id()) => {
                        Value::string(z)
                    }
                    _ => Value::string(a.hosted_zone_id()),
                },
            ),
            (
                "evaluate_target_health",
                Value::Bool(a.evaluate_target_health()),
            ),
        ]),
        None => Value::Null,
    };
    let records = if s.alias_target().is_some() {
        Value::Null
    } else {
        let actual: Vec<String> = s
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect();
        same_records(prior.get("records"), &actual, s.r#type().as_str())
    };
    Value::object([
        (
            "set_identifier",
            s.set_identifier().map(Value::string).unwrap_or(Value::Null),
        ),
        ("records", records),
        (
            "health_check_id",
            s.health_check_id()
                .map(Value::string)
                .unwrap_or(Value::Null),
        ),
        ("alias", alias),
    ])
}

/// A record value in canonical form: IP addresses parsed, names without
/// case or trailing dot, so `2001:DB8::1` and `2001:db8::1` are one value.
fn normalize_value(ty: &str, v: &str) -> String {
    match ty {
        "A" => v
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| v.to_string()),
        "AAAA" => v
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| v.to_string()),
        "CNAME" | "PTR" => names::normalize(v),
        "TXT" | "SPF" => txt_text(v),
        _ => v.trim().to_string(),
    }
}

/// Longest character-string in a TXT record (RFC 1035).
const TXT_CHUNK: usize = 255;

/// A record value as Route 53 wants it. TXT and SPF values must be quoted
/// character-strings of at most 255 characters; users write plain text
/// (as with terraform-provider-aws), so unquoted text is escaped, quoted
/// and split. Values that already start with a quote are sent as written.
fn wire_value(ty: &str, v: &str) -> String {
    if !matches!(ty, "TXT" | "SPF") || v.starts_with('"') {
        return v.to_string();
    }
    let chars: Vec<char> = v.chars().collect();
    chars
        .chunks(TXT_CHUNK)
        .map(|c| {
            let text: String = c.iter().collect();
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of a TXT value: quoted character-strings unescaped and
/// concatenated; an unquoted value is its own text.
fn txt_text(v: &str) -> String {
    let v = v.trim();
    if !v.starts_with('"') {
        return v.to_string();
    }
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', _) => quoted = !quoted,
            ('\\', true) => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (c, true) => out.push(c),
            // Whitespace between character-strings is not part of the text.
            (_, false) => {}
        }
    }
    out
}

/// The prior list when it holds the same values as `actual` up to
/// normalisation; else `actual`.
fn same_records(prior: &Value, actual: &[String], ty: &str) -> Value {
    let mut a: Vec<String> = actual.iter().map(|v| normalize_value(ty, v)).collect();
    a.sort();
    if let Some(p) = prior.as_list() {
        let mut pn: Vec<String> = p
            .iter()
            .filter_map(Value::as_str)
            .map(|v| normalize_value(ty, v))
            .collect();
        pn.sort();
        if pn == a {
            return prior.clone();
        }
    }
    Value::List(actual.iter().map(Value::string).collect())
}

/// Plans the prior spelling of records that equal the configured ones up to
/// normalisation (e.g. a trailing dot on a CNAME target).
fn keep_equivalent_records(plan: &mut Plan, role: Role) {
    let ty = plan
        .config
        .get("type")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let prior = plan.prior.get(role.block()).get("records").clone();
    let config = plan.config.get(role.block()).get("records");
    let (Some(p), Some(c)) = (prior.as_list(), config.as_list()) else {
        return;
    };
    if !config.is_wholly_known() || p == c {
        return;
    }
    let norm = |l: &[Value]| {
        let mut v: Vec<String> = l
            .iter()
            .filter_map(Value::as_str)
            .map(|x| normalize_value(&ty, x))
            .collect();
        v.sort();
        v
    };
    if norm(p) == norm(c) {
        super::set_path(&mut plan.planned, &[role.block(), "records"], prior);
    }
}

/// Plans `set_identifier` when the configuration leaves it out: the prior
/// value (e.g. adopted by import) unless the pair is being replaced, else
/// the derived default.
fn plan_set_identifier(plan: &mut Plan, role: Role, replacing: bool) {
    if plan.planned.get(role.block()).as_map().is_none()
        || !plan
            .config
            .get(role.block())
            .get("set_identifier")
            .is_null()
    {
        return;
    }
    let prior = plan.prior.get(role.block()).get("set_identifier");
    let v = if !replacing && prior.as_str().is_some() {
        prior.clone()
    } else {
        match plan.planned.get("name").as_str() {
            Some(n) => Value::string(default_set_identifier(n, role)),
            None => Value::Unknown,
        }
    };
    super::set_path(&mut plan.planned, &[role.block(), "set_identifier"], v);
}

/// With `allow_overwrite`, tells at plan time that existing records will be
/// adopted. Best effort: a failed lookup only loses the warning.
async fn warn_if_adopting(ctx: &Ctx<Aws>, plan: &Plan) {
    let Some(aws) = ctx.meta_opt() else { return };
    if !plan.planned.get("zone_id").is_wholly_known()
        || plan.planned.get("name").as_str().is_none()
        || plan.planned.get("type").as_str().is_none()
    {
        return;
    }
    let key = Key::from_value(&plan.planned);
    if let Ok(Some(existing)) = find::find_record_sets(
        aws.route53(),
        ctx.cancel_token(),
        &key.zone,
        &key.name,
        &key.ty,
    )
    .await
    {
        if !existing.is_empty() {
            ctx.warn(
                Diagnostic::warning(
                    "Existing record sets will be adopted",
                    format!(
                        "{key} already has record sets ({}). Because allow_overwrite = true, applying will UPSERT the \
                         failover pair over them and delete the others of this name and type, in one batch.",
                        describe(&existing)
                    ),
                )
                .at(AttrPath::root("allow_overwrite")),
            );
        }
    }
}

/// Every mistake in a failover pair's configuration, each at its attribute.
/// Unknown values are not judged.
pub fn check_config(c: &Value, d: &mut Diagnostics) {
    let ty = c.get("type").as_str();
    if let Some(t) = ty {
        if !TYPES.contains(&t) {
            let hint = if TYPES.contains(&t.to_ascii_uppercase().as_str()) {
                format!(" Write it in uppercase: {:?}.", t.to_ascii_uppercase())
            } else {
                String::new()
            };
            d.error_at(
                AttrPath::root("type"),
                "Unsupported record type",
                format!("{t:?} is not one of {}.{hint}", TYPES.join(", ")),
            );
        }
    }
    if let Some(n) = c.get("name").as_str() {
        if let Some(problem) = names::check(n) {
            d.error_at(AttrPath::root("name"), "Invalid record name", problem);
        }
    }
    if let Some(z) = c.get("zone_id").as_str() {
        let z = names::zone_id(z);
        if z.is_empty() || !z.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            d.error_at(
                AttrPath::root("zone_id"),
                "Invalid zone_id",
                format!("{z:?} is not a hosted zone ID such as Z123EXAMPLE."),
            );
        }
    }
    let ttl = c.get("ttl");
    if let Some(t) = ttl.as_i64() {
        if !(0..=2_147_483_647).contains(&t) {
            d.error_at(
                AttrPath::root("ttl"),
                "Invalid ttl",
                format!("TTL must be 0-2147483647 seconds, got {t}."),
            );
        }
    }
    let mut uses_records = false;
    let mut all_known = true;
    let mut ids: Vec<(Role, String)> = Vec::new();
    for role in ROLES {
        let path = || AttrPath::root(role.block());
        let t = c.get(role.block());
        if t.is_unknown() {
            all_known = false;
            continue;
        }
        if t.is_null() {
            d.error_at(
                path(),
                format!("Missing {} block", role.block()),
                format!("A failover pair needs both a `primary` and a `secondary` block; `{}` is missing.", role.block()),
            );
            continue;
        }
        let records = t.get("records");
        let alias = t.get("alias");
        // Unknown values (e.g. a module variable during validate, or a
        // dynamic block over one) may turn out null or not: judge later.
        let undecided = records.is_unknown() || alias.is_unknown();
        match (records.is_null(), alias.is_null()) {
            _ if undecided => {}
            (false, false) => d.error_at(
                path().attr("alias"),
                "Both records and alias",
                format!("`{}` sets both `records` and `alias`; a record set answers with one or the other.", role.block()),
            ),
            (true, true) => d.error_at(
                path().attr("records"),
                "No target",
                format!("`{}` needs `records` or an `alias` block to answer with.", role.block()),
            ),
            _ => {}
        }
        if !records.is_null() {
            uses_records = true;
        }
        // Whether `ttl` is needed depends on which target each half uses.
        if records.is_unknown() || alias.is_unknown() {
            all_known = false;
        }
        if let Some(list) = records.as_list() {
            if list.is_empty() {
                d.error_at(
                    path().attr("records"),
                    "Empty records",
                    "Give at least one record value, or use `alias`.",
                );
            }
            if ty == Some("CNAME") && list.len() > 1 {
                d.error_at(
                    path().attr("records"),
                    "Several CNAME values",
                    "A CNAME record set has exactly one value.",
                );
            }
            for v in list.iter().filter_map(Value::as_str) {
                let bad = match ty {
                    Some("A") => v.parse::<Ipv4Addr>().is_err(),
                    Some("AAAA") => v.parse::<Ipv6Addr>().is_err(),
                    _ => false,
                };
                if bad {
                    d.error_at(
                        path().attr("records"),
                        "Invalid record value",
                        format!(
                            "{v:?} is not an {} address.",
                            if ty == Some("A") { "IPv4" } else { "IPv6" }
                        ),
                    );
                }
            }
        }
        if let Some(sid) = t.get("set_identifier").as_str() {
            if sid.is_empty() || sid.len() > MAX_SET_IDENTIFIER {
                d.error_at(
                    path().attr("set_identifier"),
                    "Invalid set_identifier",
                    format!(
                        "A set identifier has 1-{MAX_SET_IDENTIFIER} characters, got {}.",
                        sid.len()
                    ),
                );
            }
            ids.push((role, sid.to_string()));
        } else if t.get("set_identifier").is_null() {
            if let Some(n) = c.get("name").as_str() {
                ids.push((role, default_set_identifier(n, role)));
            }
        }
        if let Some(h) = t.get("health_check_id").as_str() {
            if h.is_empty()
                || h.len() > 64
                || !h.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            {
                d.error_at(
                    path().attr("health_check_id"),
                    "Invalid health_check_id",
                    format!("{h:?} is not a health check ID; use the `id` of a tandem_route53_health_check."),
                );
            }
        }
        if let Some(z) = alias.get("zone_id").as_str() {
            if names::zone_id(z).is_empty() {
                d.error_at(
                    path().attr("alias").attr("zone_id"),
                    "Invalid alias zone_id",
                    "The alias target's hosted zone ID is empty.",
                );
            }
        }
        if role == Role::Primary && t.get("health_check_id").is_null() {
            if alias.is_null() && !undecided {
                // Route 53 refuses this at apply ("A non-alias primary
                // ResourceRecordSet must have an associated health check").
                d.error_at(
                    path().attr("health_check_id"),
                    "Primary without a health check",
                    "Route 53 refuses a non-alias PRIMARY record set without a health check: it could never tell \
                     when to fail over to the secondary. Set `health_check_id` (e.g. a tandem_route53_health_check's \
                     `id`), or answer with an `alias` that evaluates its target's health.",
                );
            } else if alias.get("evaluate_target_health").as_bool() == Some(false) {
                d.warn_at(
                    path().attr("health_check_id"),
                    "Primary without a health check",
                    "With neither `health_check_id` nor `alias.evaluate_target_health`, Route 53 always considers the \
                     primary healthy, so traffic never fails over to the secondary.",
                );
            }
        }
    }
    if let [(_, a), (_, b)] = ids.as_slice() {
        if a == b {
            d.error_at(
                AttrPath::root("secondary").attr("set_identifier"),
                "Duplicate set_identifier",
                format!("Both halves use the set identifier {a:?}; they must differ."),
            );
        }
    }
    if all_known && !ttl.is_unknown() {
        if uses_records && ttl.is_null() {
            d.error_at(
                AttrPath::root("ttl"),
                "Missing ttl",
                "Record sets with `records` need a `ttl`.",
            );
        }
        if !uses_records
            && !ttl.is_null()
            && d.0.iter().all(|x| {
                x.path != Some(AttrPath::root("primary"))
                    && x.path != Some(AttrPath::root("secondary"))
            })
        {
            d.error_at(
                AttrPath::root("ttl"),
                "ttl with alias targets",
                "Alias record sets take their TTL from the target; remove `ttl`.",
            );
        }
    }
    for op in ["create", "update", "delete"] {
        if let Some(s) = c.get("timeouts").get(op).as_str() {
            if super::parse_duration(s).is_none() {
                d.error_at(
                    AttrPath::root("timeouts").attr(op),
                    "Invalid timeout",
                    format!("{s:?} is not a duration such as \"30m\", \"1h\" or \"90s\"."),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin6::Severity;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    fn target(records: &[&str], hc: Option<&str>) -> Value {
        Value::object([
            (
                "records",
                Value::List(records.iter().map(|r| s(r)).collect()),
            ),
            ("health_check_id", hc.map(s).unwrap_or(Value::Null)),
            ("set_identifier", Value::Null),
            ("alias", Value::Null),
        ])
    }

    fn good() -> Value {
        Value::object([
            ("zone_id", s("Z123")),
            ("name", s("api.example.com")),
            ("type", s("A")),
            ("ttl", Value::int(60)),
            ("primary", target(&["192.0.2.1"], Some("abc-123"))),
            ("secondary", target(&["192.0.2.2"], None)),
        ])
    }

    fn errors(c: &Value) -> Vec<String> {
        let mut d = Diagnostics::new();
        FailoverRecordResource.validate(c, &mut d);
        d.0.iter()
            .filter(|x| x.severity == Severity::Error)
            .map(|x| x.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    fn with(mut c: Value, path: &[&str], v: Value) -> Value {
        super::super::set_path(&mut c, path, v);
        c
    }

    #[test]
    fn a_good_pair_passes() {
        assert!(errors(&good()).is_empty(), "{:?}", errors(&good()));
    }

    #[test]
    fn missing_secondary_is_reported() {
        assert_eq!(
            errors(&with(good(), &["secondary"], Value::Null)),
            vec!["secondary"]
        );
    }

    #[test]
    fn records_and_alias_together_are_refused() {
        let alias = Value::object([
            ("name", s("lb.example.com")),
            ("zone_id", s("Z2")),
            ("evaluate_target_health", Value::Bool(true)),
        ]);
        assert_eq!(
            errors(&with(good(), &["primary", "alias"], alias)),
            vec!["primary.alias"]
        );
    }

    #[test]
    fn ttl_is_not_judged_while_a_target_kind_is_unknown() {
        // records null, alias from a dynamic block not yet known, ttl set.
        let c = with(good(), &["primary", "records"], Value::Null);
        let c = with(c, &["primary", "alias"], Value::Unknown);
        let c = with(c, &["secondary", "records"], Value::Null);
        let c = with(c, &["secondary", "alias"], Value::Unknown);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    }

    #[test]
    fn unknown_records_and_alias_are_not_judged_yet() {
        // What a module variable looks like during `terraform validate`.
        let c = with(good(), &["primary", "records"], Value::Unknown);
        let c = with(c, &["primary", "alias"], Value::Unknown);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    }

    #[test]
    fn a_target_needs_records_or_alias() {
        assert_eq!(
            errors(&with(good(), &["secondary", "records"], Value::Null)),
            vec!["secondary.records"]
        );
    }

    #[test]
    fn ttl_needed_with_records() {
        assert_eq!(errors(&with(good(), &["ttl"], Value::Null)), vec!["ttl"]);
    }

    #[test]
    fn ttl_refused_with_only_aliases() {
        let alias = Value::object([
            ("name", s("lb.example.com")),
            ("zone_id", s("Z2")),
            ("evaluate_target_health", Value::Bool(true)),
        ]);
        let c = with(
            with(good(), &["primary", "records"], Value::Null),
            &["primary", "alias"],
            alias.clone(),
        );
        let c = with(
            with(c, &["secondary", "records"], Value::Null),
            &["secondary", "alias"],
            alias,
        );
        assert_eq!(errors(&c), vec!["ttl"]);
    }

    #[test]
    fn negative_ttl_is_refused() {
        assert_eq!(errors(&with(good(), &["ttl"], Value::int(-1))), vec!["ttl"]);
    }

    #[test]
    fn lowercase_type_is_refused_with_a_hint() {
        let mut d = Diagnostics::new();
        check_config(&with(good(), &["type"], s("a")), &mut d);
        assert!(d.0[0].detail.contains("uppercase"), "{}", d.0[0].detail);
        assert_eq!(errors(&with(good(), &["type"], s("a"))), vec!["type"]);
    }

    #[test]
    fn a_records_must_be_ipv4() {
        assert_eq!(
            errors(&with(
                good(),
                &["primary", "records"],
                Value::List(vec![s("2001:db8::1")])
            )),
            vec!["primary.records"]
        );
    }

    #[test]
    fn duplicate_set_identifiers_are_refused() {
        let c = with(
            with(good(), &["primary", "set_identifier"], s("x")),
            &["secondary", "set_identifier"],
            s("x"),
        );
        assert_eq!(errors(&c), vec!["secondary.set_identifier"]);
    }

    #[test]
    fn long_set_identifier_is_refused() {
        assert_eq!(
            errors(&with(
                good(),
                &["primary", "set_identifier"],
                s(&"x".repeat(129))
            )),
            vec!["primary.set_identifier"]
        );
    }

    #[test]
    fn bad_timeout_is_refused() {
        let c = with(
            good(),
            &["timeouts"],
            Value::object([("create", s("soon"))]),
        );
        assert_eq!(errors(&c), vec!["timeouts.create"]);
    }

    #[test]
    fn bad_health_check_id_zone_and_name() {
        let c = with(good(), &["primary", "health_check_id"], s("not an id"));
        assert_eq!(errors(&c), vec!["primary.health_check_id"]);
        assert_eq!(
            errors(&with(good(), &["zone_id"], s("Z 1"))),
            vec!["zone_id"]
        );
        assert_eq!(
            errors(&with(good(), &["name"], s("a..example.com"))),
            vec!["name"]
        );
    }

    #[test]
    fn cname_has_one_value() {
        let c = with(
            with(good(), &["type"], s("CNAME")),
            &["primary", "records"],
            Value::List(vec![s("a.example.net"), s("b.example.net")]),
        );
        assert_eq!(errors(&c), vec!["primary.records"]);
    }

    #[test]
    fn non_alias_primary_without_health_check_is_an_error_on_its_attribute() {
        assert_eq!(
            errors(&with(good(), &["primary", "health_check_id"], Value::Null)),
            vec!["primary.health_check_id"]
        );
        // A health check created in the same apply is unknown at plan: fine.
        assert!(errors(&with(
            good(),
            &["primary", "health_check_id"],
            Value::Unknown
        ))
        .is_empty());
    }

    #[test]
    fn alias_primary_without_health_check_only_warns_when_it_ignores_target_health() {
        let alias = |eth: bool| {
            Value::object([
                ("name", s("lb.example.com")),
                ("zone_id", s("Z2")),
                ("evaluate_target_health", Value::Bool(eth)),
            ])
        };
        let c = with(
            with(good(), &["primary", "health_check_id"], Value::Null),
            &["primary", "records"],
            Value::Null,
        );
        let mut d = Diagnostics::new();
        check_config(
            &with(c.clone(), &["primary", "alias"], alias(false)),
            &mut d,
        );
        assert_eq!(
            d.0.iter().map(|x| x.severity).collect::<Vec<_>>(),
            vec![Severity::Warning]
        );
        let mut d = Diagnostics::new();
        check_config(&with(c, &["primary", "alias"], alias(true)), &mut d);
        assert!(d.0.is_empty(), "{:?}", d.0);
    }

    #[test]
    fn unknowns_are_not_judged() {
        let c = with(
            with(good(), &["ttl"], Value::Null),
            &["primary", "records"],
            Value::Unknown,
        );
        let c = with(c, &["secondary"], Value::Unknown);
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    }

    /// Every name built from tricky labels (underscores, digits, hyphens,
    /// wildcards, mixed case, escapes, trailing dots) survives the trip
    /// through `record_id` and `parse_record_id` unchanged but for
    /// normalisation. A deterministic sweep, as proptest is not a
    /// dependency of this crate.
    #[test]
    fn import_ids_round_trip() {
        let labels = [
            "_sip",
            "_tcp",
            "API",
            "a-b",
            "x1",
            "0",
            "xn--bcher-kva",
            "_dmarc",
            "Www",
        ];
        let heads = ["", "*.", "\\052.", "_acme-challenge."];
        let tails = ["example.com", "Example.COM.", "a.b.c.example.org"];
        for (i, l1) in labels.iter().enumerate() {
            for l2 in labels.iter().skip(i) {
                for h in heads {
                    for t in tails {
                        for ty in TYPES {
                            let name = format!("{h}{l1}.{l2}.{t}");
                            let id = record_id("Z123", &name, ty);
                            let (z, n, parsed_ty) = parse_record_id(&id).unwrap();
                            assert_eq!(z, "Z123");
                            assert_eq!(n, names::normalize(&name), "{id}");
                            assert_eq!(&parsed_ty, ty);
                            assert_eq!(record_id(&z, &n, &parsed_ty), id, "stable");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn identity_is_normalised_and_gives_the_import_id() {
        let state = Value::object([
            ("zone_id", s("/hostedzone/Z1")),
            ("name", s("API.Example.com.")),
            ("type", s("A")),
        ]);
        let r = FailoverRecordResource;
        let ident = r.identity(&state).unwrap();
        assert_eq!(ident.get("zone_id"), &s("Z1"));
        assert_eq!(ident.get("name"), &s("api.example.com"));
        assert_eq!(
            r.import_id_from_identity(&ident).as_deref(),
            Some("Z1/api.example.com/A")
        );
        assert!(r.identity(&Value::Null).is_none());
    }

    #[test]
    fn state_after_a_write_is_the_plan() {
        let alias = Value::object([
            ("name", s("LB.example.com")),
            ("zone_id", s("/hostedzone/Z2")),
            ("evaluate_target_health", Value::Bool(true)),
        ]);
        let planned = Value::object([
            ("id", s("Z1/txt.example.com/TXT")),
            ("zone_id", s("Z1")),
            ("name", s("TXT.example.com.")),
            ("type", s("TXT")),
            ("ttl", Value::int(60)),
            ("allow_overwrite", Value::Bool(false)),
            ("timeouts", Value::Null),
            (
                "primary",
                Value::object([
                    ("set_identifier", s("a")),
                    ("records", Value::Null),
                    ("health_check_id", s("hc-1")),
                    ("alias", alias),
                ]),
            ),
            (
                "secondary",
                Value::object([
                    ("set_identifier", s("b")),
                    ("records", Value::List(vec![s("v=spf1 -all")])),
                    ("health_check_id", Value::Null),
                    ("alias", Value::Null),
                ]),
            ),
        ]);
        let model: FailoverRecord = planned.to_model_lossy().unwrap();
        let sets = model.desired_sets().unwrap();
        assert_eq!(sets[1].resource_records()[0].value(), "\"v=spf1 -all\"");
        assert_eq!(written_state(&sets, &planned, "x").unwrap(), planned);
    }

    #[test]
    fn import_ids_parse() {
        assert_eq!(
            parse_record_id("Z123/_sip._tcp.Example.com./SRV").unwrap(),
            ("Z123".into(), "_sip._tcp.example.com".into(), "SRV".into())
        );
        assert_eq!(
            parse_record_id("/hostedzone/Z1/\\052.example.com/A")
                .unwrap()
                .1,
            "*.example.com"
        );
        assert!(parse_record_id("Z123_api.example.com_A").is_err());
        assert!(parse_record_id("Z123/api.example.com/BOGUS").is_err());
        assert!(parse_record_id("Z123//A").is_err());
    }

    #[test]
    fn default_set_identifiers_are_unique_per_name_and_bounded() {
        assert_eq!(
            default_set_identifier("API.example.com.", Role::Primary),
            "api.example.com-primary"
        );
        assert_eq!(
            default_set_identifier(&"a".repeat(200), Role::Secondary).len(),
            128
        );
    }

    #[test]
    fn txt_values_are_quoted_split_and_compared_as_text() {
        assert_eq!(wire_value("TXT", "v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(wire_value("TXT", "say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(wire_value("TXT", "\"already\""), "\"already\"");
        assert_eq!(wire_value("A", "192.0.2.1"), "192.0.2.1");
        let long = "k".repeat(300);
        let wire = wire_value("TXT", &long);
        assert_eq!(
            wire,
            format!("\"{}\" \"{}\"", "k".repeat(255), "k".repeat(45))
        );
        assert_eq!(txt_text(&wire), long);
        assert_eq!(txt_text("\"say \\\"hi\\\"\""), "say \"hi\"");
        assert_eq!(
            same_records(
                &Value::List(vec![s("v=spf1 -all")]),
                &["\"v=spf1 -all\"".into()],
                "TXT"
            ),
            Value::List(vec![s("v=spf1 -all")])
        );
    }

    #[test]
    fn equivalent_record_values_keep_prior_spelling() {
        assert_eq!(
            same_records(
                &Value::List(vec![s("2001:DB8::1")]),
                &["2001:db8::1".into()],
                "AAAA"
            ),
            Value::List(vec![s("2001:DB8::1")])
        );
        assert_eq!(
            same_records(
                &Value::List(vec![s("a.example.net")]),
                &["a.example.net.".into()],
                "CNAME"
            ),
            Value::List(vec![s("a.example.net")])
        );
        assert_eq!(
            same_records(
                &Value::List(vec![s("192.0.2.1")]),
                &["192.0.2.9".into()],
                "A"
            ),
            Value::List(vec![s("192.0.2.9")])
        );
    }

    fn rrs(name: &str, id: &str, role: Role, ip: &str, ttl: i64) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .set_identifier(id)
            .failover(role.failover())
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn read_reports_drift_and_missing_halves() {
        let mut prior = good();
        prior = with(
            prior,
            &["primary", "set_identifier"],
            s("api.example.com-primary"),
        );
        prior = with(
            prior,
            &["secondary", "set_identifier"],
            s("api.example.com-secondary"),
        );
        let existing = vec![
            rrs(
                "api.example.com.",
                "api.example.com-primary",
                Role::Primary,
                "192.0.2.7",
                60,
            ),
            rrs(
                "api.example.com.",
                "api.example.com-secondary",
                Role::Secondary,
                "192.0.2.2",
                300,
            ),
        ];
        let v = pair_value(&existing, &prior).unwrap();
        assert_eq!(
            v.get("primary").get("records"),
            &Value::List(vec![s("192.0.2.7")])
        );
        assert_eq!(v.get("ttl"), &Value::int(300));
        let v = pair_value(&existing[1..], &prior).unwrap();
        assert!(v.get("primary").is_null());
        assert!(pair_value(&[], &prior).is_none());
    }

    #[test]
    fn import_state_finds_halves_by_role() {
        let prior = Value::object([
            ("zone_id", s("Z1")),
            ("name", s("api.example.com")),
            ("type", s("A")),
        ]);
        let existing = vec![
            rrs("api.example.com.", "blue", Role::Primary, "192.0.2.1", 60),
            rrs(
                "api.example.com.",
                "green",
                Role::Secondary,
                "192.0.2.2",
                60,
            ),
        ];
        let v = pair_value(&existing, &prior).unwrap();
        assert_eq!(v.get("primary").get("set_identifier"), &s("blue"));
        assert_eq!(v.get("secondary").get("set_identifier"), &s("green"));
        assert_eq!(v.get("id"), &s("Z1/api.example.com/A"));
    }
}
