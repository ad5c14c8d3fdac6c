//! `tandem_s3_bucket`: a bucket in any region from one provider block,
//! with `force_destroy` that removes every object version and delete
//! marker, tags merged with the provider's `default_tags`; and the
//! `tandem_s3_bucket` data source.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, Tag, Tagging,
};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, DataSource, Diagnostic, Diagnostics,
    Plan, ReadResult, Resource, Schema, Type, Value,
};

use super::{
    check_bucket_name, find_bucket_region, import_target, plan_region, region_attribute, target,
    S3Error,
};
use crate::aws::retry::{retry_while, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::tags::{plan_tags_all, tags_all_attribute, tags_attribute, tags_state};
use crate::aws::{aws_error, ok_if_gone, tags, Aws, AwsError};

/// The resource.
pub struct BucketResource;

/// The data source.
pub struct BucketDataSource;

fn computed_attrs(b: Block) -> Block {
    b.attr(Attribute::computed("id", Type::String, "The bucket name."))
        .attr(Attribute::computed(
            "arn",
            Type::String,
            "The bucket ARN, `arn:aws:s3:::NAME`, as replication destinations need it.",
        ))
        .attr(Attribute::computed(
            "bucket_regional_domain_name",
            Type::String,
            "The regional endpoint name, `NAME.s3.REGION.amazonaws.com`, for origins and proxies.",
        ))
}

fn arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

fn domain(bucket: &str, region: &str) -> String {
    format!("{bucket}.s3.{region}.amazonaws.com")
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
    bucket: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) => {
            let e = aws_error(&e);
            if e.is(&["NoSuchTagSet"]) {
                Ok(BTreeMap::new())
            } else {
                Err(e)
            }
        }
    }
}

async fn write_tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    all: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if all.is_empty() {
        return s3
            .delete_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error(&e));
    }
    let set: Vec<Tag> = all
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let tagging = Tagging::builder()
        .set_tag_set(Some(set))
        .build()
        .map_err(|e| AwsError {
            code: None,
            message: e.to_string(),
            status: None,
        })?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error(&e))
}

/// Deletes every object version and delete marker, 1000 at a time.
async fn empty_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<usize, AwsError> {
    let mut deleted = 0;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| aws_error(&e))?;
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .filter_map(|v| Some((v.key()?, v.version_id())))
            .chain(
                page.delete_markers()
                    .iter()
                    .filter_map(|m| Some((m.key()?, m.version_id()))),
            )
            .filter_map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(deleted);
        }
        for chunk in ids.chunks(1000) {
            deleted += chunk.len();
            let del = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| AwsError {
                    code: None,
                    message: e.to_string(),
                    status: None,
                })?;
            // Batch deletes are an optimisation: some S3-compatible stores
            // (moto among them, for the Rust SDK's checksummed request)
            // answer 500. Try the batch once, then fall back to one call
            // per version rather than failing the destroy.
            let batch =
                s3.delete_objects()
                    .bucket(bucket)
                    .delete(del)
                    .customize()
                    .config_override(aws_sdk_s3::config::Builder::default().retry_config(
                        aws_config::retry::RetryConfig::standard().with_max_attempts(1),
                    ))
                    .send()
                    .await;
            if let Err(e) = batch {
                let e = aws_error(&e);
                if e.status.is_none_or(|s| s < 500) {
                    return Err(e);
                }
                tracing::warn!(bucket, error = %e, "DeleteObjects failed; deleting versions one by one");
                for id in chunk {
                    s3.delete_object()
                        .bucket(bucket)
                        .key(id.key())
                        .set_version_id(id.version_id().map(str::to_string))
                        .customize()
                        .config_override(aws_sdk_s3::config::Builder::default().retry_config(
                            aws_config::retry::RetryConfig::standard().with_max_attempts(2),
                        ))
                        .send()
                        .await
                        .map_err(|e| aws_error(&e))?;
                }
            }
        }
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
            .attr(Attribute::required(
                "bucket",
                Type::String,
                "Bucket name, checked against S3's naming rules at plan time. Changing it replaces the bucket.",
            )
            .force_new())
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
            .attr(tags_attribute("bucket"))
            .attr(tags_all_attribute("bucket")),
        ))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check_bucket_name(config.get("bucket"), AttrPath::root("bucket"), diags);
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
            plan.planned.set("arn", Value::string(arn(&b)));
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
        let (bucket, region) = target(planned, aws);
        let s3 = aws.s3(&region);
        let mut req = s3.create_bucket().bucket(&bucket);
        // us-east-1 is the one region S3 refuses to see named explicitly.
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        if let Err(e) = req.send().await {
            let e = aws_error(&e);
            let summary = if e.is(&["BucketAlreadyOwnedByYou"]) {
                "Bucket already exists in your account: import it with `terraform import ADDRESS NAME@REGION`"
            } else if e.is(&["BucketAlreadyExists"]) {
                "Bucket name is taken by another account (names are global)"
            } else {
                "Creating S3 bucket"
            };
            return Err(call("creating", &bucket, &region, e).diag(summary).into());
        }
        let mut state = planned.clone();
        let all = tags::merge(aws.default_tags(), &tags::from_value(planned.get("tags")));
        if !all.is_empty() {
            // A new bucket can be briefly invisible to the next call.
            let res = retry_while(
                ctx.cancel_token(),
                EVENTUAL_CONSISTENCY_TIMEOUT,
                |e| e.is(&["NoSuchBucket"]),
                || write_tags(&s3, &bucket, &all),
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
        let (bucket, region) = target(state, aws);
        let s3 = aws.s3(&region);
        if let Err(e) = s3.head_bucket().bucket(&bucket).send().await {
            let e = aws_error(&e);
            if e.is_not_found(&["NoSuchBucket", "NotFound"]) {
                return Ok(ReadResult::Gone);
            }
            return Err(call("reading", &bucket, &region, e).diag("Reading S3 bucket"));
        }
        let actual = read_tags(&s3, &bucket)
            .await
            .map_err(|e| call("reading tags of", &bucket, &region, e).diag("Reading S3 bucket"))?;
        let (own, all) = tags_state(ctx, state.get("tags"), &actual);
        let mut st = state.clone();
        st.set("tags", own);
        st.set("tags_all", all);
        st.set("id", Value::string(&bucket));
        st.set("arn", Value::string(arn(&bucket)));
        st.set("region", Value::string(&region));
        st.set(
            "bucket_regional_domain_name",
            Value::string(domain(&bucket, &region)),
        );
        if st.get("force_destroy").is_null() {
            st.set("force_destroy", Value::Bool(false));
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
        let (bucket, region) = target(planned, aws);
        let all = tags::merge(aws.default_tags(), &tags::from_value(planned.get("tags")));
        if tags::from_value(prior.get("tags_all")) != all {
            write_tags(&aws.s3(&region), &bucket, &all)
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
        let (bucket, region) = target(prior, aws);
        let s3 = aws.s3(&region);
        if prior.get("force_destroy").as_bool() == Some(true) {
            match empty_bucket(&s3, &bucket).await {
                Ok(n) if n > 0 => {
                    tracing::info!(bucket, n, "force_destroy removed object versions")
                }
                Ok(_) => {}
                Err(e) if e.is(&["NoSuchBucket"]) => return Ok(()),
                Err(e) => {
                    return Err(call("emptying", &bucket, &region, e).diag("Destroying S3 bucket"))
                }
            }
        }
        let res = s3.delete_bucket().bucket(&bucket).send().await;
        ok_if_gone(res.map_err(|e| aws_error(&e)), |e| e.is(&["NoSuchBucket"])).map_err(|e| {
            let summary = if e.is(&["BucketNotEmpty"]) {
                "S3 bucket is not empty: set force_destroy = true (and apply) to delete its objects too"
            } else {
                "Destroying S3 bucket"
            };
            call("deleting", &bucket, &region, e).diag(summary)
        })
    }

    async fn import(&self, ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (bucket, region) = import_target(ctx.meta()?, id, "S3 bucket").await?;
        Ok(Value::object([
            ("bucket", Value::string(&bucket)),
            ("region", Value::string(region)),
            ("force_destroy", Value::Bool(false)),
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
                .attr(Attribute::required("bucket", Type::String, "Bucket name."))
                .attr(Attribute::optional_computed(
                    "region",
                    Type::String,
                    "Region of the bucket; found with GetBucketLocation when unset.",
                )),
        ))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check_bucket_name(config.get("bucket"), AttrPath::root("bucket"), diags);
    }

    async fn read(&self, ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let aws = ctx.meta()?;
        let bucket = config
            .get("bucket")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let region = match config.get("region").as_str() {
            Some(r) => Some(r.to_string()),
            None => find_bucket_region(aws, &bucket).await.map_err(|e| {
                call("locating", &bucket, aws.default_region(), e).diag("Reading S3 bucket")
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
        if let Err(e) = aws.s3(&region).head_bucket().bucket(&bucket).send().await {
            let e = aws_error(&e);
            return Err(call("reading", &bucket, &region, e).diag("Reading S3 bucket"));
        }
        let mut st = config.clone();
        st.set("region", Value::string(&region));
        st.set("id", Value::string(&bucket));
        st.set("arn", Value::string(arn(&bucket)));
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

    fn errors(bucket: &str) -> Vec<String> {
        let mut d = Diagnostics::new();
        BucketResource.validate(&Value::object([("bucket", Value::string(bucket))]), &mut d);
        d.0.iter().map(|x| x.detail.clone()).collect()
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(errors("assets-eu-1").is_empty());
        for bad in [
            "ab",
            "Assets",
            "assets_eu",
            "-assets",
            "assets..eu",
            "192.168.1.1",
            "xn--assets",
            "assets-s3alias",
        ] {
            assert_eq!(errors(bad).len(), 1, "{bad} should be refused");
        }
        assert!(errors(&"a".repeat(64))[0].contains("3 to 63"));
    }

    #[test]
    fn unknown_names_are_not_judged() {
        let mut d = Diagnostics::new();
        BucketResource.validate(&Value::object([("bucket", Value::Unknown)]), &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn computed_names() {
        assert_eq!(arn("a-b"), "arn:aws:s3:::a-b");
        assert_eq!(domain("a-b", "eu-west-1"), "a-b.s3.eu-west-1.amazonaws.com");
    }
}
