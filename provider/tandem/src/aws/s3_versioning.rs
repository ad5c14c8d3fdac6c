//! Reading a bucket's versioning status, tolerating moto's answer.
//!
//! moto 5.2.5 returns GetBucketVersioning as `<GetBucketVersioningResponse>`
//! instead of S3's `<VersioningConfiguration>`. botocore ignores the root
//! element; the Rust SDK does not and reports "unhandled error" on HTTP 200.
//! The raw body is still attached to that error, so the status is read from
//! it rather than failing every versioning check against the emulator.

use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use tokio_util::sync::CancellationToken;

use super::retry::{wait_for, RetryError};
use super::{aws_error, cancellable, AwsError};

/// How long a versioning change may take to read back. S3 applies it
/// eventually (its guide asks to wait up to 15 minutes before relying on
/// it for writes); reads normally agree within seconds, and
/// terraform-provider-aws waits a minute for the same.
pub const VERSIONING_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between those reads: prompt, yet one request a second at most.
const VERSIONING_POLL: Duration = Duration::from_secs(1);

/// `Some("Enabled")`, `Some("Suspended")`, or `None` when never enabled.
pub async fn versioning_status(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    match cancellable(cancel, s3.get_bucket_versioning().bucket(bucket).send()).await? {
        Ok(out) => Ok(out.status().map(|s| s.as_str().to_string())),
        Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 200 => {
            let body = se
                .raw()
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Ok(status_from_xml(&body))
        }
        Err(e) => Err(aws_error(&e)),
    }
}

/// Waits until versioning reads back as `want`, so the next refresh sees
/// what was just written rather than the state before it.
pub async fn wait_versioning_status(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
    want: &str,
) -> Result<(), RetryError> {
    wait_for(
        cancel,
        &format!("versioning of S3 bucket {bucket:?} to read {want}"),
        VERSIONING_PROPAGATION_TIMEOUT,
        VERSIONING_POLL,
        || async {
            Ok(versioning_status(s3, cancel, bucket)
                .await?
                .filter(|s| s == want)
                .map(|_| ()))
        },
    )
    .await
}

/// The `<Status>` of a versioning document, whatever its root element.
pub fn status_from_xml(body: &str) -> Option<String> {
    let start = body.find("<Status>")? + "<Status>".len();
    let end = body[start..].find("</Status>")? + start;
    Some(body[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_from_either_root_element() {
        let moto = r#"<?xml version="1.0"?><GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        let s3 = r#"<VersioningConfiguration xmlns="x"><Status>Suspended</Status></VersioningConfiguration>"#;
        assert_eq!(status_from_xml(moto).as_deref(), Some("Enabled"));
        assert_eq!(status_from_xml(s3).as_deref(), Some("Suspended"));
        assert_eq!(status_from_xml("<VersioningConfiguration/>"), None);
    }
}
