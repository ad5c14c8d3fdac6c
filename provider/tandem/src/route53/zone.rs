//! `tandem_route53_zone`: a public hosted zone, and the data source of the
//! same name that looks one up by name or ID.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HostedZoneConfig, TagResourceType,
};
use tfplugin6::{
    Applied, ApplyError, Attribute, Block, Ctx, DataSource, Diagnostics, IdentitySchema, Plan,
    ReadResult, Resource, Schema, Type, Validator, Value,
};
use tracing::Instrument;

use crate::aws::partition::Partition;
use crate::aws::{ok_if_gone, Aws, Stoppable};

use super::error::Route53Error;
use super::find::{self, ZoneInfo};
use super::{names, wait};

/// How long to wait for a new zone's change to be INSYNC. Route 53 usually
/// needs under a minute; 15 minutes tolerates a slow control plane without
/// hanging an apply forever.
const ZONE_CHANGE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Comment given to zones whose configuration sets none, as
/// terraform-provider-aws does, so zones created by Terraform are recognisable.
const DEFAULT_COMMENT: &str = "Managed by Terraform";
/// Route 53's limit on a hosted zone comment, in characters.
const MAX_COMMENT: usize = 256;

/// Route 53 accepts at most 1000 changes per batch.
const MAX_CHANGES_PER_BATCH: usize = 1000;

/// Bound on delete rounds in `force_destroy`: each round lists and deletes
/// what is left; more rounds than this means something keeps adding records.
const MAX_EMPTY_ROUNDS: usize = 20;

/// The managed hosted zone type.
pub struct ZoneResource;

/// The hosted zone lookup.
pub struct ZoneDataSource;

fn zone_arn(partition: Partition, id: &str) -> String {
    partition.route53_arn(&format!("hostedzone/{id}"))
}

#[async_trait]
impl Resource<Aws> for ZoneResource {
    fn type_name(&self) -> &'static str {
        "tandem_route53_zone"
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema::strings(&[(
            "zone_id",
            "The hosted zone ID, e.g. `Z123EXAMPLE`.",
        )]))
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "A public Route 53 hosted zone. Names are compared without case and trailing dot, so `Example.com.` \
                 and `example.com` never show a diff. Import with the zone ID: `terraform import tandem_route53_zone.main Z123EXAMPLE`.",
            )
            .attr(Attribute::computed("id", Type::String, "The hosted zone ID, e.g. `Z123EXAMPLE` (no `/hostedzone/` prefix)."))
            .attr(Attribute::computed("zone_id", Type::String, "The hosted zone ID; the same as `id`, for symmetry with record resources."))
            .attr(
                Attribute::required(
                    "name",
                    Type::String,
                    "The domain name of the zone, e.g. `example.com`. Case and a trailing dot are ignored. Changing it replaces the zone.",
                )
                .validate(Validator::format(names::ZONE_NAME, names::valid_zone_name)),
            )
            .attr(
                Attribute::optional("comment", Type::String, "A comment for the zone. Default `Managed by Terraform`.")
                    .default(DEFAULT_COMMENT)
                    .validate(Validator::length(0, MAX_COMMENT)),
            )
            .attr(
                Attribute::optional(
                    "force_destroy",
                    Type::Bool,
                    "Delete every record set in the zone (except its own SOA and NS records) when the zone is destroyed. \
                     Without it, destroying a zone that still holds records fails. Default `false`.",
                )
                .default(false),
            )
            .attr(super::tags_attribute("hosted zone"))
            .attr(super::tags_all_attribute("hosted zone"))
            .attr(Attribute::computed(
                "name_servers",
                Type::list(Type::String),
                "The authoritative name servers of the zone, to delegate the domain to.",
            ))
            .attr(Attribute::computed("arn", Type::String, "The ARN of the hosted zone.")),
        )
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        super::keep_prior_spelling(plan, &["name"]);
        super::replace_if_changed(plan, &["name"], &["id", "zone_id", "name_servers", "arn"]);
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
        let name = planned.get("name").as_str().unwrap_or_default().to_string();
        let doing = format!("creating Route 53 hosted zone ({name})");
        let comment = planned
            .get("comment")
            .as_str()
            .unwrap_or(DEFAULT_COMMENT)
            .to_string();
        let span = tracing::debug_span!("route53.CreateHostedZone", name = %name);
        let out = client
            .create_hosted_zone()
            .name(names::fqdn(&name))
            .caller_reference(caller_reference(&name))
            .hosted_zone_config(HostedZoneConfig::builder().comment(comment).build())
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await
            .map_err(|e| Route53Error::aws(&doing, e))?;
        let Some(zone) = out.hosted_zone() else {
            return Err(Route53Error::Incomplete {
                doing,
                field: "HostedZone",
            }
            .into());
        };
        let id = names::zone_id(zone.id());
        let mut state = planned.clone();
        state.set("id", Value::string(&id));
        state.set("zone_id", Value::string(&id));
        // From here on the zone exists: every failure keeps it in state.
        let partial = |state: &Value, e: Route53Error| ApplyError {
            diagnostics: e.into(),
            partial: Some(fill_unknowns(state.clone())),
        };
        // Only poll when Route 53 has not already reported the change INSYNC.
        if let Some(change) = out
            .change_info()
            .filter(|c| *c.status() != aws_sdk_route53::types::ChangeStatus::Insync)
        {
            // A new zone's change is one of a kind, and can take minutes: it
            // neither uses nor teaches the estimate the record waits share.
            let own = wait::Propagation::default();
            if let Err(e) =
                wait::wait_change_insync(client, &own, cancel, change.id(), ZONE_CHANGE_TIMEOUT)
                    .await
            {
                return Err(partial(
                    &state,
                    Route53Error::retry(format!("waiting for Route 53 hosted zone ({id})"), e),
                ));
            }
        }
        let all_tags = crate::aws::tags::from_value(planned.get("tags_all"));
        if !all_tags.is_empty() {
            let none = std::collections::BTreeMap::new();
            let r = wait::retry_new_zone(cancel, || {
                wait::update_tags(
                    client,
                    cancel,
                    TagResourceType::Hostedzone,
                    &id,
                    &none,
                    &all_tags,
                )
            })
            .await;
            if let Err(e) = r {
                return Err(partial(
                    &state,
                    Route53Error::retry(format!("tagging Route 53 hosted zone ({id})"), e),
                ));
            }
        }
        match refresh(ctx, aws, &state).await {
            Ok(Some(s)) => Ok(s.into()),
            Ok(None) => Err(partial(
                &state,
                Route53Error::Lookup {
                    doing: format!("reading Route 53 hosted zone ({id})"),
                    reason: "the zone vanished right after creation".into(),
                },
            )),
            Err(e) => Err(partial(&state, e)),
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        Ok(refresh(ctx, aws, state).await?.into())
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
        let cancel = ctx.cancel_token();
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        if planned.get("comment") != prior.get("comment") {
            let span = tracing::debug_span!("route53.UpdateHostedZoneComment", zone_id = %id);
            client
                .update_hosted_zone_comment()
                .id(&id)
                .comment(planned.get("comment").as_str().unwrap_or_default())
                .send()
                .instrument(span)
                .stoppable(cancel)
                .await
                .map_err(|e| {
                    Route53Error::aws(
                        format!("updating comment of Route 53 hosted zone ({id})"),
                        e,
                    )
                })?;
        }
        let old = crate::aws::tags::from_value(prior.get("tags_all"));
        let new = crate::aws::tags::from_value(planned.get("tags_all"));
        wait::update_tags(client, cancel, TagResourceType::Hostedzone, &id, &old, &new)
            .await
            .map_err(|e| {
                Route53Error::aws(format!("updating tags of Route 53 hosted zone ({id})"), e)
            })?;
        let mut state = planned.clone();
        state.set("id", prior.get("id").clone());
        match refresh(ctx, aws, &state).await? {
            Some(s) => Ok(s.into()),
            None => Err(Route53Error::Lookup {
                doing: format!("updating Route 53 hosted zone ({id})"),
                reason: "the zone no longer exists".into(),
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
        let client = aws.route53();
        let cancel = ctx.cancel_token();
        let id = prior.get("id").as_str().unwrap_or_default().to_string();
        let doing = format!("deleting Route 53 hosted zone ({id})");
        if prior.get("force_destroy").as_bool() == Some(true) {
            let zone_name = prior.get("name").as_str().unwrap_or_default().to_string();
            empty_zone(client, cancel, &id, &zone_name).await?;
        }
        let span = tracing::debug_span!("route53.DeleteHostedZone", zone_id = %id);
        let res = client
            .delete_hosted_zone()
            .id(&id)
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await;
        ok_if_gone(res, |e| e.is(find::NO_ZONE)).map_err(|e| {
            if e.is(&["HostedZoneNotEmpty"]) {
                Route53Error::NotEmpty { doing }.into()
            } else {
                Route53Error::aws(doing, e).into()
            }
        })
    }

    async fn import(&self, _ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let zid = names::zone_id(id);
        if zid.is_empty() || zid.contains('/') || zid.contains('.') {
            return Err(Route53Error::ImportId {
                id: id.to_string(),
                reason: "expected a hosted zone ID such as `Z123EXAMPLE`".into(),
            }
            .into());
        }
        Ok(Value::object([
            ("id", Value::string(&zid)),
            ("zone_id", Value::string(&zid)),
            ("force_destroy", Value::Bool(false)),
        ]))
    }
}

/// A caller reference unique per request, as CreateHostedZone requires.
fn caller_reference(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut r = format!("tandem-{nanos}-{}", names::normalize(name));
    r.truncate(128);
    r
}

/// Unknown values left in a partial state become null: state must be known.
fn fill_unknowns(mut v: Value) -> Value {
    if let Value::Map(m) = &mut v {
        for x in m.values_mut() {
            if x.is_unknown() {
                *x = Value::Null;
            }
        }
    }
    v
}

/// The zone's current state, keeping the user's spelling of the name and
/// the arguments AWS does not store; `None` when the zone is gone.
async fn refresh(ctx: &Ctx<Aws>, aws: &Aws, state: &Value) -> Result<Option<Value>, Route53Error> {
    let client = aws.route53();
    let id = names::zone_id(state.get("id").as_str().unwrap_or_default());
    let cancel = ctx.cancel_token();
    let Some(zone) = find::find_hosted_zone(client, cancel, &id)
        .await
        .map_err(|e| Route53Error::aws(format!("reading Route 53 hosted zone ({id})"), e))?
    else {
        return Ok(None);
    };
    let actual = find::find_tags(client, cancel, TagResourceType::Hostedzone, &id)
        .await
        .map_err(|e| {
            Route53Error::aws(format!("reading tags of Route 53 hosted zone ({id})"), e)
        })?;
    let (tags, tags_all) = super::tags_state(ctx, state.get("tags"), &actual);
    Ok(Some(zone_value(
        aws.partition(),
        &zone,
        state,
        tags,
        tags_all,
    )))
}

fn zone_value(
    partition: Partition,
    zone: &ZoneInfo,
    prior: &Value,
    tags: Value,
    tags_all: Value,
) -> Value {
    let force_destroy = prior.get("force_destroy").as_bool().unwrap_or(false);
    Value::object([
        ("id", Value::string(&zone.id)),
        ("zone_id", Value::string(&zone.id)),
        (
            "name",
            Value::string(names::keep_spelling(prior.get("name").as_str(), &zone.name)),
        ),
        // An empty comment comes back absent; "" keeps `comment = ""` stable.
        (
            "comment",
            Value::string(zone.comment.clone().unwrap_or_default()),
        ),
        ("force_destroy", Value::Bool(force_destroy)),
        ("tags", tags),
        ("tags_all", tags_all),
        (
            "name_servers",
            Value::List(zone.name_servers.iter().map(Value::string).collect()),
        ),
        ("arn", Value::string(zone_arn(partition, &zone.id))),
    ])
}

/// Deletes every record set but the zone's own SOA and NS. A batch that
/// fails (moto deletes all records sharing a set identifier at once, which
/// makes later deletes in the batch fail) falls back to one-by-one deletes.
async fn empty_zone(
    client: &aws_sdk_route53::Client,
    cancel: &tokio_util::sync::CancellationToken,
    id: &str,
    zone_name: &str,
) -> Result<(), Route53Error> {
    let doing = format!("emptying Route 53 hosted zone ({id}) for force_destroy");
    for _ in 0..MAX_EMPTY_ROUNDS {
        let all = find::list_all_record_sets(client, cancel, id)
            .await
            .map_err(|e| Route53Error::aws(&doing, e))?;
        let apex = names::normalize(if zone_name.is_empty() {
            all.iter()
                .find(|r| r.r#type().as_str() == "SOA")
                .map(|r| r.name())
                .unwrap_or_default()
        } else {
            zone_name
        });
        let doomed: Vec<_> = all
            .into_iter()
            .filter(|r| {
                !(matches!(r.r#type().as_str(), "SOA" | "NS") && names::normalize(r.name()) == apex)
            })
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        for chunk in doomed.chunks(MAX_CHANGES_PER_BATCH) {
            let changes: Result<Vec<Change>, _> = chunk
                .iter()
                .map(|r| {
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(r.clone())
                        .build()
                })
                .collect();
            let changes = changes.map_err(|e| Route53Error::Request {
                doing: doing.clone(),
                message: e.to_string(),
            })?;
            let batch = ChangeBatch::builder()
                .set_changes(Some(changes.clone()))
                .build()
                .map_err(|e| Route53Error::Request {
                    doing: doing.clone(),
                    message: e.to_string(),
                })?;
            let span = tracing::debug_span!("route53.ChangeResourceRecordSets", zone_id = %id, changes = chunk.len());
            let r = client
                .change_resource_record_sets()
                .hosted_zone_id(id)
                .change_batch(batch)
                .send()
                .instrument(span)
                .stoppable(cancel)
                .await;
            if let Err(e) = r {
                if !e.is(&["InvalidChangeBatch", "InvalidInput"]) {
                    return Err(Route53Error::aws(&doing, e));
                }
                for c in changes {
                    let batch = ChangeBatch::builder().changes(c).build().map_err(|e| {
                        Route53Error::Request {
                            doing: doing.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    let span = tracing::debug_span!("route53.ChangeResourceRecordSets", zone_id = %id, changes = 1);
                    if let Err(e) = client
                        .change_resource_record_sets()
                        .hosted_zone_id(id)
                        .change_batch(batch)
                        .send()
                        .instrument(span)
                        .stoppable(cancel)
                        .await
                    {
                        // Already gone: exactly what we wanted.
                        if !e.is(&["InvalidChangeBatch", "InvalidInput"]) {
                            return Err(Route53Error::aws(&doing, e));
                        }
                    }
                }
            }
        }
    }
    Err(Route53Error::Lookup {
        doing,
        reason: format!("record sets remained after {MAX_EMPTY_ROUNDS} rounds of deletes"),
    })
}

#[async_trait]
impl DataSource<Aws> for ZoneDataSource {
    fn type_name(&self) -> &'static str {
        "tandem_route53_zone"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new("Looks up a public hosted zone by `name` or `zone_id` (exactly one).")
                .attr(Attribute::computed("id", Type::String, "The hosted zone ID."))
                .attr(
                    Attribute::optional_computed(
                        "zone_id",
                        Type::String,
                        "The hosted zone ID to look up.",
                    )
                    .validate(Validator::exactly_one_of(&["name"])),
                )
                .attr(Attribute::optional_computed(
                    "name",
                    Type::String,
                    "The zone's domain name to look up (case and trailing dot ignored). Fails when several zones \
                     share the name.",
                ))
                .attr(Attribute::computed("comment", Type::String, "The zone's comment."))
                .attr(Attribute::computed("name_servers", Type::list(Type::String), "The zone's name servers."))
                .attr(Attribute::computed("arn", Type::String, "The zone's ARN."))
                .attr(Attribute::computed("private_zone", Type::Bool, "Whether the zone is private."))
                .attr(Attribute::computed("resource_record_set_count", Type::Number, "Number of record sets in the zone."))
                .attr(Attribute::computed("tags", Type::map(Type::String), "The zone's tags.")),
        )
    }

    async fn read(&self, ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let aws = ctx.meta()?;
        let client = aws.route53();
        let cancel = ctx.cancel_token();
        let id = match (config.get("zone_id").as_str(), config.get("name").as_str()) {
            (Some(z), _) => names::zone_id(z),
            (None, Some(n)) => {
                let doing = format!("looking up Route 53 hosted zone named {n:?}");
                let ids = find::find_hosted_zones_by_name(client, cancel, n)
                    .await
                    .map_err(|e| Route53Error::aws(&doing, e))?;
                match ids.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Route53Error::Lookup {
                            doing,
                            reason: "no hosted zone has this name".into(),
                        }
                        .into())
                    }
                    many => {
                        return Err(Route53Error::Lookup {
                            doing,
                            reason: format!(
                                "{} hosted zones have this name ({}); set `zone_id` instead",
                                many.len(),
                                many.join(", ")
                            ),
                        }
                        .into())
                    }
                }
            }
            _ => {
                return Err(Route53Error::Lookup {
                    doing: "looking up a Route 53 hosted zone".into(),
                    reason: "neither `name` nor `zone_id` is set".into(),
                }
                .into())
            }
        };
        let doing = format!("reading Route 53 hosted zone ({id})");
        let zone = find::find_hosted_zone(client, cancel, &id)
            .await
            .map_err(|e| Route53Error::aws(&doing, e))?
            .ok_or_else(|| Route53Error::Lookup {
                doing: doing.clone(),
                reason: "no hosted zone has this ID".into(),
            })?;
        let tags = find::find_tags(client, cancel, TagResourceType::Hostedzone, &id)
            .await
            .map_err(|e| {
                Route53Error::aws(format!("reading tags of Route 53 hosted zone ({id})"), e)
            })?;
        Ok(Value::object([
            ("id", Value::string(&zone.id)),
            ("zone_id", Value::string(&zone.id)),
            (
                "name",
                Value::string(names::keep_spelling(
                    config.get("name").as_str(),
                    &zone.name,
                )),
            ),
            (
                "comment",
                Value::string(zone.comment.clone().unwrap_or_default()),
            ),
            (
                "name_servers",
                Value::List(zone.name_servers.iter().map(Value::string).collect()),
            ),
            ("arn", Value::string(zone_arn(aws.partition(), &zone.id))),
            ("private_zone", Value::Bool(zone.private)),
            ("resource_record_set_count", Value::int(zone.record_count)),
            (
                "tags",
                Value::Map(
                    tags.iter()
                        .map(|(k, v)| (k.clone(), Value::string(v)))
                        .collect(),
                ),
            ),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::partition::{AWS, AWS_CN};
    use crate::testing::{error_paths, validate_data_source, validate_resource};

    #[test]
    fn identity_round_trips_to_the_import_id() {
        let state = Value::object([
            ("id", Value::string("Z1")),
            ("zone_id", Value::string("Z1")),
        ]);
        let ident = ZoneResource.identity(&state).unwrap();
        assert_eq!(ident, Value::object([("zone_id", Value::string("Z1"))]));
        assert_eq!(
            ZoneResource.import_id_from_identity(&ident).as_deref(),
            Some("Z1")
        );
        assert!(ZoneResource
            .identity(&Value::object([("zone_id", Value::Unknown)]))
            .is_none());
    }

    #[test]
    fn zone_names_comments_and_tags_are_validated() {
        let errors = |c: Value| error_paths(&validate_resource(&ZoneResource, &c));
        assert_eq!(
            errors(Value::object([("name", Value::string("a..com"))])),
            vec!["name"]
        );
        assert_eq!(
            errors(Value::object([("name", Value::string("*.example.com"))])),
            vec!["name"]
        );
        assert_eq!(
            errors(Value::object([
                ("name", Value::string("ok.com")),
                ("comment", Value::string("c".repeat(257))),
                ("tags", Value::object([("aws:x", Value::string("1"))])),
            ])),
            vec!["comment", "tags[\"aws:x\"]"]
        );
    }

    #[test]
    fn data_source_needs_exactly_one_key() {
        let errors = |c: Value| error_paths(&validate_data_source(&ZoneDataSource, &c));
        assert_eq!(errors(Value::object::<_, &str>([])), vec!["zone_id"]);
        assert_eq!(
            errors(Value::object([
                ("name", Value::string("a.com")),
                ("zone_id", Value::string("Z1")),
            ])),
            vec!["zone_id"]
        );
        assert!(errors(Value::object([("name", Value::Unknown)])).is_empty());
    }

    #[test]
    fn state_keeps_user_spelling_and_force_destroy() {
        let zone = ZoneInfo {
            id: "Z1".into(),
            name: "example.com.".into(),
            comment: None,
            private: false,
            record_count: 2,
            name_servers: vec!["ns1".into()],
        };
        let prior = Value::object([
            ("name", Value::string("Example.com")),
            ("force_destroy", Value::Bool(true)),
        ]);
        let v = zone_value(AWS, &zone, &prior, Value::Null, Value::Null);
        assert_eq!(v.get("name"), &Value::string("Example.com"));
        assert_eq!(v.get("comment"), &Value::string(""));
        assert_eq!(v.get("force_destroy"), &Value::Bool(true));
        assert_eq!(
            v.get("arn"),
            &Value::string("arn:aws:route53:::hostedzone/Z1")
        );
        let v = zone_value(AWS_CN, &zone, &prior, Value::Null, Value::Null);
        assert_eq!(
            v.get("arn"),
            &Value::string("arn:aws-cn:route53:::hostedzone/Z1")
        );
    }

    #[test]
    fn import_ids_are_zone_ids() {
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let Ok(rt) = rt else { return };
        let ctx: Ctx<Aws> = Ctx::new(None, Default::default());
        let v = rt
            .block_on(ZoneResource.import(&ctx, "/hostedzone/Z9"))
            .unwrap();
        assert_eq!(v.get("id"), &Value::string("Z9"));
        assert!(rt
            .block_on(ZoneResource.import(&ctx, "example.com"))
            .is_err());
    }
}
