//! The `provider "tandem"` block: schema, validation and configuration of
//! the AWS clients every resource uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tfplugin6::validate::validate_block;
use tfplugin6::{
    Attribute, Block, DataSource, Diagnostic, Diagnostics, NestedBlock, Provider, Resource, Schema,
    Type, Validator, Value,
};

use crate::aws::partition::{valid_role_arn, ROLE_ARN};
use crate::aws::rate_limit::DEFAULT_ROUTE53_REQUESTS_PER_SECOND;
use crate::aws::tags::tag_keys;
use crate::aws::{Aws, AwsSettings, Emulator, DEFAULT_MAX_RETRIES};

/// Most attempts `max_retries` may ask for: beyond this a throttled apply
/// would back off for hours rather than fail.
const MAX_RETRIES_LIMIT: i64 = 100;

/// Most Route 53 requests per second `route53_requests_per_second` may ask
/// for: AWS grants no account more than a few times the default quota, and
/// a typo of 5000 would switch the limit off in effect.
const MAX_ROUTE53_REQUESTS_PER_SECOND: i64 = 100;

/// What an endpoint URL looks like, for the schema's docs.
pub(crate) const URL: &str = "an `http://` or `https://` URL";

/// An endpoint URL: what the AWS SDK and the proxies' admin API take.
pub(crate) fn url(v: &str) -> Result<(), String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err("it has no http:// or https:// scheme".into())
    }
}

/// The provider type registered with Terraform.
pub struct TandemProvider;

/// The provider block's schema.
pub fn provider_schema() -> Schema {
    Schema::new(
        Block::new(
            "The Tandem provider manages multi-region high availability on AWS: Route 53 health checks and \
             failover record sets, S3 buckets with versioning and cross-region replication, and the runtime \
             config of a fleet of tandem-proxy instances. One provider block serves every region: resources \
             that live in a region take a `region` argument, so no provider aliases are needed.",
        )
        .attr(Attribute::optional(
            "region",
            Type::String,
            "Default AWS region for resources that do not set their own `region`. Falls back to `AWS_REGION`, \
             `AWS_DEFAULT_REGION` and the shared config file, then to `us-east-1`.",
        ))
        .attr(Attribute::optional(
            "profile",
            Type::String,
            "Named profile from the shared AWS config and credentials files. Falls back to `AWS_PROFILE`.",
        ))
        .attr(
            Attribute::optional(
                "access_key",
                Type::String,
                "AWS access key ID. Prefer the standard credential chain (environment, profile, SSO, instance role) \
                 over literal keys.",
            )
            .sensitive()
            .validate(Validator::also_requires(&["secret_key"])),
        )
        .attr(
            Attribute::optional("secret_key", Type::String, "AWS secret access key.")
                .sensitive()
                .validate(Validator::also_requires(&["access_key"])),
        )
        .attr(Attribute::optional("token", Type::String, "AWS session token for temporary credentials.").sensitive())
        .attr(Attribute::optional(
            "s3_use_path_style",
            Type::Bool,
            "Address S3 buckets as `https://endpoint/bucket` instead of `https://bucket.endpoint`. Needed by most \
             S3-compatible servers and emulators. Default `false`.",
        ))
        .attr(Attribute::optional(
            "skip_credentials_validation",
            Type::Bool,
            "Skip the STS `GetCallerIdentity` call that checks the credentials when the provider is configured. \
             Default `false`.",
        ))
        .attr(
            Attribute::optional(
                "max_retries",
                Type::Number,
                "Maximum number of attempts for an AWS call that fails with throttling or a transient error. \
                 Default 25. Route 53 calls are paced by `route53_requests_per_second`, so they are only \
                 throttled when something else uses the same account; these retries are the backstop then.",
            )
            .validate(Validator::between(0, MAX_RETRIES_LIMIT)),
        )
        .attr(
            Attribute::optional(
                "route53_requests_per_second",
                Type::Number,
                "Route 53 requests per second this provider sends, for all resources together and per AWS account \
                 (per provider configuration when `skip_credentials_validation` hides the account). Every call, \
                 retry and INSYNC poll waits for its turn, so a large plan queues instead of failing with \
                 `Throttling`. Default 5, Route 53's quota per account; lower it when other tools share the account, \
                 raise it only after AWS raised the quota.",
            )
            .validate(Validator::between(1, MAX_ROUTE53_REQUESTS_PER_SECOND)),
        )
        .block(NestedBlock::single(
            "assume_role",
            Block::new("Assume an IAM role before making any call.")
                .attr(
                    Attribute::required("role_arn", Type::String, "ARN of the role to assume.")
                        .validate(Validator::format(ROLE_ARN, valid_role_arn)),
                )
                .attr(Attribute::optional(
                    "session_name",
                    Type::String,
                    "Session name recorded in CloudTrail. Default `terraform-provider-tandem`.",
                ))
                .attr(Attribute::optional("external_id", Type::String, "External ID required by the role's trust policy.")),
        ))
        .block(NestedBlock::single(
            "endpoints",
            Block::new(
                "Custom service endpoints, e.g. for emulators. `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` \
                 also work.",
            )
            .attr(Attribute::optional("route53", Type::String, "Route 53 endpoint URL.").validate(Validator::format(URL, url)))
            .attr(Attribute::optional("s3", Type::String, "S3 endpoint URL.").validate(Validator::format(URL, url)))
            .attr(Attribute::optional("sts", Type::String, "STS endpoint URL.").validate(Validator::format(URL, url)))
            .attr(
                Attribute::optional(
                    "emulator",
                    Type::String,
                    "The emulator behind these endpoints, so the provider can work around its known departures from \
                     AWS: `moto` (a CREATE of a record set moto once journalled is refused although the record is \
                     gone; the failover record then retries it as an UPSERT). Never set it against AWS: there a \
                     refused CREATE is always reported, never turned into an overwrite.",
                )
                .validate(Validator::one_of(&[EMULATOR_MOTO]))
                .validate(Validator::also_requires(&["route53"])),
            ),
        ))
        .block(NestedBlock::single(
            "default_tags",
            Block::new("Tags applied to every taggable resource; a resource's own `tags` win on conflict.").attr(
                Attribute::optional("tags", Type::map(Type::String), "Tags to apply to all taggable resources.")
                    .validate(tag_keys()),
            ),
        )),
    )
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Reads the provider block into settings; unknown values (possible when
/// the block refers to resources not yet created) count as unset.
pub fn settings_from_config(config: &Value) -> Result<AwsSettings, Diagnostics> {
    validate_block(&provider_schema().block, config).into_result()?;
    let endpoints = config.get("endpoints");
    let role = config.get("assume_role");
    let tags: BTreeMap<String, String> = config
        .get("default_tags")
        .get("tags")
        .as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(AwsSettings {
        region: opt_str(config.get("region")),
        profile: opt_str(config.get("profile")),
        access_key: opt_str(config.get("access_key")),
        secret_key: opt_str(config.get("secret_key")),
        token: opt_str(config.get("token")),
        s3_use_path_style: config.get("s3_use_path_style").as_bool().unwrap_or(false),
        skip_credentials_validation: config
            .get("skip_credentials_validation")
            .as_bool()
            .unwrap_or(false),
        max_retries: config
            .get("max_retries")
            .as_i64()
            .map(|n| n as u32)
            .unwrap_or(DEFAULT_MAX_RETRIES),
        route53_requests_per_second: config
            .get("route53_requests_per_second")
            .as_i64()
            .map(|n| n as f64)
            .unwrap_or(DEFAULT_ROUTE53_REQUESTS_PER_SECOND),
        role_arn: opt_str(role.get("role_arn")),
        session_name: opt_str(role.get("session_name")),
        external_id: opt_str(role.get("external_id")),
        endpoint_route53: opt_str(endpoints.get("route53")),
        endpoint_s3: opt_str(endpoints.get("s3")),
        endpoint_sts: opt_str(endpoints.get("sts")),
        emulator: match endpoints.get("emulator").as_str() {
            Some(EMULATOR_MOTO) => Some(Emulator::Moto),
            _ => None,
        },
        default_tags: tags,
    })
}

/// The one emulator the provider knows the quirks of.
const EMULATOR_MOTO: &str = "moto";

#[async_trait]
impl Provider for TandemProvider {
    type Meta = Aws;

    fn schema(&self) -> Schema {
        provider_schema()
    }

    async fn configure(
        &self,
        _terraform_version: &str,
        config: &Value,
    ) -> Result<Aws, Diagnostics> {
        let settings = settings_from_config(config)?;
        Aws::configure(settings).await.map_err(|e| {
            Diagnostic::error(
                "Configuring the Tandem provider",
                tfplugin6::diag::error_chain(&e),
            )
            .into()
        })
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<Aws>>> {
        let mut all = crate::route53::resources();
        all.extend(crate::s3::resources());
        all.extend(crate::fleet::resources());
        all
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Aws>>> {
        let mut all = crate::route53::data_sources();
        all.extend(crate::s3::data_sources());
        all.extend(crate::fleet::data_sources());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_attribute_has_a_description() {
        let p = TandemProvider;
        let mut missing = provider_schema().undocumented();
        for r in p.resources() {
            missing.extend(
                r.schema()
                    .undocumented()
                    .into_iter()
                    .map(|a| format!("{}.{a}", r.type_name())),
            );
        }
        for d in p.data_sources() {
            missing.extend(
                d.schema()
                    .undocumented()
                    .into_iter()
                    .map(|a| format!("{}.{a}", d.type_name())),
            );
        }
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    fn error_paths(config: &Value) -> Vec<String> {
        crate::testing::error_paths(&validate_block(&provider_schema().block, config))
    }

    #[test]
    fn config_mistakes_are_reported_together_with_paths() {
        let config = Value::object([
            ("access_key", Value::string("AKIA")),
            ("max_retries", Value::int(500)),
            ("route53_requests_per_second", Value::int(0)),
            (
                "endpoints",
                Value::object([("s3", Value::string("localhost:9000"))]),
            ),
            (
                "assume_role",
                Value::object([("role_arn", Value::string("nope"))]),
            ),
            (
                "default_tags",
                Value::object([("tags", Value::object([("aws:x", Value::string("1"))]))]),
            ),
        ]);
        assert_eq!(
            error_paths(&config),
            vec![
                "access_key",
                "max_retries",
                "route53_requests_per_second",
                "assume_role.role_arn",
                "endpoints.s3",
                "default_tags.tags[\"aws:x\"]",
            ]
        );
        assert!(settings_from_config(&config).is_err());
    }

    #[test]
    fn emulator_needs_a_known_name_and_a_route53_endpoint() {
        let with = |endpoints: Value| error_paths(&Value::object([("endpoints", endpoints)]));
        assert_eq!(
            with(Value::object([
                ("emulator", Value::string("localstack")),
                ("route53", Value::string("http://127.0.0.1:5000")),
            ])),
            vec!["endpoints.emulator"]
        );
        assert_eq!(
            with(Value::object([("emulator", Value::string("moto"))])),
            vec!["endpoints.emulator"]
        );
        let ok = Value::object([
            ("emulator", Value::string("moto")),
            ("route53", Value::string("http://127.0.0.1:5000")),
        ]);
        assert!(with(ok.clone()).is_empty());
        let config = Value::object([("endpoints", ok)]);
        assert_eq!(
            settings_from_config(&config).unwrap().emulator,
            Some(Emulator::Moto)
        );
    }

    #[test]
    fn unknown_credentials_are_not_flagged() {
        assert!(error_paths(&Value::object([("access_key", Value::Unknown)])).is_empty());
    }

    #[test]
    fn defaults_apply_when_unset() {
        let s = settings_from_config(&Value::object::<_, &str>([])).unwrap();
        assert_eq!(s.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(
            s.route53_requests_per_second,
            DEFAULT_ROUTE53_REQUESTS_PER_SECOND
        );
        assert!(!s.s3_use_path_style);
        let s = settings_from_config(&Value::object([(
            "route53_requests_per_second",
            Value::int(2),
        )]))
        .unwrap();
        assert_eq!(s.route53_requests_per_second, 2.0);
    }
}
