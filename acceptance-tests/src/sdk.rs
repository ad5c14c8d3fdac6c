//! AWS SDK clients the acceptance tests use to look behind Terraform's
//! back (check, seed and drift real objects), pointed at a lane's endpoint.

/// The access key every test uses unless it acts as another account.
pub const ACCESS_KEY: &str = "test";

/// The access key of another account, which the shared strict lane knows.
pub const OTHER_ACCESS_KEY: &str = "OTHERACCOUNTKEY";

/// The account [`OTHER_ACCESS_KEY`] belongs to.
pub const OTHER_ACCOUNT: &str = "210987654321";

/// An S3 client for `region` at `endpoint` (path-style), as `access_key`.
pub fn s3_as(endpoint: &str, region: &str, access_key: &str) -> aws_sdk_s3::Client {
    let creds = aws_credential_types::Credentials::new(access_key, "test", None, None, "test");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            // Tests want AWS's answer, not the SDK's retries of it.
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// An S3 client for `region` at `endpoint`, with the tests' own account.
pub fn s3(endpoint: &str, region: &str) -> aws_sdk_s3::Client {
    s3_as(endpoint, region, ACCESS_KEY)
}

/// A Route 53 client at `endpoint`. It retries throttling like any SDK
/// user would, so a strict lane's rate limit slows it rather than failing it.
pub fn route53(endpoint: &str) -> aws_sdk_route53::Client {
    let creds = aws_credential_types::Credentials::new(ACCESS_KEY, "test", None, None, "test");
    aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::Config::builder()
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .retry_config(
                aws_sdk_route53::config::retry::RetryConfig::standard().with_max_attempts(10),
            )
            .build(),
    )
}

/// Creates `bucket` in the client's region with versioning enabled, and
/// waits until reads say so (the strict lane lets them lag, as S3 does).
pub async fn versioned_bucket(c: &aws_sdk_s3::Client, bucket: &str) {
    let mut req = c.create_bucket().bucket(bucket);
    let region = c
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    // us-east-1 is the one region S3 refuses to see named explicitly.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("creating bucket {bucket}: {e:?}"));
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("enabling versioning of {bucket}: {e:?}"));
    wait_for_versioning(c, bucket, Some("Enabled")).await;
}

/// How long an out-of-band write may take to become visible: the strict
/// lane lets versioning reads lag writes, as S3 does.
pub const CONSISTENCY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until GetBucketVersioning reads `status` (`None`: never enabled),
/// so a test's out-of-band change is visible before Terraform looks.
pub async fn wait_for_versioning(c: &aws_sdk_s3::Client, bucket: &str, status: Option<&str>) {
    let deadline = std::time::Instant::now() + CONSISTENCY_DEADLINE;
    loop {
        if versioning(c, bucket).await.as_deref() == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "versioning of {bucket} never read {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A bucket's versioning status as GetBucketVersioning reads it. moto
/// answers with a root element the SDK does not parse; its body still
/// says the status.
pub async fn versioning(c: &aws_sdk_s3::Client, bucket: &str) -> Option<String> {
    match c.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => out.status().map(|s| s.as_str().to_string()),
        Err(e) => {
            let body = e
                .raw_response()
                .filter(|r| r.status().as_u16() == 200)
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| panic!("reading versioning of {bucket}: {e:?}"));
            let start = body.find("<Status>")? + "<Status>".len();
            let end = body[start..].find("</Status>")? + start;
            Some(body[start..end].to_string())
        }
    }
}
