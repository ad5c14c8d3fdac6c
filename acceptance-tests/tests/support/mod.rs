//! AWS SDK clients the acceptance tests use to look behind Terraform's
//! back (check, seed and drift real objects in moto).
#![allow(dead_code)] // each test binary uses part of it

use tandem_acceptance::Moto;

/// An S3 client for `region` pointed at moto (path-style, any credentials).
pub fn s3(moto: &Moto, region: &str) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new("test", "test", None, None, "test");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .credentials_provider(creds)
            .build(),
    )
}

/// Creates `bucket` with versioning enabled, as a fleet config bucket needs.
pub async fn versioned_bucket(c: &aws_sdk_s3::Client, bucket: &str) {
    c.create_bucket().bucket(bucket).send().await.unwrap();
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}
