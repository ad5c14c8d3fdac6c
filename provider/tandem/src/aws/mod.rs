//! AWS access shared by every resource: one SDK configuration built from
//! the provider block, per-region clients, error rendering, bounded retries
//! for eventual consistency and default-tag merging.

pub mod assume_role;
pub mod call;
pub mod call_log;
pub mod error;
pub mod partition;
pub mod rate_limit;
pub mod retry;
pub mod s3_region;
pub mod s3_versioning;
pub mod tags;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;

pub use call::{cancellable, send, Stoppable};
pub use error::{aws_error, ok_if_gone, AwsError};

/// Default number of attempts per call. Route 53 calls are paced below its
/// quota ([`rate_limit`]), but another process on the same account can
/// still make Route 53 throttle them; the SDK's default of 3 attempts then
/// fails a large run where 25 lets it queue through.
pub const DEFAULT_MAX_RETRIES: u32 = 25;

/// Region used when neither the provider block nor the environment names
/// one. Route 53 is global and signs with us-east-1 anyway.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Attempts for the one-off credential check at configure time. A wrong or
/// unreachable STS endpoint should fail the run in seconds, not after the
/// minutes that `max_retries` of backoff take (measured: over four minutes
/// against a refused port with the default of 25).
pub const CREDENTIAL_CHECK_ATTEMPTS: u32 = 2;

/// Session name for assumed roles when none is configured.
pub const DEFAULT_SESSION_NAME: &str = "terraform-provider-tandem";

/// The provider block, read.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Default region.
    pub region: Option<String>,
    /// Shared config profile.
    pub profile: Option<String>,
    /// Static access key ID.
    pub access_key: Option<String>,
    /// Static secret key.
    pub secret_key: Option<String>,
    /// Static session token.
    pub token: Option<String>,
    /// Path-style S3 addressing.
    pub s3_use_path_style: bool,
    /// Skip the STS identity check.
    pub skip_credentials_validation: bool,
    /// Attempts per call.
    pub max_retries: u32,
    /// Route 53 requests per second this process sends, per account.
    pub route53_requests_per_second: f64,
    /// Role to assume.
    pub role_arn: Option<String>,
    /// Assumed-role session name.
    pub session_name: Option<String>,
    /// Assumed-role external ID.
    pub external_id: Option<String>,
    /// Route 53 endpoint override.
    pub endpoint_route53: Option<String>,
    /// S3 endpoint override.
    pub endpoint_s3: Option<String>,
    /// STS endpoint override.
    pub endpoint_sts: Option<String>,
    /// The emulator behind the endpoint overrides, if the user names one.
    pub emulator: Option<Emulator>,
    /// Provider-wide tags.
    pub default_tags: BTreeMap<String, String>,
}

impl AwsSettings {
    /// What identifies this configuration's Route 53 quota when the account
    /// is unknown (credential check skipped): the endpoint and whatever
    /// names the credentials, never a secret.
    fn quota_key(&self) -> String {
        format!(
            "config:{}|{}|{}|{}",
            self.endpoint_route53.as_deref().unwrap_or("aws"),
            self.access_key.as_deref().unwrap_or(""),
            self.profile.as_deref().unwrap_or(""),
            self.role_arn.as_deref().unwrap_or(""),
        )
    }
}

/// An emulator whose departures from AWS the provider works around, only
/// when the provider block names it: real AWS never takes those paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// moto: refuses a CREATE of a record set it once journalled.
    Moto,
}

/// Errors configuring AWS access.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// The STS identity check failed.
    #[error("validating credentials with STS GetCallerIdentity: {0}")]
    Credentials(String),
}

/// Configured AWS clients; the provider's `Meta`.
pub struct Aws {
    sdk: SdkConfig,
    settings: AwsSettings,
    region: String,
    route53: aws_sdk_route53::Client,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
    /// Home region of each bucket seen, so it is looked up once per process.
    bucket_regions: Mutex<HashMap<String, String>>,
    /// The run's Route 53 listings, shared by every read.
    route53_snapshots: crate::route53::snapshot::Snapshots,
    /// How long this process has seen Route 53 changes take to be INSYNC.
    route53_propagation: crate::route53::wait::Propagation,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the settings: they may hold keys.
        f.debug_struct("Aws")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Aws {
    /// Builds the SDK configuration from the provider settings and, unless
    /// skipped, checks the credentials once.
    pub async fn configure(settings: AwsSettings) -> Result<Aws, ConfigureError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_retries.max(1)));
        if let Some(r) = &settings.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let (Some(ak), Some(sk)) = (&settings.access_key, &settings.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                ak.clone(),
                sk.clone(),
                settings.token.clone(),
                None,
                "tandem-provider-block",
            ));
        }
        let mut sdk = loader.load().await;
        if let Some(role) = &settings.role_arn {
            let session = settings
                .session_name
                .clone()
                .unwrap_or_else(|| DEFAULT_SESSION_NAME.into());
            let provider = assume_role::AssumeRole::new(
                &sdk,
                settings.endpoint_sts.as_deref(),
                role.clone(),
                session,
                settings.external_id.clone(),
            );
            sdk = sdk
                .to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_string());

        let mut account = None;
        if !settings.skip_credentials_validation {
            let mut b = aws_sdk_sts::config::Builder::from(&sdk)
                .region(Region::new(region.clone()))
                .retry_config(RetryConfig::standard().with_max_attempts(CREDENTIAL_CHECK_ATTEMPTS))
                .interceptor(call_log::CallLog);
            if let Some(url) = &settings.endpoint_sts {
                b = b.endpoint_url(url.clone());
            }
            let me = aws_sdk_sts::Client::from_conf(b.build())
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| ConfigureError::Credentials(aws_error(&e).to_string()))?;
            account = me.account().map(str::to_string);
        }

        // Route 53's quota is per account: every client of this process for
        // the same account shares one bucket.
        let limiter = rate_limit::limiter_for(
            &account
                .map(|a| format!("account:{a}"))
                .unwrap_or_else(|| settings.quota_key()),
            settings.route53_requests_per_second,
        );
        let http = sdk.http_client().unwrap_or_else(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .build_https()
        });

        let mut r53 = aws_sdk_route53::config::Builder::from(&sdk)
            .http_client(rate_limit::PacedHttpClient::new(http, Arc::clone(&limiter)))
            .interceptor(rate_limit::ThrottleFeedback::new(limiter))
            .interceptor(call_log::CallLog);
        if let Some(url) = &settings.endpoint_route53 {
            r53 = r53.endpoint_url(url.clone());
        }
        if sdk.region().is_none() {
            r53 = r53.region(Region::new(FALLBACK_REGION));
        }
        Ok(Aws {
            route53: aws_sdk_route53::Client::from_conf(r53.build()),
            sdk,
            settings,
            region,
            s3: Mutex::new(HashMap::new()),
            bucket_regions: Mutex::new(HashMap::new()),
            route53_snapshots: Default::default(),
            route53_propagation: Default::default(),
        })
    }

    /// The Route 53 client (a global service).
    pub fn route53(&self) -> &aws_sdk_route53::Client {
        &self.route53
    }

    /// The run's snapshots of Route 53 zones and health checks.
    pub fn route53_snapshots(&self) -> &crate::route53::snapshot::Snapshots {
        &self.route53_snapshots
    }

    /// When this process expects Route 53 changes to be INSYNC, learned
    /// from its own waits and shared by all of them.
    pub fn route53_propagation(&self) -> &crate::route53::wait::Propagation {
        &self.route53_propagation
    }

    /// The provider's default region.
    pub fn default_region(&self) -> &str {
        &self.region
    }

    /// The partition of the provider's region: Route 53, a global service,
    /// is the one of this partition, and so are its ARNs.
    pub fn partition(&self) -> partition::Partition {
        partition::partition_of(&self.region)
    }

    /// The region a new bucket is created in: its own `region` if set,
    /// else the default. Existing buckets are found with
    /// [`s3_region::find_bucket_region`] instead, never assumed.
    pub fn region_or_default(&self, region: Option<&str>) -> String {
        region
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.region)
            .to_string()
    }

    /// The home region of `bucket`, if this process has seen it.
    pub fn remembered_bucket_region(&self, bucket: &str) -> Option<String> {
        let cache = self
            .bucket_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.get(bucket).cloned()
    }

    /// Records where `bucket` lives (found, or just created there).
    pub fn remember_bucket_region(&self, bucket: &str, region: &str) {
        let mut cache = self
            .bucket_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.insert(bucket.to_string(), region.to_string());
    }

    /// Forgets `bucket`'s region once it is deleted: its name may be
    /// created again elsewhere.
    pub fn forget_bucket_region(&self, bucket: &str) {
        let mut cache = self
            .bucket_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.remove(bucket);
    }

    /// An S3 client for a region, built once per region and reused.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut cache = self.s3.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.to_string())
            .or_insert_with(|| {
                let mut b = aws_sdk_s3::config::Builder::from(&self.sdk)
                    .region(Region::new(region.to_string()))
                    .force_path_style(self.settings.s3_use_path_style)
                    .interceptor(call_log::CallLog);
                if let Some(url) = &self.settings.endpoint_s3 {
                    b = b.endpoint_url(url.clone());
                }
                aws_sdk_s3::Client::from_conf(b.build())
            })
            .clone()
    }

    /// The emulator behind the endpoints, when the provider block names one.
    pub fn emulator(&self) -> Option<Emulator> {
        self.settings.emulator
    }

    /// Provider-wide default tags.
    pub fn default_tags(&self) -> &BTreeMap<String, String> {
        &self.settings.default_tags
    }

    /// The S3 endpoint override, if any (resources that talk to proxies or
    /// render manifests need to repeat it).
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.settings.endpoint_s3.as_deref()
    }

    /// Whether S3 uses path-style addressing.
    pub fn s3_path_style(&self) -> bool {
        self.settings.s3_use_path_style
    }
}
