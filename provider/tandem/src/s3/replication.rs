//! `tandem_s3_bucket_replication`: replication rules of a source bucket,
//! always written as explicit V2 rules (Filter, Priority,
//! DeleteMarkerReplication), checked against the foot-guns users hit with
//! terraform-provider-aws: duplicate priorities, RTC without metrics,
//! delete-marker replication with a tag filter, SSE-KMS objects without a
//! replica key, replication before versioning, and perpetual diffs from
//! what S3 returns. Every bucket, source or destination, is reached in its
//! own region.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    AccessControlTranslation, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    EncryptionConfiguration, ExistingObjectReplication, ExistingObjectReplicationStatus, Metrics,
    MetricsStatus, OwnerOverride, ReplicaModifications, ReplicaModificationsStatus,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleAndOperator, ReplicationRuleFilter,
    ReplicationRuleStatus, ReplicationTime, ReplicationTimeStatus, ReplicationTimeValue,
    SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus, StorageClass,
    Tag,
};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostic, Diagnostics, Field,
    NestedBlock, Plan, ReadResult, Resource, Schema, Severity, Type, Validator, Value,
};

use super::{
    home, home_for_create, home_region_attribute, import_target, plan_home_region,
    valid_bucket_name, S3Error, BUCKET_NAME,
};
use crate::aws::partition::{
    bucket_from_arn, valid_bucket_arn, valid_role_arn, BUCKET_ARN, ROLE_ARN,
};
use crate::aws::retry::{retry_while, wait_for, RetryError, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::s3_region::{find_bucket_home, find_bucket_region};
use crate::aws::s3_versioning::versioning_status;
use crate::aws::tags::Tags;
use crate::aws::{ok_if_gone, send, Aws, AwsError};
use crate::model::{self, ModelError};

const TYPE_NAME: &str = "tandem_s3_bucket_replication";

/// The resource.
pub struct ReplicationResource;

/// Storage classes a replica may be written in.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

/// The one owner override S3 knows: replicas owned by the destination account.
const OWNER_DESTINATION: &str = "Destination";

/// How long create/update wait for a source or destination bucket's
/// versioning to become Enabled: long enough for a sibling module instance
/// or region applied in parallel, short enough that a forgotten versioning
/// resource fails the run promptly with a message naming the bucket.
const VERSIONING_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Polling interval for that wait.
const VERSIONING_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// S3 Replication Time Control's only threshold, in minutes.
const RTC_MINUTES: i32 = 15;
/// S3's limit on rule IDs, in characters.
const MAX_RULE_ID: usize = 255;
/// S3's limits on object tag keys and values, in characters.
const MAX_TAG_KEY: usize = 128;

fn account_id(v: &str) -> Result<(), String> {
    if v.len() == 12 && v.bytes().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err("an AWS account ID has 12 digits".into())
    }
}

/// A KMS key ARN or alias ARN, as S3 wants for `ReplicaKmsKeyID`.
fn kms_key_arn(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", p, "kms", region, account, resource]
            if !p.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && (resource.starts_with("key/") || resource.starts_with("alias/")) =>
        {
            Ok(())
        }
        _ => Err("expected arn:PARTITION:kms:REGION:ACCOUNT:key/ID or :alias/NAME".into()),
    }
}

fn schema() -> Schema {
    let b = |n: &str, d: &str| Attribute::optional(n, Type::Bool, d).default(false);
    Schema::new(
        Block::new(
            "Replication of a source bucket to one or more destinations, written as explicit V2 rules. Create and \
             update first check that the source and every destination have versioning Enabled. For two-way \
             replication declare one of these on each bucket, each pointing at the other, with \
             `replica_modifications` on both. Import with `bucket` or `bucket@region`.",
        )
        .attr(
            Attribute::required("bucket", Type::String, "Source bucket. Changing it replaces the resource.")
                .force_new()
                .validate(Validator::format(BUCKET_NAME, valid_bucket_name)),
        )
        .attr(home_region_attribute())
        .attr(
            Attribute::required("role", Type::String, "ARN of the IAM role S3 assumes to replicate objects.")
                .validate(Validator::format(ROLE_ARN, valid_role_arn)),
        )
        .attr(Attribute::computed("id", Type::String, "The source bucket name."))
        .block(
            NestedBlock::list(
                "rule",
                Block::new("A replication rule.")
                    .attr(
                        Attribute::required("id", Type::String, "Rule ID, unique within the configuration.")
                            .validate(Validator::length(1, MAX_RULE_ID)),
                    )
                    .attr(
                        Attribute::required(
                            "priority",
                            Type::Number,
                            "Rule priority; unique within the configuration (checked at plan time). Higher wins when rules overlap.",
                        )
                        .validate(Validator::between(0, i64::from(i32::MAX))),
                    )
                    .attr(
                        Attribute::optional("status", Type::String, "Whether the rule applies. Default `Enabled`.")
                            .default("Enabled")
                            .validate(Validator::one_of(&["Enabled", "Disabled"])),
                    )
                    .attr(b(
                        "delete_marker_replication",
                        "Replicate delete markers. S3 refuses it in a rule whose filter has tags. Default `false`.",
                    ))
                    .attr(b("existing_object_replication", "Also replicate objects that existed before the rule. Default `false`."))
                    .attr(b(
                        "replica_modifications",
                        "Also replicate metadata changes made to replicas (tags, ACLs, Object Lock settings), which \
                         two-way replication needs so that changes made on either side reach the other. Default `false`.",
                    ))
                    .attr(b(
                        "sse_kms_encrypted_objects",
                        "Also replicate objects encrypted with SSE-KMS; needs `destination.replica_kms_key_id`. Default `false`.",
                    ))
                    .block(NestedBlock::single(
                        "filter",
                        Block::new("Which objects the rule applies to; all objects when absent.")
                            .attr(Attribute::optional("prefix", Type::String, "Key prefix objects must have."))
                            .attr(
                                Attribute::optional("tags", Type::map(Type::String), "Tags objects must all have.")
                                    .validate(Validator::keys(Validator::length(1, MAX_TAG_KEY))),
                            ),
                    ))
                    .block(NestedBlock::single(
                        "destination",
                        Block::new("Where objects are replicated to (required).")
                            .attr(
                                Attribute::required("bucket", Type::String, "ARN of the destination bucket.")
                                    .validate(Validator::format(BUCKET_ARN, valid_bucket_arn)),
                            )
                            .attr(Attribute::optional_computed(
                                "region",
                                Type::String,
                                "Region of the destination bucket, used to check its versioning and to warn when it equals the source region. When unset it is looked up (HeadBucket's `x-amz-bucket-region`, which S3 also sends for another account's bucket, else GetBucketLocation), which also fills it in after an import.",
                            ))
                            .attr(
                                Attribute::optional("storage_class", Type::String, "Storage class of replicas. Default: the source object's.")
                                    .validate(Validator::one_of(STORAGE_CLASSES)),
                            )
                            .attr(
                                Attribute::optional("account", Type::String, "Destination account ID, for cross-account replication. With it, a destination whose versioning cannot be read (AccessDenied, as another account's bucket usually is) only gives a warning saying what could not be verified; S3 still checks when the configuration is written.")
                                    .validate(Validator::format("a 12-digit account ID", account_id)),
                            )
                            .attr(
                                Attribute::optional(
                                    "replica_kms_key_id",
                                    Type::String,
                                    "ARN of the KMS key (in the destination's region) S3 encrypts replicas of SSE-KMS objects with. Required by `sse_kms_encrypted_objects`.",
                                )
                                .validate(Validator::format("a KMS key or alias ARN", kms_key_arn)),
                            )
                            .attr(b("replication_time", "S3 Replication Time Control (15-minute SLA). Requires `metrics`. Default `false`."))
                            .attr(b("metrics", "Replication metrics and events. Default `false`."))
                            .block(
                                NestedBlock::single(
                                    "access_control_translation",
                                    Block::new("Make the destination account the owner of replicas (owner override), for cross-account replication.")
                                        .attr(
                                            Attribute::required("owner", Type::String, "Who owns replicas.")
                                                .validate(Validator::one_of(&[OWNER_DESTINATION])),
                                        ),
                                )
                                .validate(Validator::also_requires(&["account"])),
                            ),
                    )),
            )
            .min(1),
        ),
    )
}

// ---------------------------------------------------------------- model

/// The resource's configuration, plan and state.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ReplicationModel {
    bucket: Field<String>,
    region: Field<String>,
    role: Field<String>,
    id: Field<String>,
    rule: Field<Vec<Rule>>,
}

/// One `rule` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    id: Field<String>,
    priority: Field<i64>,
    status: Field<String>,
    delete_marker_replication: Field<bool>,
    existing_object_replication: Field<bool>,
    replica_modifications: Field<bool>,
    sse_kms_encrypted_objects: Field<bool>,
    filter: Field<Filter>,
    destination: Field<Dest>,
}

/// A rule's `filter` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    prefix: Field<String>,
    tags: Field<Tags>,
}

/// A rule's `destination` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Dest {
    bucket: Field<String>,
    region: Field<String>,
    storage_class: Field<String>,
    account: Field<String>,
    replica_kms_key_id: Field<String>,
    replication_time: Field<bool>,
    metrics: Field<bool>,
    access_control_translation: Field<Translation>,
}

/// The `access_control_translation` block.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Translation {
    owner: Field<String>,
}

fn on(f: &Field<bool>) -> bool {
    f.known() == Some(&true)
}

fn text(f: &Field<String>) -> Option<&str> {
    f.known().map(String::as_str)
}

impl ReplicationModel {
    fn read(v: &Value, what: &'static str) -> Result<ReplicationModel, ModelError> {
        model::read(v, &schema(), TYPE_NAME, what)
    }

    fn write(&self) -> Result<Value, ModelError> {
        model::write(self, &schema(), TYPE_NAME)
    }

    fn rules(&self) -> &[Rule] {
        self.rule.known().map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Rule {
    fn has_tag_filter(&self) -> bool {
        self.filter
            .known()
            .and_then(|f| f.tags.known())
            .is_some_and(|t| !t.is_empty())
    }
}

// ---------------------------------------------------------------- validation

/// The rules that span attributes or rules (the schema's validators have
/// checked each value on its own), each at its attribute; warnings too.
/// `default_region` stands for an unset source `region` once the provider
/// is configured. Unknown values are not judged.
fn check(c: &ReplicationModel, default_region: Option<&str>, diags: &mut Diagnostics) {
    let source_region = text(&c.region).or(default_region);
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut priorities: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, r) in c.rules().iter().enumerate() {
        let p = AttrPath::root("rule").index(i);
        if let Some(id) = text(&r.id) {
            if let Some(first) = ids.insert(id, i) {
                diags.error_at(
                    p.clone().attr("id"),
                    "Duplicate rule ID",
                    format!("{id:?} is also the ID of rule[{first}]."),
                );
            }
        }
        if let Some(pr) = r.priority.known() {
            if let Some(first) = priorities.insert(*pr, i) {
                diags.error_at(
                    p.clone().attr("priority"),
                    "Duplicate rule priority",
                    format!("Priority {pr} is also used by rule[{first}]; S3 needs a unique priority per rule to decide between overlapping rules."),
                );
            }
        }
        if on(&r.delete_marker_replication) && r.has_tag_filter() {
            diags.error_at(
                p.clone().attr("delete_marker_replication"),
                "Delete marker replication with a tag filter",
                "S3 refuses delete marker replication in a rule that filters on tags (delete markers carry no tags). \
                 Set `delete_marker_replication = false`, or filter by `prefix` only.",
            );
        }
        let dp = p.clone().attr("destination");
        let d = match &r.destination {
            Field::Known(d) => d,
            Field::Unknown => continue,
            Field::Null => {
                diags.error_at(
                    dp,
                    "Missing destination",
                    "Each rule needs a `destination` block.",
                );
                continue;
            }
        };
        if on(&r.sse_kms_encrypted_objects) && d.replica_kms_key_id.is_null() {
            diags.error_at(
                dp.clone().attr("replica_kms_key_id"),
                "SSE-KMS replication needs a replica key",
                "With `sse_kms_encrypted_objects = true`, S3 needs the KMS key to encrypt replicas with: set \
                 `replica_kms_key_id` in this destination.",
            );
        }
        // An unset `metrics` means its default, false; unknown is judged later.
        if on(&d.replication_time) && !d.metrics.is_unknown() && !on(&d.metrics) {
            diags.error_at(
                dp.clone().attr("metrics"),
                "Replication Time Control needs metrics",
                "S3 refuses `replication_time = true` without `metrics = true`: RTC reports its SLA through replication metrics.",
            );
        }
        if let (Some(src), Some(dst)) = (source_region, text(&d.region)) {
            if src == dst {
                diags.warn_at(
                    dp.attr("region"),
                    "Destination in the source region",
                    format!("Rule {i} replicates within {src}; a region outage then takes both copies. Use another region for failover."),
                );
            }
        }
    }
}

// ---------------------------------------------------------------- requests

fn build_rules(m: &ReplicationModel) -> Result<Vec<ReplicationRule>, String> {
    let mut out = Vec::new();
    for r in m.rules() {
        let f = r.filter.known();
        let prefix = f.and_then(|f| text(&f.prefix)).map(str::to_string);
        let tags: Vec<Tag> = f
            .and_then(|f| f.tags.known())
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        // V2 rules always carry a Filter; several conditions need And.
        let filter = match (prefix, tags.len()) {
            (p, 0) => ReplicationRuleFilter::builder()
                .prefix(p.unwrap_or_default())
                .build(),
            (None, 1) => ReplicationRuleFilter::builder()
                .tag(tags[0].clone())
                .build(),
            (p, _) => ReplicationRuleFilter::builder()
                .and(
                    ReplicationRuleAndOperator::builder()
                        .set_prefix(p)
                        .set_tags(Some(tags))
                        .build(),
                )
                .build(),
        };
        let d = r.destination.known().cloned().unwrap_or_default();
        let minutes = || ReplicationTimeValue::builder().minutes(RTC_MINUTES).build();
        let mut dest = Destination::builder()
            .bucket(text(&d.bucket).unwrap_or_default())
            .set_storage_class(text(&d.storage_class).map(StorageClass::from))
            .set_account(d.account.known().cloned())
            .set_encryption_configuration(d.replica_kms_key_id.known().map(|k| {
                EncryptionConfiguration::builder()
                    .replica_kms_key_id(k)
                    .build()
            }));
        if let Some(t) = d.access_control_translation.known() {
            dest = dest.access_control_translation(
                AccessControlTranslation::builder()
                    .owner(OwnerOverride::from(
                        text(&t.owner).unwrap_or(OWNER_DESTINATION),
                    ))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if on(&d.replication_time) {
            dest = dest.replication_time(
                ReplicationTime::builder()
                    .status(ReplicationTimeStatus::Enabled)
                    .time(minutes())
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if on(&d.metrics) {
            dest = dest.metrics(
                Metrics::builder()
                    .status(MetricsStatus::Enabled)
                    .event_threshold(minutes())
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let dm = if on(&r.delete_marker_replication) {
            DeleteMarkerReplicationStatus::Enabled
        } else {
            DeleteMarkerReplicationStatus::Disabled
        };
        let mut rule = ReplicationRule::builder()
            .set_id(r.id.known().cloned())
            .priority(r.priority.known().copied().unwrap_or(0) as i32)
            .status(ReplicationRuleStatus::from(
                text(&r.status).unwrap_or("Enabled"),
            ))
            .filter(filter)
            .delete_marker_replication(DeleteMarkerReplication::builder().status(dm).build())
            .destination(dest.build().map_err(|e| e.to_string())?);
        if on(&r.existing_object_replication) {
            rule = rule.existing_object_replication(
                ExistingObjectReplication::builder()
                    .status(ExistingObjectReplicationStatus::Enabled)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if on(&r.replica_modifications) || on(&r.sse_kms_encrypted_objects) {
            let mut criteria = SourceSelectionCriteria::builder();
            if on(&r.replica_modifications) {
                criteria = criteria.replica_modifications(
                    ReplicaModifications::builder()
                        .status(ReplicaModificationsStatus::Enabled)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            if on(&r.sse_kms_encrypted_objects) {
                criteria = criteria.sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            rule = rule.source_selection_criteria(criteria.build());
        }
        out.push(rule.build().map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// What S3 returned, in the shape of the configuration: an empty prefix
/// reads as none, `And` and single conditions read alike, absent
/// delete-marker replication and selection criteria read as `false`.
/// Destination regions are not stored by S3 and are kept from `prior`.
fn normalise(rules: &[ReplicationRule], prior: &ReplicationModel) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| {
            let id = r.id().unwrap_or_default().to_string();
            let prior_rule = prior
                .rules()
                .iter()
                .find(|p| text(&p.id) == Some(id.as_str()));
            let (mut prefix, mut tags) = (None, Tags::new());
            if let Some(f) = r.filter() {
                prefix = f.prefix().map(str::to_string);
                if let Some(t) = f.tag() {
                    tags.insert(t.key().to_string(), t.value().to_string());
                }
                if let Some(a) = f.and() {
                    prefix = a.prefix().map(str::to_string).or(prefix);
                    for t in a.tags() {
                        tags.insert(t.key().to_string(), t.value().to_string());
                    }
                }
            }
            let prefix = prefix.filter(|p| !p.is_empty());
            let filter = if prefix.is_none() && tags.is_empty() {
                // No filter and an empty one mean the same: keep what the
                // user wrote so neither shows a diff.
                match prior_rule.map(|p| &p.filter) {
                    Some(Field::Known(f))
                        if text(&f.prefix).unwrap_or("").is_empty()
                            && f.tags.known().is_none_or(|m| m.is_empty()) =>
                    {
                        Field::Known(f.clone())
                    }
                    _ => Field::Null,
                }
            } else {
                Field::Known(Filter {
                    prefix: prefix.into(),
                    tags: if tags.is_empty() {
                        Field::Null
                    } else {
                        Field::Known(tags)
                    },
                })
            };
            let d = r.destination();
            let prior_region = prior_rule
                .and_then(|p| p.destination.known())
                .map(|d| d.region.clone())
                .unwrap_or_default();
            let dest = Dest {
                bucket: d.map(|d| d.bucket().to_string()).into(),
                region: prior_region,
                storage_class: d
                    .and_then(|d| d.storage_class())
                    .map(|s| s.as_str().to_string())
                    .into(),
                account: d.and_then(|d| d.account()).map(str::to_string).into(),
                replica_kms_key_id: d
                    .and_then(|d| d.encryption_configuration())
                    .and_then(|e| e.replica_kms_key_id())
                    .map(str::to_string)
                    .into(),
                replication_time: Field::Known(
                    d.and_then(|d| d.replication_time())
                        .is_some_and(|t| t.status() == &ReplicationTimeStatus::Enabled),
                ),
                metrics: Field::Known(
                    d.and_then(|d| d.metrics())
                        .is_some_and(|m| m.status() == &MetricsStatus::Enabled),
                ),
                access_control_translation: d
                    .and_then(|d| d.access_control_translation())
                    .map(|t| Translation {
                        owner: Field::Known(t.owner().as_str().to_string()),
                    })
                    .into(),
            };
            let criteria = r.source_selection_criteria();
            Rule {
                id: Field::Known(id),
                priority: Field::Known(i64::from(r.priority().unwrap_or(0))),
                status: Field::Known(r.status().as_str().to_string()),
                delete_marker_replication: Field::Known(
                    r.delete_marker_replication().and_then(|d| d.status())
                        == Some(&DeleteMarkerReplicationStatus::Enabled),
                ),
                existing_object_replication: Field::Known(
                    r.existing_object_replication()
                        .is_some_and(|e| e.status() == &ExistingObjectReplicationStatus::Enabled),
                ),
                replica_modifications: Field::Known(
                    criteria
                        .and_then(|c| c.replica_modifications())
                        .is_some_and(|m| m.status() == &ReplicaModificationsStatus::Enabled),
                ),
                sse_kms_encrypted_objects: Field::Known(
                    criteria
                        .and_then(|c| c.sse_kms_encrypted_objects())
                        .is_some_and(|s| s.status() == &SseKmsEncryptedObjectsStatus::Enabled),
                ),
                filter,
                destination: Field::Known(dest),
            }
        })
        .collect()
}

// ---------------------------------------------------------------- preflight

fn call(action: &'static str, bucket: &str, region: &str, source: AwsError) -> S3Error {
    S3Error::Call {
        action,
        bucket: bucket.into(),
        region: region.into(),
        source,
    }
}

/// One bucket the preflight checks.
struct Check {
    bucket: String,
    /// Where it lives, when known before looking.
    region: Option<String>,
    path: AttrPath,
    /// The destination account, when the configuration names one.
    account: Option<String>,
}

/// Source and every destination must have versioning Enabled before S3
/// accepts replication; saying which one is not beats S3's generic error.
/// A destination of another account may not let us read its versioning:
/// with `account` set that is a warning naming what could not be checked.
async fn preflight(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    planned: &ReplicationModel,
    bucket: &str,
    region: &str,
) -> Result<(), Diagnostics> {
    let mut checks = vec![Check {
        bucket: bucket.to_string(),
        region: Some(region.to_string()),
        path: AttrPath::root("bucket"),
        account: None,
    }];
    for (i, r) in planned.rules().iter().enumerate() {
        let Some(d) = r.destination.known() else {
            continue;
        };
        if let Some(name) = text(&d.bucket).and_then(bucket_from_arn) {
            checks.push(Check {
                bucket: name.to_string(),
                region: d.region.known().cloned(),
                path: AttrPath::root("rule")
                    .index(i)
                    .attr("destination")
                    .attr("bucket"),
                account: d.account.known().cloned(),
            });
        }
    }
    let cancel = ctx.cancel_token();
    let mut diags = Diagnostics::new();
    for c in checks {
        let region = match &c.region {
            Some(r) => r.clone(),
            None => match find_bucket_home(aws, cancel, &c.bucket).await {
                Ok(home) => match home.region() {
                    Some(r) => r.to_string(),
                    None => {
                        diags.error_at(
                            c.path,
                            "Replication destination does not exist",
                            format!("S3 bucket {:?} does not exist; S3 refuses replication to a missing bucket.", c.bucket),
                        );
                        continue;
                    }
                },
                Err(source) => {
                    diags.extend(
                        S3Error::Locate {
                            bucket: c.bucket,
                            source,
                        }
                        .diag("Checking replication prerequisites"),
                    );
                    continue;
                }
            },
        };
        match wait_versioning_enabled(ctx, aws, &c.bucket, &region).await {
            Ok(Some(s)) if s == "Enabled" => {}
            Ok(s) => diags.error_at(
                c.path,
                "Versioning must be Enabled for replication",
                format!(
                    "Bucket {:?} ({region}) has versioning {}. Enable it first (tandem_s3_bucket_versioning with status = \"Enabled\", referenced so Terraform orders it before this replication).",
                    c.bucket,
                    s.unwrap_or_else(|| "never enabled".into())
                ),
            ),
            Err(RetryError::Aws(e)) if e.is(&["AccessDenied"]) => match &c.account {
                Some(account) => ctx.warn(
                    Diagnostic::warning(
                        "Destination versioning not verified",
                        format!(
                            "Tandem could not verify the versioning of bucket {:?} ({region}, account {account}): {e}. \
                             Replication needs it Enabled; S3 checks that itself when the configuration is written.",
                            c.bucket
                        ),
                    )
                    .at(c.path),
                ),
                None => diags.push(
                    Diagnostic::error(
                        "Checking replication prerequisites",
                        format!(
                            "checking versioning of S3 bucket {:?} ({region}): {e}. If the bucket belongs to another \
                             account, set `account` in this destination: the check then becomes a warning.",
                            c.bucket
                        ),
                    )
                    .at(c.path),
                ),
            },
            Err(e) => diags.extend(
                S3Error::Retry {
                    action: "checking versioning of",
                    bucket: c.bucket,
                    region,
                    source: e,
                }
                .diag("Checking replication prerequisites"),
            ),
        }
    }
    diags.into_result()
}

/// The bucket's versioning status, waiting (bounded) for it to become
/// Enabled: a sibling configuration (another module instance, another
/// region) may be enabling it right now.
async fn wait_versioning_enabled(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    bucket: &str,
    region: &str,
) -> Result<Option<String>, RetryError> {
    let s3 = aws.s3(region);
    let cancel = ctx.cancel_token();
    let waited = wait_for(
        cancel,
        "versioning Enabled",
        VERSIONING_WAIT,
        VERSIONING_POLL,
        || async {
            match versioning_status(&s3, cancel, bucket).await {
                Ok(Some(st)) if st == "Enabled" => Ok(Some(())),
                Ok(_) => Ok(None),
                Err(e) if e.is(&["NoSuchBucket"]) => Ok(None),
                Err(e) => Err(e),
            }
        },
    )
    .await;
    match waited {
        Ok(()) => Ok(Some("Enabled".to_string())),
        Err(RetryError::Timeout { .. }) => {
            retry_while(
                cancel,
                EVENTUAL_CONSISTENCY_TIMEOUT,
                |e| e.is(&["NoSuchBucket"]),
                || versioning_status(&s3, cancel, bucket),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// The destination's region: remembered or looked up (HeadBucket's header
/// locates another account's bucket too).
async fn destination_region(ctx: &Ctx<Aws>, aws: &Aws, arn: &str) -> Option<String> {
    let name = bucket_from_arn(arn)?;
    find_bucket_region(aws, ctx.cancel_token(), name)
        .await
        .ok()
        .flatten()
}

/// Fills each destination `region` that is unknown or unset with where the
/// bucket really is; null only when S3 will not say.
async fn locate_destinations(ctx: &Ctx<Aws>, aws: &Aws, rules: &mut [Rule]) {
    for r in rules.iter_mut() {
        let Field::Known(d) = &mut r.destination else {
            continue;
        };
        if d.region.is_known() {
            continue;
        }
        let arn = text(&d.bucket).unwrap_or_default().to_string();
        d.region = destination_region(ctx, aws, &arn).await.into();
    }
}

// ---------------------------------------------------------------- resource

#[async_trait]
impl Resource<Aws> for ReplicationResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        match ReplicationModel::read(config, "configuration") {
            Ok(m) => check(&m, None, diags),
            Err(e) => diags.extend(e.into()),
        }
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        plan_home_region(ctx, plan).await?;
        let read = ReplicationModel::read(&plan.planned, "plan")?;
        let mut planned = read.clone();
        if let Some(b) = planned.bucket.known() {
            planned.id = Field::Known(b.clone());
        }
        plan.planned = model::apply_changes(&plan.planned, &read, &planned, &schema(), TYPE_NAME)?;
        // With the provider region known, the same-region warning can apply
        // to rules that rely on the default.
        let config = ReplicationModel::read(&plan.config, "configuration")?;
        if config.region.is_null() {
            let mut d = Diagnostics::new();
            check(&planned, ctx.meta_opt().map(Aws::default_region), &mut d);
            for w in d.0.into_iter().filter(|x| x.severity == Severity::Warning) {
                ctx.warn(w);
            }
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
        let (bucket, region) = home_for_create(ctx, aws, planned, "Writing S3 replication").await?;
        let mut m = ReplicationModel::read(planned, "plan")?;
        preflight(ctx, aws, &m, &bucket, &region).await?;
        let rules = build_rules(&m)
            .map_err(|e| Diagnostics::from(Diagnostic::error("Building replication rules", e)))?;
        let conf = ReplicationConfiguration::builder()
            .role(text(&m.role).unwrap_or_default())
            .set_rules(Some(rules))
            .build()
            .map_err(|e| {
                Diagnostics::from(Diagnostic::error(
                    "Building replication configuration",
                    e.to_string(),
                ))
            })?;
        let s3 = aws.s3(&region);
        let cancel = ctx.cancel_token();
        retry_while(
            cancel,
            EVENTUAL_CONSISTENCY_TIMEOUT,
            |e| e.is(&["NoSuchBucket"]),
            || async {
                send(
                    cancel,
                    s3.put_bucket_replication()
                        .bucket(&bucket)
                        .replication_configuration(conf.clone())
                        .send(),
                )
                .await
                .map(|_| ())
            },
        )
        .await
        .map_err(|source| {
            S3Error::Retry {
                action: "writing replication of",
                bucket: bucket.clone(),
                region: region.clone(),
                source,
            }
            .diag("Writing S3 replication")
        })?;
        m.region = Field::Known(region);
        m.id = Field::Known(bucket);
        // Destination regions left unset were planned unknown: record where
        // each destination actually is (the preflight found it a moment ago).
        if let Field::Known(rules) = &mut m.rule {
            locate_destinations(ctx, aws, rules).await;
        }
        Ok(m.write()?.into())
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let Some((bucket, region)) = home(ctx, aws, state)
            .await
            .map_err(|e| e.diag("Reading S3 replication"))?
        else {
            return Ok(ReadResult::Gone);
        };
        let out = match send(
            ctx.cancel_token(),
            aws.s3(&region)
                .get_bucket_replication()
                .bucket(&bucket)
                .send(),
        )
        .await
        {
            Ok(o) => o,
            Err(e) => {
                if e.is_not_found(&["NoSuchBucket", "ReplicationConfigurationNotFoundError"]) {
                    return Ok(ReadResult::Gone);
                }
                return Err(call("reading replication of", &bucket, &region, e)
                    .diag("Reading S3 replication"));
            }
        };
        let Some(conf) = out.replication_configuration() else {
            return Ok(ReadResult::Gone);
        };
        let prior = ReplicationModel::read(state, "state")?;
        // S3 does not store destination regions: those we lack (after an
        // import, or when the configuration leaves them unset) are looked up.
        let mut rules = normalise(conf.rules(), &prior);
        locate_destinations(ctx, aws, &mut rules).await;
        let m = ReplicationModel {
            role: Field::Known(conf.role().to_string()),
            rule: Field::Known(rules),
            region: Field::Known(region),
            id: Field::Known(bucket.clone()),
            bucket: Field::Known(bucket),
        };
        Ok(ReadResult::Found(m.write()?.into()))
    }

    async fn update(
        &self,
        ctx: &Ctx<Aws>,
        _prior: &Value,
        planned: &Value,
        config: &Value,
        _p: &[u8],
    ) -> Result<Applied, ApplyError> {
        // PutBucketReplication replaces the whole configuration.
        self.create(ctx, planned, config).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        let Some((bucket, region)) = home(ctx, aws, prior)
            .await
            .map_err(|e| e.diag("Deleting S3 replication"))?
        else {
            return Ok(());
        };
        let res = send(
            ctx.cancel_token(),
            aws.s3(&region)
                .delete_bucket_replication()
                .bucket(&bucket)
                .send(),
        )
        .await;
        ok_if_gone(res, |e| {
            e.is_not_found(&["NoSuchBucket", "ReplicationConfigurationNotFoundError"])
        })
        .map_err(|e| {
            call("deleting replication of", &bucket, &region, e).diag("Deleting S3 replication")
        })
    }

    async fn import(&self, ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (bucket, region) = import_target(ctx, id, "S3 replication").await?;
        let m = ReplicationModel {
            bucket: Field::Known(bucket),
            region: Field::Known(region),
            ..ReplicationModel::default()
        };
        Ok(m.write()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{error_paths, validate_resource};

    fn known(s: &str) -> Field<String> {
        Field::Known(s.to_string())
    }

    fn dest() -> Dest {
        Dest {
            bucket: known("arn:aws:s3:::assets-us"),
            replication_time: Field::Known(false),
            metrics: Field::Known(false),
            ..Dest::default()
        }
    }

    fn rule(id: &str, priority: i64, destination: Dest) -> Rule {
        Rule {
            id: known(id),
            priority: Field::Known(priority),
            status: known("Enabled"),
            delete_marker_replication: Field::Known(false),
            existing_object_replication: Field::Known(false),
            replica_modifications: Field::Known(false),
            sse_kms_encrypted_objects: Field::Known(false),
            filter: Field::Null,
            destination: Field::Known(destination),
        }
    }

    fn config(rules: Vec<Rule>) -> ReplicationModel {
        ReplicationModel {
            bucket: known("assets-eu"),
            role: known("arn:aws:iam::123456789012:role/replication"),
            rule: Field::Known(rules),
            ..ReplicationModel::default()
        }
    }

    fn findings(c: &ReplicationModel) -> Diagnostics {
        validate_resource(&ReplicationResource, &c.write().unwrap())
    }

    fn errors(c: &ReplicationModel) -> Vec<String> {
        error_paths(&findings(c))
    }

    #[test]
    fn a_good_configuration_passes() {
        assert!(findings(&config(vec![rule("a", 1, dest())])).is_empty());
    }

    #[test]
    fn the_model_has_exactly_the_schema_attributes() {
        let v = config(vec![rule("a", 1, dest())]).write().unwrap();
        let back = ReplicationModel::read(&v, "configuration").unwrap();
        assert_eq!(back.write().unwrap(), v);
    }

    #[test]
    fn duplicate_priority_and_id_are_refused() {
        assert_eq!(
            errors(&config(vec![rule("a", 1, dest()), rule("a", 1, dest())])),
            vec!["rule[1].id", "rule[1].priority"]
        );
    }

    #[test]
    fn rtc_needs_metrics() {
        let d = Dest {
            replication_time: Field::Known(true),
            ..dest()
        };
        assert_eq!(
            errors(&config(vec![rule("a", 1, d)])),
            vec!["rule[0].destination.metrics"]
        );
    }

    #[test]
    fn same_region_destination_warns() {
        let d = Dest {
            region: known("eu-west-1"),
            ..dest()
        };
        let mut c = config(vec![rule("a", 1, d)]);
        c.region = known("eu-west-1");
        let d = findings(&c);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].severity, Severity::Warning);
    }

    #[test]
    fn bad_arns_accounts_classes_and_roles_are_refused() {
        let d = Dest {
            bucket: known("assets-us"),
            account: known("12"),
            storage_class: known("COLD"),
            ..dest()
        };
        let mut c = config(vec![rule("a", 1, d)]);
        c.role = known("replication");
        assert_eq!(
            errors(&c),
            vec![
                "role",
                "rule[0].destination.bucket",
                "rule[0].destination.storage_class",
                "rule[0].destination.account"
            ]
        );
    }

    #[test]
    fn delete_marker_replication_with_a_tag_filter_fails_on_its_attribute() {
        let tagged = |prefix: Option<&str>, tags: &[(&str, &str)]| Filter {
            prefix: prefix.map(str::to_string).into(),
            tags: Field::Known(
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        };
        let with_markers = |filter: Filter| Rule {
            delete_marker_replication: Field::Known(true),
            filter: Field::Known(filter),
            ..rule("a", 1, dest())
        };
        let d = findings(&config(vec![with_markers(tagged(
            Some("img/"),
            &[("k", "v")],
        ))]));
        assert_eq!(error_paths(&d), vec!["rule[0].delete_marker_replication"]);
        assert!(d.0[0].detail.contains("S3 refuses"), "{}", d.0[0].detail);
        // A prefix alone (or tags without delete markers) is fine.
        assert!(errors(&config(vec![with_markers(tagged(Some("img/"), &[]))])).is_empty());
        let tags_only = Rule {
            filter: Field::Known(tagged(None, &[("k", "v")])),
            ..rule("a", 1, dest())
        };
        assert!(errors(&config(vec![tags_only])).is_empty());
    }

    #[test]
    fn sse_kms_objects_need_a_replica_key() {
        let kms = Rule {
            sse_kms_encrypted_objects: Field::Known(true),
            ..rule("a", 1, dest())
        };
        assert_eq!(
            errors(&config(vec![kms.clone()])),
            vec!["rule[0].destination.replica_kms_key_id"]
        );
        let keyed = |key: &str| Rule {
            destination: Field::Known(Dest {
                replica_kms_key_id: known(key),
                ..dest()
            }),
            ..kms.clone()
        };
        assert!(errors(&config(vec![keyed(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        )]))
        .is_empty());
        assert_eq!(
            errors(&config(vec![keyed("1234abcd")])),
            vec!["rule[0].destination.replica_kms_key_id"]
        );
    }

    #[test]
    fn owner_override_needs_the_destination_account() {
        let translated = |account: Option<&str>, owner: &str| Dest {
            account: account.map(str::to_string).into(),
            access_control_translation: Field::Known(Translation {
                owner: known(owner),
            }),
            ..dest()
        };
        assert_eq!(
            errors(&config(vec![rule("a", 1, translated(None, "Destination"))])),
            vec!["rule[0].destination.access_control_translation"]
        );
        assert!(errors(&config(vec![rule(
            "a",
            1,
            translated(Some("210987654321"), "Destination")
        )]))
        .is_empty());
        assert_eq!(
            errors(&config(vec![rule(
                "a",
                1,
                translated(Some("210987654321"), "Source")
            )])),
            vec!["rule[0].destination.access_control_translation.owner"]
        );
    }

    #[test]
    fn every_new_setting_reads_back_as_written() {
        let d = Dest {
            region: known("us-east-1"),
            account: known("210987654321"),
            replica_kms_key_id: known("arn:aws:kms:us-east-1:210987654321:alias/replicas"),
            access_control_translation: Field::Known(Translation {
                owner: known("Destination"),
            }),
            ..dest()
        };
        let r = Rule {
            replica_modifications: Field::Known(true),
            sse_kms_encrypted_objects: Field::Known(true),
            ..rule("a", 1, d)
        };
        let written = config(vec![r]);
        let sent = build_rules(&written).unwrap();
        let criteria = sent[0].source_selection_criteria().unwrap();
        assert!(criteria.replica_modifications().is_some());
        assert!(criteria.sse_kms_encrypted_objects().is_some());
        assert_eq!(normalise(&sent, &written), written.rules());
    }

    #[test]
    fn reads_normalise_empty_filters_and_and_operators() {
        // What moto returns for every rule: Filter{Prefix:""}, DeleteMarkerReplication Disabled.
        let from_s3 = ReplicationRule::builder()
            .id("a")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .filter(ReplicationRuleFilter::builder().prefix("").build())
            .delete_marker_replication(
                DeleteMarkerReplication::builder()
                    .status(DeleteMarkerReplicationStatus::Disabled)
                    .build(),
            )
            .destination(
                Destination::builder()
                    .bucket("arn:aws:s3:::assets-us")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let prior = config(vec![rule(
            "a",
            1,
            Dest {
                region: known("us-east-1"),
                ..dest()
            },
        )]);
        let rules = normalise(&[from_s3], &prior);
        let r = &rules[0];
        assert!(r.filter.is_null());
        assert_eq!(r.delete_marker_replication, Field::Known(false));
        assert_eq!(r.replica_modifications, Field::Known(false));
        assert_eq!(r.destination.known().unwrap().region, known("us-east-1"));

        let tagged = ReplicationRule::builder()
            .id("t")
            .priority(2)
            .status(ReplicationRuleStatus::Enabled)
            .filter(
                ReplicationRuleFilter::builder()
                    .and(
                        ReplicationRuleAndOperator::builder()
                            .prefix("img/")
                            .tags(Tag::builder().key("k").value("v").build().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .destination(
                Destination::builder()
                    .bucket("arn:aws:s3:::assets-us")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let rules = normalise(&[tagged], &ReplicationModel::default());
        let f = rules[0].filter.known().unwrap();
        assert_eq!(f.prefix, known("img/"));
        assert_eq!(f.tags.known().unwrap()["k"], "v");
    }

    #[test]
    fn rules_are_always_explicit_v2() {
        let rules = build_rules(&config(vec![rule("a", 3, dest())])).unwrap();
        let r = &rules[0];
        assert_eq!(r.priority(), Some(3));
        assert!(r.filter().is_some(), "V2 rules always carry a Filter");
        assert!(
            r.delete_marker_replication().is_some(),
            "V2 rules always say whether delete markers replicate"
        );
        assert!(r.source_selection_criteria().is_none());
    }
}
