//! Where a bucket lives. S3 answers a request sent to the wrong region
//! with 301 PermanentRedirect, so every call on an existing bucket goes to
//! its home region, found once per provider process and remembered:
//! HeadBucket's `x-amz-bucket-region` header (present on 200, 301 and 403,
//! so it also locates another account's bucket), else GetBucketLocation
//! for S3-compatible stores that do not send the header.

use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_smithy_runtime_api::client::result::SdkError;
use tokio_util::sync::CancellationToken;

use super::{aws_error, cancellable, send, Aws, AwsError};

/// The answer to "where is this bucket".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketHome {
    /// No bucket of that name exists.
    Missing,
    /// The bucket lives in this region and our credentials may use it.
    Ours(String),
    /// The bucket lives in this region but belongs to someone who does not
    /// let us in (another account, or a policy): S3 said 403.
    Forbidden(String),
}

impl BucketHome {
    /// The region, whoever owns the bucket.
    pub fn region(&self) -> Option<&str> {
        match self {
            BucketHome::Missing => None,
            BucketHome::Ours(r) | BucketHome::Forbidden(r) => Some(r),
        }
    }
}

/// Region codes of GetBucketLocation in S3's legacy spelling: none for
/// us-east-1, `EU` for eu-west-1.
fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(c) => c.to_string(),
    }
}

/// Looks the bucket up with HeadBucket (signed for the provider's region;
/// S3 answers with the bucket's region whatever region was asked).
pub async fn find_bucket_home(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
) -> Result<BucketHome, AwsError> {
    let s3 = aws.s3(aws.default_region());
    let head = cancellable(cancel, s3.head_bucket().bucket(bucket).send()).await?;
    let (header, status, err) = match head {
        Ok(out) => (out.bucket_region().map(str::to_string), 200, None),
        Err(e) => {
            let header = region_header(&e);
            let err = aws_error(&e);
            (header, err.status.unwrap_or(0), Some(err))
        }
    };
    let home = match (status, header) {
        (404, None) => BucketHome::Missing,
        (403, Some(r)) => BucketHome::Forbidden(r),
        (200 | 301, Some(r)) => BucketHome::Ours(r),
        // No header: an S3-compatible store, or S3 without the header.
        (200 | 301, None) => match locate(aws, cancel, bucket).await? {
            Some(r) => BucketHome::Ours(r),
            None => BucketHome::Missing,
        },
        _ => return Err(err.unwrap_or_else(|| AwsError::local("HeadBucket gave no answer"))),
    };
    if let Some(r) = home.region() {
        aws.remember_bucket_region(bucket, r);
    }
    Ok(home)
}

fn region_header(
    e: &SdkError<HeadBucketError, aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    e.raw_response()
        .and_then(|r| r.headers().get("x-amz-bucket-region"))
        .map(str::to_string)
}

async fn locate(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    let s3 = aws.s3(aws.default_region());
    match send(cancel, s3.get_bucket_location().bucket(bucket).send()).await {
        Ok(out) => Ok(Some(location_region(
            out.location_constraint().map(|c| c.as_str()),
        ))),
        Err(e) if e.is_not_found(&["NoSuchBucket"]) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The bucket's home region: remembered, else looked up; `None` when the
/// bucket does not exist.
pub async fn find_bucket_region(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    if let Some(r) = aws.remembered_bucket_region(bucket) {
        return Ok(Some(r));
    }
    Ok(find_bucket_home(aws, cancel, bucket)
        .await?
        .region()
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_location_spellings() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("ap-south-1")), "ap-south-1");
        assert_eq!(
            BucketHome::Forbidden("eu-west-1".into()).region(),
            Some("eu-west-1")
        );
        assert_eq!(BucketHome::Missing.region(), None);
    }
}
