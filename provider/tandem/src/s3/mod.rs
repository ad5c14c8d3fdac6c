//! S3: buckets, versioning and cross-region replication. One file per
//! resource; shared here: the `region` argument every resource takes (so one
//! provider block serves all regions), import IDs, and the error type.

pub mod bucket;
pub mod replication;
pub mod versioning;

use std::sync::Arc;

use tfplugin6::{
    AttrPath, Attribute, Ctx, DataSource, Diagnostic, Diagnostics, Plan, Resource, Type, Value,
};

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

/// The `region` argument shared by every S3 resource.
pub(crate) fn region_attribute() -> Attribute {
    Attribute::optional_computed(
        "region",
        Type::String,
        "Region of the bucket. Defaults to the provider's region, so one provider block can manage buckets in \
         every region without aliases. Changing it replaces the resource.",
    )
    .force_new()
}

/// Plans an unset `region` as the provider's region, so it is known (and
/// shown) at plan time.
pub(crate) fn plan_region(ctx: &Ctx<Aws>, plan: &mut Plan) {
    if plan.planned.get("region").is_unknown() && plan.config.get("region").is_null() {
        if let Some(aws) = ctx.meta_opt() {
            plan.planned
                .set("region", Value::string(aws.default_region()));
        }
    }
}

/// The bucket and region of a state or plan value.
pub(crate) fn target(v: &Value, aws: &Aws) -> (String, String) {
    let bucket = v.get("bucket").as_str().unwrap_or_default().to_string();
    (bucket, aws.region_or_default(v.get("region").as_str()))
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
    aws: &Aws,
    id: &str,
    what: &str,
) -> Result<(String, String), Diagnostics> {
    let (bucket, region) = parse_import_id(id)?;
    if let Some(r) = region {
        return Ok((bucket, r));
    }
    let found = find_bucket_region(aws, &bucket).await.map_err(|source| {
        S3Error::Call {
            action: "locating",
            bucket: bucket.clone(),
            region: aws.default_region().into(),
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

/// Checks a bucket name at plan time (shared with the proxy's config check).
pub(crate) fn check_bucket_name(v: &Value, path: AttrPath, diags: &mut Diagnostics) {
    if let Some(b) = v.as_str() {
        if let Some(p) = tandem_fleet_config::bucket_name_problem(b) {
            diags.error_at(path, "Invalid bucket name", format!("{p}."));
        } else if b.starts_with("xn--") || b.ends_with("-s3alias") || b.ends_with("--ol-s3") {
            diags.error_at(
                path,
                "Invalid bucket name",
                format!("{b:?} uses a prefix or suffix S3 reserves."),
            );
        }
    }
}

/// The bucket's region as S3 reports it (GetBucketLocation), for imports
/// that do not say.
pub(crate) async fn find_bucket_region(
    aws: &Aws,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    let s3 = aws.s3(aws.default_region());
    match s3.get_bucket_location().bucket(bucket).send().await {
        Ok(out) => Ok(Some(
            match out.location_constraint().map(|c| c.as_str().to_string()) {
                // S3's legacy answers: none for us-east-1, "EU" for eu-west-1.
                None => "us-east-1".to_string(),
                Some(c) if c.is_empty() => "us-east-1".to_string(),
                Some(c) if c == "EU" => "eu-west-1".to_string(),
                Some(c) => c,
            },
        )),
        Err(e) => {
            let e = crate::aws::aws_error(&e);
            if e.is_not_found(&["NoSuchBucket"]) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
