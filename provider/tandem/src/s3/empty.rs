//! Emptying a bucket for `force_destroy`: every object version and delete
//! marker, page by page. S3 may refuse some of them (Object Lock, a
//! policy); those are collected with S3's reason instead of being listed
//! and retried for ever, and the work is bounded and stops at once when
//! Terraform asks the provider to stop.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use tokio_util::sync::CancellationToken;

use crate::aws::{aws_error, cancellable, send, AwsError};

/// Most keys one DeleteObjects call takes (S3's limit).
const DELETE_BATCH: usize = 1000;
/// Passes over the whole bucket before giving up: one deletes, the next
/// confirms it is empty; more are needed only while something keeps
/// writing to the bucket, which a destroy cannot outrun for ever.
const MAX_PASSES: usize = 5;
/// Refused versions named one by one in the error; the rest are counted,
/// so a bucket of millions of locked objects gives a readable message.
const MAX_LISTED: usize = 20;

/// One object version S3 would not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Object key.
    pub key: String,
    /// Version ID; `None` for unversioned objects.
    pub version_id: Option<String>,
    /// S3's answer.
    pub error: AwsError,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version_id {
            Some(v) => write!(f, "{} (version {v}): {}", self.key, self.error),
            None => write!(f, "{}: {}", self.key, self.error),
        }
    }
}

/// Why a bucket could not be emptied.
#[derive(Debug, thiserror::Error)]
pub enum EmptyError {
    /// Listing or deleting failed as a whole (or Terraform asked to stop).
    #[error("{0}")]
    Call(AwsError),
    /// S3 refused to delete these versions; everything else is gone.
    #[error("{} object version(s) could not be deleted ({deleted} were): {}", refused.len(), list(refused))]
    Refused {
        /// The refusals, in key order.
        refused: Vec<Refused>,
        /// How many versions were deleted.
        deleted: usize,
    },
    /// New versions kept appearing faster than they were deleted.
    #[error("new object versions kept appearing: {deleted} deleted in {passes} passes over the bucket, and it is still not empty")]
    Endless {
        /// Passes made.
        passes: usize,
        /// Versions deleted meanwhile.
        deleted: usize,
    },
}

fn list(refused: &[Refused]) -> String {
    let mut parts: Vec<String> = refused
        .iter()
        .take(MAX_LISTED)
        .map(Refused::to_string)
        .collect();
    if refused.len() > MAX_LISTED {
        parts.push(format!("and {} more", refused.len() - MAX_LISTED));
    }
    parts.join("; ")
}

/// Deletes every version and delete marker of `bucket`; returns how many.
/// With `bypass_governance`, versions under an Object Lock governance
/// retention are deleted too (`x-amz-bypass-governance-retention`).
pub async fn empty_bucket(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
    bypass_governance: bool,
) -> Result<usize, EmptyError> {
    let mut total = 0;
    for _ in 0..MAX_PASSES {
        let mut refused: BTreeMap<(String, Option<String>), AwsError> = BTreeMap::new();
        let mut deleted = 0;
        let mut marker: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = send(
                cancel,
                s3.list_object_versions()
                    .bucket(bucket)
                    .set_key_marker(marker.0.take())
                    .set_version_id_marker(marker.1.take())
                    .send(),
            )
            .await
            .map_err(EmptyError::Call)?;
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
            for chunk in ids.chunks(DELETE_BATCH) {
                let (d, r) = delete_batch(s3, cancel, bucket, chunk, bypass_governance).await?;
                deleted += d;
                refused.extend(r.into_iter().map(|x| ((x.key, x.version_id), x.error)));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            marker = (
                page.next_key_marker().map(str::to_string),
                page.next_version_id_marker().map(str::to_string),
            );
            if marker.0.is_none() {
                break;
            }
        }
        total += deleted;
        if deleted == 0 {
            return if refused.is_empty() {
                Ok(total)
            } else {
                Err(EmptyError::Refused {
                    refused: refused
                        .into_iter()
                        .map(|((key, version_id), error)| Refused {
                            key,
                            version_id,
                            error,
                        })
                        .collect(),
                    deleted: total,
                })
            };
        }
        // Something was deleted: the next pass confirms nothing is left
        // but what S3 refused.
    }
    Err(EmptyError::Endless {
        passes: MAX_PASSES,
        deleted: total,
    })
}

/// Deletes one batch; returns how many went and what S3 refused.
async fn delete_batch(
    s3: &aws_sdk_s3::Client,
    cancel: &CancellationToken,
    bucket: &str,
    chunk: &[ObjectIdentifier],
    bypass_governance: bool,
) -> Result<(usize, Vec<Refused>), EmptyError> {
    let del = Delete::builder()
        .set_objects(Some(chunk.to_vec()))
        .quiet(true)
        .build()
        .map_err(|e| EmptyError::Call(AwsError::local(e.to_string())))?;
    let bypass = bypass_governance.then_some(true);
    // Batch deletes are an optimisation: some S3-compatible stores (moto
    // among them, for the Rust SDK's checksummed request) answer 500. Try
    // the batch once, then fall back to one call per version.
    let batch = cancellable(
        cancel,
        s3.delete_objects()
            .bucket(bucket)
            .delete(del)
            .set_bypass_governance_retention(bypass)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1)),
            )
            .send(),
    )
    .await
    .map_err(EmptyError::Call)?;
    match batch {
        Ok(out) => {
            let refused: Vec<Refused> = out
                .errors()
                .iter()
                .map(|e| Refused {
                    key: e.key().unwrap_or_default().to_string(),
                    version_id: e.version_id().map(str::to_string),
                    error: AwsError {
                        code: e.code().map(str::to_string),
                        message: e.message().unwrap_or_default().to_string(),
                        status: None,
                        cancelled: false,
                    },
                })
                .collect();
            Ok((chunk.len() - refused.len(), refused))
        }
        Err(e) => {
            let e = aws_error(&e);
            if e.status.is_none_or(|s| s < 500) {
                return Err(EmptyError::Call(e));
            }
            tracing::warn!(bucket, error = %e, "DeleteObjects failed; deleting versions one by one");
            let mut refused = Vec::new();
            for id in chunk {
                let one = send(
                    cancel,
                    s3.delete_object()
                        .bucket(bucket)
                        .key(id.key())
                        .set_version_id(id.version_id().map(str::to_string))
                        .set_bypass_governance_retention(bypass)
                        .send(),
                )
                .await;
                match one {
                    Ok(_) => {}
                    Err(e) if e.cancelled => return Err(EmptyError::Call(e)),
                    Err(error) => refused.push(Refused {
                        key: id.key().to_string(),
                        version_id: id.version_id().map(str::to_string),
                        error,
                    }),
                }
            }
            Ok((chunk.len() - refused.len(), refused))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(n: usize) -> Vec<Refused> {
        (0..n)
            .map(|i| Refused {
                key: format!("k{i:03}"),
                version_id: Some(format!("v{i}")),
                error: AwsError {
                    code: Some("AccessDenied".into()),
                    message: "Access Denied".into(),
                    status: None,
                    cancelled: false,
                },
            })
            .collect()
    }

    #[tokio::test]
    async fn a_stop_ends_emptying_before_any_call() {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                // Nothing listens there: the call must never be made.
                .endpoint_url("http://127.0.0.1:9")
                .build(),
        );
        let cancel = CancellationToken::new();
        cancel.cancel();
        match empty_bucket(&s3, &cancel, "b", false).await {
            Err(EmptyError::Call(e)) => assert!(e.cancelled, "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_refusal_is_named_with_its_reason_and_long_lists_are_cut() {
        let e = EmptyError::Refused {
            refused: refused(2),
            deleted: 5,
        };
        assert_eq!(
            e.to_string(),
            "2 object version(s) could not be deleted (5 were): k000 (version v0): AccessDenied: Access Denied; \
             k001 (version v1): AccessDenied: Access Denied"
        );
        let e = EmptyError::Refused {
            refused: refused(MAX_LISTED + 3),
            deleted: 0,
        };
        assert!(e.to_string().ends_with("; and 3 more"), "{e}");
    }
}
