//! S3: buckets, versioning and cross-region replication. One file per
//! resource; shared here: the `region` argument every resource takes (so one
//! provider block serves all regions), finding an existing bucket's home
//! region (never assuming the provider's), import IDs, and the error type.

pub mod bucket;
pub mod empty;
pub mod replication;
pub mod versioning;

use std::sync::Arc;

use tfplugin6::{
    AttrPath, Attribute, Ctx, DataSource, Diagnostic, Diagnostics, Plan, Resource, Type, Value,
};

use crate::aws::retry::{retry_while, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::s3_region::find_bucket_region;
use crate::aws::{Aws, AwsError};

/// S3 resource types.
pub fn resources() -> Vec<Arc<dyn Resource<Aws>>> {
    vec![
        Arc::new(bucket::BucketResource),
        Arc::new(versioning::VersioningResource),
        Arc::new(replication::ReplicationResource),
    ]
}

/// S3 data source types.
pub fn data_sources() -> Vec<Arc<dyn DataSource<Aws>>> {
    vec![Arc::new(bucket::BucketDataSource)]
}

/// Errors of S3 calls, saying what was done to which bucket where.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// An S3 call failed.
    #[error("{action} S3 bucket {bucket:?} ({region}): {source}")]
    Call {
        /// What was being done, e.g. "creating".
        action: &'static str,
        /// Bucket name.
        bucket: String,
        /// Region.
        region: String,
        /// Cause.
        #[source]
        source: AwsError,
    },
    /// force_destroy could not delete every object version.
    #[error("emptying S3 bucket {bucket:?} ({region}): {source}")]
    Empty {
        /// Bucket name.
        bucket: String,
        /// Region.
        region: String,
        /// What was refused, or why it stopped.
        #[source]
        source: empty::EmptyError,
    },
    /// The bucket's home region could not be found.
    #[error("locating S3 bucket {bucket:?}: {source}")]
    Locate {
        /// Bucket name.
        bucket: String,
        /// Cause.
        #[source]
        source: AwsError,
    },
    /// Retrying for eventual consistency or waiting ran out.
    #[error("{action} S3 bucket {bucket:?} ({region}): {source}")]
    Retry {
        /// What was being done.
        action: &'static str,
        /// Bucket name.
        bucket: String,
        /// Region.
        region: String,
        /// Cause.
        #[source]
        source: crate::aws::retry::RetryError,
    },
}

impl S3Error {
    /// As a diagnostic with a summary.
    pub fn diag(&self, summary: &str) -> Diagnostics {
        Diagnostic::error(summary, tfplugin6::diag::error_chain(self)).into()
    }
}

/// The `region` argument of a bucket: where it is created.
pub(crate) fn region_attribute() -> Attribute {
    Attribute::optional_computed(
        "region",
        Type::String,
        "Region of the bucket. Defaults to the provider's region, so one provider block can manage buckets in \
         every region without aliases. Changing it replaces the resource.",
    )
    .force_new()
}

/// The `region` argument of resources on an existing bucket (versioning,
/// replication): the bucket's own region, looked up when unset.
pub(crate) fn home_region_attribute() -> Attribute {
    Attribute::optional_computed(
        "region",
        Type::String,
        "Region of the bucket. When unset it is looked up (HeadBucket's `x-amz-bucket-region`, else \
         GetBucketLocation), never assumed to be the provider's region; when set it must be the bucket's region. \
         Changing it replaces the resource.",
    )
    .force_new()
}

/// Plans an unset `region` as the provider's region, so it is known (and
/// shown) at plan time: a new bucket is created there.
pub(crate) fn plan_region(ctx: &Ctx<Aws>, plan: &mut Plan) {
    if plan.planned.get("region").is_unknown() && plan.config.get("region").is_null() {
        if let Some(aws) = ctx.meta_opt() {
            plan.planned
                .set("region", Value::string(aws.default_region()));
        }
    }
}

/// Plans `region` of a resource on an existing bucket: the bucket's home
/// region when it exists already (a configured region must match it),
/// else unknown until apply finds it. Nothing to look up when the bucket
/// and region are those of the prior state.
pub(crate) async fn plan_home_region(ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
    let Some(bucket) = plan.planned.get("bucket").as_str().map(str::to_string) else {
        return Ok(());
    };
    let configured = plan.config.get("region").clone();
    let same_bucket = plan.prior.get("bucket").as_str() == Some(bucket.as_str());
    if same_bucket && configured.is_null() && plan.prior.get("region").as_str().is_some() {
        return Ok(());
    }
    if configured.is_null() {
        plan.planned.set("region", Value::Unknown);
    }
    let Some(aws) = ctx.meta_opt() else {
        return Ok(());
    };
    // Best effort: a bucket created in this same apply is found at apply.
    let Ok(Some(home)) = find_bucket_region(aws, ctx.cancel_token(), &bucket).await else {
        return Ok(());
    };
    match configured.as_str() {
        Some(c) if c != home => Err(Diagnostic::error(
            "Wrong region for the bucket",
            format!("S3 bucket {bucket:?} is in {home}, not {c}. Remove `region` to have it looked up, or set it to {home:?}."),
        )
        .at(AttrPath::root("region"))
        .into()),
        Some(_) => Ok(()),
        None => {
            if !configured.is_unknown() {
                plan.planned.set("region", Value::string(home));
            }
            Ok(())
        }
    }
}

/// The bucket a state or plan names, and its home region (looked up, never
/// assumed); `None` when no such bucket exists.
pub(crate) async fn home(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    v: &Value,
) -> Result<Option<(String, String)>, S3Error> {
    let bucket = v.get("bucket").as_str().unwrap_or_default().to_string();
    match find_bucket_region(aws, ctx.cancel_token(), &bucket).await {
        Ok(Some(region)) => Ok(Some((bucket, region))),
        Ok(None) => Ok(None),
        Err(source) => Err(S3Error::Locate { bucket, source }),
    }
}

/// The home region of the bucket a new resource names: found (retrying
/// while a bucket created moments ago is not visible yet), and equal to
/// the planned region when that is known.
pub(crate) async fn home_for_create(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    planned: &Value,
    summary: &str,
) -> Result<(String, String), Diagnostics> {
    let bucket = planned
        .get("bucket")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cancel = ctx.cancel_token();
    let found = retry_while(
        cancel,
        EVENTUAL_CONSISTENCY_TIMEOUT,
        |e| e.is(&["NoSuchBucket"]),
        || async {
            find_bucket_region(aws, cancel, &bucket)
                .await?
                .ok_or_else(|| AwsError {
                    code: Some("NoSuchBucket".into()),
                    message: "The specified bucket does not exist".into(),
                    status: Some(404),
                    cancelled: false,
                })
        },
    )
    .await
    .map_err(|source| {
        S3Error::Retry {
            action: "locating",
            bucket: bucket.clone(),
            region: "any region".into(),
            source,
        }
        .diag(summary)
    })?;
    if let Some(planned_region) = planned.get("region").as_str().filter(|r| *r != found) {
        return Err(Diagnostic::error(
            "Wrong region for the bucket",
            format!("S3 bucket {bucket:?} is in {found}, not {planned_region}."),
        )
        .at(AttrPath::root("region"))
        .into());
    }
    Ok((bucket, found))
}

/// Parses `bucket` or `bucket@region`.
pub fn parse_import_id(id: &str) -> Result<(String, Option<String>), Diagnostics> {
    let (bucket, region) = match id.split_once('@') {
        Some((b, r)) => (b, Some(r)),
        None => (id, None),
    };
    let bad = |why: &str| -> Diagnostics {
        Diagnostic::error(
            "Invalid import ID",
            format!("{id:?}: {why}. Use `bucket` or `bucket@region`."),
        )
        .into()
    };
    if let Some(p) = tandem_fleet_config::bucket_name_problem(bucket) {
        return Err(bad(&p));
    }
    if region.is_some_and(|r| r.is_empty() || r.contains(['@', '/'])) {
        return Err(bad("the region is empty or malformed"));
    }
    Ok((bucket.to_string(), region.map(str::to_string)))
}

/// Resolves an import ID (`bucket` or `bucket@region`) to the bucket and
/// its region, looking the region up when the ID does not say. A bucket
/// that does not exist is an error naming it.
pub(crate) async fn import_target(
    ctx: &Ctx<Aws>,
    id: &str,
    what: &str,
) -> Result<(String, String), Diagnostics> {
    let aws = ctx.meta()?;
    let (bucket, region) = parse_import_id(id)?;
    if let Some(r) = region {
        return Ok((bucket, r));
    }
    let found = find_bucket_region(aws, ctx.cancel_token(), &bucket)
        .await
        .map_err(|source| {
            S3Error::Locate {
                bucket: bucket.clone(),
                source,
            }
            .diag(&format!("Importing {what}"))
        })?;
    match found {
        Some(r) => Ok((bucket, r)),
        None => Err(Diagnostic::error(
            format!("Cannot import {what}"),
            format!("S3 bucket {bucket:?} does not exist."),
        )
        .into()),
    }
}

/// What [`valid_bucket_name`] accepts, for the schema's docs.
pub(crate) const BUCKET_NAME: &str =
    "an S3 bucket name (3-63 lowercase letters, digits, `.` and `-`)";

/// A bucket name S3 accepts: the proxy's rules (shared through
/// fleet-config), and none of the prefixes and suffixes S3 reserves.
pub(crate) fn valid_bucket_name(b: &str) -> Result<(), String> {
    if let Some(p) = tandem_fleet_config::bucket_name_problem(b) {
        return Err(p);
    }
    if b.starts_with("xn--") || b.ends_with("-s3alias") || b.ends_with("--ol-s3") {
        return Err("it uses a prefix or suffix S3 reserves".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(valid_bucket_name("assets-eu-1").is_ok());
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
            assert!(valid_bucket_name(bad).is_err(), "{bad} should be refused");
        }
        assert!(valid_bucket_name(&"a".repeat(64))
            .unwrap_err()
            .contains("3 to 63"));
    }

    #[test]
    fn import_ids() {
        assert_eq!(
            parse_import_id("assets-eu").unwrap(),
            ("assets-eu".into(), None)
        );
        assert_eq!(
            parse_import_id("assets-eu@eu-west-1").unwrap(),
            ("assets-eu".into(), Some("eu-west-1".into()))
        );
        assert!(parse_import_id("Bad_Name").is_err());
        assert!(parse_import_id("ok-name@").is_err());
    }
}
