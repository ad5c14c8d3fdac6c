//! `tandem_s3_bucket_replication`: replication rules of a source bucket,
//! always written as explicit V2 rules (Filter, Priority,
//! DeleteMarkerReplication), checked against the foot-guns users hit with
//! terraform-provider-aws: duplicate priorities, RTC without metrics,
//! replication before versioning, and perpetual diffs from what S3 returns.
//! Every bucket, source or destination, is reached in its own region.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, ExistingObjectReplication,
    ExistingObjectReplicationStatus, Metrics, MetricsStatus, ReplicationConfiguration,
    ReplicationRule, ReplicationRuleAndOperator, ReplicationRuleFilter, ReplicationRuleStatus,
    ReplicationTime, ReplicationTimeStatus, ReplicationTimeValue, StorageClass, Tag,
};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostic, Diagnostics, NestedBlock,
    Plan, ReadResult, Resource, Schema, Type, Value,
};

use super::{
    check_bucket_name, home, home_for_create, home_region_attribute, import_target,
    plan_home_region, S3Error,
};
use crate::aws::retry::{retry_while, wait_for, RetryError, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::s3_region::{find_bucket_home, find_bucket_region};
use crate::aws::s3_versioning::versioning_status;
use crate::aws::{ok_if_gone, send, Aws, AwsError};

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

/// How long create/update wait for a source or destination bucket's
/// versioning to become Enabled: long enough for a sibling module instance
/// or region applied in parallel, short enough that a forgotten versioning
/// resource fails the run promptly with a message naming the bucket.
const VERSIONING_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Polling interval for that wait.
const VERSIONING_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// S3 Replication Time Control's only threshold, in minutes.
const RTC_MINUTES: i32 = 15;

fn schema() -> Schema {
    let b = |n: &str, d: &str| Attribute::optional(n, Type::Bool, d).default(false);
    Schema::new(
        Block::new(
            "Replication of a source bucket to one or more destinations, written as explicit V2 rules. Create and \
             update first check that the source and every destination have versioning Enabled. For two-way \
             replication declare one of these on each bucket, each pointing at the other. Import with `bucket` or \
             `bucket@region`.",
        )
        .attr(Attribute::required("bucket", Type::String, "Source bucket. Changing it replaces the resource.").force_new())
        .attr(home_region_attribute())
        .attr(Attribute::required("role", Type::String, "ARN of the IAM role S3 assumes to replicate objects."))
        .attr(Attribute::computed("id", Type::String, "The source bucket name."))
        .block(
            NestedBlock::list(
                "rule",
                Block::new("A replication rule.")
                    .attr(Attribute::required("id", Type::String, "Rule ID, unique within the configuration."))
                    .attr(Attribute::required(
                        "priority",
                        Type::Number,
                        "Rule priority; unique within the configuration (checked at plan time). Higher wins when rules overlap.",
                    ))
                    .attr(Attribute::optional("status", Type::String, "`Enabled` or `Disabled`. Default `Enabled`.").default("Enabled"))
                    .attr(b("delete_marker_replication", "Replicate delete markers. Default `false`."))
                    .attr(b("existing_object_replication", "Also replicate objects that existed before the rule. Default `false`."))
                    .block(NestedBlock::single(
                        "filter",
                        Block::new("Which objects the rule applies to; all objects when absent.")
                            .attr(Attribute::optional("prefix", Type::String, "Key prefix objects must have."))
                            .attr(Attribute::optional("tags", Type::map(Type::String), "Tags objects must all have.")),
                    ))
                    .block(NestedBlock::single(
                        "destination",
                        Block::new("Where objects are replicated to (required).")
                            .attr(Attribute::required("bucket", Type::String, "ARN of the destination bucket, `arn:aws:s3:::NAME`."))
                            .attr(Attribute::optional_computed(
                                "region",
                                Type::String,
                                "Region of the destination bucket, used to check its versioning and to warn when it equals the source region. When unset it is looked up (HeadBucket's `x-amz-bucket-region`, which S3 also sends for another account's bucket, else GetBucketLocation), which also fills it in after an import.",
                            ))
                            .attr(Attribute::optional("storage_class", Type::String, "Storage class of replicas, e.g. `STANDARD_IA`. Default: the source object's."))
                            .attr(Attribute::optional("account", Type::String, "Destination account ID (12 digits), for cross-account replication. With it, a destination whose versioning cannot be read (AccessDenied, as another account's bucket usually is) only gives a warning saying what could not be verified; S3 still checks when the configuration is written."))
                            .attr(b("replication_time", "S3 Replication Time Control (15-minute SLA). Requires `metrics`. Default `false`."))
                            .attr(b("metrics", "Replication metrics and events. Default `false`.")),
                    )),
            )
            .min(1),
        ),
    )
}

fn dest_bucket_name(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:aws:s3:::")
        .or_else(|| arn.strip_prefix("arn:aws-cn:s3:::"))
        .or_else(|| arn.strip_prefix("arn:aws-us-gov:s3:::"))
        .filter(|b| !b.is_empty() && !b.contains('/'))
}

/// Every plan-time problem of a configuration.
pub fn check(config: &Value, default_region: Option<&str>, diags: &mut Diagnostics) {
    check_bucket_name(config.get("bucket"), AttrPath::root("bucket"), diags);
    if let Some(role) = config.get("role").as_str() {
        if !(role.starts_with("arn:") && role.contains(":iam::") && role.contains(":role/")) {
            diags.error_at(
                AttrPath::root("role"),
                "Invalid role ARN",
                format!("{role:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)."),
            );
        }
    }
    let source_region = config.get("region").as_str().or(default_region);
    let rules = config.get("rule").as_list().unwrap_or(&[]);
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut priorities: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        let p = AttrPath::root("rule").index(i);
        if let Some(id) = r.get("id").as_str() {
            if let Some(first) = ids.insert(id, i) {
                diags.error_at(
                    p.clone().attr("id"),
                    "Duplicate rule ID",
                    format!("{id:?} is also the ID of rule[{first}]."),
                );
            }
            if id.len() > 255 {
                diags.error_at(
                    p.clone().attr("id"),
                    "Rule ID too long",
                    "S3 allows at most 255 characters.",
                );
            }
        }
        if let Some(pr) = r.get("priority").as_i64() {
            if let Some(first) = priorities.insert(pr, i) {
                diags.error_at(
                    p.clone().attr("priority"),
                    "Duplicate rule priority",
                    format!("Priority {pr} is also used by rule[{first}]; S3 needs a unique priority per rule to decide between overlapping rules."),
                );
            }
            if pr < 0 {
                diags.error_at(
                    p.clone().attr("priority"),
                    "Invalid priority",
                    "Must be 0 or more.",
                );
            }
        }
        if let Some(st) = r.get("status").as_str() {
            if st != "Enabled" && st != "Disabled" {
                diags.error_at(
                    p.clone().attr("status"),
                    "Invalid rule status",
                    format!("{st:?} must be `Enabled` or `Disabled`."),
                );
            }
        }
        if let Some(tags) = r.get("filter").get("tags").as_map() {
            for k in tags.keys() {
                if k.is_empty() {
                    diags.error_at(
                        p.clone().attr("filter").attr("tags"),
                        "Empty tag key",
                        "Tag keys in a filter cannot be empty.",
                    );
                }
            }
        }
        let d = r.get("destination");
        let dp = p.clone().attr("destination");
        if d.is_null() && !r.is_unknown() {
            diags.error_at(
                dp.clone(),
                "Missing destination",
                "Each rule needs a `destination` block.",
            );
            continue;
        }
        if let Some(arn) = d.get("bucket").as_str() {
            if dest_bucket_name(arn).is_none() {
                diags.error_at(
                    dp.clone().attr("bucket"),
                    "Invalid destination",
                    format!("{arn:?} must be a bucket ARN, `arn:aws:s3:::NAME`."),
                );
            }
        }
        if let Some(sc) = d.get("storage_class").as_str() {
            if !STORAGE_CLASSES.contains(&sc) {
                diags.error_at(
                    dp.clone().attr("storage_class"),
                    "Invalid storage class",
                    format!("{sc:?} must be one of {}.", STORAGE_CLASSES.join(", ")),
                );
            }
        }
        if let Some(acct) = d.get("account").as_str() {
            if acct.len() != 12 || !acct.bytes().all(|c| c.is_ascii_digit()) {
                diags.error_at(
                    dp.clone().attr("account"),
                    "Invalid account ID",
                    format!("{acct:?} must be 12 digits."),
                );
            }
        }
        // An unset `metrics` means its default, false; unknown is judged later.
        if d.get("replication_time").as_bool() == Some(true)
            && !d.get("metrics").is_unknown()
            && d.get("metrics").as_bool() != Some(true)
        {
            diags.error_at(
                dp.clone().attr("metrics"),
                "Replication Time Control needs metrics",
                "S3 refuses `replication_time = true` without `metrics = true`: RTC reports its SLA through replication metrics.",
            );
        }
        if let (Some(src), Some(dst)) = (source_region, d.get("region").as_str()) {
            if src == dst {
                diags.warn_at(
                    dp.clone().attr("region"),
                    "Destination in the source region",
                    format!("Rule {i} replicates within {src}; a region outage then takes both copies. Use another region for failover."),
                );
            }
        }
    }
}

fn call(action: &'static str, bucket: &str, region: &str, source: AwsError) -> S3Error {
    S3Error::Call {
        action,
        bucket: bucket.into(),
        region: region.into(),
        source,
    }
}

fn build_rules(v: &Value) -> Result<Vec<ReplicationRule>, String> {
    let mut out = Vec::new();
    for r in v.get("rule").as_list().unwrap_or(&[]) {
        let f = r.get("filter");
        let prefix = f.get("prefix").as_str().map(str::to_string);
        let tags: Vec<Tag> = f
            .get("tags")
            .as_map()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Tag::builder().key(k).value(v.as_str()?).build().ok())
                    .collect()
            })
            .unwrap_or_default();
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
        let d = r.get("destination");
        let mut dest = Destination::builder().bucket(d.get("bucket").as_str().unwrap_or_default());
        if let Some(sc) = d.get("storage_class").as_str() {
            dest = dest.storage_class(StorageClass::from(sc));
        }
        if let Some(a) = d.get("account").as_str() {
            dest = dest.account(a);
        }
        let minutes = || ReplicationTimeValue::builder().minutes(RTC_MINUTES).build();
        if d.get("replication_time").as_bool() == Some(true) {
            dest = dest.replication_time(
                ReplicationTime::builder()
                    .status(ReplicationTimeStatus::Enabled)
                    .time(minutes())
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if d.get("metrics").as_bool() == Some(true) {
            dest = dest.metrics(
                Metrics::builder()
                    .status(MetricsStatus::Enabled)
                    .event_threshold(minutes())
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let dm = if r.get("delete_marker_replication").as_bool() == Some(true) {
            DeleteMarkerReplicationStatus::Enabled
        } else {
            DeleteMarkerReplicationStatus::Disabled
        };
        let mut rule = ReplicationRule::builder()
            .id(r.get("id").as_str().unwrap_or_default())
            .priority(r.get("priority").as_i64().unwrap_or(0) as i32)
            .status(ReplicationRuleStatus::from(
                r.get("status").as_str().unwrap_or("Enabled"),
            ))
            .filter(filter)
            .delete_marker_replication(DeleteMarkerReplication::builder().status(dm).build())
            .destination(dest.build().map_err(|e| e.to_string())?);
        if r.get("existing_object_replication").as_bool() == Some(true) {
            rule = rule.existing_object_replication(
                ExistingObjectReplication::builder()
                    .status(ExistingObjectReplicationStatus::Enabled)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        out.push(rule.build().map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// What S3 returned, in the shape of the configuration: an empty prefix
/// reads as none, `And` and single conditions read alike, absent
/// delete-marker replication reads as `false`. Destination regions are not
/// stored by S3 and are kept from `prior`.
pub fn normalise(rules: &[ReplicationRule], prior: &Value) -> Value {
    let prior_rules = prior.get("rule").as_list().unwrap_or(&[]);
    Value::List(
        rules
            .iter()
            .map(|r| {
                let id = r.id().unwrap_or_default().to_string();
                let prior_rule = prior_rules
                    .iter()
                    .find(|p| p.get("id").as_str() == Some(id.as_str()));
                let (mut prefix, mut tags) = (None, BTreeMap::new());
                if let Some(f) = r.filter() {
                    prefix = f.prefix().map(str::to_string);
                    if let Some(t) = f.tag() {
                        tags.insert(t.key().to_string(), Value::string(t.value()));
                    }
                    if let Some(a) = f.and() {
                        prefix = a.prefix().map(str::to_string).or(prefix);
                        for t in a.tags() {
                            tags.insert(t.key().to_string(), Value::string(t.value()));
                        }
                    }
                }
                let prefix = prefix.filter(|p| !p.is_empty());
                let filter = if prefix.is_none() && tags.is_empty() {
                    // No filter and an empty one mean the same: keep what the
                    // user wrote so neither shows a diff.
                    match prior_rule.map(|p| p.get("filter")) {
                        Some(f @ Value::Map(_))
                            if f.get("prefix").as_str().unwrap_or("").is_empty()
                                && f.get("tags").as_map().is_none_or(|m| m.is_empty()) =>
                        {
                            f.clone()
                        }
                        _ => Value::Null,
                    }
                } else {
                    Value::object([
                        ("prefix", prefix.map(Value::String).unwrap_or(Value::Null)),
                        (
                            "tags",
                            if tags.is_empty() {
                                Value::Null
                            } else {
                                Value::Map(tags)
                            },
                        ),
                    ])
                };
                let d = r.destination();
                let dest = Value::object([
                    (
                        "bucket",
                        d.map(|d| Value::string(d.bucket())).unwrap_or(Value::Null),
                    ),
                    (
                        "region",
                        prior_rule
                            .map(|p| p.get("destination").get("region").clone())
                            .unwrap_or(Value::Null),
                    ),
                    (
                        "storage_class",
                        d.and_then(|d| d.storage_class())
                            .map(|s| Value::string(s.as_str()))
                            .unwrap_or(Value::Null),
                    ),
                    (
                        "account",
                        d.and_then(|d| d.account())
                            .map(Value::string)
                            .unwrap_or(Value::Null),
                    ),
                    (
                        "replication_time",
                        Value::Bool(
                            d.and_then(|d| d.replication_time())
                                .is_some_and(|t| t.status() == &ReplicationTimeStatus::Enabled),
                        ),
                    ),
                    (
                        "metrics",
                        Value::Bool(
                            d.and_then(|d| d.metrics())
                                .is_some_and(|m| m.status() == &MetricsStatus::Enabled),
                        ),
                    ),
                ]);
                Value::object([
                    ("id", Value::string(&id)),
                    ("priority", Value::int(i64::from(r.priority().unwrap_or(0)))),
                    ("status", Value::string(r.status().as_str())),
                    (
                        "delete_marker_replication",
                        Value::Bool(
                            r.delete_marker_replication().and_then(|d| d.status())
                                == Some(&DeleteMarkerReplicationStatus::Enabled),
                        ),
                    ),
                    (
                        "existing_object_replication",
                        Value::Bool(r.existing_object_replication().is_some_and(|e| {
                            e.status() == &ExistingObjectReplicationStatus::Enabled
                        })),
                    ),
                    ("filter", filter),
                    ("destination", dest),
                ])
            })
            .collect(),
    )
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
    planned: &Value,
    bucket: &str,
    region: &str,
) -> Result<(), Diagnostics> {
    let mut checks = vec![Check {
        bucket: bucket.to_string(),
        region: Some(region.to_string()),
        path: AttrPath::root("bucket"),
        account: None,
    }];
    for (i, r) in planned
        .get("rule")
        .as_list()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let d = r.get("destination");
        if let Some(name) = d.get("bucket").as_str().and_then(dest_bucket_name) {
            checks.push(Check {
                bucket: name.to_string(),
                region: d.get("region").as_str().map(str::to_string),
                path: AttrPath::root("rule")
                    .index(i)
                    .attr("destination")
                    .attr("bucket"),
                account: d.get("account").as_str().map(str::to_string),
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
                    tfplugin6::Diagnostic::warning(
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
                    tfplugin6::Diagnostic::error(
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
    let name = dest_bucket_name(arn)?;
    find_bucket_region(aws, ctx.cancel_token(), name)
        .await
        .ok()
        .flatten()
}

#[async_trait]
impl Resource<Aws> for ReplicationResource {
    fn type_name(&self) -> &'static str {
        "tandem_s3_bucket_replication"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check(config, None, diags);
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        plan_home_region(ctx, plan).await?;
        if let Some(b) = plan.planned.get("bucket").as_str().map(str::to_string) {
            plan.planned.set("id", Value::string(b));
        }
        // With the provider region known, the same-region warning can apply
        // to rules that rely on the default.
        if plan.config.get("region").is_null() {
            let mut d = Diagnostics::new();
            check(
                &plan.planned,
                ctx.meta_opt().map(Aws::default_region),
                &mut d,
            );
            for w in
                d.0.into_iter()
                    .filter(|x| x.severity == tfplugin6::Severity::Warning)
            {
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
        preflight(ctx, aws, planned, &bucket, &region).await?;
        let rules = build_rules(planned)
            .map_err(|e| Diagnostics::from(Diagnostic::error("Building replication rules", e)))?;
        let conf = ReplicationConfiguration::builder()
            .role(planned.get("role").as_str().unwrap_or_default())
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
        let mut st = planned.clone();
        st.set("region", Value::string(&region));
        st.set("id", Value::string(&bucket));
        // Destination regions left unset were planned unknown: record where
        // each destination actually is.
        if let Some(Value::List(items)) = st.get_mut("rule") {
            for r in items.iter_mut() {
                if r.get("destination").get("region").is_unknown() {
                    let arn = r
                        .get("destination")
                        .get("bucket")
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    // The preflight found it a moment ago; unknown only if
                    // S3 would not say, and then null is the honest answer.
                    let found = destination_region(ctx, aws, &arn).await;
                    if let Some(dest) = r.get_mut("destination") {
                        dest.set("region", found.map(Value::String).unwrap_or(Value::Null));
                    }
                }
            }
        }
        Ok(st.into())
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
        let mut st = state.clone();
        st.set("role", Value::string(conf.role()));
        let mut rules = normalise(conf.rules(), state);
        // S3 does not store destination regions: look up those we lack
        // (after an import, or when the configuration leaves them unset).
        if let Value::List(items) = &mut rules {
            for r in items.iter_mut() {
                let d = r.get("destination");
                if d.get("region").is_null() {
                    let arn = d.get("bucket").as_str().unwrap_or_default().to_string();
                    if let Some(found) = destination_region(ctx, aws, &arn).await {
                        if let Some(dest) = r.get_mut("destination") {
                            dest.set("region", Value::string(found));
                        }
                    }
                }
            }
        }
        st.set("rule", rules);
        st.set("region", Value::string(&region));
        st.set("id", Value::string(&bucket));
        Ok(ReadResult::Found(st.into()))
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
        Ok(Value::object([
            ("bucket", Value::string(&bucket)),
            ("region", Value::string(region)),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, priority: i64, dest: Value) -> Value {
        Value::object([
            ("id", Value::string(id)),
            ("priority", Value::int(priority)),
            ("status", Value::string("Enabled")),
            ("destination", dest),
        ])
    }

    fn dest(pairs: &[(&str, Value)]) -> Value {
        let mut d = Value::object([("bucket", Value::string("arn:aws:s3:::assets-us"))]);
        for (k, v) in pairs {
            d.set(k, v.clone());
        }
        d
    }

    fn findings(c: &Value, region: Option<&str>) -> Vec<(String, String)> {
        let mut d = Diagnostics::new();
        check(c, region, &mut d);
        d.0.iter()
            .map(|x| {
                (
                    x.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    x.summary.clone(),
                )
            })
            .collect()
    }

    fn config(rules: Vec<Value>) -> Value {
        Value::object([
            ("bucket", Value::string("assets-eu")),
            (
                "role",
                Value::string("arn:aws:iam::123456789012:role/replication"),
            ),
            ("rule", Value::List(rules)),
        ])
    }

    #[test]
    fn a_good_configuration_passes() {
        assert!(findings(&config(vec![rule("a", 1, dest(&[]))]), None).is_empty());
    }

    #[test]
    fn duplicate_priority_and_id_are_refused() {
        let f = findings(
            &config(vec![rule("a", 1, dest(&[])), rule("a", 1, dest(&[]))]),
            None,
        );
        assert!(
            f.contains(&("rule[1].priority".into(), "Duplicate rule priority".into())),
            "{f:?}"
        );
        assert!(
            f.contains(&("rule[1].id".into(), "Duplicate rule ID".into())),
            "{f:?}"
        );
    }

    #[test]
    fn rtc_needs_metrics() {
        let f = findings(
            &config(vec![rule(
                "a",
                1,
                dest(&[
                    ("replication_time", Value::Bool(true)),
                    ("metrics", Value::Bool(false)),
                ]),
            )]),
            None,
        );
        assert_eq!(
            f,
            vec![(
                "rule[0].destination.metrics".into(),
                "Replication Time Control needs metrics".into()
            )]
        );
    }

    #[test]
    fn same_region_destination_warns() {
        let mut c = config(vec![rule(
            "a",
            1,
            dest(&[("region", Value::string("eu-west-1"))]),
        )]);
        c.set("region", Value::string("eu-west-1"));
        let mut d = Diagnostics::new();
        check(&c, None, &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].severity, tfplugin6::Severity::Warning);
        assert!(!d.has_errors());
    }

    #[test]
    fn bad_arns_accounts_classes_and_roles_are_refused() {
        let mut c = config(vec![rule(
            "a",
            1,
            Value::object([
                ("bucket", Value::string("assets-us")),
                ("account", Value::string("12")),
                ("storage_class", Value::string("COLD")),
            ]),
        )]);
        c.set("role", Value::string("replication"));
        let paths: Vec<String> = findings(&c, None).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            vec![
                "role",
                "rule[0].destination.bucket",
                "rule[0].destination.storage_class",
                "rule[0].destination.account"
            ]
        );
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
            dest(&[("region", Value::string("us-east-1"))]),
        )]);
        let v = normalise(&[from_s3], &prior);
        let r = &v.as_list().unwrap()[0];
        assert!(r.get("filter").is_null());
        assert_eq!(r.get("delete_marker_replication"), &Value::Bool(false));
        assert_eq!(
            r.get("destination").get("region"),
            &Value::string("us-east-1")
        );

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
        let v = normalise(&[tagged], &Value::Null);
        let f = v.as_list().unwrap()[0].get("filter").clone();
        assert_eq!(f.get("prefix"), &Value::string("img/"));
        assert_eq!(f.get("tags").get("k"), &Value::string("v"));
    }

    #[test]
    fn rules_are_always_explicit_v2() {
        let rules = build_rules(&config(vec![rule("a", 3, dest(&[]))])).unwrap();
        let r = &rules[0];
        assert_eq!(r.priority(), Some(3));
        assert!(r.filter().is_some(), "V2 rules always carry a Filter");
        assert!(
            r.delete_marker_replication().is_some(),
            "V2 rules always say whether delete markers replicate"
        );
    }
}
