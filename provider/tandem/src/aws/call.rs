//! Every AWS call goes through [`send`] (or [`cancellable`] when the caller
//! needs the SDK's own error): when Terraform asks the provider to stop
//! (StopProvider, e.g. Ctrl-C), the call in flight is abandoned at once,
//! together with the SDK's own retries of a throttled endpoint, which
//! could otherwise keep an interrupted apply waiting for minutes.

use std::future::Future;

use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use tokio_util::sync::CancellationToken;

use super::error::HttpStatus;
use super::{aws_error, AwsError};

/// Runs `call` unless `cancel` fires first; then the call is dropped and
/// [`AwsError::cancelled`] returned.
pub async fn cancellable<F: Future>(
    cancel: &CancellationToken,
    call: F,
) -> Result<F::Output, AwsError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(AwsError::cancelled()),
        out = call => Ok(out),
    }
}

/// Sends one SDK request, abandoned when `cancel` fires, with its error
/// reduced to an [`AwsError`].
pub async fn send<T, E, R>(
    cancel: &CancellationToken,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    cancellable(cancel, call).await?.map_err(|e| aws_error(&e))
}

/// [`send`] as a method, for request chains: `.send().stoppable(cancel)`.
pub trait Stoppable<T, E, R>: Future<Output = Result<T, SdkError<E, R>>> + Sized
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    /// This SDK call, abandoned when `cancel` fires, with its error reduced
    /// to an [`AwsError`].
    fn stoppable(self, cancel: &CancellationToken) -> impl Future<Output = Result<T, AwsError>> {
        send(cancel, self)
    }
}

impl<F, T, E, R> Stoppable<T, E, R> for F
where
    F: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_abandons_the_call_in_flight() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            c2.cancel();
        });
        let never = std::future::pending::<()>();
        let e = cancellable(&cancel, never).await.unwrap_err();
        assert!(e.cancelled, "{e}");
        assert_eq!(
            cancellable(&CancellationToken::new(), async { 7 })
                .await
                .unwrap(),
            7
        );
    }
}
