//! Credentials from `sts:AssumeRole`, through an STS client of our own so
//! that the call carries [`CallLog`] like every other AWS call: with
//! `TF_LOG=debug` an assumed-role run shows its AssumeRole calls (one per
//! session, and one each time the session nears its end), which aws-config's
//! own `AssumeRoleProvider` makes through a client nobody can intercept.
//! The SDK clients cache what this returns until just before it expires.

use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;

use super::call_log::CallLog;

/// Assumes one role with the provider block's own credentials.
#[derive(Debug)]
pub struct AssumeRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
}

impl AssumeRole {
    /// A provider of `role_arn`'s credentials, assumed with `source`'s
    /// credentials and region, at `endpoint` when set (the provider
    /// block's `endpoints.sts`).
    pub fn new(
        source: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        role_arn: String,
        session_name: String,
        external_id: Option<String>,
    ) -> AssumeRole {
        // STS needs a region to sign with even where the block names none.
        let region = source
            .region()
            .cloned()
            .unwrap_or_else(|| aws_config::Region::new(super::FALLBACK_REGION));
        let mut b = aws_sdk_sts::config::Builder::from(source)
            .region(region)
            .interceptor(CallLog);
        if let Some(url) = endpoint {
            b = b.endpoint_url(url);
        }
        AssumeRole {
            sts: aws_sdk_sts::Client::from_conf(b.build()),
            role_arn,
            session_name,
            external_id,
        }
    }

    async fn assume(&self) -> provider::Result {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| {
                CredentialsError::provider_error(format!(
                    "assuming role {}: {}",
                    self.role_arn,
                    super::aws_error(&e)
                ))
            })?;
        let c = out.credentials().ok_or_else(|| {
            CredentialsError::invalid_configuration(format!(
                "assuming role {}: STS answered without credentials",
                self.role_arn
            ))
        })?;
        let expiry = std::time::SystemTime::try_from(*c.expiration()).map_err(|e| {
            CredentialsError::unhandled(format!(
                "assuming role {}: STS answered an expiry out of range: {e}",
                self.role_arn
            ))
        })?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            Some(expiry),
            "tandem-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumeRole {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.assume())
    }
}
