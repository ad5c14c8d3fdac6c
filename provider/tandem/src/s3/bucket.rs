//! `tandem_s3_bucket`: a bucket in any region from one provider block,
//! with `force_destroy` that removes every object version and delete
//! marker (reporting each one S3 refuses), tags merged with the provider's
//! `default_tags`; and the `tandem_s3_bucket` data source. Creating a bucket
//! that already exists is an error unless `adopt_existing` says otherwise:
//! S3 answers 200 to CreateBucket of your own bucket in us-east-1, so
//! without a look first a create would silently take one over.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, DataSource, Diagnostic, Diagnostics,
    Plan, ReadResult, Resource, Schema, Type, Validator, Value,
};
use tokio_util::sync::CancellationToken;

use super::empty::{empty_bucket, EmptyError};
use super::{
    home, import_target, plan_region, region_attribute, valid_bucket_name, S3Error, BUCKET_NAME,
};
use crate::aws::partition::partition_of;
use crate::aws::retry::{retry_while, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::s3_region::{find_bucket_home, find_bucket_region, BucketHome};
use crate::aws::tags::{plan_tags_all, tags_all_attribute, tags_attribute, tags_state};
use crate::aws::{ok_if_gone, send, tags, Aws, AwsError};

/// The resource.
pub struct BucketResource;

/// The data source.
pub struct BucketDataSource;

fn computed_attrs(b: Block) -> Block {
    b.attr(Attribute::computed("id", Type::String, "The bucket name."))
        .attr(Attribute::computed(
            "arn",
            Type::String,
            "The bucket ARN, `arn:PARTITION:s3:::NAME` (`aws`, `aws-cn` or `aws-us-gov` after the bucket's region), as \
             replication destinations need it.",
        ))
        .attr(Attribute::computed(
            "bucket_regional_domain_name",
            Type::String,
            "The regional endpoint name, `NAME.s3.REGION.amazonaws.com` (`.amazonaws.com.cn` in China), for origins \
             and proxies.",
        ))
}

fn arn(bucket: &str, region: &str) -> String {
    partition_of(region).s3_bucket_arn(bucket)
}

fn domain(bucket: &str, region: &str) -> String {
    partition_of(region).s3_regional_domain(bucket, region)
}

fn call(action: &'static str, bucket: &str, region: &str, source: AwsError) -> S3Error {
    S3Error::Call {
        action,
        bucket: bucket.into(),
        region: region.into(),
        source,
    }
}

async fn read_tags(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    match send(cancel, s3.get_bucket_tagging().bucket(bucket).send()).await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) if e.is(&["NoSuchTagSet"]) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

async fn write_tags(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
    all: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if all.is_empty() {
        return send(cancel, s3.delete_bucket_tagging().bucket(bucket).send())
            .await
            .map(|_| ());
    }
    let set: Vec<Tag> = all
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let tagging = Tagging::builder()
        .set_tag_set(Some(set))
        .build()
        .map_err(|e| AwsError::local(e.to_string()))?;
    send(
        cancel,
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send(),
    )
    .await
    .map(|_| ())
}

/// Creates the bucket, or adopts it when it exists already, is ours, lives
/// in the planned region and `adopt` allows it. Returns whether it was
/// adopted.
async fn create_or_adopt(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
    region: &str,
    adopt: bool,
) -> Result<bool, Diagnostics> {
    let exists = |found: &str| -> Diagnostics {
        Diagnostic::error(
            "S3 bucket already exists",
            format!(
                "Bucket {bucket:?} already exists in your account ({found}), and Terraform did not create it. It is not \
                 taken over silently (a later force_destroy would empty it): import it with `terraform import ADDRESS \
                 {bucket}@{found}`, or set adopt_existing = true to manage it from this apply on."
            ),
        )
        .at(AttrPath::root("bucket"))
        .into()
    };
    let taken = || -> Diagnostics {
        Diagnostic::error(
            "Bucket name is taken by another account",
            format!("{bucket:?} belongs to another AWS account (bucket names are global). Choose another name."),
        )
        .at(AttrPath::root("bucket"))
        .into()
    };
    let found = find_bucket_home(aws, cancel, bucket)
        .await
        .map_err(|source| {
            S3Error::Locate {
                bucket: bucket.into(),
                source,
            }
            .diag("Creating S3 bucket")
        })?;
    match found {
        BucketHome::Forbidden(_) => return Err(taken()),
        BucketHome::Ours(r) if !adopt => return Err(exists(&r)),
        BucketHome::Ours(r) if r != region => {
            return Err(Diagnostic::error(
                "S3 bucket exists in another region",
                format!("Bucket {bucket:?} exists in {r}, not {region}; it cannot be adopted there. Set region = {r:?}."),
            )
            .at(AttrPath::root("region"))
            .into())
        }
        BucketHome::Ours(_) => return Ok(true),
        BucketHome::Missing => {}
    }
    let s3 = aws.s3(region);
    let mut req = s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region S3 refuses to see named explicitly.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match send(cancel, req.send()).await {
        Ok(_) => Ok(false),
        // Created by us a moment ago, between the look and the create.
        Err(e) if e.is(&["BucketAlreadyOwnedByYou"]) && adopt => Ok(true),
        Err(e) if e.is(&["BucketAlreadyOwnedByYou"]) => Err(exists(region)),
        Err(e) if e.is(&["BucketAlreadyExists"]) => Err(taken()),
        Err(e) => Err(call("creating", bucket, region, e).diag("Creating S3 bucket")),
    }
}

#[async_trait]
impl Resource<Aws> for BucketResource {
    fn type_name(&self) -> &'static str {
        "tandem_s3_bucket"
    }

    fn schema(&self) -> Schema {
        Schema::new(computed_attrs(
            Block::new(
                "An S3 bucket, in the region its `region` names, so one provider block manages buckets in every \
                 region. Import with `bucket` or `bucket@region`.",
            )
            .attr(
                Attribute::required("bucket", Type::String, "Bucket name. Changing it replaces the bucket.")
                    .force_new()
                    .validate(Validator::format(BUCKET_NAME, valid_bucket_name)),
            )
            .attr(region_attribute())
            .attr(
                Attribute::optional(
                    "force_destroy",
                    Type::Bool,
                    "Delete every object version and delete marker when the bucket is destroyed. Without it, \
                     destroying a bucket that holds objects fails. Kept only in state: after an import it reads `false` until the next apply. Default `false`.",
                )
                .default(false),
            )
            .attr(
                Attribute::optional(
                    "force_destroy_bypass_governance",
                    Type::Bool,
                    "With `force_destroy`, also delete object versions under an S3 Object Lock retention in governance \
                     mode (sends `x-amz-bypass-governance-retention`; needs `s3:BypassGovernanceRetention`). Versions in \
                     compliance mode or under a legal hold are never deleted. Kept only in state. Default `false`.",
                )
                .default(false),
            )
            .attr(
                Attribute::optional(
                    "adopt_existing",
                    Type::Bool,
                    "When the bucket already exists in your account (in `region`), manage it instead of failing the \
                     create. Without it, creating an existing bucket is an error: S3 itself answers success in \
                     us-east-1, and a bucket Terraform never created would otherwise be taken over silently, and \
                     emptied by a later `force_destroy`. Kept only in state. Default `false`.",
                )
                .default(false),
            )
            .attr(tags_attribute("bucket"))
            .attr(tags_all_attribute("bucket")),
        ))
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        plan_region(ctx, plan);
        plan_tags_all(ctx, plan);
        // Everything computed follows from name and region: show it now.
        if let (Some(b), Some(r)) = (
            plan.planned.get("bucket").as_str().map(str::to_string),
            plan.planned.get("region").as_str().map(str::to_string),
        ) {
            plan.planned.set("id", Value::string(&b));
            plan.planned.set("arn", Value::string(arn(&b, &r)));
            plan.planned
                .set("bucket_regional_domain_name", Value::string(domain(&b, &r)));
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
        let cancel = ctx.cancel_token();
        let bucket = planned
            .get("bucket")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let region = aws.region_or_default(planned.get("region").as_str());
        let adopt = planned.get("adopt_existing").as_bool() == Some(true);
        let adopted = create_or_adopt(aws, cancel, &bucket, &region, adopt).await?;
        aws.remember_bucket_region(&bucket, &region);
        if adopted {
            ctx.warn(
                Diagnostic::warning(
                    "Existing S3 bucket adopted",
                    format!("Bucket {bucket:?} ({region}) already existed; because adopt_existing = true, Terraform now manages it (its tags are replaced by the configured ones)."),
                )
                .at(AttrPath::root("adopt_existing")),
            );
        }
        let s3 = aws.s3(&region);
        let mut state = planned.clone();
        let all = tags::merge(aws.default_tags(), &tags::from_value(planned.get("tags")));
        // An adopted bucket may carry tags of its own: make them the configured ones.
        if !all.is_empty() || adopted {
            // A new bucket can be briefly invisible to the next call.
            let res = retry_while(
                cancel,
                EVENTUAL_CONSISTENCY_TIMEOUT,
                |e| e.is(&["NoSuchBucket"]),
                || write_tags(&s3, cancel, &bucket, &all),
            )
            .await;
            if let Err(source) = res {
                let d = S3Error::Retry {
                    action: "tagging",
                    bucket: bucket.clone(),
                    region: region.clone(),
                    source,
                }
                .diag("Tagging S3 bucket");
                state.set("tags_all", Value::Null);
                state.set("region", Value::string(&region));
                return Err(ApplyError {
                    diagnostics: d,
                    partial: Some(state),
                });
            }
        }
        state.set("tags_all", tags::to_value(&all));
        state.set("region", Value::string(&region));
        Ok(state.into())
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let cancel = ctx.cancel_token();
        let Some((bucket, region)) = home(ctx, aws, state)
            .await
            .map_err(|e| e.diag("Reading S3 bucket"))?
        else {
            return Ok(ReadResult::Gone);
        };
        let s3 = aws.s3(&region);
        // The region may be remembered from earlier in this process: ask
        // whether the bucket is still there.
        if let Err(e) = send(cancel, s3.head_bucket().bucket(&bucket).send()).await {
            if e.is_not_found(&["NoSuchBucket", "NotFound"]) {
                aws.forget_bucket_region(&bucket);
                return Ok(ReadResult::Gone);
            }
            return Err(call("reading", &bucket, &region, e).diag("Reading S3 bucket"));
        }
        let actual = read_tags(&s3, cancel, &bucket)
            .await
            .map_err(|e| call("reading tags of", &bucket, &region, e).diag("Reading S3 bucket"))?;
        let (own, all) = tags_state(ctx, state.get("tags"), &actual);
        let mut st = state.clone();
        st.set("tags", own);
        st.set("tags_all", all);
        st.set("id", Value::string(&bucket));
        st.set("arn", Value::string(arn(&bucket, &region)));
        // A bucket found elsewhere than state says shows as drift (replacement).
        st.set("region", Value::string(&region));
        st.set(
            "bucket_regional_domain_name",
            Value::string(domain(&bucket, &region)),
        );
        for flag in [
            "force_destroy",
            "force_destroy_bypass_governance",
            "adopt_existing",
        ] {
            if st.get(flag).is_null() {
                st.set(flag, Value::Bool(false));
            }
        }
        Ok(ReadResult::Found(st.into()))
    }

    async fn update(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        _p: &[u8],
    ) -> Result<Applied, ApplyError> {
        let aws = ctx.meta()?;
        let all = tags::merge(aws.default_tags(), &tags::from_value(planned.get("tags")));
        if tags::from_value(prior.get("tags_all")) != all {
            let Some((bucket, region)) = home(ctx, aws, planned)
                .await
                .map_err(|e| e.diag("Updating S3 bucket tags"))?
            else {
                return Err(Diagnostic::error(
                    "S3 bucket not found",
                    format!(
                        "Bucket {:?} no longer exists.",
                        planned.get("bucket").as_str().unwrap_or_default()
                    ),
                )
                .into());
            };
            write_tags(&aws.s3(&region), ctx.cancel_token(), &bucket, &all)
                .await
                .map_err(|e| {
                    call("tagging", &bucket, &region, e).diag("Updating S3 bucket tags")
                })?;
        }
        let mut st = planned.clone();
        st.set("tags_all", tags::to_value(&all));
        Ok(st.into())
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        let cancel = ctx.cancel_token();
        let Some((bucket, region)) = home(ctx, aws, prior)
            .await
            .map_err(|e| e.diag("Destroying S3 bucket"))?
        else {
            return Ok(());
        };
        let s3 = aws.s3(&region);
        if prior.get("force_destroy").as_bool() == Some(true) {
            let bypass = prior.get("force_destroy_bypass_governance").as_bool() == Some(true);
            match empty_bucket(&s3, cancel, &bucket, bypass).await {
                Ok(n) if n > 0 => {
                    tracing::info!(bucket, n, "force_destroy removed object versions")
                }
                Ok(_) => {}
                Err(EmptyError::Call(e)) if e.is(&["NoSuchBucket"]) => return Ok(()),
                Err(source) => {
                    let hint = if bypass {
                        ""
                    } else {
                        " Versions under an Object Lock governance retention can be deleted with \
                         force_destroy_bypass_governance = true (applied before the destroy)."
                    };
                    let e = S3Error::Empty {
                        bucket: bucket.clone(),
                        region: region.clone(),
                        source,
                    };
                    return Err(Diagnostic::error(
                        "force_destroy could not empty the S3 bucket",
                        format!("{}.{hint}", tfplugin6::diag::error_chain(&e)),
                    )
                    .into());
                }
            }
        }
        let res = send(cancel, s3.delete_bucket().bucket(&bucket).send()).await;
        ok_if_gone(res, |e| e.is(&["NoSuchBucket"])).map_err(|e| {
            let summary = if e.is(&["BucketNotEmpty"]) {
                "S3 bucket is not empty: set force_destroy = true (and apply) to delete its objects too"
            } else {
                "Destroying S3 bucket"
            };
            call("deleting", &bucket, &region, e).diag(summary)
        })?;
        aws.forget_bucket_region(&bucket);
        Ok(())
    }

    async fn import(&self, ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (bucket, region) = import_target(ctx, id, "S3 bucket").await?;
        Ok(Value::object([
            ("bucket", Value::string(&bucket)),
            ("region", Value::string(region)),
            ("force_destroy", Value::Bool(false)),
            ("force_destroy_bypass_governance", Value::Bool(false)),
            ("adopt_existing", Value::Bool(false)),
        ]))
    }
}

#[async_trait]
impl DataSource<Aws> for BucketDataSource {
    fn type_name(&self) -> &'static str {
        "tandem_s3_bucket"
    }

    fn schema(&self) -> Schema {
        Schema::new(computed_attrs(
            Block::new("Looks up an existing S3 bucket: its region, ARN and regional domain name.")
                .attr(
                    Attribute::required("bucket", Type::String, "Bucket name.")
                        .validate(Validator::format(BUCKET_NAME, valid_bucket_name)),
                )
                .attr(Attribute::optional_computed(
                    "region",
                    Type::String,
                    "Region of the bucket; found with GetBucketLocation when unset.",
                )),
        ))
    }

    async fn read(&self, ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let aws = ctx.meta()?;
        let bucket = config
            .get("bucket")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cancel = ctx.cancel_token();
        let region = match config.get("region").as_str() {
            Some(r) => Some(r.to_string()),
            None => find_bucket_region(aws, cancel, &bucket)
                .await
                .map_err(|source| {
                    S3Error::Locate {
                        bucket: bucket.clone(),
                        source,
                    }
                    .diag("Reading S3 bucket")
                })?,
        };
        let Some(region) = region else {
            return Err(Diagnostic::error(
                "S3 bucket not found",
                format!("No bucket named {bucket:?} exists."),
            )
            .at(AttrPath::root("bucket"))
            .into());
        };
        if let Err(e) = send(cancel, aws.s3(&region).head_bucket().bucket(&bucket).send()).await {
            return Err(call("reading", &bucket, &region, e).diag("Reading S3 bucket"));
        }
        let mut st = config.clone();
        st.set("region", Value::string(&region));
        st.set("id", Value::string(&bucket));
        st.set("arn", Value::string(arn(&bucket, &region)));
        st.set(
            "bucket_regional_domain_name",
            Value::string(domain(&bucket, &region)),
        );
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_validated_through_the_schema() {
        let paths = |bucket: Value| {
            let c = Value::object([("bucket", bucket)]);
            crate::testing::error_paths(&crate::testing::validate_resource(&BucketResource, &c))
        };
        assert!(paths(Value::string("assets-eu-1")).is_empty());
        assert_eq!(paths(Value::string("Assets")), vec!["bucket"]);
        assert!(paths(Value::Unknown).is_empty());
    }

    #[test]
    fn computed_names_follow_the_partition_of_the_region() {
        assert_eq!(arn("a-b", "eu-west-1"), "arn:aws:s3:::a-b");
        assert_eq!(domain("a-b", "eu-west-1"), "a-b.s3.eu-west-1.amazonaws.com");
        assert_eq!(arn("a-b", "cn-north-1"), "arn:aws-cn:s3:::a-b");
        assert_eq!(
            domain("a-b", "cn-north-1"),
            "a-b.s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(arn("a-b", "us-gov-west-1"), "arn:aws-us-gov:s3:::a-b");
    }
}
