//! The strict lane's own rules, one test each, checked with the AWS SDK
//! through a lane in front of moto (no Terraform): what each rule promises
//! in `tandem_acceptance::strict` is what a client sees.

use std::time::{Duration, Instant};

use aws_sdk_route53::error::ProvideErrorMetadata as _;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, HealthCheckConfig, HealthCheckType,
    ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Delete, Destination, ObjectIdentifier, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus,
};
use tandem_acceptance::strict::{Refusal, StrictConfig, StrictLane};
use tandem_acceptance::{sdk, skip_unless_acc, unique, Moto};

use tandem_acceptance::sdk::{OTHER_ACCESS_KEY as OTHER_KEY, OTHER_ACCOUNT};

fn lane(config: StrictConfig) -> StrictLane {
    StrictLane::start(Moto::shared(), config).unwrap_or_else(|e| panic!("{e}"))
}

/// Status, error code and `x-amz-bucket-region` of a failed call.
fn failure<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> (u16, String, Option<String>) {
    let raw = e.raw_response();
    (
        raw.map(|r| r.status().as_u16()).unwrap_or(0),
        e.as_service_error()
            .and_then(|s| s.code())
            .unwrap_or_default()
            .to_string(),
        raw.and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_string),
    )
}

async fn create_bucket(c: &aws_sdk_s3::Client, bucket: &str) -> Result<(), (u16, String)> {
    let region = c
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut req = c.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    req.send().await.map(|_| ()).map_err(|e| {
        let (s, c, _) = failure(&e);
        (s, c)
    })
}

#[tokio::test]
async fn s3_requests_for_another_region_are_redirected_and_locations_are_true() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default());
    let (us, eu) = (
        sdk::s3(&l.endpoint(), "us-east-1"),
        sdk::s3(&l.endpoint(), "eu-west-1"),
    );
    let b = unique("strict-eu");
    create_bucket(&eu, &b).await.unwrap();

    let e = us.head_bucket().bucket(&b).send().await.unwrap_err();
    assert_eq!(
        failure(&e),
        (301, String::new(), Some("eu-west-1".into())),
        "HeadBucket"
    );
    let e = us
        .get_bucket_versioning()
        .bucket(&b)
        .send()
        .await
        .unwrap_err();
    let (status, code, region) = failure(&e);
    assert_eq!(
        (status, region.as_deref()),
        (301, Some("eu-west-1")),
        "{code}"
    );

    let loc = us.get_bucket_location().bucket(&b).send().await.unwrap();
    assert_eq!(
        loc.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
    let head = eu.head_bucket().bucket(&b).send().await.unwrap();
    assert_eq!(head.bucket_region(), Some("eu-west-1"));

    // A regional endpoint only creates buckets of its own region.
    let other = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
        .build();
    let e = eu
        .create_bucket()
        .bucket(unique("strict-x"))
        .create_bucket_configuration(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&e).1, "IllegalLocationConstraintException");
}

#[tokio::test]
async fn creating_a_bucket_you_own_succeeds_only_in_us_east_1() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().account(OTHER_KEY, OTHER_ACCOUNT));
    let (us, eu) = (
        sdk::s3(&l.endpoint(), "us-east-1"),
        sdk::s3(&l.endpoint(), "eu-west-1"),
    );
    let (b_us, b_eu) = (unique("strict-own-us"), unique("strict-own-eu"));
    create_bucket(&us, &b_us).await.unwrap();
    create_bucket(&us, &b_us)
        .await
        .expect("us-east-1 answers 200 again");
    create_bucket(&eu, &b_eu).await.unwrap();
    assert_eq!(
        create_bucket(&eu, &b_eu).await,
        Err((409, "BucketAlreadyOwnedByYou".into()))
    );
    let other = sdk::s3_as(&l.endpoint(), "us-east-1", OTHER_KEY);
    assert_eq!(
        create_bucket(&other, &b_us).await,
        Err((409, "BucketAlreadyExists".into()))
    );
}

fn replication(dest: &str) -> ReplicationConfiguration {
    ReplicationConfiguration::builder()
        .role("arn:aws:iam::123456789012:role/r")
        .rules(
            ReplicationRule::builder()
                .id("all")
                .priority(1)
                .status(ReplicationRuleStatus::Enabled)
                .filter(ReplicationRuleFilter::builder().prefix("").build())
                .delete_marker_replication(
                    aws_sdk_s3::types::DeleteMarkerReplication::builder()
                        .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Disabled)
                        .build(),
                )
                .destination(
                    Destination::builder()
                        .bucket(format!("arn:aws:s3:::{dest}"))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn replication_needs_every_destination_versioned() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().versioning_lag(Duration::ZERO));
    let (us, eu) = (
        sdk::s3(&l.endpoint(), "us-east-1"),
        sdk::s3(&l.endpoint(), "eu-west-1"),
    );
    let (src, dst) = (unique("strict-src"), unique("strict-dst"));
    sdk::versioned_bucket(&us, &src).await;
    let put = |dest: String| {
        us.put_bucket_replication()
            .bucket(&src)
            .replication_configuration(replication(&dest))
            .send()
    };
    let e = put(dst.clone()).await.unwrap_err();
    assert_eq!(failure(&e).1, "InvalidRequest", "a missing destination");
    create_bucket(&eu, &dst).await.unwrap();
    let e = put(dst.clone()).await.unwrap_err();
    let msg = e
        .as_service_error()
        .and_then(|s| s.message())
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("versioning"),
        "an unversioned destination: {msg}"
    );
    eu.put_bucket_versioning()
        .bucket(&dst)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put(dst).await.expect("both sides versioned");
}

#[tokio::test]
async fn versioning_reads_lag_writes() {
    skip_unless_acc!();
    let lag = Duration::from_secs(2);
    let l = lane(StrictConfig::default().versioning_lag(lag));
    let c = sdk::s3(&l.endpoint(), "us-east-1");
    let b = unique("strict-lag");
    c.create_bucket().bucket(&b).send().await.unwrap();
    let written = Instant::now();
    c.put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let first = c.get_bucket_versioning().bucket(&b).send().await.unwrap();
    assert_eq!(
        first.status(),
        None,
        "the read right after the write sees the old state"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = c.get_bucket_versioning().bucket(&b).send().await.unwrap();
        if now.status().map(|s| s.as_str()) == Some("Enabled") {
            break;
        }
        assert!(Instant::now() < deadline, "versioning never read back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        written.elapsed() >= lag,
        "read back after {:?}",
        written.elapsed()
    );
}

#[tokio::test]
async fn another_accounts_buckets_are_denied() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().account(OTHER_KEY, OTHER_ACCOUNT));
    let theirs = sdk::s3_as(&l.endpoint(), "eu-west-1", OTHER_KEY);
    let ours = sdk::s3(&l.endpoint(), "eu-west-1");
    let b = unique("strict-theirs");
    sdk::versioned_bucket(&theirs, &b).await;
    theirs
        .head_bucket()
        .bucket(&b)
        .send()
        .await
        .expect("the owner may look");

    let e = ours.head_bucket().bucket(&b).send().await.unwrap_err();
    assert_eq!(failure(&e), (403, String::new(), Some("eu-west-1".into())));
    let e = ours
        .get_bucket_versioning()
        .bucket(&b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&e).1, "AccessDenied");
    let e = ours
        .get_bucket_location()
        .bucket(&b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&e).1, "AccessDenied");
}

#[tokio::test]
async fn chosen_versions_refuse_deletion() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default());
    let c = sdk::s3(&l.endpoint(), "us-east-1");
    let b = unique("strict-locked");
    sdk::versioned_bucket(&c, &b).await;
    let mut ids = Vec::new();
    for key in ["denied", "governed", "free"] {
        let v = c
            .put_object()
            .bucket(&b)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        ids.push((key, v.version_id().unwrap_or_default().to_string()));
    }
    l.refuse_delete(&b, "denied", Some(&ids[0].1), Refusal::AccessDenied);
    l.refuse_delete(&b, "governed", None, Refusal::GovernanceLock);

    let all = || {
        let objects: Vec<ObjectIdentifier> = ids
            .iter()
            .map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(*k)
                    .version_id(v)
                    .build()
                    .unwrap()
            })
            .collect();
        Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .unwrap()
    };
    let out = c
        .delete_objects()
        .bucket(&b)
        .delete(all())
        .send()
        .await
        .unwrap();
    let mut refused: Vec<(&str, &str)> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap_or_default(), e.code().unwrap_or_default()))
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        vec![("denied", "AccessDenied"), ("governed", "AccessDenied")]
    );

    let out = c
        .delete_objects()
        .bucket(&b)
        .bypass_governance_retention(true)
        .delete(all())
        .send()
        .await
        .unwrap();
    let refused: Vec<&str> = out.errors().iter().filter_map(|e| e.key()).collect();
    assert_eq!(
        refused,
        vec!["denied"],
        "a governance lock gives way to the bypass"
    );
    let e = c
        .delete_object()
        .bucket(&b)
        .key("denied")
        .version_id(&ids[0].1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&e).0, 403);
}

/// A Route 53 client that does not retry, to see the lane's answers.
fn route53_once(l: &StrictLane) -> aws_sdk_route53::Client {
    let conf = sdk::route53(&l.endpoint())
        .config()
        .to_builder()
        .retry_config(aws_sdk_route53::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_route53::Client::from_conf(conf)
}

#[tokio::test]
async fn route53_allows_five_requests_a_second_per_account() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default());
    let r53 = route53_once(&l);
    let mut codes = Vec::new();
    let started = Instant::now();
    for _ in 0..20 {
        codes.push(match r53.list_hosted_zones().send().await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().unwrap_or_default().to_string(),
        });
    }
    // A burst of five, then five a second: however slow this machine is,
    // no more got through than the bucket allowed.
    let allowed = 5 + (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    let ok = codes.iter().filter(|c| *c == "ok").count();
    assert!(codes[..5].iter().all(|c| c == "ok"), "{codes:?}");
    assert!(ok <= allowed, "{ok} > {allowed}: {codes:?}");
    assert!(
        codes.iter().all(|c| c == "ok" || c == "Throttling") && ok < codes.len(),
        "{codes:?}"
    );
    let e = r53.list_hosted_zones().send().await.unwrap_err();
    assert_eq!(e.message(), Some("Rate exceeded"));

    let unlimited = lane(StrictConfig::default().route53_rate(0));
    let r53 = route53_once(&unlimited);
    for _ in 0..10 {
        r53.list_hosted_zones().send().await.expect("no limit");
    }
    unlimited.throttle_route53(true);
    assert_eq!(
        r53.list_hosted_zones().send().await.unwrap_err().code(),
        Some("Throttling")
    );
    assert!(unlimited.route53_throttled() >= 1);
}

fn a_record(action: ChangeAction, name: &str, failover: Option<&str>, values: usize) -> Change {
    let mut set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(60)
        .set_resource_records(Some(
            (0..values)
                .map(|i| {
                    ResourceRecord::builder()
                        .value(format!("10.0.{}.{}", i / 250, i % 250))
                        .build()
                        .unwrap()
                })
                .collect(),
        ));
    if let Some(role) = failover {
        set = set
            .set_identifier(format!("{name}-{role}"))
            .failover(ResourceRecordSetFailover::from(role));
    }
    Change::builder()
        .action(action)
        .resource_record_set(set.build().unwrap())
        .build()
        .unwrap()
}

async fn change(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    changes: Vec<Change>,
) -> Result<(String, ChangeStatus), String> {
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map(|o| {
            let i = o.change_info().unwrap();
            (i.id().to_string(), i.status().clone())
        })
        .map_err(|e| {
            format!(
                "{}: {}",
                e.code().unwrap_or_default(),
                e.message().unwrap_or_default()
            )
        })
}

async fn zone(r53: &aws_sdk_route53::Client, name: &str) -> String {
    let out = r53
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .unwrap();
    out.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

#[tokio::test]
async fn changes_stay_pending_before_insync() {
    skip_unless_acc!();
    let pending = Duration::from_secs(1);
    let l = lane(
        StrictConfig::default()
            .change_pending(pending)
            .route53_rate(0),
    );
    let r53 = sdk::route53(&l.endpoint());
    let name = format!("{}.strict-test", unique("pend"));
    let z = zone(&r53, &name).await;
    let sent = Instant::now();
    let (id, status) = change(
        &r53,
        &z,
        vec![a_record(
            ChangeAction::Create,
            &format!("a.{name}"),
            None,
            1,
        )],
    )
    .await
    .unwrap();
    assert_eq!(status, ChangeStatus::Pending);
    let ids = [id.clone(), {
        let (other, _) = change(
            &r53,
            &z,
            vec![a_record(
                ChangeAction::Create,
                &format!("b.{name}"),
                None,
                1,
            )],
        )
        .await
        .unwrap();
        other
    }];
    assert_ne!(ids[0], ids[1], "each change has its own ID");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = r53.get_change().id(&id).send().await.unwrap();
        if got.change_info().map(|c| c.status().clone()) == Some(ChangeStatus::Insync) {
            break;
        }
        assert!(Instant::now() < deadline, "never INSYNC");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent.elapsed() >= pending);
}

#[tokio::test]
async fn change_batches_are_judged_like_route53() {
    skip_unless_acc!();
    let l = lane(
        StrictConfig::default()
            .change_pending(Duration::ZERO)
            .route53_rate(0),
    );
    let r53 = sdk::route53(&l.endpoint());
    let name = format!("{}.strict-test", unique("judge"));
    let z = zone(&r53, &name).await;
    let api = format!("api.{name}");

    let e = change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &api, Some("PRIMARY"), 1)],
    )
    .await
    .unwrap_err();
    assert!(
        e.starts_with("InvalidChangeBatch") && e.contains("health check"),
        "{e}"
    );
    let e = change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &format!("x{name}"), None, 1)],
    )
    .await
    .unwrap_err();
    assert!(e.contains("is not permitted in zone"), "{e}");
    let e = change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Upsert, &api, None, 501)],
    )
    .await
    .unwrap_err();
    assert!(e.contains("limit of 1000"), "UPSERTs count twice: {e}");
    change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &api, None, 1000)],
    )
    .await
    .expect("1000 records fit");

    // moto's journal quirk does not leak through: a record created,
    // deleted and created again (while others sort after it) is accepted.
    let www = format!("www.{name}");
    change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &www, Some("SECONDARY"), 1)],
    )
    .await
    .unwrap();
    change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Delete, &www, Some("SECONDARY"), 1)],
    )
    .await
    .unwrap();
    change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &www, Some("SECONDARY"), 1)],
    )
    .await
    .expect("re-created");
    let e = change(
        &r53,
        &z,
        vec![a_record(ChangeAction::Create, &www, Some("SECONDARY"), 1)],
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("already exists"),
        "a real duplicate is still refused: {e}"
    );
}

#[tokio::test]
async fn health_check_versions_grow_and_guard_updates() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().route53_rate(0));
    let r53 = sdk::route53(&l.endpoint());
    let hc = r53
        .create_health_check()
        .caller_reference(unique("hc"))
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Http)
                .fully_qualified_domain_name("api.example.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let hc = hc.health_check().unwrap();
    assert_eq!(hc.health_check_version(), 1);
    let id = hc.id().to_string();
    r53.update_health_check()
        .health_check_id(&id)
        .health_check_version(1)
        .failure_threshold(5)
        .send()
        .await
        .expect("the current version");
    let now = r53
        .get_health_check()
        .health_check_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(now.health_check().unwrap().health_check_version(), 2);
    let e = r53
        .update_health_check()
        .health_check_id(&id)
        .health_check_version(1)
        .failure_threshold(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("HealthCheckVersionMismatch"));
    assert_eq!(l.health_check_version(&id), Some(2));
}

#[tokio::test]
async fn txt_character_strings_longer_than_255_bytes_are_refused() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().route53_rate(0));
    let r53 = sdk::route53(&l.endpoint());
    let name = format!("{}.tandem-test", unique("txt").replace('-', ""));
    let z = zone(&r53, &name).await;
    let txt = |value: String| {
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(
                ResourceRecordSet::builder()
                    .name(format!("t.{name}"))
                    .r#type(RrType::Txt)
                    .ttl(60)
                    .resource_records(ResourceRecord::builder().value(value).build().unwrap())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    // 128 × "é" is 256 bytes in one string: too long, though 128 characters.
    let e = change(&r53, &z, vec![txt(format!("\"{}\"", "é".repeat(128)))])
        .await
        .unwrap_err();
    assert!(e.contains("CharacterStringTooLong"), "{e}");
    // The same text as two escaped strings of at most 255 bytes is fine.
    let escaped = "\\303\\251";
    change(
        &r53,
        &z,
        vec![txt(format!("\"{}\" \"{escaped}\"", escaped.repeat(127)))],
    )
    .await
    .expect("strings of 254 and 2 bytes");
}

#[tokio::test]
async fn alarm_and_routing_control_checks_keep_what_moto_drops() {
    use aws_sdk_route53::types::{AlarmIdentifier, CloudWatchRegion, InsufficientDataHealthStatus};
    skip_unless_acc!();
    let l = lane(StrictConfig::default().route53_rate(0));
    let r53 = sdk::route53(&l.endpoint());
    let create = |config: HealthCheckConfig| {
        r53.create_health_check()
            .caller_reference(unique("hc"))
            .health_check_config(config)
            .send()
    };
    let e = create(
        HealthCheckConfig::builder()
            .r#type(HealthCheckType::CloudwatchMetric)
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidInput"));
    let alarm = |name: &str| {
        AlarmIdentifier::builder()
            .region(CloudWatchRegion::EuWest1)
            .name(name)
            .build()
            .unwrap()
    };
    let hc = create(
        HealthCheckConfig::builder()
            .r#type(HealthCheckType::CloudwatchMetric)
            .alarm_identifier(alarm("api-5xx"))
            .insufficient_data_health_status(InsufficientDataHealthStatus::Unhealthy)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let id = hc.health_check().unwrap().id().to_string();
    let read = || async {
        r53.get_health_check()
            .health_check_id(&id)
            .send()
            .await
            .unwrap()
            .health_check()
            .and_then(|h| h.health_check_config().cloned())
            .unwrap()
    };
    let c = read().await;
    assert_eq!(c.alarm_identifier().map(|a| a.name()), Some("api-5xx"));
    assert_eq!(
        c.insufficient_data_health_status(),
        Some(&InsufficientDataHealthStatus::Unhealthy)
    );
    assert_eq!(c.port(), None, "no endpoint, no port");
    r53.update_health_check()
        .health_check_id(&id)
        .health_check_version(1)
        .alarm_identifier(alarm("api-latency"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read().await.alarm_identifier().map(|a| a.name()),
        Some("api-latency")
    );
    let arn = "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/routingcontrol/def";
    let rc = create(
        HealthCheckConfig::builder()
            .r#type(HealthCheckType::RecoveryControl)
            .routing_control_arn(arn)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        rc.health_check()
            .and_then(|h| h.health_check_config())
            .and_then(|c| c.routing_control_arn()),
        Some(arn)
    );
}

#[tokio::test]
async fn replication_rules_s3_refuses_on_their_own_terms() {
    use aws_sdk_s3::types::{
        DeleteMarkerReplication, DeleteMarkerReplicationStatus, ReplicationRuleAndOperator, Tag,
    };
    skip_unless_acc!();
    let l = lane(StrictConfig::default().versioning_lag(Duration::ZERO));
    let us = sdk::s3(&l.endpoint(), "us-east-1");
    let (src, dst) = (unique("strict-src"), unique("strict-dst"));
    sdk::versioned_bucket(&us, &src).await;
    sdk::versioned_bucket(&us, &dst).await;
    let tagged = ReplicationRule::builder()
        .id("tagged")
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        .filter(
            ReplicationRuleFilter::builder()
                .and(
                    ReplicationRuleAndOperator::builder()
                        .prefix("img/")
                        .tags(Tag::builder().key("k").value("v").build().unwrap())
                        .build(),
                )
                .build(),
        )
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Enabled)
                .build(),
        )
        .destination(
            Destination::builder()
                .bucket(format!("arn:aws:s3:::{dst}"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = ReplicationConfiguration::builder()
        .role("arn:aws:iam::123456789012:role/r")
        .rules(tagged)
        .build()
        .unwrap();
    let e = us
        .put_bucket_replication()
        .bucket(&src)
        .replication_configuration(config)
        .send()
        .await
        .unwrap_err();
    assert_eq!(failure(&e).1, "InvalidRequest");
    us.put_bucket_replication()
        .bucket(&src)
        .replication_configuration(replication(&dst))
        .send()
        .await
        .expect("the same destination without the tag rule");
}

#[tokio::test]
async fn a_name_and_type_hold_one_failover_record_set_per_role() {
    skip_unless_acc!();
    let l = lane(StrictConfig::default().route53_rate(0));
    let r53 = sdk::route53(&l.endpoint());
    let name = format!("{}.strict-test", unique("role"));
    let z = zone(&r53, &name).await;
    let api = format!("api.{name}");
    let role = |id: &str, role: &str| {
        let set = ResourceRecordSet::builder()
            .name(&api)
            .r#type(RrType::A)
            .ttl(60)
            .set_identifier(id)
            .failover(ResourceRecordSetFailover::from(role))
            .resource_records(ResourceRecord::builder().value("10.0.0.1").build().unwrap())
            .build()
            .unwrap();
        move |action: ChangeAction| {
            Change::builder()
                .action(action)
                .resource_record_set(set.clone())
                .build()
                .unwrap()
        }
    };
    change(
        &r53,
        &z,
        vec![role("old", "SECONDARY")(ChangeAction::Create)],
    )
    .await
    .unwrap();
    let e = change(
        &r53,
        &z,
        vec![role("new", "SECONDARY")(ChangeAction::Create)],
    )
    .await
    .unwrap_err();
    assert!(
        e.starts_with("InvalidChangeBatch") && e.contains("same name, type and failover"),
        "{e}"
    );
    // Replacing the holder in the same batch is fine.
    change(
        &r53,
        &z,
        vec![
            role("old", "SECONDARY")(ChangeAction::Delete),
            role("new", "SECONDARY")(ChangeAction::Create),
        ],
    )
    .await
    .unwrap();
}
