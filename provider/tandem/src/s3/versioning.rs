//! `tandem_s3_bucket_versioning`: versioning of one bucket, Enabled or
//! Suspended. S3 cannot return a bucket to "never versioned", so that is
//! refused at plan time; destroying the resource suspends versioning. Each
//! write waits until reads agree with it, as S3 applies it eventually.

use async_trait::async_trait;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use tfplugin6::{
    Applied, ApplyError, Attribute, Block, Ctx, Diagnostics, Plan, ReadResult, Resource, Schema,
    Type, Validator, Value,
};

use super::{
    home, home_for_create, home_region_attribute, import_target, plan_home_region,
    valid_bucket_name, S3Error, BUCKET_NAME,
};
use crate::aws::retry::{retry_while, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::s3_versioning::{versioning_status, wait_versioning_status};
use crate::aws::{ok_if_gone, send, Aws, AwsError};

/// The resource.
pub struct VersioningResource;

/// Status reported for a bucket whose versioning was never enabled; never
/// accepted in configuration.
const NEVER_ENABLED: &str = "Disabled";

fn status(v: &str) -> Result<(), String> {
    match v {
        "Enabled" | "Suspended" => Ok(()),
        NEVER_ENABLED => Err(
            "once enabled, S3 versioning can only be Suspended (existing object versions are kept either way); \
             use `Suspended`"
                .into(),
        ),
        _ => Err("S3 knows only `Enabled` and `Suspended`".into()),
    }
}

async fn put_status(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    bucket: &str,
    region: &str,
    status: &str,
) -> Result<(), S3Error> {
    let s3 = aws.s3(region);
    let cancel = ctx.cancel_token();
    let conf = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::from(status))
        .build();
    let failed = |source| S3Error::Retry {
        action: "setting versioning of",
        bucket: bucket.into(),
        region: region.into(),
        source,
    };
    // Right after the bucket is created it may not be visible yet.
    retry_while(
        cancel,
        EVENTUAL_CONSISTENCY_TIMEOUT,
        |e| e.is(&["NoSuchBucket"]),
        || async {
            send(
                cancel,
                s3.put_bucket_versioning()
                    .bucket(bucket)
                    .versioning_configuration(conf.clone())
                    .send(),
            )
            .await
            .map(|_| ())
        },
    )
    .await
    .map_err(failed)?;
    wait_versioning_status(&s3, cancel, bucket, status)
        .await
        .map_err(failed)
}

/// The bucket and its home region for an existing resource; `None` when
/// the bucket is gone.
async fn existing(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    v: &Value,
    summary: &str,
) -> Result<Option<(String, String)>, Diagnostics> {
    home(ctx, aws, v).await.map_err(|e| e.diag(summary))
}

#[async_trait]
impl Resource<Aws> for VersioningResource {
    fn type_name(&self) -> &'static str {
        "tandem_s3_bucket_versioning"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "Versioning of an S3 bucket. Replication needs it Enabled on both sides. Destroying this resource \
                 suspends versioning (S3 cannot turn it off). Import with `bucket` or `bucket@region`.",
            )
            .attr(
                Attribute::required("bucket", Type::String, "Name of the bucket. Changing it replaces the resource.")
                    .force_new()
                    .validate(Validator::format(BUCKET_NAME, valid_bucket_name)),
            )
            .attr(home_region_attribute())
            .attr(
                Attribute::required(
                    "status",
                    Type::String,
                    "Versioning status. A bucket can never go back to unversioned, so `Disabled` is refused.",
                )
                .validate(Validator::format("`Enabled` or `Suspended`", status)),
            )
            .attr(Attribute::computed("id", Type::String, "The bucket name.")),
        )
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        plan_home_region(ctx, plan).await?;
        if let Some(b) = plan.planned.get("bucket").as_str().map(str::to_string) {
            plan.planned.set("id", Value::string(b));
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
        let (bucket, region) =
            home_for_create(ctx, aws, planned, "Setting S3 bucket versioning").await?;
        let status = planned
            .get("status")
            .as_str()
            .unwrap_or("Enabled")
            .to_string();
        put_status(ctx, aws, &bucket, &region, &status)
            .await
            .map_err(|e| e.diag("Setting S3 bucket versioning"))?;
        let mut st = planned.clone();
        st.set("region", Value::string(&region));
        st.set("id", Value::string(&bucket));
        Ok(st.into())
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let Some((bucket, region)) =
            existing(ctx, aws, state, "Reading S3 bucket versioning").await?
        else {
            return Ok(ReadResult::Gone);
        };
        let status = match versioning_status(&aws.s3(&region), ctx.cancel_token(), &bucket).await {
            Ok(s) => s,
            Err(e) if e.is_not_found(&["NoSuchBucket"]) => return Ok(ReadResult::Gone),
            Err(e) => return Err(call(&bucket, &region, e).diag("Reading S3 bucket versioning")),
        };
        let mut st = state.clone();
        // A bucket never versioned reads as "Disabled", which differs from any
        // valid configuration, so the drift shows in the plan.
        st.set(
            "status",
            Value::string(status.unwrap_or_else(|| NEVER_ENABLED.into())),
        );
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
        self.create(ctx, planned, config).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        let aws = ctx.meta()?;
        if prior.get("status").as_str() != Some("Enabled") {
            return Ok(());
        }
        let Some((bucket, region)) =
            existing(ctx, aws, prior, "Suspending S3 bucket versioning").await?
        else {
            return Ok(());
        };
        let s3 = aws.s3(&region);
        let conf = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::Suspended)
            .build();
        let res = send(
            ctx.cancel_token(),
            s3.put_bucket_versioning()
                .bucket(&bucket)
                .versioning_configuration(conf)
                .send(),
        )
        .await;
        ok_if_gone(res, |e| e.is(&["NoSuchBucket"]))
            .map_err(|e| call(&bucket, &region, e).diag("Suspending S3 bucket versioning"))
    }

    async fn import(&self, ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let (bucket, region) = import_target(ctx, id, "S3 bucket versioning").await?;
        Ok(Value::object([
            ("bucket", Value::string(&bucket)),
            ("region", Value::string(region)),
        ]))
    }
}

fn call(bucket: &str, region: &str, source: AwsError) -> S3Error {
    S3Error::Call {
        action: "reading versioning of",
        bucket: bucket.into(),
        region: region.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(status: &str) -> Vec<String> {
        let c = Value::object([
            ("bucket", Value::string("assets")),
            ("status", Value::string(status)),
        ]);
        crate::testing::validate_resource(&VersioningResource, &c)
            .0
            .into_iter()
            .map(|x| x.detail)
            .collect()
    }

    #[test]
    fn disabled_is_refused_with_an_explanation() {
        assert!(errors("Disabled")[0].contains("can only be Suspended"));
        assert_eq!(errors("enabled").len(), 1);
        assert!(errors("Enabled").is_empty());
        assert!(errors("Suspended").is_empty());
    }
}
