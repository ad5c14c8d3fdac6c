//! The one error type of the Route 53 module. Every message says what was
//! being done, to which object, and why it failed, e.g.
//! `creating Route 53 failover record set (Z123/api.example.com/A): InvalidChangeBatch: ...`.

use tfplugin6::diag::error_chain;
use tfplugin6::{AttrPath, Diagnostic, Diagnostics};

use crate::aws::retry::RetryError;
use crate::aws::AwsError;

/// Route 53 failures, each carrying the action and object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Route53Error {
    /// An AWS call failed.
    #[error("{doing}: {source}")]
    Aws {
        /// What was being done, e.g. `reading Route 53 hosted zone (Z1)`.
        doing: String,
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// A bounded retry or wait gave up, or Terraform cancelled it.
    #[error("{doing}: {source}")]
    Retry {
        /// What was being done.
        doing: String,
        /// Why the retry or wait stopped.
        #[source]
        source: RetryError,
    },
    /// AWS answered without a field the operation needs.
    #[error("{doing}: the Route 53 response has no {field}")]
    Incomplete {
        /// What was being done.
        doing: String,
        /// The missing field.
        field: &'static str,
    },
    /// A request could not be built from the planned values.
    #[error("{doing}: invalid request: {message}")]
    Request {
        /// What was being done.
        doing: String,
        /// The SDK builder's complaint.
        message: String,
    },
    /// Records exist where a create would write, and overwriting was not allowed.
    #[error(
        "{doing}: record sets already exist ({existing}). Import them with `terraform import`, \
         or set `allow_overwrite = true` to adopt them"
    )]
    AlreadyExists {
        /// What was being done.
        doing: String,
        /// The existing record sets, `name TYPE set_identifier` each.
        existing: String,
    },
    /// A hosted zone still holds records and `force_destroy` is off.
    #[error(
        "{doing}: the zone still contains record sets other than its SOA and NS records. \
         Delete them first, or set `force_destroy = true` and apply before destroying"
    )]
    NotEmpty {
        /// What was being done.
        doing: String,
    },
    /// Someone else changed the object between our read and our write, and
    /// AWS refused to overwrite (e.g. HealthCheckVersionMismatch).
    #[error(
        "{doing}: it was changed by someone else meanwhile ({source}); nothing was overwritten. \
         Run `terraform plan` again to see the new state"
    )]
    Concurrent {
        /// What was being done.
        doing: String,
        /// The AWS refusal.
        #[source]
        source: AwsError,
    },
    /// An import ID that does not have the documented shape.
    #[error("invalid import ID {id:?}: {reason}")]
    ImportId {
        /// The ID given to `terraform import`.
        id: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// A zone lookup by name found nothing or too much.
    #[error("{doing}: {reason}")]
    Lookup {
        /// What was being done.
        doing: String,
        /// Why it failed.
        reason: String,
    },
}

impl Route53Error {
    /// An AWS failure while `doing`.
    pub fn aws(doing: impl Into<String>, source: AwsError) -> Route53Error {
        Route53Error::Aws {
            doing: doing.into(),
            source,
        }
    }

    /// A retry or wait failure while `doing`.
    pub fn retry(doing: impl Into<String>, source: RetryError) -> Route53Error {
        Route53Error::Retry {
            doing: doing.into(),
            source,
        }
    }

    /// A one-line summary for Terraform's bold line: the action, without the cause.
    fn summary(&self) -> String {
        let doing = match self {
            Route53Error::Aws { doing, .. }
            | Route53Error::Retry { doing, .. }
            | Route53Error::Incomplete { doing, .. }
            | Route53Error::Request { doing, .. }
            | Route53Error::AlreadyExists { doing, .. }
            | Route53Error::NotEmpty { doing, .. }
            | Route53Error::Concurrent { doing, .. }
            | Route53Error::Lookup { doing, .. } => doing.as_str(),
            Route53Error::ImportId { .. } => "importing a Route 53 object",
        };
        let mut s = String::from("Failed ");
        s.push_str(doing);
        s
    }

    /// The error as a diagnostic: summary names the action, detail the full chain.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::error(self.summary(), error_chain(self))
    }

    /// The error as a diagnostic tied to an attribute.
    pub fn diagnostic_at(&self, path: AttrPath) -> Diagnostic {
        self.diagnostic().at(path)
    }
}

impl From<Route53Error> for Diagnostics {
    fn from(e: Route53Error) -> Diagnostics {
        e.diagnostic().into()
    }
}

impl From<Route53Error> for Diagnostic {
    fn from(e: Route53Error) -> Diagnostic {
        e.diagnostic()
    }
}

impl From<Route53Error> for tfplugin6::ApplyError {
    fn from(e: Route53Error) -> tfplugin6::ApplyError {
        tfplugin6::ApplyError::from(e.diagnostic())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_which_and_why() {
        let e = Route53Error::aws(
            "creating Route 53 failover record set (Z123/api.example.com/A)",
            AwsError {
                code: Some("InvalidChangeBatch".into()),
                message: "bad".into(),
                status: Some(400),
                cancelled: false,
            },
        );
        assert_eq!(
            e.to_string(),
            "creating Route 53 failover record set (Z123/api.example.com/A): InvalidChangeBatch: bad"
        );
        let d = e.diagnostic();
        assert_eq!(
            d.summary,
            "Failed creating Route 53 failover record set (Z123/api.example.com/A)"
        );
        assert_eq!(d.detail, e.to_string());
    }

    #[test]
    fn concurrent_change_says_nothing_was_overwritten() {
        let e = Route53Error::Concurrent {
            doing: "updating Route 53 health check (h1)".into(),
            source: AwsError {
                code: Some("HealthCheckVersionMismatch".into()),
                message: "version 3 is not current".into(),
                status: Some(409),
                cancelled: false,
            },
        };
        let m = e.to_string();
        assert!(
            m.starts_with("updating Route 53 health check (h1): "),
            "{m}"
        );
        assert!(
            m.contains("nothing was overwritten") && m.contains("HealthCheckVersionMismatch"),
            "{m}"
        );
    }
}
