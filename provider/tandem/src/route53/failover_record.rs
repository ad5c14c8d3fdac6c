//! `tandem_route53_failover_record`: a PRIMARY and a SECONDARY record set
//! for one name and type, managed as one object. Every create, update and
//! delete writes both in a single ChangeResourceRecordSets batch, which
//! Route 53 applies atomically: there is never a moment with only one half.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use aws_sdk_route53::Client;
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostic, Diagnostics, Field,
    IdentitySchema, NestedBlock, Plan, ReadResult, Resource, Schema, Type, Validator, Value,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::retry::RetryError;
use crate::aws::{Aws, AwsError, Emulator, Stoppable};
use crate::model::{self, ModelError};

use super::error::Route53Error;
use super::{find, names, txt, wait};

const TYPE_NAME: &str = "tandem_route53_failover_record";

/// Default for each of the `timeouts`: Route 53 normally propagates a change
/// in about a minute, but documents no bound; 30 minutes matches
/// terraform-provider-aws and fails a truly stuck change eventually.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Record types a failover pair may have.
pub const TYPES: &[&str] = &[
    "A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "PTR", "SPF", "SRV", "SVCB", "TXT",
];

/// Route 53 limit on set identifiers, in characters.
const MAX_SET_IDENTIFIER: usize = 128;
/// Largest TTL Route 53 accepts (a signed 32-bit number of seconds).
const MAX_TTL: i64 = 2_147_483_647;
/// Route 53's limit on health check and hosted zone IDs.
const MAX_ID_LEN: usize = 64;

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

// ---------------------------------------------------------------- schema

fn zone_id(v: &str) -> Result<(), String> {
    let z = names::zone_id(v);
    if !z.is_empty() && z.len() <= MAX_ID_LEN && z.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("letters and digits only, as in Z123EXAMPLE".into())
    }
}

fn health_check_id(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.len() <= MAX_ID_LEN
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err("use the `id` of a tandem_route53_health_check".into())
    }
}

fn duration(v: &str) -> Result<(), String> {
    super::parse_duration(v)
        .map(|_| ())
        .ok_or_else(|| "use hours, minutes and seconds such as `30m`, `1h30m` or `90s`".into())
}

fn target_block(role: Role) -> Block {
    let what = match role {
        Role::Primary => {
            "The PRIMARY record set: answers while its health check (or alias target) is healthy."
        }
        Role::Secondary => "The SECONDARY record set: answers when the primary is unhealthy.",
    };
    Block::new(what)
        .attr(
            Attribute::optional_computed(
                "set_identifier",
                Type::String,
                &format!(
                    "Identifier distinguishing this record set from the other one of the same name and type. \
                     Default `<name>-{}`. Changing it is an in-place update (delete and create in one batch).",
                    role.block()
                ),
            )
            .validate(Validator::length(1, MAX_SET_IDENTIFIER)),
        )
        .attr(
            Attribute::optional(
                "records",
                Type::set(Type::String),
                "The record values, e.g. IP addresses for `A`; TXT and SPF values as plain text (quoted, escaped \
                 and split into strings of at most 255 bytes for Route 53). Needs `ttl`.",
            )
            .validate(Validator::size_at_least(1))
            .validate(Validator::exactly_one_of(&["alias"])),
        )
        .attr(
            Attribute::optional(
                "health_check_id",
                Type::String,
                "ID of the health check (e.g. `tandem_route53_health_check.x.id`) deciding whether this record set is \
                 healthy. Without it, the primary is always considered healthy unless its alias evaluates target health.",
            )
            .validate(Validator::format("a health check ID", health_check_id)),
        )
        .block(NestedBlock::single(
            "alias",
            Block::new("Answer with the records of an AWS resource (load balancer, CloudFront, S3 website, another record) instead of `records`.")
                .attr(Attribute::required("name", Type::String, "DNS name of the alias target, e.g. the load balancer's DNS name."))
                .attr(
                    Attribute::required("zone_id", Type::String, "Hosted zone ID of the alias target (the load balancer's canonical zone ID, for instance).")
                        .validate(Validator::format("a hosted zone ID", zone_id)),
                )
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

fn schema() -> Schema {
    let timeout = |op: &str| {
        Attribute::optional(
            op,
            Type::String,
            &format!("Timeout of a {op}. Default `30m`."),
        )
        .validate(Validator::format(
            "a duration such as `30m`, `1h` or `90s`",
            duration,
        ))
    };
    Schema::new(
        Block::new(
            "A failover pair: a PRIMARY and a SECONDARY record set for one name and type, created, changed and \
             deleted together in one atomic Route 53 change batch, then awaited until INSYNC. Changing set \
             identifiers, TTL or targets never leaves a half state. Import with `ZONEID/name/TYPE`, e.g. \
             `terraform import tandem_route53_failover_record.api Z123EXAMPLE/api.example.com/A`.",
        )
        .attr(Attribute::computed("id", Type::String, "`ZONEID/name/TYPE`, with the name normalised."))
        .attr(
            Attribute::required(
                "zone_id",
                Type::String,
                "ID of the hosted zone holding the records. Changing it replaces the pair.",
            )
            .validate(Validator::format("a hosted zone ID", zone_id)),
        )
        .attr(
            Attribute::required(
                "name",
                Type::String,
                "Fully qualified record name, e.g. `api.example.com`. Case, a trailing dot and the `\\052` escape of a \
                 leading `*` are ignored. Changing it replaces the pair.",
            )
            .validate(Validator::format(names::NAME, names::valid_name)),
        )
        .attr(
            Attribute::required(
                "type",
                Type::String,
                "Record type, uppercase. Changing it replaces the pair.",
            )
            .validate(Validator::one_of(TYPES)),
        )
        .attr(
            Attribute::optional(
                "ttl",
                Type::Number,
                "TTL in seconds of the record sets that use `records`. Required when either block uses `records`; \
                 not allowed when both use `alias`.",
            )
            .validate(Validator::between(0, MAX_TTL)),
        )
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
        .attr(
            Attribute::optional(
                "wait_for_insync",
                Type::Bool,
                "Wait until Route 53 reports the change INSYNC (served by all its name servers) before a create, \
                 update or delete finishes. Default `true`. With `false` the apply finishes once Route 53 has \
                 accepted the change, and `change_status` says `PENDING` until a later refresh sees it INSYNC. \
                 A wait asks Route 53 (GetChange) every 5 s, or sooner, down to every second, once the \
                 provider process has seen changes propagate faster than that; the waits share the \
                 provider's Route 53 request rate.",
            )
            .default(true),
        )
        .attr(Attribute::computed(
            "change_status",
            Type::String,
            "`INSYNC` once Route 53 has propagated the last change, `PENDING` while it has not: the wait was \
             skipped (`wait_for_insync = false`), timed out or was interrupted. The change's ID is kept in private \
             state; while `PENDING` with `wait_for_insync = true`, the next apply resumes the wait instead of \
             writing the records again.",
        ))
        .block(NestedBlock::single("primary", target_block(Role::Primary)))
        .block(NestedBlock::single("secondary", target_block(Role::Secondary)))
        .block(NestedBlock::single(
            "timeouts",
            Block::new("How long to wait for the change to be INSYNC, as `30m`, `1h` or `90s`.")
                .attr(timeout("create"))
                .attr(timeout("update"))
                .attr(timeout("delete")),
        )),
    )
}

// ---------------------------------------------------------------- model

/// The resource's configuration, plan and state.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct FailoverRecord {
    id: Field<String>,
    zone_id: Field<String>,
    name: Field<String>,
    r#type: Field<String>,
    ttl: Field<i64>,
    allow_overwrite: Field<bool>,
    wait_for_insync: Field<bool>,
    change_status: Field<String>,
    primary: Field<Target>,
    secondary: Field<Target>,
    timeouts: Field<Timeouts>,
}

/// One half of the pair.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Target {
    set_identifier: Field<String>,
    records: Field<Vec<String>>,
    health_check_id: Field<String>,
    alias: Field<Alias>,
}

/// An alias target.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Alias {
    name: Field<String>,
    zone_id: Field<String>,
    evaluate_target_health: Field<bool>,
}

/// The `timeouts` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Timeouts {
    create: Field<String>,
    update: Field<String>,
    delete: Field<String>,
}

/// The resource identity: what `import { identity = ... }` gives.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    zone_id: String,
    name: String,
    r#type: String,
}

/// `change_status` once Route 53 propagated the change.
const INSYNC: &str = "INSYNC";
/// `change_status` while it has not.
const PENDING: &str = "PENDING";

/// Private state: the change not yet seen INSYNC, so a later apply waits
/// for it instead of writing again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
struct Private {
    change_id: String,
}

impl Private {
    fn encode(change: Option<&str>) -> Vec<u8> {
        change
            .map(|c| {
                serde_json::to_vec(&Private {
                    change_id: c.to_string(),
                })
                .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// The pending change's ID; none for empty or foreign private state.
    fn decode(bytes: &[u8]) -> Option<String> {
        serde_json::from_slice::<Private>(bytes)
            .ok()
            .map(|p| p.change_id)
    }
}

/// Where a change this process sent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChangeSync {
    /// Propagated (or nothing was sent).
    Insync,
    /// Not yet propagated: the ID to wait for later.
    Pending(String),
}

/// Which operation a timeout bounds.
#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    Update,
    Delete,
}

fn known_str(f: &Field<String>) -> Option<&str> {
    f.known().map(String::as_str)
}

impl FailoverRecord {
    fn read(v: &Value, what: &'static str) -> Result<FailoverRecord, ModelError> {
        model::read(v, &schema(), TYPE_NAME, what)
    }

    /// A prior state or plan that may be null (create, destroy).
    fn read_opt(v: &Value, what: &'static str) -> Result<Option<FailoverRecord>, ModelError> {
        Ok(
            model::read::<Field<FailoverRecord>>(v, &schema(), TYPE_NAME, what)?
                .known()
                .cloned(),
        )
    }

    fn write(&self) -> Result<Value, ModelError> {
        model::write(self, &schema(), TYPE_NAME)
    }

    /// `v`, read as `read`, with this model's changes written in.
    fn apply_to(&self, v: &Value, read: &FailoverRecord) -> Result<Value, ModelError> {
        model::apply_changes(v, read, self, &schema(), TYPE_NAME)
    }

    fn key(&self) -> Key {
        Key {
            zone: names::zone_id(known_str(&self.zone_id).unwrap_or_default()),
            name: names::normalize(known_str(&self.name).unwrap_or_default()),
            ty: known_str(&self.r#type).unwrap_or_default().to_string(),
        }
    }

    fn target(&self, role: Role) -> &Field<Target> {
        match role {
            Role::Primary => &self.primary,
            Role::Secondary => &self.secondary,
        }
    }

    fn target_mut(&mut self, role: Role) -> &mut Field<Target> {
        match role {
            Role::Primary => &mut self.primary,
            Role::Secondary => &mut self.secondary,
        }
    }

    /// Whether a write waits for INSYNC (`wait_for_insync`, default true).
    fn waits(&self) -> bool {
        self.wait_for_insync.known() != Some(&false)
    }

    /// The wait bound of an operation, from `timeouts` or the default.
    fn timeout(&self, op: Op) -> Duration {
        let t = self.timeouts.known();
        let s = t.and_then(|t| match op {
            Op::Create => known_str(&t.create),
            Op::Update => known_str(&t.update),
            Op::Delete => known_str(&t.delete),
        });
        s.and_then(super::parse_duration).unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The record sets this model asks for: both halves, or in state the
    /// halves it still has.
    fn desired_sets(&self) -> Result<Vec<ResourceRecordSet>, String> {
        let key = self.key();
        let mut out = Vec::new();
        for role in ROLES {
            // A half missing from state (deleted outside Terraform) has
            // nothing to write or delete; configurations always have both.
            let Some(t) = self.target(role).known().cloned() else {
                continue;
            };
            let mut b = ResourceRecordSet::builder()
                .name(names::fqdn(&key.name))
                .r#type(RrType::from(key.ty.as_str()))
                .failover(role.failover())
                .set_identifier(
                    t.set_identifier
                        .known()
                        .cloned()
                        .unwrap_or_else(|| default_set_identifier(&key.name, role)),
                )
                .set_health_check_id(t.health_check_id.known().cloned());
            match t.alias.known() {
                None => {
                    b = b.set_ttl(self.ttl.known().copied());
                    for v in t.records.known().into_iter().flatten() {
                        b = b.resource_records(
                            ResourceRecord::builder()
                                .value(wire_value(&key.ty, v))
                                .build()
                                .map_err(|e| e.to_string())?,
                        );
                    }
                }
                Some(a) => {
                    b = b.alias_target(
                        AliasTarget::builder()
                            .dns_name(names::fqdn(known_str(&a.name).unwrap_or_default()))
                            .hosted_zone_id(names::zone_id(
                                known_str(&a.zone_id).unwrap_or_default(),
                            ))
                            .evaluate_target_health(
                                a.evaluate_target_health.known().copied().unwrap_or(false),
                            )
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

/// A request that could not be built from the plan, as the error of `doing`.
fn request_error(doing: &str) -> impl Fn(String) -> Route53Error + '_ {
    move |message| Route53Error::Request {
        doing: doing.to_string(),
        message,
    }
}

// ---------------------------------------------------------------- resource

#[async_trait]
impl Resource<Aws> for FailoverRecordResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
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
        let m = FailoverRecord::read(state, "state").ok()?;
        let identity = Identity {
            zone_id: names::zone_id(m.zone_id.known()?),
            name: names::normalize(m.name.known()?),
            r#type: m.r#type.known()?.clone(),
        };
        Value::from_model(&identity, &self.identity_schema()?.value_type()).ok()
    }

    fn import_id_from_identity(&self, identity: &Value) -> Option<String> {
        let i: Identity = identity.to_model().ok()?;
        Some(record_id(&i.zone_id, &i.name, &i.r#type))
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        match FailoverRecord::read(config, "configuration") {
            Ok(m) => check_config(&m, diags),
            Err(e) => diags.extend(e.into()),
        }
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        super::keep_prior_spelling(plan, &["name"]);
        for role in ROLES {
            super::keep_prior_spelling(plan, &[role.block(), "alias", "name"]);
        }
        let config = FailoverRecord::read(&plan.config, "configuration")?;
        let prior = FailoverRecord::read_opt(&plan.prior, "prior state")?;
        let read = FailoverRecord::read(&plan.planned, "plan")?;
        let mut planned = read.clone();
        if let Some(prior) = &prior {
            keep_equivalent_spelling(prior, &config, &mut planned);
        }
        plan.planned = planned.apply_to(&plan.planned, &read)?;
        super::replace_if_changed(plan, &["zone_id", "name", "type"], &["id", "change_status"]);
        let replacing = !plan.requires_replace.is_empty();
        let read = FailoverRecord::read(&plan.planned, "plan")?;
        let mut planned = read.clone();
        for role in ROLES {
            plan_set_identifier(&config, prior.as_ref(), &mut planned, role, replacing);
        }
        if let (Some(z), Some(n), Some(t)) = (
            planned.zone_id.known(),
            planned.name.known(),
            planned.r#type.known(),
        ) {
            planned.id = Field::Known(record_id(z, n, t));
        }
        if let Some(prior) = &prior {
            let writes = records_differ(prior, &planned);
            let resumes =
                prior.change_status.known().map(String::as_str) == Some(PENDING) && planned.waits();
            if writes || resumes {
                planned.change_status = Field::Unknown;
            }
        }
        plan.planned = planned.apply_to(&plan.planned, &read)?;
        if prior.is_none() && config.allow_overwrite.known() == Some(&true) {
            warn_if_adopting(ctx, &planned).await;
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
        let model = FailoverRecord::read(planned, "plan")?;
        let key = model.key();
        let doing = format!("creating Route 53 failover record set ({key})");
        let overwrite = model.allow_overwrite.known() == Some(&true);
        let news = model.desired_sets().map_err(request_error(&doing))?;
        let mut deletes = Vec::new();
        // Without allow_overwrite nothing is listed first: Route 53 refuses
        // a CREATE where a record set of this name and type has the same
        // set identifier or failover role, atomically, and write_pair then
        // names what holds the names. moto accepts a second PRIMARY or
        // SECONDARY, so with the moto emulator named the create lists first.
        let moto = aws.emulator() == Some(Emulator::Moto);
        if overwrite || moto {
            let existing = existing_sets(client, ctx.cancel_token(), &key)
                .await
                .map_err(|e| Route53Error::retry(&doing, e))?;
            if !overwrite && !existing.is_empty() {
                return Err(Route53Error::AlreadyExists {
                    doing,
                    existing: describe(&existing),
                }
                .into());
            }
            // Adopt: whatever else holds this name and type goes in the same batch.
            let ours: Vec<Option<&str>> = news.iter().map(|s| s.set_identifier()).collect();
            deletes.extend(
                existing
                    .iter()
                    .filter(|o| !ours.contains(&o.set_identifier()))
                    .cloned(),
            );
        }
        let batch = Batch {
            key,
            deletes,
            writes: news,
            action: if overwrite {
                ChangeAction::Upsert
            } else {
                ChangeAction::Create
            },
            timeout: model.timeout(Op::Create),
        };
        let sync = write_pair(aws, ctx, &batch, &doing, model.waits()).await?;
        Ok(written_state(&batch.writes, &model, &sync, &doing)?)
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let prior = FailoverRecord::read(state, "state")?;
        let Some(mut found) = refresh(aws, ctx.cancel_token(), &prior).await? else {
            return Ok(ReadResult::Gone);
        };
        let sync = match Private::decode(private) {
            Some(id) => {
                let key = prior.key();
                change_sync(aws.route53(), ctx.cancel_token(), &id)
                    .await
                    .map_err(|e| {
                        Route53Error::aws(
                            format!("reading Route 53 change {id} of failover record set ({key})"),
                            e,
                        )
                    })?
            }
            None => ChangeSync::Insync,
        };
        found.change_status = Field::Known(status(&sync).into());
        Ok(ReadResult::Found(Applied {
            state: found.write()?,
            private: Private::encode(pending(&sync)),
        }))
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
        let old = FailoverRecord::read(prior, "prior state")?;
        let model = FailoverRecord::read(planned, "plan")?;
        let key = model.key();
        let doing = format!("updating Route 53 failover record set ({key})");
        if !records_differ(&old, &model) {
            // Only arguments Route 53 does not hold changed, or a wait left
            // PENDING resumes: nothing to send.
            let sync = match Private::decode(private) {
                Some(id) if model.waits() => {
                    wait_insync(aws, ctx, &id, model.timeout(Op::Update), &doing).await?
                }
                Some(id) => ChangeSync::Pending(id),
                None => ChangeSync::Insync,
            };
            let mut m = model.clone();
            m.change_status = Field::Known(status(&sync).into());
            return Ok(Applied {
                state: m.write()?,
                private: Private::encode(pending(&sync)),
            });
        }
        let existing =
            find::find_record_sets(client, ctx.cancel_token(), &key.zone, &key.name, &key.ty)
                .await
                .map_err(|e| Route53Error::aws(&doing, e))?
                .unwrap_or_default();
        let news = model.desired_sets().map_err(request_error(&doing))?;
        let new_ids: Vec<Option<&str>> = news.iter().map(|s| s.set_identifier()).collect();
        let prior_ids: Vec<&str> = ROLES
            .iter()
            .filter_map(|r| old.target(*r).known())
            .filter_map(|t| known_str(&t.set_identifier))
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
        let batch = Batch {
            key,
            deletes,
            writes: news,
            action: ChangeAction::Create,
            timeout: model.timeout(Op::Update),
        };
        let sync = write_pair(aws, ctx, &batch, &doing, model.waits()).await?;
        Ok(written_state(&batch.writes, &model, &sync, &doing)?)
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let old = FailoverRecord::read(prior, "prior state")?;
        let key = old.key();
        let doing = format!("deleting Route 53 failover record set ({key})");
        // Exactly what state says, with no listing first: Route 53 refuses
        // the whole batch if any half differs from it, and only then is
        // the zone listed, to delete what this resource owns there now.
        let deletes = old.desired_sets().map_err(request_error(&doing))?;
        let batch = Batch {
            key,
            deletes,
            writes: Vec::new(),
            action: ChangeAction::Create,
            timeout: old.timeout(Op::Delete),
        };
        let waits = old.waits();
        match write_pair(aws, ctx, &batch, &doing, waits).await {
            Ok(_) => return Ok(()),
            Err(Route53Error::Retry {
                source: RetryError::Aws(e),
                ..
            }) if e.is(find::NO_ZONE) => return Ok(()),
            Err(Route53Error::Retry {
                source: RetryError::Aws(e),
                ..
            }) if e.is(&["InvalidChangeBatch"]) => {
                tracing::debug!(error = %e, "the records differ from state; listing them");
            }
            Err(e) => return Err(e.into()),
        }
        let key = &batch.key;
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
            .filter_map(|r| owned(&existing, old.target(*r), *r))
            .cloned()
            .collect();
        if deletes.is_empty() {
            return Ok(());
        }
        write_pair(aws, ctx, &Batch { deletes, ..batch }, &doing, waits).await?;
        Ok(())
    }

    async fn import(&self, _ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (zone, name, ty) = parse_record_id(id)?;
        let m = FailoverRecord {
            id: Field::Known(record_id(&zone, &name, &ty)),
            zone_id: Field::Known(zone),
            name: Field::Known(name),
            r#type: Field::Known(ty),
            allow_overwrite: Field::Known(false),
            wait_for_insync: Field::Known(true),
            ..FailoverRecord::default()
        };
        Ok(m.write()?)
    }
}

// ---------------------------------------------------------------- writing

/// Zone, name and type: what identifies the pair.
#[derive(Debug, Clone)]
struct Key {
    zone: String,
    name: String,
    ty: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.zone, self.name, self.ty)
    }
}

/// One atomic change of the pair: DELETE `deletes`, then `action` (CREATE
/// or UPSERT) each of `writes`, then wait up to `timeout` for INSYNC.
#[derive(Debug, Clone)]
struct Batch {
    key: Key,
    deletes: Vec<ResourceRecordSet>,
    writes: Vec<ResourceRecordSet>,
    action: ChangeAction,
    timeout: Duration,
}

impl Batch {
    /// The changes to send; a refused CREATE may be sent again as `action`.
    fn changes(&self, action: &ChangeAction, doing: &str) -> Result<Vec<Change>, Route53Error> {
        let mut out = Vec::new();
        for d in &self.deletes {
            out.push(change(ChangeAction::Delete, d.clone(), doing)?);
        }
        for w in &self.writes {
            out.push(change(action.clone(), w.clone(), doing)?);
        }
        Ok(out)
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

/// Writes one atomic batch and waits for INSYNC.
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
async fn write_pair(
    aws: &Aws,
    ctx: &Ctx<Aws>,
    batch: &Batch,
    doing: &str,
    wait: bool,
) -> Result<ChangeSync, Route53Error> {
    let cancel = ctx.cancel_token();
    let written = send_pair(aws, cancel, batch, doing).await;
    let snapshots = aws.route53_snapshots();
    match &written {
        Ok(_) => snapshots.record_change(&batch.key.zone, &batch.deletes, &batch.writes),
        // Whether anything changed is unknown: the next read lists again.
        Err(_) => snapshots.forget_zone(&batch.key.zone),
    }
    match written? {
        Some((id, false)) if wait => wait_insync(aws, ctx, &id, batch.timeout, doing).await,
        Some((id, false)) => Ok(ChangeSync::Pending(id)),
        _ => Ok(ChangeSync::Insync),
    }
}

/// Waits up to `timeout` for change `id`. A wait that times out or that
/// Terraform interrupts leaves the change pending, with a warning: the
/// records are written, so the state keeps them (a failed create would be
/// tainted and written again), and the next apply resumes the wait.
async fn wait_insync(
    aws: &Aws,
    ctx: &Ctx<Aws>,
    id: &str,
    timeout: Duration,
    doing: &str,
) -> Result<ChangeSync, Route53Error> {
    let propagation = aws.route53_propagation();
    match wait::wait_change_insync(aws.route53(), propagation, ctx.cancel_token(), id, timeout)
        .await
    {
        Ok(()) => Ok(ChangeSync::Insync),
        Err(e @ (RetryError::Timeout { .. } | RetryError::Cancelled)) => {
            ctx.warn(Diagnostic::warning(
                "Route 53 change not yet INSYNC",
                format!(
                    "{doing}: Route 53 accepted change {id} but it is not INSYNC yet ({e}). The records are written \
                     and `change_status` is PENDING; the next apply waits for this change instead of writing \
                     the records again."
                ),
            ));
            Ok(ChangeSync::Pending(id.to_string()))
        }
        Err(e) => Err(Route53Error::retry(
            format!("{doing}: waiting for INSYNC"),
            e,
        )),
    }
}

/// Where change `id` stands now (one GetChange). A change Route 53 no
/// longer knows is long since INSYNC (it keeps them for a while only).
async fn change_sync(
    client: &Client,
    cancel: &CancellationToken,
    id: &str,
) -> Result<ChangeSync, AwsError> {
    let span = tracing::debug_span!("route53.GetChange", change_id = %id);
    match client
        .get_change()
        .id(id.trim_start_matches("/change/"))
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await
    {
        Ok(out) => Ok(match out.change_info().map(|c| c.status()) {
            Some(ChangeStatus::Insync) => ChangeSync::Insync,
            _ => ChangeSync::Pending(id.to_string()),
        }),
        Err(e) if e.is(&["NoSuchChange"]) => Ok(ChangeSync::Insync),
        Err(e) => Err(e),
    }
}

/// `change_status` for `sync`.
fn status(sync: &ChangeSync) -> &'static str {
    match sync {
        ChangeSync::Insync => INSYNC,
        ChangeSync::Pending(_) => PENDING,
    }
}

/// The change ID to keep in private state, if any.
fn pending(sync: &ChangeSync) -> Option<&str> {
    match sync {
        ChangeSync::Insync => None,
        ChangeSync::Pending(id) => Some(id),
    }
}

/// Whether going from `old` to `new` changes the record sets themselves.
fn records_differ(old: &FailoverRecord, new: &FailoverRecord) -> bool {
    old.ttl != new.ttl || old.primary != new.primary || old.secondary != new.secondary
}

/// Sends the batch; returns the change ID and whether it is INSYNC already.
async fn send_pair(
    aws: &Aws,
    cancel: &CancellationToken,
    batch: &Batch,
    doing: &str,
) -> Result<Option<(String, bool)>, Route53Error> {
    let client = aws.route53();
    let key = &batch.key;
    let first = send_batch(client, cancel, batch, batch.changes(&batch.action, doing)?).await;
    let info = match first {
        Ok(info) => info,
        Err(RetryError::Aws(e))
            if batch.action == ChangeAction::Create
                && !batch.writes.is_empty()
                && e.is(&["InvalidChangeBatch"]) =>
        {
            let now = find::find_record_sets(client, cancel, &key.zone, &key.name, &key.ty)
                .await
                .map_err(|e| Route53Error::aws(doing, e))?
                .unwrap_or_default();
            let deleting: Vec<Option<&str>> =
                batch.deletes.iter().map(|d| d.set_identifier()).collect();
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
            // An UPSERT replaces in place: what it writes need not be deleted first.
            let written: Vec<Option<&str>> =
                batch.writes.iter().map(|w| w.set_identifier()).collect();
            let again = Batch {
                deletes: batch
                    .deletes
                    .iter()
                    .filter(|d| !written.contains(&d.set_identifier()))
                    .cloned()
                    .collect(),
                ..batch.clone()
            };
            send_batch(
                client,
                cancel,
                batch,
                again.changes(&ChangeAction::Upsert, doing)?,
            )
            .await
            .map_err(|e| Route53Error::retry(doing, e))?
        }
        Err(e) => return Err(Route53Error::retry(doing, e)),
    };
    Ok(info)
}

/// Sends one ChangeResourceRecordSets call with `changes` (those of
/// `batch`, or its UPSERT replay); returns the change ID and whether it is
/// already INSYNC. A batch that writes retries NoSuchHostedZone for a while,
/// as its zone may have been created moments ago in the same apply; a
/// delete-only batch does not: its zone being gone means done.
async fn send_batch(
    client: &Client,
    cancel: &CancellationToken,
    batch: &Batch,
    changes: Vec<Change>,
) -> Result<Option<(String, bool)>, RetryError> {
    let key = &batch.key;
    let n = changes.len();
    let change_batch = ChangeBatch::builder()
        .comment(format!("{TYPE_NAME} {key}"))
        .set_changes(Some(changes))
        .build()
        .map_err(|e| AwsError::local(format!("invalid change batch: {e}")))?;
    let span = tracing::info_span!("route53.ChangeResourceRecordSets", zone_id = %key.zone, name = %key.name, r#type = %key.ty, changes = n);
    let send = || {
        client
            .change_resource_record_sets()
            .hosted_zone_id(&key.zone)
            .change_batch(change_batch.clone())
            .send()
            .instrument(span.clone())
            .stoppable(cancel)
    };
    let out = if batch.writes.is_empty() {
        send().await?
    } else {
        wait::retry_new_zone(cancel, send).await?
    };
    Ok(out.change_info().map(|i| {
        (
            i.id().to_string(),
            *i.status() == aws_sdk_route53::types::ChangeStatus::Insync,
        )
    }))
}

// ---------------------------------------------------------------- reading

/// The record set this resource owns for `role`: by the set identifier in
/// state, or, when state does not know it (just imported), by failover role.
fn owned<'a>(
    existing: &'a [ResourceRecordSet],
    target: &Field<Target>,
    role: Role,
) -> Option<&'a ResourceRecordSet> {
    match target.known().and_then(|t| known_str(&t.set_identifier)) {
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
    planned: &FailoverRecord,
    sync: &ChangeSync,
    doing: &str,
) -> Result<Applied, Diagnostics> {
    let mut m = pair_model(written, planned).ok_or_else(|| Route53Error::Request {
        doing: doing.to_string(),
        message: "the change batch held neither half of the pair".into(),
    })?;
    m.change_status = Field::Known(status(sync).into());
    Ok(Applied {
        state: m.write()?,
        private: Private::encode(pending(sync)),
    })
}

/// The current state of the pair, from the run's snapshot of its zone;
/// `None` when both halves (or the zone) are gone.
async fn refresh(
    aws: &Aws,
    cancel: &CancellationToken,
    prior: &FailoverRecord,
) -> Result<Option<FailoverRecord>, Diagnostics> {
    let key = prior.key();
    let Some(existing) = aws
        .route53_snapshots()
        .record_sets(aws.route53(), cancel, &key.zone, &key.name, &key.ty)
        .await
        .map_err(|e| {
            Route53Error::aws(format!("reading Route 53 failover record set ({key})"), e)
        })?
    else {
        return Ok(None);
    };
    Ok(pair_model(&existing, prior))
}

/// The state from the record sets found; a half that is missing or has
/// lost its failover role becomes null, which the next plan shows.
fn pair_model(existing: &[ResourceRecordSet], prior: &FailoverRecord) -> Option<FailoverRecord> {
    let found: Vec<Option<&ResourceRecordSet>> = ROLES
        .iter()
        .map(|r| {
            owned(existing, prior.target(*r), *r).filter(|s| s.failover() == Some(&r.failover()))
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
    let prior_ttl = prior.ttl.known().copied();
    let ttl = ttls
        .iter()
        .copied()
        .find(|t| Some(*t) != prior_ttl)
        .or(ttls.first().copied());
    let key = prior.key();
    let mut m = FailoverRecord {
        id: Field::Known(record_id(&key.zone, &key.name, &key.ty)),
        ttl: ttl.into(),
        allow_overwrite: match prior.allow_overwrite {
            Field::Known(b) => Field::Known(b),
            _ => Field::Known(false),
        },
        wait_for_insync: match prior.wait_for_insync {
            Field::Known(b) => Field::Known(b),
            _ => Field::Known(true),
        },
        ..prior.clone()
    };
    for (role, set) in ROLES.iter().zip(found) {
        *m.target_mut(*role) = match (set, prior.target(*role).known()) {
            (Some(s), p) => Field::Known(target_model(s, p)),
            (None, _) => Field::Null,
        };
    }
    Some(m)
}

fn target_model(s: &ResourceRecordSet, prior: Option<&Target>) -> Target {
    let prior_alias = prior.and_then(|p| p.alias.known());
    let alias = s.alias_target().map(|a| Alias {
        name: Field::Known(names::keep_spelling(
            prior_alias.and_then(|p| known_str(&p.name)),
            a.dns_name(),
        )),
        zone_id: Field::Known(
            match prior_alias.and_then(|p| known_str(&p.zone_id)) {
                Some(z) if names::zone_id(z) == names::zone_id(a.hosted_zone_id()) => z,
                _ => a.hosted_zone_id(),
            }
            .to_string(),
        ),
        evaluate_target_health: Field::Known(a.evaluate_target_health()),
    });
    let records = if alias.is_some() {
        Field::Null
    } else {
        let actual: Vec<String> = s
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect();
        Field::Known(same_records(
            prior.and_then(|p| p.records.known()),
            &actual,
            s.r#type().as_str(),
        ))
    };
    Target {
        set_identifier: s.set_identifier().map(str::to_string).into(),
        records,
        health_check_id: s.health_check_id().map(str::to_string).into(),
        alias: alias.into(),
    }
}

/// A record value in canonical form: IP addresses parsed, names without
/// case or trailing dot, TXT as its text, so `2001:DB8::1` and
/// `2001:db8::1` are one value.
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
        "TXT" | "SPF" => txt::decode(v),
        // Digests are hexadecimal: case is not part of the value.
        "DS" => v
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase(),
        "HTTPS" | "SVCB" => {
            let mut parts: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if let Some(target) = parts.get_mut(1) {
                if target != "." {
                    *target = names::normalize(target);
                }
            }
            parts.join(" ")
        }
        _ => v.trim().to_string(),
    }
}

/// A record value as Route 53 wants it: TXT and SPF as quoted strings of
/// at most 255 bytes; other types as written.
fn wire_value(ty: &str, v: &str) -> String {
    if matches!(ty, "TXT" | "SPF") {
        txt::encode(v)
    } else {
        v.to_string()
    }
}

/// The prior list when it holds the same values as `actual` up to
/// normalisation; else `actual`.
fn same_records(prior: Option<&Vec<String>>, actual: &[String], ty: &str) -> Vec<String> {
    let canonical = |l: &[String]| {
        let mut v: Vec<String> = l.iter().map(|x| normalize_value(ty, x)).collect();
        v.sort();
        v
    };
    match prior {
        Some(p) if canonical(p) == canonical(actual) => p.clone(),
        _ => actual.to_vec(),
    }
}

// ---------------------------------------------------------------- planning

/// Plans the prior spelling of a zone ID and of records that equal the
/// configured ones up to normalisation (`/hostedzone/Z1` and `Z1`, a
/// trailing dot on a CNAME target): Terraform accepts a planned value equal
/// to the prior state as "functionally equal".
fn keep_equivalent_spelling(
    prior: &FailoverRecord,
    config: &FailoverRecord,
    planned: &mut FailoverRecord,
) {
    if let (Some(p), Some(c)) = (known_str(&prior.zone_id), known_str(&config.zone_id)) {
        if p != c && names::zone_id(p) == names::zone_id(c) {
            planned.zone_id = Field::Known(p.to_string());
        }
    }
    let ty = known_str(&config.r#type).unwrap_or_default().to_string();
    for role in ROLES {
        let prior_records = prior.target(role).known().and_then(|t| t.records.known());
        let config_records = config.target(role).known().and_then(|t| t.records.known());
        let (Some(p), Some(c)) = (prior_records, config_records) else {
            continue;
        };
        if p != c && same_records(Some(p), c, &ty) == *p {
            if let Field::Known(t) = planned.target_mut(role) {
                t.records = Field::Known(p.clone());
            }
        }
    }
}

/// Plans `set_identifier` when the configuration leaves it out: the prior
/// value (e.g. adopted by import) unless the pair is being replaced, else
/// the derived default.
fn plan_set_identifier(
    config: &FailoverRecord,
    prior: Option<&FailoverRecord>,
    planned: &mut FailoverRecord,
    role: Role,
    replacing: bool,
) {
    let configured = config
        .target(role)
        .known()
        .is_some_and(|t| !t.set_identifier.is_null());
    let name = planned.name.known().cloned();
    let prior_id = prior
        .and_then(|p| p.target(role).known())
        .and_then(|t| t.set_identifier.known().cloned());
    let Field::Known(target) = planned.target_mut(role) else {
        return;
    };
    if configured {
        return;
    }
    target.set_identifier = match (prior_id, name) {
        (Some(p), _) if !replacing => Field::Known(p),
        (_, Some(n)) => Field::Known(default_set_identifier(&n, role)),
        (_, None) => Field::Unknown,
    };
}

/// With `allow_overwrite`, tells at plan time that existing records will be
/// adopted. Best effort: a failed lookup only loses the warning.
async fn warn_if_adopting(ctx: &Ctx<Aws>, planned: &FailoverRecord) {
    let Some(aws) = ctx.meta_opt() else { return };
    if !(planned.zone_id.is_known() && planned.name.is_known() && planned.r#type.is_known()) {
        return;
    }
    let key = planned.key();
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

// ---------------------------------------------------------------- validation

/// What is wrong with one record value of type `ty`, if anything.
fn value_problem(ty: &str, v: &str) -> Option<String> {
    let fields: Vec<&str> = v.split_whitespace().collect();
    let number = |s: &str, max: u32| s.parse::<u32>().is_ok_and(|n| n <= max);
    match ty {
        "A" if v.parse::<Ipv4Addr>().is_err() => Some(format!("{v:?} is not an IPv4 address.")),
        "AAAA" if v.parse::<Ipv6Addr>().is_err() => Some(format!("{v:?} is not an IPv6 address.")),
        // RFC 4034 §5.3: key tag, algorithm, digest type, digest in hex.
        "DS" => {
            let ok = matches!(fields.as_slice(), [tag, alg, digest_type, digest]
                if number(tag, 65_535) && number(alg, 255) && number(digest_type, 255)
                    && digest.len() % 2 == 0 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
            (!ok).then(|| format!(
                "{v:?} is not a DS value: `KEYTAG ALGORITHM DIGESTTYPE DIGEST`, e.g. `12345 13 2 1F2E...` (digest in hexadecimal)."
            ))
        }
        // RFC 9460 §2.1: priority, target name (`.` for the owner), parameters.
        "HTTPS" | "SVCB" => {
            let ok = matches!(fields.as_slice(), [priority, target, ..]
                if number(priority, 65_535) && (*target == "." || names::check(target).is_none()));
            (!ok).then(|| {
                format!(
                "{v:?} is not an {ty} value: `PRIORITY TARGET [PARAMS]`, e.g. `1 . alpn=\"h2,h3\"`."
            )
            })
        }
        _ => None,
    }
}

/// The rules that span attributes or depend on `type` (the schema's
/// validators have checked each value on its own), each at its attribute.
/// Unknown values are not judged.
fn check_config(c: &FailoverRecord, d: &mut Diagnostics) {
    let ty = known_str(&c.r#type).filter(|t| TYPES.contains(t));
    let mut uses_records = false;
    let mut all_known = true;
    let mut ids: Vec<String> = Vec::new();
    for role in ROLES {
        let path = || AttrPath::root(role.block());
        let t = match c.target(role) {
            Field::Unknown => {
                all_known = false;
                continue;
            }
            Field::Null => {
                d.error_at(
                    path(),
                    format!("Missing {} block", role.block()),
                    format!(
                        "A failover pair needs both a `primary` and a `secondary` block; `{}` is missing.",
                        role.block()
                    ),
                );
                continue;
            }
            Field::Known(t) => t,
        };
        // Which target a half answers with decides whether `ttl` is needed;
        // unknown (a dynamic block not yet known, say) is judged later.
        if t.records.is_unknown() || t.alias.is_unknown() {
            all_known = false;
        }
        if !t.records.is_null() {
            uses_records = true;
        }
        if let Some(list) = t.records.known() {
            if ty == Some("CNAME") && list.len() > 1 {
                d.error_at(
                    path().attr("records"),
                    "Several CNAME values",
                    "A CNAME record set has exactly one value.",
                );
            }
            for problem in list
                .iter()
                .filter_map(|v| value_problem(ty.unwrap_or(""), v))
            {
                d.error_at(path().attr("records"), "Invalid record value", problem);
            }
        }
        match &t.set_identifier {
            Field::Known(sid) => ids.push(sid.clone()),
            Field::Null => {
                if let Some(n) = known_str(&c.name) {
                    ids.push(default_set_identifier(n, role));
                }
            }
            Field::Unknown => {}
        }
        if role == Role::Primary && t.health_check_id.is_null() {
            let undecided = t.records.is_unknown() || t.alias.is_unknown();
            match t.alias.known() {
                // Route 53 refuses this at apply ("A non-alias primary
                // ResourceRecordSet must have an associated health check").
                None if !undecided => d.error_at(
                    path().attr("health_check_id"),
                    "Primary without a health check",
                    "Route 53 refuses a non-alias PRIMARY record set without a health check: it could never tell \
                     when to fail over to the secondary. Set `health_check_id` (e.g. a tandem_route53_health_check's \
                     `id`), or answer with an `alias` that evaluates its target's health.",
                ),
                Some(a) if a.evaluate_target_health.known() == Some(&false) => d.warn_at(
                    path().attr("health_check_id"),
                    "Primary without a health check",
                    "With neither `health_check_id` nor `alias.evaluate_target_health`, Route 53 always considers the \
                     primary healthy, so traffic never fails over to the secondary.",
                ),
                _ => {}
            }
        }
    }
    if let [a, b] = ids.as_slice() {
        if a == b {
            d.error_at(
                AttrPath::root("secondary").attr("set_identifier"),
                "Duplicate set_identifier",
                format!("Both halves use the set identifier {a:?}; they must differ."),
            );
        }
    }
    if all_known && !c.ttl.is_unknown() {
        if uses_records && c.ttl.is_null() {
            d.error_at(
                AttrPath::root("ttl"),
                "Missing ttl",
                "Record sets with `records` need a `ttl`.",
            );
        }
        let only_aliases = ROLES.iter().all(|r| {
            c.target(*r)
                .known()
                .is_some_and(|t| t.alias.is_known() && t.records.is_null())
        });
        if only_aliases && c.ttl.is_known() {
            d.error_at(
                AttrPath::root("ttl"),
                "ttl with alias targets",
                "Alias record sets take their TTL from the target; remove `ttl`.",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{error_paths, validate_resource};
    use tfplugin6::Severity;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    fn strings(xs: &[&str]) -> Value {
        Value::List(xs.iter().map(|x| s(x)).collect())
    }

    fn target(records: &[&str], hc: Option<&str>) -> Value {
        Value::object([
            ("records", strings(records)),
            ("health_check_id", hc.map(s).unwrap_or(Value::Null)),
            ("set_identifier", Value::Null),
            ("alias", Value::Null),
        ])
    }

    fn alias(evaluate: bool) -> Value {
        Value::object([
            ("name", s("lb.example.com")),
            ("zone_id", s("Z2")),
            ("evaluate_target_health", Value::Bool(evaluate)),
        ])
    }

    /// A configuration of the schema's type: every attribute null but those given.
    fn cfg(pairs: &[(&str, Value)]) -> Value {
        let mut v = Value::from_json(&serde_json::json!({}), &schema().value_type()).unwrap();
        for (k, x) in pairs {
            v.set(k, x.clone());
        }
        v
    }

    fn good() -> Value {
        cfg(&[
            ("zone_id", s("Z123")),
            ("name", s("api.example.com")),
            ("type", s("A")),
            ("ttl", Value::int(60)),
            ("primary", target(&["192.0.2.1"], Some("abc-123"))),
            ("secondary", target(&["192.0.2.2"], None)),
        ])
    }

    fn errors(c: &Value) -> Vec<String> {
        error_paths(&validate_resource(&FailoverRecordResource, c))
    }

    fn with(mut c: Value, path: &[&str], v: Value) -> Value {
        super::super::set_path(&mut c, path, v);
        c
    }

    #[test]
    fn the_model_has_exactly_the_schema_attributes() {
        let m = FailoverRecord::read(&good(), "configuration").unwrap();
        assert_eq!(m.write().unwrap(), good());
        let timeouts = Value::object([
            ("create", s("5m")),
            ("update", Value::Null),
            ("delete", Value::Null),
        ]);
        let c = with(
            with(good(), &["primary", "alias"], alias(true)),
            &["timeouts"],
            timeouts,
        );
        let m = FailoverRecord::read(&c, "configuration").unwrap();
        assert_eq!(m.write().unwrap(), c);
        assert_eq!(m.timeout(Op::Create), Duration::from_secs(300));
        assert_eq!(m.timeout(Op::Delete), DEFAULT_TIMEOUT);
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
        assert_eq!(
            errors(&with(good(), &["primary", "alias"], alias(true))),
            vec!["primary.records"]
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
        assert_eq!(
            errors(&with(good(), &["secondary", "records"], strings(&[]))),
            vec!["secondary.records"]
        );
    }

    #[test]
    fn ttl_needed_with_records() {
        assert_eq!(errors(&with(good(), &["ttl"], Value::Null)), vec!["ttl"]);
    }

    #[test]
    fn ttl_refused_with_only_aliases() {
        let c = with(
            with(good(), &["primary", "records"], Value::Null),
            &["primary", "alias"],
            alias(true),
        );
        let c = with(
            with(c, &["secondary", "records"], Value::Null),
            &["secondary", "alias"],
            alias(true),
        );
        assert_eq!(errors(&c), vec!["ttl"]);
    }

    #[test]
    fn negative_ttl_is_refused() {
        assert_eq!(errors(&with(good(), &["ttl"], Value::int(-1))), vec!["ttl"]);
    }

    #[test]
    fn lowercase_type_is_refused_with_a_hint() {
        let d = validate_resource(&FailoverRecordResource, &with(good(), &["type"], s("a")));
        assert_eq!(error_paths(&d), vec!["type"]);
        assert!(
            d.0[0].detail.contains("Did you mean \"A\"?"),
            "{}",
            d.0[0].detail
        );
    }

    #[test]
    fn a_records_must_be_ipv4() {
        assert_eq!(
            errors(&with(
                good(),
                &["primary", "records"],
                strings(&["2001:db8::1"])
            )),
            vec!["primary.records"]
        );
    }

    #[test]
    fn https_svcb_and_ds_values_are_checked() {
        let of = |ty: &str, v: &str| {
            errors(&with(
                with(good(), &["type"], s(ty)),
                &["primary", "records"],
                strings(&[v]),
            ))
        };
        let good_ones = [
            ("HTTPS", "1 . alpn=\"h2,h3\""),
            ("HTTPS", "0 lb.example.net."),
            ("SVCB", "16 svc.example.net. port=8443"),
            (
                "DS",
                "12345 13 2 1F2E3D4C5B6A79880123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
            ),
        ];
        for (ty, v) in good_ones {
            // The secondary still holds an A value; only the primary is judged here.
            assert!(
                !of(ty, v).contains(&"primary.records".to_string()),
                "{ty} {v}: {:?}",
                of(ty, v)
            );
        }
        for (ty, v) in [
            ("HTTPS", "high . alpn=h2"),
            ("SVCB", "1"),
            ("DS", "12345 13 2 XYZ"),
            ("DS", "12345 13 2"),
            ("DS", "70000 13 2 1F2E"),
        ] {
            assert!(
                of(ty, v).contains(&"primary.records".to_string()),
                "{ty} {v}"
            );
        }
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
            Value::object([
                ("create", s("soon")),
                ("update", Value::Null),
                ("delete", Value::Null),
            ]),
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
            strings(&["a.example.net", "b.example.net"]),
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
        let c = with(
            with(good(), &["primary", "health_check_id"], Value::Null),
            &["primary", "records"],
            Value::Null,
        );
        let d = validate_resource(
            &FailoverRecordResource,
            &with(c.clone(), &["primary", "alias"], alias(false)),
        );
        assert_eq!(
            d.0.iter().map(|x| x.severity).collect::<Vec<_>>(),
            vec![Severity::Warning]
        );
        let d = validate_resource(
            &FailoverRecordResource,
            &with(c, &["primary", "alias"], alias(true)),
        );
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
        let state = cfg(&[
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
        let planned = cfg(&[
            ("id", s("Z1/txt.example.com/TXT")),
            ("zone_id", s("Z1")),
            ("name", s("TXT.example.com.")),
            ("type", s("TXT")),
            ("ttl", Value::int(60)),
            ("allow_overwrite", Value::Bool(false)),
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
                    ("records", strings(&["v=spf1 -all"])),
                    ("health_check_id", Value::Null),
                    ("alias", Value::Null),
                ]),
            ),
        ]);
        let model = FailoverRecord::read(&planned, "plan").unwrap();
        let sets = model.desired_sets().unwrap();
        assert_eq!(sets[1].resource_records()[0].value(), "\"v=spf1 -all\"");
        let mut expected = planned.clone();
        expected.set("change_status", s(INSYNC));
        // Unset in this plan; a real plan has the default.
        expected.set("wait_for_insync", Value::Bool(true));
        let done = written_state(&sets, &model, &ChangeSync::Insync, "x").unwrap();
        assert_eq!(done.state, expected);
        assert!(done.private.is_empty(), "nothing left to wait for");
        let left = written_state(&sets, &model, &ChangeSync::Pending("C1".into()), "x").unwrap();
        assert_eq!(left.state.get("change_status"), &s(PENDING));
        assert_eq!(Private::decode(&left.private).as_deref(), Some("C1"));
    }

    #[test]
    fn a_pending_change_is_resumed_only_when_waiting() {
        let prior = FailoverRecord {
            change_status: Field::Known(PENDING.into()),
            ..FailoverRecord::read(&good(), "configuration").unwrap()
        };
        let mut planned = prior.clone();
        assert!(!records_differ(&prior, &planned));
        assert!(planned.waits(), "waiting is the default");
        planned.wait_for_insync = Field::Known(false);
        assert!(!planned.waits());
        planned.ttl = Field::Known(300);
        assert!(records_differ(&prior, &planned));
        assert_eq!(Private::decode(b""), None);
        assert_eq!(Private::decode(b"{\"health_check_version\":1}"), None);
    }

    #[test]
    fn partly_unknown_records_are_planned_exactly_as_configured() {
        let records = Value::List(vec![s("192.0.2.1"), Value::Unknown]);
        let config = with(good(), &["primary", "records"], records.clone());
        let mut plan = Plan {
            prior: Value::Null,
            config: config.clone(),
            planned: config,
            requires_replace: vec![],
            private: vec![],
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx: Ctx<Aws> = Ctx::new(None, Default::default());
        rt.block_on(FailoverRecordResource.modify_plan(&ctx, &mut plan))
            .unwrap();
        assert_eq!(plan.planned.get("primary").get("records"), &records);
        assert_eq!(
            plan.planned.get("primary").get("set_identifier"),
            &s("api.example.com-primary")
        );
        assert_eq!(plan.planned.get("id"), &s("Z123/api.example.com/A"));
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
        assert_eq!(
            parse_record_id("Z1/_443._tcp.example.com/https").unwrap().2,
            "HTTPS"
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
    fn txt_values_go_out_split_by_bytes_and_compare_as_text() {
        assert_eq!(wire_value("TXT", "v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(wire_value("A", "192.0.2.1"), "192.0.2.1");
        let text = "é".repeat(200);
        let wire = wire_value("TXT", &text);
        assert!(wire.contains("\" \""), "split in two strings: {wire}");
        let written = vec![text.clone()];
        assert_eq!(same_records(Some(&written), &[wire], "TXT"), written);
    }

    #[test]
    fn equivalent_record_values_keep_prior_spelling() {
        let keep = |prior: &str, actual: &str, ty: &str| {
            same_records(Some(&vec![prior.to_string()]), &[actual.to_string()], ty)
        };
        assert_eq!(
            keep("2001:DB8::1", "2001:db8::1", "AAAA"),
            vec!["2001:DB8::1"]
        );
        assert_eq!(
            keep("a.example.net", "a.example.net.", "CNAME"),
            vec!["a.example.net"]
        );
        assert_eq!(keep("192.0.2.1", "192.0.2.9", "A"), vec!["192.0.2.9"]);
        assert_eq!(
            keep(
                "1 lb.example.net alpn=h2",
                "1 lb.example.net. alpn=h2",
                "HTTPS"
            ),
            vec!["1 lb.example.net alpn=h2"]
        );
        assert_eq!(
            keep("1 13 2 ABCD", "1 13 2 abcd", "DS"),
            vec!["1 13 2 ABCD"]
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
        let prior = with(
            with(
                good(),
                &["primary", "set_identifier"],
                s("api.example.com-primary"),
            ),
            &["secondary", "set_identifier"],
            s("api.example.com-secondary"),
        );
        let prior = FailoverRecord::read(&prior, "state").unwrap();
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
        let m = pair_model(&existing, &prior).unwrap();
        assert_eq!(
            m.primary.known().unwrap().records,
            Field::Known(vec!["192.0.2.7".to_string()])
        );
        assert_eq!(m.ttl, Field::Known(300));
        let m = pair_model(&existing[1..], &prior).unwrap();
        assert!(m.primary.is_null());
        assert!(pair_model(&[], &prior).is_none());
    }

    #[test]
    fn import_state_finds_halves_by_role() {
        let prior = cfg(&[
            ("zone_id", s("Z1")),
            ("name", s("api.example.com")),
            ("type", s("A")),
        ]);
        let prior = FailoverRecord::read(&prior, "state").unwrap();
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
        let m = pair_model(&existing, &prior).unwrap();
        let sid = |t: &Field<Target>| t.known().unwrap().set_identifier.clone();
        assert_eq!(sid(&m.primary), Field::Known("blue".into()));
        assert_eq!(sid(&m.secondary), Field::Known("green".into()));
        assert_eq!(m.id, Field::Known("Z1/api.example.com/A".into()));
    }

    #[test]
    fn a_batch_deletes_before_it_writes() {
        let key = Key {
            zone: "Z1".into(),
            name: "api.example.com".into(),
            ty: "A".into(),
        };
        let batch = Batch {
            key,
            deletes: vec![rrs(
                "api.example.com.",
                "old",
                Role::Primary,
                "192.0.2.1",
                60,
            )],
            writes: vec![rrs(
                "api.example.com.",
                "new",
                Role::Primary,
                "192.0.2.2",
                60,
            )],
            action: ChangeAction::Create,
            timeout: DEFAULT_TIMEOUT,
        };
        let actions: Vec<ChangeAction> = batch
            .changes(&ChangeAction::Upsert, "x")
            .unwrap()
            .iter()
            .map(|c| c.action().clone())
            .collect();
        assert_eq!(actions, vec![ChangeAction::Delete, ChangeAction::Upsert]);
    }
}
