//! The `provider "tandem"` block: schema, validation and configuration of
//! the AWS clients every resource uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tfplugin6::{
    AttrPath, Attribute, Block, DataSource, Diagnostic, Diagnostics, NestedBlock, Provider,
    Resource, Schema, Type, Value,
};

use crate::aws::{Aws, AwsSettings, Emulator, DEFAULT_MAX_RETRIES};

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
                "AWS access key ID. Must be set together with `secret_key`. Prefer the standard credential chain \
                 (environment, profile, SSO, instance role) over literal keys.",
            )
            .sensitive(),
        )
        .attr(
            Attribute::optional("secret_key", Type::String, "AWS secret access key. Must be set together with `access_key`.")
                .sensitive(),
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
        .attr(Attribute::optional(
            "max_retries",
            Type::Number,
            "Maximum number of attempts for an AWS call that fails with throttling or a transient error. \
             Default 25: Route 53 allows about 5 requests per second per account, so the SDK's default of 3 \
             fails large plans.",
        ))
        .block(NestedBlock::single(
            "assume_role",
            Block::new("Assume an IAM role before making any call.")
                .attr(Attribute::required("role_arn", Type::String, "ARN of the role to assume."))
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
            .attr(Attribute::optional("route53", Type::String, "Route 53 endpoint URL."))
            .attr(Attribute::optional("s3", Type::String, "S3 endpoint URL."))
            .attr(Attribute::optional("sts", Type::String, "STS endpoint URL."))
            .attr(Attribute::optional(
                "emulator",
                Type::String,
                "The emulator behind these endpoints, so the provider can work around its known departures from \
                 AWS: `moto` (a CREATE of a record set moto once journalled is refused although the record is gone; \
                 the failover record then retries it as an UPSERT). Needs the `route53` endpoint. Never set it \
                 against AWS: there a refused CREATE is always reported, never turned into an overwrite.",
            )),
        ))
        .block(NestedBlock::single(
            "default_tags",
            Block::new("Tags applied to every taggable resource; a resource's own `tags` win on conflict.").attr(
                Attribute::optional("tags", Type::map(Type::String), "Tags to apply to all taggable resources."),
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
    let mut diags = Diagnostics::new();
    check_config(config, &mut diags);
    diags.clone().into_result()?;
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

/// Plan-time checks of the provider block; reports every problem.
pub fn check_config(config: &Value, diags: &mut Diagnostics) {
    let ak = config.get("access_key");
    let sk = config.get("secret_key");
    if ak.is_null() != sk.is_null() && !ak.is_unknown() && !sk.is_unknown() {
        let missing = if ak.is_null() {
            "access_key"
        } else {
            "secret_key"
        };
        diags.error_at(
            AttrPath::root(missing),
            "Incomplete static credentials",
            "`access_key` and `secret_key` must be set together.",
        );
    }
    if let Some(n) = config.get("max_retries").as_i64() {
        if !(0..=100).contains(&n) {
            diags.error_at(
                AttrPath::root("max_retries"),
                "Invalid max_retries",
                format!("Must be between 0 and 100, got {n}."),
            );
        }
    }
    for svc in ["route53", "s3", "sts"] {
        if let Some(url) = config.get("endpoints").get(svc).as_str() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                diags.error_at(
                    AttrPath::root("endpoints").attr(svc),
                    "Invalid endpoint URL",
                    format!("{url:?} must start with http:// or https://."),
                );
            }
        }
    }
    let endpoints = config.get("endpoints");
    if let Some(e) = endpoints.get("emulator").as_str() {
        if e != EMULATOR_MOTO {
            diags.error_at(
                AttrPath::root("endpoints").attr("emulator"),
                "Unknown emulator",
                format!("{e:?} is not an emulator this provider knows; the only one is \"{EMULATOR_MOTO}\"."),
            );
        } else if endpoints.get("route53").is_null() {
            diags.error_at(
                AttrPath::root("endpoints").attr("emulator"),
                "Emulator without an endpoint",
                "`emulator` describes what answers on the custom endpoints; set `route53` to the emulator's URL.",
            );
        }
    }
    if let Some(arn) = config.get("assume_role").get("role_arn").as_str() {
        if !arn.starts_with("arn:") || !arn.contains(":role/") {
            diags.error_at(
                AttrPath::root("assume_role").attr("role_arn"),
                "Invalid role ARN",
                format!("{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)."),
            );
        }
    }
    if let Some(tags) = config.get("default_tags").get("tags").as_map() {
        for k in tags.keys() {
            if k.starts_with("aws:") {
                diags.error_at(
                    AttrPath::root("default_tags").attr("tags").key(k),
                    "Reserved tag key",
                    "Tag keys starting with \"aws:\" are reserved by AWS.",
                );
            }
        }
    }
}

#[async_trait]
impl Provider for TandemProvider {
    type Meta = Aws;

    fn schema(&self) -> Schema {
        provider_schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        check_config(config, diags);
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

    #[test]
    fn config_mistakes_are_reported_together_with_paths() {
        let config = Value::object([
            ("access_key", Value::string("AKIA")),
            ("max_retries", Value::int(500)),
            (
                "endpoints",
                Value::object([("s3", Value::string("localhost:9000"))]),
            ),
            (
                "assume_role",
                Value::object([("role_arn", Value::string("nope"))]),
            ),
        ]);
        let mut d = Diagnostics::new();
        check_config(&config, &mut d);
        let paths: Vec<String> =
            d.0.iter()
                .map(|d| d.path.as_ref().unwrap().to_string())
                .collect();
        assert_eq!(
            paths,
            vec![
                "secret_key",
                "max_retries",
                "endpoints.s3",
                "assume_role.role_arn"
            ]
        );
    }

    #[test]
    fn emulator_needs_a_known_name_and_a_route53_endpoint() {
        let with = |endpoints: Value| {
            let mut d = Diagnostics::new();
            check_config(&Value::object([("endpoints", endpoints)]), &mut d);
            d.0.into_iter().map(|x| x.summary).collect::<Vec<_>>()
        };
        assert_eq!(
            with(Value::object([("emulator", Value::string("localstack"))])),
            vec!["Unknown emulator"]
        );
        assert_eq!(
            with(Value::object([("emulator", Value::string("moto"))])),
            vec!["Emulator without an endpoint"]
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
        let config = Value::object([("access_key", Value::Unknown)]);
        let mut d = Diagnostics::new();
        check_config(&config, &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn defaults_apply_when_unset() {
        let s = settings_from_config(&Value::object::<_, &str>([])).unwrap();
        assert_eq!(s.max_retries, DEFAULT_MAX_RETRIES);
        assert!(!s.s3_use_path_style);
    }
}
