//! Rendering SDK errors the way Terraform users read them: the AWS error
//! code and message, never the SDK's debug structure or a backtrace.

use std::fmt;

use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// An AWS call's failure, reduced to what matters for retries and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// AWS error code, e.g. `NoSuchHostedZone`; `None` for transport failures.
    pub code: Option<String>,
    /// Human message.
    pub message: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// True when no answer came because Terraform asked the provider to
    /// stop (StopProvider) while the call was in flight.
    pub cancelled: bool,
}

impl AwsError {
    /// A call abandoned because Terraform asked the provider to stop.
    pub fn cancelled() -> AwsError {
        AwsError {
            code: None,
            message: "cancelled: Terraform asked the provider to stop".into(),
            status: None,
            cancelled: true,
        }
    }

    /// A failure before any request was sent, e.g. a request the SDK's
    /// builder refused.
    pub fn local(message: impl Into<String>) -> AwsError {
        AwsError {
            code: None,
            message: message.into(),
            status: None,
            cancelled: false,
        }
    }

    /// True when the code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// True for a 404 or one of the given not-found codes.
    pub fn is_not_found(&self, codes: &[&str]) -> bool {
        self.status == Some(404) || self.is(codes)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, self.message.is_empty()) {
            (Some(c), false) => write!(f, "{c}: {}", self.message),
            (Some(c), true) => f.write_str(c),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for AwsError {}

/// Deletes of something already gone succeed: `Ok` when the call worked
/// or failed with an error `gone` accepts, else the error for the caller
/// to describe.
pub fn ok_if_gone<T>(
    r: Result<T, AwsError>,
    gone: impl Fn(&AwsError) -> bool,
) -> Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reduces any SDK error to an [`AwsError`].
pub fn aws_error<E, R>(e: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + HttpStatus + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status_code();
            AwsError {
                code: err.code().map(str::to_string),
                // Without a message (e.g. HEAD responses have no body) the
                // status is the only clue; "unhandled error" alone is not.
                message: err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}: {err}")),
                status: Some(status),
                cancelled: false,
            }
        }
        SdkError::TimeoutError(_) => AwsError {
            code: None,
            message: "request timed out".into(),
            status: None,
            cancelled: false,
        },
        SdkError::DispatchFailure(_) => AwsError {
            code: None,
            message: format!("could not reach AWS: {}", cause(e)),
            status: None,
            cancelled: false,
        },
        SdkError::ResponseError(r) => AwsError {
            code: None,
            message: format!("unreadable response: {}", cause(e)),
            status: Some(r.raw().status_code()),
            cancelled: false,
        },
        other => AwsError {
            code: None,
            message: source_chain(other),
            status: None,
            cancelled: false,
        },
    }
}

fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    e.source()
        .map(source_chain)
        .unwrap_or_else(|| e.to_string())
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut s = e.source();
    while let Some(x) = s {
        let m = x.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        s = x.source();
    }
    parts.join(": ")
}

/// The HTTP status of a raw response type.
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_is_success_only_for_the_codes_given() {
        let gone = AwsError {
            code: Some("NoSuchBucket".into()),
            message: String::new(),
            status: Some(404),
            cancelled: false,
        };
        let denied = AwsError {
            code: Some("AccessDenied".into()),
            message: String::new(),
            status: Some(403),
            cancelled: false,
        };
        assert!(ok_if_gone::<()>(Err(gone), |e| e.is(&["NoSuchBucket"])).is_ok());
        assert!(ok_if_gone::<()>(Err(denied), |e| e.is(&["NoSuchBucket"])).is_err());
        assert!(ok_if_gone(Ok(1), |_| false).is_ok());
    }

    #[test]
    fn display_reads_like_aws_cli() {
        let e = AwsError {
            code: Some("NoSuchHostedZone".into()),
            message: "No hosted zone found with ID: Z1".into(),
            status: Some(404),
            cancelled: false,
        };
        assert_eq!(
            e.to_string(),
            "NoSuchHostedZone: No hosted zone found with ID: Z1"
        );
        assert!(e.is_not_found(&[]));
        assert!(e.is(&["NoSuchHostedZone"]));
    }
}
