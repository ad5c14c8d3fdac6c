//! Bounded retries and waits. The SDK already retries throttling
//! (including Route 53's PriorRequestNotComplete) up to `max_retries`; these
//! helpers cover what it cannot know: eventual consistency right after a
//! create, and waiting for a change to propagate.

use std::future::Future;
use std::time::Duration;

// tokio's clock, so tests can run waits on paused time.
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::AwsError;

/// First pause between attempts.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between attempts; long enough not to hammer a throttled
/// API, short enough that a consistent result is seen promptly.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long to retry errors that are expected right after creating
/// something (e.g. NoSuchHostedZone, NoSuchBucket): AWS documents minutes
/// of propagation for S3 in the worst case.
pub const EVENTUAL_CONSISTENCY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a retried call or wait stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The last attempt's error, not retryable or out of time.
    #[error("{0}")]
    Aws(AwsError),
    /// The deadline passed while waiting for a state.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// Terraform asked the provider to stop.
    #[error("cancelled: Terraform asked the provider to stop")]
    Cancelled,
}

impl From<AwsError> for RetryError {
    /// A call abandoned by StopProvider is a cancellation, whichever call it was.
    fn from(e: AwsError) -> RetryError {
        if e.cancelled {
            RetryError::Cancelled
        } else {
            RetryError::Aws(e)
        }
    }
}

/// Retries `op` while it fails with an error `retryable` accepts, until
/// `timeout` passes.
pub async fn retry_while<T, F, Fut>(
    cancel: &CancellationToken,
    timeout: Duration,
    retryable: impl Fn(&AwsError) -> bool,
    mut op: F,
) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let deadline = Instant::now() + timeout;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.cancelled && retryable(&e) && Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, ?backoff, "retrying");
                pause(cancel, backoff).await?;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Polls `check` until it returns `Some`, or `timeout` passes.
pub async fn wait_for<T, F, Fut>(
    cancel: &CancellationToken,
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, AwsError>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() + interval > timeout {
            return Err(RetryError::Timeout {
                what: what.to_string(),
                after: start.elapsed(),
            });
        }
        pause(cancel, interval).await?;
    }
}

/// Sleeps for `d` unless Terraform asks the provider to stop first.
pub(crate) async fn pause(cancel: &CancellationToken, d: Duration) -> Result<(), RetryError> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = cancel.cancelled() => Err(RetryError::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(code: &str) -> AwsError {
        AwsError {
            code: Some(code.into()),
            message: String::new(),
            status: Some(400),
            cancelled: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_retryable_errors_within_the_bound() {
        let n = AtomicU32::new(0);
        let tok = CancellationToken::new();
        let r = retry_while(
            &tok,
            Duration::from_secs(60),
            |e| e.is(&["NoSuchHostedZone"]),
            || async {
                if n.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(err("NoSuchHostedZone"))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(n.load(Ordering::SeqCst), 4);

        let r: Result<(), _> = retry_while(
            &tok,
            Duration::from_secs(60),
            |e| e.is(&["X"]),
            || async { Err(err("AccessDenied")) },
        )
        .await;
        assert!(matches!(r, Err(RetryError::Aws(e)) if e.is(&["AccessDenied"])));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let n = AtomicU32::new(0);
        let tok = CancellationToken::new();
        let r: Result<(), _> = retry_while(
            &tok,
            Duration::from_secs(10),
            |_| true,
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(err("NoSuchBucket"))
            },
        )
        .await;
        assert!(r.is_err());
        let tries = n.load(Ordering::SeqCst);
        assert!((3..10).contains(&tries), "{tries}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_with_what_it_waited_for() {
        let tok = CancellationToken::new();
        let r: Result<(), _> = wait_for(
            &tok,
            "change C1 INSYNC",
            Duration::from_secs(5),
            Duration::from_secs(1),
            || async { Ok(None) },
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("change C1 INSYNC"), "{e}");
    }

    #[tokio::test]
    async fn a_cancelled_call_ends_a_retry_as_a_cancellation() {
        let tok = CancellationToken::new();
        let r: Result<(), _> = retry_while(
            &tok,
            Duration::from_secs(60),
            |_| true,
            || async { Err(AwsError::cancelled()) },
        )
        .await;
        assert!(matches!(r, Err(RetryError::Cancelled)));
    }

    #[tokio::test]
    async fn cancellation_stops_waiting() {
        let tok = CancellationToken::new();
        tok.cancel();
        let r: Result<(), _> = wait_for(
            &tok,
            "x",
            Duration::from_secs(60),
            Duration::from_secs(1),
            || async { Ok(None) },
        )
        .await;
        assert!(matches!(r, Err(RetryError::Cancelled)));
    }
}
