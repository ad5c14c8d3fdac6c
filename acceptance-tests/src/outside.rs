//! Route 53 changes made "outside Terraform" with the AWS SDK, as another
//! tool or a person would: what acceptance tests use to seed records,
//! drift objects and check what is really there, on one lane.

use std::sync::OnceLock;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};

use crate::{block_on, Lane};

/// Route 53 calls made "outside Terraform" with the AWS SDK, as another
/// tool or a person would, on one lane.
#[derive(Clone, Copy)]
pub struct Route53(pub Lane);

fn client(lane: Lane) -> &'static aws_sdk_route53::Client {
    static CLIENTS: [OnceLock<aws_sdk_route53::Client>; 2] = [OnceLock::new(), OnceLock::new()];
    CLIENTS[lane as usize].get_or_init(|| lane.route53())
}

impl Route53 {
    /// The lane's SDK client, built once per lane and test process.
    pub fn client(self) -> &'static aws_sdk_route53::Client {
        client(self.0)
    }

    /// Whether hosted zone `id` exists.
    pub fn zone_exists(self, id: &str) -> bool {
        block_on(self.client().get_hosted_zone().id(id).send()).is_ok()
    }

    /// Whether health check `id` exists.
    pub fn health_check_exists(self, id: &str) -> bool {
        block_on(self.client().get_health_check().health_check_id(id).send()).is_ok()
    }

    /// A health check for the PRIMARY records made outside Terraform:
    /// Route 53 refuses a non-alias primary without one. One per lane and
    /// test process.
    pub fn health_check(self) -> &'static str {
        static IDS: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
        IDS[self.0 as usize].get_or_init(|| {
            let out = block_on(
                self.client()
                    .create_health_check()
                    .caller_reference(crate::unique("hc"))
                    .health_check_config(
                        aws_sdk_route53::types::HealthCheckConfig::builder()
                            .r#type(aws_sdk_route53::types::HealthCheckType::Tcp)
                            .ip_address("192.0.2.250")
                            .port(443)
                            .build()
                            .expect("health check config"),
                    )
                    .send(),
            )
            .expect("CreateHealthCheck");
            out.health_check().expect("health check").id().to_string()
        })
    }

    /// The zone's record sets, one line each:
    /// `name TYPE id=SETID failover=ROLE ttl=N [values]`.
    pub fn record_sets(self, zone: &str) -> String {
        let out = block_on(
            self.client()
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .send(),
        )
        .expect("ListResourceRecordSets");
        out.resource_record_sets()
            .iter()
            .map(|s| {
                let values: Vec<&str> = s.resource_records().iter().map(|r| r.value()).collect();
                format!(
                    "{} {} id={} failover={} ttl={} [{}]\n",
                    s.name(),
                    s.r#type().as_str(),
                    s.set_identifier().unwrap_or("-"),
                    s.failover().map(|f| f.as_str()).unwrap_or("-"),
                    s.ttl().unwrap_or(-1),
                    values.join(",")
                )
            })
            .collect()
    }

    /// Changes a zone's comment (drift).
    pub fn set_zone_comment(self, zone: &str, comment: &str) {
        block_on(
            self.client()
                .update_hosted_zone_comment()
                .id(zone)
                .comment(comment)
                .send(),
        )
        .expect("UpdateHostedZoneComment");
    }

    /// Creates a hosted zone; returns its ID without prefix.
    pub fn create_zone(self, name: &str) -> String {
        let out = block_on(
            self.client()
                .create_hosted_zone()
                .name(name)
                .caller_reference(crate::unique("ref"))
                .send(),
        )
        .expect("CreateHostedZone");
        out.hosted_zone()
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .expect("zone in CreateHostedZone response")
    }

    /// Deletes a hosted zone.
    pub fn delete_zone(self, zone: &str) {
        block_on(self.client().delete_hosted_zone().id(zone).send()).expect("DeleteHostedZone");
    }

    /// Changes a health check's failure threshold (drift), at its current version.
    pub fn set_failure_threshold(self, id: &str, n: i32) {
        let version = block_on(self.client().get_health_check().health_check_id(id).send())
            .expect("GetHealthCheck")
            .health_check()
            .map(|h| h.health_check_version())
            .unwrap_or(1);
        block_on(
            self.client()
                .update_health_check()
                .health_check_id(id)
                .health_check_version(version)
                .failure_threshold(n)
                .send(),
        )
        .expect("UpdateHealthCheck");
    }

    /// Makes a CloudWatch alarm health check follow another alarm (drift),
    /// at its current version.
    pub fn set_cloudwatch_alarm(self, id: &str, region: &str, name: &str) {
        let version = block_on(self.client().get_health_check().health_check_id(id).send())
            .expect("GetHealthCheck")
            .health_check()
            .map(|h| h.health_check_version())
            .unwrap_or(1);
        let alarm = aws_sdk_route53::types::AlarmIdentifier::builder()
            .region(aws_sdk_route53::types::CloudWatchRegion::from(region))
            .name(name)
            .build()
            .expect("alarm");
        block_on(
            self.client()
                .update_health_check()
                .health_check_id(id)
                .health_check_version(version)
                .alarm_identifier(alarm)
                .send(),
        )
        .expect("UpdateHealthCheck");
    }

    /// The configuration Route 53 holds for health check `id`.
    pub fn health_check_config(self, id: &str) -> aws_sdk_route53::types::HealthCheckConfig {
        block_on(self.client().get_health_check().health_check_id(id).send())
            .expect("GetHealthCheck")
            .health_check()
            .and_then(|h| h.health_check_config().cloned())
            .expect("a health check config")
    }

    /// Deletes a health check.
    pub fn delete_health_check(self, id: &str) {
        block_on(
            self.client()
                .delete_health_check()
                .health_check_id(id)
                .send(),
        )
        .expect("DeleteHealthCheck");
    }

    /// Deletes every record set named `name` in `zone` exactly as listed,
    /// as an operator using the console would (Route 53 refuses a DELETE
    /// that does not repeat the record set's current values).
    pub fn delete_record_sets(self, zone: &str, name: &str) {
        delete_record_sets_with(self.client(), zone, name);
    }

    /// One change batch of `(action, name, set_identifier, failover, ip, ttl)`
    /// A record sets; PRIMARY ones get [`Route53::health_check`].
    pub fn change(self, zone: &str, changes: &[(&str, &str, &str, &str, &str, i64)]) {
        self.change_of_type(zone, "A", changes);
    }

    /// [`Route53::change`] for record sets of type `ty`, each with one value.
    pub fn change_of_type(
        self,
        zone: &str,
        ty: &str,
        changes: &[(&str, &str, &str, &str, &str, i64)],
    ) {
        let changes: Vec<Change> = changes
            .iter()
            .map(|(action, name, sid, failover, ip, ttl)| {
                let check = (*failover == "PRIMARY").then(|| self.health_check().to_string());
                let set = ResourceRecordSet::builder()
                    .name(*name)
                    .r#type(RrType::from(ty))
                    .set_identifier(*sid)
                    .failover(ResourceRecordSetFailover::from(*failover))
                    .set_health_check_id(check)
                    .ttl(*ttl)
                    .resource_records(
                        ResourceRecord::builder()
                            .value(*ip)
                            .build()
                            .expect("record"),
                    )
                    .build()
                    .expect("record set");
                Change::builder()
                    .action(ChangeAction::from(*action))
                    .resource_record_set(set)
                    .build()
                    .expect("change")
            })
            .collect();
        send_changes(self.client(), zone, changes);
    }
}

/// [`Route53::delete_record_sets`] through any client (e.g. a strict lane
/// of a test's own). The listing starts at `name`, so it is found in a zone
/// of any size.
pub fn delete_record_sets_with(client: &aws_sdk_route53::Client, zone: &str, name: &str) {
    let wanted = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
    let listed = block_on(
        client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(&wanted)
            .send(),
    )
    .expect("ListResourceRecordSets");
    let changes: Vec<Change> = listed
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().to_ascii_lowercase() == wanted)
        .map(|s| {
            Change::builder()
                .action(ChangeAction::Delete)
                .resource_record_set(s.clone())
                .build()
                .expect("change")
        })
        .collect();
    assert!(!changes.is_empty(), "no record sets named {name} in {zone}");
    send_changes(client, zone, changes);
}

/// Sends `changes` to `zone` as one ChangeResourceRecordSets batch
/// (outside Terraform), panicking with the error if Route 53 refuses it.
pub fn send_changes(client: &aws_sdk_route53::Client, zone: &str, changes: Vec<Change>) {
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .expect("batch");
    block_on(
        client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send(),
    )
    .expect("ChangeResourceRecordSets");
}
