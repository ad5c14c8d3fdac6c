//! Acceptance tests of the Route 53 resources: real Terraform driving the
//! real provider binary against moto and the strict lane, following
//! terraform-provider-aws's steps per resource (create, empty plan, update,
//! replace, import, change outside Terraform, delete outside Terraform,
//! destroy).
//!
//! Gated on `TF_ACC=1` (`make test` sets it). Everything but the tests is
//! the shared harness (`tandem_acceptance`): the lanes, Terraform working
//! directories and their plan assertions, changes "outside Terraform"
//! through aws-sdk-route53 on the same lane (`outside::Route53`), and the
//! recording proxy that counts API calls.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::time::Instant;

use tandem_acceptance::outside::Route53;
use tandem_acceptance::recorder::Recorder;
use tandem_acceptance::{
    block_on, on_both_lanes, skip_unless_acc, unique_label, Lane, Moto, TfDir,
};

on_both_lanes!(
    zone_lifecycle,
    zone_without_force_destroy_refuses_to_drop_records,
    health_check_lifecycle,
    failover_record_lifecycle,
    failover_record_refuses_existing_records_unless_allowed,
    failover_txt_values_are_quoted_for_route53_and_stable_in_plans,
    failover_wildcard_names_written_escaped_are_stable,
    failover_record_imports_by_identity,
    failover_primary_without_health_check_fails_at_plan,
    failover_https_svcb_and_ds_records_lifecycle,
    failover_txt_multi_byte_values_split_by_bytes,
    arns_and_endpoints_follow_the_partition,
);

/// Provider-wide tags every test's resources carry.
const DEFAULT_TAGS: &str = "  default_tags {\n    tags = { suite = \"acceptance\" }\n  }\n";

// ---------------------------------------------------------------- tests

fn zone_config(name: &str, comment: &str, tags: &str, extra: &str) -> String {
    format!(
        r#"
resource "tandem_route53_zone" "z" {{
  name    = "{name}"
  comment = "{comment}"
  tags    = {{ {tags} }}
  {extra}
}}
data "tandem_route53_zone" "by_name" {{
  name = tandem_route53_zone.z.name
}}
data "tandem_route53_zone" "by_id" {{
  zone_id = tandem_route53_zone.z.zone_id
}}
output "zone_id" {{ value = tandem_route53_zone.z.zone_id }}
output "by_name_id" {{ value = data.tandem_route53_zone.by_name.zone_id }}
output "by_id_name" {{ value = data.tandem_route53_zone.by_id.name }}
output "tags_all" {{ value = jsonencode(tandem_route53_zone.z.tags_all) }}
"#
    )
}

fn zone_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let name = format!("Zone{u}.Tandem-Test.");
    let canonical = name.to_ascii_lowercase().trim_end_matches('.').to_string();
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);

    // Create (a cosmetic spelling of the name), then nothing to do.
    tf.config(&zone_config(&name, "first", r#"env = "dev""#, ""));
    tf.apply();
    tf.assert_empty_plan("after create");
    let id = tf.output("zone_id");
    assert!(r53.zone_exists(&id));
    assert_eq!(tf.output("by_name_id"), id, "data source by name");
    assert_eq!(tf.output("by_id_name"), canonical, "data source by id");
    assert_eq!(
        tf.output("tags_all"),
        r#"{"env":"dev","suite":"acceptance"}"#
    );

    // Update in place: comment and tags.
    tf.config(&zone_config(&name, "second", r#"env = "prod""#, ""));
    tf.assert_plan_shows("update", &["update in-place", "\"second\""]);
    tf.apply();
    tf.assert_empty_plan("after update");
    assert_eq!(tf.output("zone_id"), id, "updated in place, not replaced");

    // Import by zone ID gives the same state: empty plan.
    tf.reimport("tandem_route53_zone.z", &id);
    tf.assert_empty_plan("after import");

    // A change outside Terraform shows in the next plan, and apply repairs it.
    r53.set_zone_comment(&id, "edited by hand");
    tf.assert_plan_shows(
        "out-of-band comment",
        &["edited by hand", "update in-place"],
    );
    tf.apply();
    tf.assert_empty_plan("after repairing the comment");

    // Deleted outside Terraform: planned for creation again.
    r53.delete_zone(&id);
    tf.assert_plan_shows("out-of-band deletion", &["will be created"]);
    tf.apply();
    let id2 = tf.output("zone_id");
    assert_ne!(id2, id);
    tf.assert_empty_plan("after re-creation");

    // Replace: a new name.
    let renamed = format!("renamed{u}.tandem-test");
    tf.config(&zone_config(
        &renamed,
        "second",
        r#"env = "prod""#,
        "force_destroy = true",
    ));
    tf.assert_plan_shows("rename", &["must be replaced"]);
    tf.apply();
    let id3 = tf.output("zone_id");
    assert_ne!(id3, id2);
    assert!(!r53.zone_exists(&id2), "the old zone was deleted");
    tf.assert_empty_plan("after replacement");

    // force_destroy removes records made outside Terraform; destroy leaves nothing.
    r53.change(
        &id3,
        &[(
            "CREATE",
            &format!("x.{renamed}"),
            &format!("x.{renamed}-a"),
            "PRIMARY",
            "192.0.2.9",
            60,
        )],
    );
    tf.destroy();
    assert!(!r53.zone_exists(&id3), "destroy removed the zone");
}

fn zone_without_force_destroy_refuses_to_drop_records(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let name = format!("keep{u}.tandem-test");
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&zone_config(&name, "c", "", ""));
    tf.apply();
    let id = tf.output("zone_id");
    let rec = format!("a.{name}");
    r53.change(
        &id,
        &[(
            "CREATE",
            &rec,
            &format!("{rec}-p"),
            "PRIMARY",
            "192.0.2.1",
            60,
        )],
    );
    let o = tf.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let t = o.all();
    assert_ne!(o.code, 0, "destroy should fail:\n{t}");
    assert!(
        t.contains("force_destroy"),
        "the error names the way out:\n{t}"
    );
    assert!(r53.zone_exists(&id));
    r53.change(
        &id,
        &[(
            "DELETE",
            &rec,
            &format!("{rec}-p"),
            "PRIMARY",
            "192.0.2.1",
            60,
        )],
    );
    tf.destroy();
    assert!(!r53.zone_exists(&id));
}

fn health_check_config(threshold: u32, interval: u32) -> String {
    format!(
        r#"
resource "tandem_route53_health_check" "web" {{
  type              = "HTTPS_STR_MATCH"
  fqdn              = "API.example.com."
  resource_path     = "/healthz"
  search_string     = "ok"
  failure_threshold = {threshold}
  request_interval  = {interval}
  regions           = ["us-east-1", "eu-west-1", "us-west-2"]
  tags              = {{ role = "web" }}
}}
resource "tandem_route53_health_check" "db" {{
  type       = "TCP"
  ip_address = "192.0.2.10"
  port       = 5432
}}
resource "tandem_route53_health_check" "all" {{
  type                   = "CALCULATED"
  child_healthchecks     = [tandem_route53_health_check.web.id, tandem_route53_health_check.db.id]
  child_health_threshold = 2
}}
output "web_id" {{ value = tandem_route53_health_check.web.id }}
output "db_id" {{ value = tandem_route53_health_check.db.id }}
output "all_id" {{ value = tandem_route53_health_check.all.id }}
"#
    )
}

fn health_check_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&health_check_config(3, 30));
    tf.apply();
    tf.assert_empty_plan("after create");
    let web = tf.output("web_id");
    let db = tf.output("db_id");
    let all = tf.output("all_id");

    // In place: failure_threshold.
    tf.config(&health_check_config(5, 30));
    tf.assert_plan_shows("update", &["update in-place", "failure_threshold"]);
    tf.apply();
    tf.assert_empty_plan("after update");
    assert_eq!(tf.output("web_id"), web);

    // request_interval replaces.
    tf.config(&health_check_config(5, 10));
    tf.assert_plan_shows("interval", &["must be replaced", "forces replacement"]);
    tf.apply();
    let web2 = tf.output("web_id");
    assert_ne!(web2, web);
    assert!(!r53.health_check_exists(&web));
    tf.assert_empty_plan("after replacement");

    // Import each kind.
    tf.reimport("tandem_route53_health_check.web", &web2);
    tf.reimport("tandem_route53_health_check.db", &db);
    tf.reimport("tandem_route53_health_check.all", &all);
    tf.assert_empty_plan("after import");

    // Outside change, then outside deletion.
    r53.set_failure_threshold(&web2, 9);
    tf.assert_plan_shows("out-of-band threshold", &["failure_threshold", "9 -> 5"]);
    tf.apply();
    tf.assert_empty_plan("after repair");
    r53.delete_health_check(&db);
    tf.assert_plan_shows("out-of-band deletion", &["will be created"]);
    tf.apply();
    tf.assert_empty_plan("after re-creation");
    let db2 = tf.output("db_id");

    tf.destroy();
    for id in [&web2, &db2, &all] {
        assert!(
            !r53.health_check_exists(id),
            "health check {id} left behind"
        );
    }
}

fn failover_config(
    zone_name: &str,
    record: &str,
    ttl: u32,
    primary_ip: &str,
    primary_sid: &str,
    extra: &str,
) -> String {
    let sid = if primary_sid.is_empty() {
        String::new()
    } else {
        format!("set_identifier = \"{primary_sid}\"")
    };
    format!(
        r#"
resource "tandem_route53_zone" "z" {{
  name          = "{zone_name}"
  force_destroy = true
}}
resource "tandem_route53_health_check" "primary" {{
  type          = "HTTP"
  ip_address    = "{primary_ip}"
  resource_path = "/healthz"
}}
resource "tandem_route53_failover_record" "api" {{
  zone_id = tandem_route53_zone.z.zone_id
  name    = "{record}"
  type    = "A"
  ttl     = {ttl}
  {extra}
  primary {{
    records         = ["{primary_ip}"]
    health_check_id = tandem_route53_health_check.primary.id
    {sid}
  }}
  secondary {{
    records = ["192.0.2.200"]
  }}
}}
output "zone_id" {{ value = tandem_route53_zone.z.zone_id }}
output "record_id" {{ value = tandem_route53_failover_record.api.id }}
output "primary_sid" {{ value = tandem_route53_failover_record.api.primary.set_identifier }}
"#
    )
}

fn failover_record_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let zone_name = format!("fo{u}.tandem-test");
    // Uppercase and a trailing dot: must never show as a diff.
    let record = format!("API.fo{u}.tandem-test.");
    let canonical = format!("api.fo{u}.tandem-test");
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);

    tf.config(&failover_config(
        &zone_name,
        &record,
        60,
        "192.0.2.1",
        "",
        "",
    ));
    tf.apply();
    tf.assert_empty_plan("after create");
    let zone = tf.output("zone_id");
    assert_eq!(tf.output("record_id"), format!("{zone}/{canonical}/A"));
    assert_eq!(tf.output("primary_sid"), format!("{canonical}-primary"));
    let sets = r53.record_sets(&zone);
    assert!(
        sets.contains("failover=PRIMARY") && sets.contains("failover=SECONDARY"),
        "{sets}"
    );

    // In place: TTL, primary target and set identifier together.
    tf.config(&failover_config(
        &zone_name,
        &record,
        300,
        "192.0.2.2",
        "blue",
        "",
    ));
    tf.assert_plan_shows("update", &["update in-place", "\"blue\""]);
    tf.apply();
    tf.assert_empty_plan("after update");
    let sets = r53.record_sets(&zone);
    assert!(sets.contains("id=blue "), "{sets}");
    assert!(
        !sets.contains(&format!("id={canonical}-primary ")),
        "old identifier left: {sets}"
    );
    assert!(
        sets.contains("[192.0.2.2]") && !sets.contains("[192.0.2.1]"),
        "{sets}"
    );

    // Import by ZONEID/name/TYPE: empty plan.
    tf.reimport(
        "tandem_route53_failover_record.api",
        &format!("{zone}/{canonical}/A"),
    );
    tf.assert_empty_plan("after import");

    // Changed outside Terraform: the next plan shows it; apply repairs.
    r53.change(
        &zone,
        &[("UPSERT", &canonical, "blue", "PRIMARY", "198.51.100.7", 300)],
    );
    tf.assert_plan_shows("out-of-band change", &["198.51.100.7", "update in-place"]);
    tf.apply();
    tf.assert_empty_plan("after repair");

    // One half deleted outside Terraform: the plan restores it in place.
    let secondary = format!("{canonical}-secondary");
    r53.change(
        &zone,
        &[(
            "DELETE",
            &canonical,
            &secondary,
            "SECONDARY",
            "192.0.2.200",
            300,
        )],
    );
    tf.assert_plan_shows("secondary deleted", &["update in-place", "+ secondary"]);
    tf.apply();
    tf.assert_empty_plan("after restoring the secondary");

    // Both halves deleted outside Terraform: gone from state, created again.
    r53.delete_record_sets(&zone, &canonical);
    let t = tf.assert_plan_shows("out-of-band deletion", &["will be created"]);
    assert!(t.contains("no longer exists"), "a warning says why:\n{t}");
    tf.apply();
    tf.assert_empty_plan("after re-creation");

    // Replace: another name.
    let other = format!("www.fo{u}.tandem-test");
    tf.config(&failover_config(
        &zone_name,
        &other,
        300,
        "192.0.2.2",
        "blue",
        "",
    ));
    tf.assert_plan_shows("rename", &["must be replaced"]);
    tf.apply();
    tf.assert_empty_plan("after replacement");
    let sets = r53.record_sets(&zone);
    assert!(
        !sets.contains(&format!("{canonical}. ")),
        "old records left: {sets}"
    );

    tf.destroy();
    assert!(!r53.zone_exists(&zone), "destroy left the zone");
}

fn failover_record_refuses_existing_records_unless_allowed(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let zone_name = format!("ow{u}.tandem-test");
    let zone = r53.create_zone(&zone_name);
    let name = format!("api.{zone_name}");
    r53.change(
        &zone,
        &[
            ("CREATE", &name, "old-p", "PRIMARY", "203.0.113.1", 60),
            ("CREATE", &name, "old-s", "SECONDARY", "203.0.113.2", 60),
        ],
    );
    let hc = r53.health_check();
    let body = |extra: &str| {
        format!(
            r#"
resource "tandem_route53_failover_record" "api" {{
  zone_id = "{zone}"
  name    = "{name}"
  type    = "A"
  ttl     = 60
  {extra}
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
"#
        )
    };
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&body(""));
    let t = tf.apply_fails().all();
    assert!(
        t.contains("already exist") && t.contains("allow_overwrite"),
        "{t}"
    );
    let sets = r53.record_sets(&zone);
    assert!(sets.contains("203.0.113.1"), "nothing was changed: {sets}");

    tf.config(&body("allow_overwrite = true"));
    let (_, t) = tf.plan();
    assert!(
        t.contains("will be adopted"),
        "the plan announces the adoption:\n{t}"
    );
    tf.apply();
    tf.assert_empty_plan("after adoption");
    let sets = r53.record_sets(&zone);
    assert!(
        !sets.contains("203.0.113.") && !sets.contains("old-p"),
        "adopted records replaced: {sets}"
    );
    tf.destroy();
    let sets = r53.record_sets(&zone);
    assert!(
        !sets.contains(&format!("{name}. ")),
        "destroy left records: {sets}"
    );
    r53.delete_zone(&zone);
}

fn failover_txt_values_are_quoted_for_route53_and_stable_in_plans(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let zone_name = format!("txt{u}.tandem-test");
    let zone = r53.create_zone(&zone_name);
    let long = "k".repeat(300);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    let hc = r53.health_check();
    tf.config(&format!(
        r#"
resource "tandem_route53_failover_record" "txt" {{
  zone_id = "{zone}"
  name    = "_policy.{zone_name}"
  type    = "TXT"
  ttl     = 300
  primary {{
    records         = ["v=spf1 include:eu.example.com -all"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["{long}"]
  }}
}}
"#
    ));
    tf.apply();
    tf.assert_empty_plan("after create");
    let sets = r53.record_sets(&zone);
    assert!(
        sets.contains(r#"["v=spf1 include:eu.example.com -all"]"#),
        "TXT value sent quoted: {sets}"
    );
    assert!(
        sets.contains(&format!(r#""{}" "{}""#, "k".repeat(255), "k".repeat(45))),
        "long TXT value split into 255-character strings: {sets}"
    );
    tf.reimport(
        "tandem_route53_failover_record.txt",
        &format!("{zone}/_policy.{zone_name}/TXT"),
    );
    tf.destroy();
    r53.delete_zone(&zone);
}

fn failover_wildcard_names_written_escaped_are_stable(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let u = unique_label("r53");
    let zone_name = format!("wc{u}.tandem-test");
    let zone = r53.create_zone(&zone_name);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    let hc = r53.health_check();
    // `\052` is how Route 53 itself writes a leading `*`.
    tf.config(&format!(
        r#"
resource "tandem_route53_failover_record" "wild" {{
  zone_id = "{zone}"
  name    = "\\052.WC{u}.tandem-test."
  type    = "A"
  ttl     = 60
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
output "id" {{ value = tandem_route53_failover_record.wild.id }}
"#
    ));
    tf.apply();
    tf.assert_empty_plan("after create");
    let id = format!("{zone}/*.{zone_name}/A");
    assert_eq!(tf.output("id"), id);
    assert!(
        r53.record_sets(&zone)
            .contains(&format!("id=*.{zone_name}-primary ")),
        "default set identifier from the normalised name"
    );
    tf.reimport("tandem_route53_failover_record.wild", &id);
    tf.destroy();
    r53.delete_zone(&zone);
}

fn failover_record_imports_by_identity(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    if !tf.supports_identity_import() {
        eprintln!("skipped: this Terraform has no import by identity");
        return;
    }
    let u = unique_label("r53");
    let hc = r53.health_check();
    let zone_name = format!("ident{u}.tandem-test");
    let zone = r53.create_zone(&zone_name);
    let name = format!("api.{zone_name}");
    r53.change(
        &zone,
        &[
            ("CREATE", &name, "blue", "PRIMARY", "192.0.2.1", 60),
            ("CREATE", &name, "green", "SECONDARY", "192.0.2.2", 60),
        ],
    );
    tf.config(&format!(
        r#"
import {{
  to = tandem_route53_failover_record.api
  identity = {{
    zone_id = "{zone}"
    name    = "{name}"
    type    = "A"
  }}
}}
resource "tandem_route53_failover_record" "api" {{
  zone_id = "{zone}"
  name    = "{name}"
  type    = "A"
  ttl     = 60
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
"#
    ));
    tf.assert_plan_shows("import by identity", &["1 to import", "0 to change"]);
    tf.apply();
    tf.assert_empty_plan("after import by identity");
    let state = tf.resource("tandem_route53_failover_record.api");
    assert_eq!(state["primary"]["set_identifier"], "blue", "{state:#}");
    assert_eq!(state["secondary"]["set_identifier"], "green", "{state:#}");
    tf.destroy();
    let sets = r53.record_sets(&zone);
    assert!(
        !sets.contains("failover=P") && !sets.contains("failover=S"),
        "destroy left records: {sets}"
    );
    r53.delete_zone(&zone);
}

#[test]
fn failover_pair_is_written_in_one_change_batch() {
    skip_unless_acc!();
    let u = unique_label("r53");
    let zone_name = format!("batch{u}.tandem-test");
    let zone = Route53(Lane::Moto).create_zone(&zone_name);
    let rec = Recorder::start(Moto::shared()).expect("recorder");
    let hc = Route53(Lane::Moto).health_check();
    let rrset = format!("/hostedzone/{zone}/rrset");
    let body = |ttl: u32, sid: &str| {
        format!(
            r#"
resource "tandem_route53_failover_record" "api" {{
  zone_id = "{zone}"
  name    = "api.{zone_name}"
  type    = "A"
  ttl     = {ttl}
  primary {{
    records         = ["192.0.2.1"]
    set_identifier  = "{sid}"
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
  # Only the wait uses it; moto is INSYNC at once.
  timeouts {{
    create = "5m"
    update = "90s"
  }}
}}
"#
        )
    };
    let tf = TfDir::new().with_provider(rec.provider_block(DEFAULT_TAGS));
    tf.config(&body(60, "one"));
    tf.apply();
    assert_eq!(
        rec.count("POST", &rrset),
        1,
        "create: one batch; requests: {:?}",
        rec.requests()
    );
    tf.config(&body(120, "two"));
    tf.apply();
    assert_eq!(
        rec.count("POST", &rrset),
        2,
        "update: one more batch; requests: {:?}",
        rec.requests()
    );
    tf.destroy();
    assert_eq!(
        rec.count("POST", &rrset),
        3,
        "delete: one more batch; requests: {:?}",
        rec.requests()
    );
    let sets = Route53(Lane::Moto).record_sets(&zone);
    assert!(
        !sets.contains("failover=P") && !sets.contains("failover=S"),
        "destroy left records: {sets}"
    );
    Route53(Lane::Moto).delete_zone(&zone);
}

#[test]
fn invalid_configurations_fail_at_plan_with_attribute_paths() {
    skip_unless_acc!();
    let tf = TfDir::on_lane(Lane::Moto, DEFAULT_TAGS);
    tf.config(
        r#"
resource "tandem_route53_health_check" "bad" {
  type              = "HTTP"
  search_string     = "ok"
  failure_threshold = 11
  request_interval  = 20
  regions           = ["us-east-1"]
}
resource "tandem_route53_failover_record" "bad" {
  zone_id = "Z123"
  name    = "api.example.com"
  type    = "a"
  primary {
    records = ["192.0.2.1"]
    alias {
      name    = "lb.example.com"
      zone_id = "Z2"
    }
    set_identifier = "same"
  }
  secondary {
    set_identifier = "same"
  }
  timeouts {
    create = "soon"
  }
}
"#,
    );
    let t = tf.plan_fails().all();
    for needle in [
        "Missing endpoint",
        "Argument not allowed for a HTTP health check",
        "Invalid failure_threshold",
        "Invalid request_interval",
        "Invalid regions",
        "Invalid type",
        "Did you mean \"A\"?",
        "Conflicting arguments",
        "Missing argument",
        "Duplicate set_identifier",
        "Invalid timeouts.create",
    ] {
        assert!(t.contains(needle), "plan lacks {needle:?}:\n{t}");
    }
}

/// Count of record pairs in the benchmark, from issue 3.
const BENCH_PAIRS: usize = 100;

/// The numbers behind docs/benchmarks.md (Route 53 section): `terraform
/// apply` then `terraform plan` of 100 failover pairs against moto, with
/// Route 53 API calls counted by the recording proxy, beside 100
/// `terraform_data` resources as Terraform's own floor. Run with
/// `TF_ACC=1 cargo test -p tandem-acceptance --test route53 -- --ignored --nocapture bench`.
#[test]
#[ignore = "benchmark: slow; run explicitly"]
fn bench_100_failover_record_sets() {
    skip_unless_acc!();
    let u = unique_label("r53");
    let zone_name = format!("bench{u}.tandem-test");
    let zone = Route53(Lane::Moto).create_zone(&zone_name);
    let rec = Recorder::start(Moto::shared()).expect("recorder");
    let hc = Route53(Lane::Moto).health_check();
    let tf = TfDir::new().with_provider(rec.provider_block(DEFAULT_TAGS));
    tf.config(&format!(
        r#"
resource "tandem_route53_failover_record" "r" {{
  count   = {BENCH_PAIRS}
  zone_id = "{zone}"
  name    = "r${{count.index}}.{zone_name}"
  type    = "A"
  ttl     = 60
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
"#
    ));
    let mut rows = Vec::new();
    let mut step = |what: &str, f: &dyn Fn()| {
        let before = rec.requests().len();
        let t0 = Instant::now();
        f();
        let secs = t0.elapsed().as_secs_f64();
        let calls = rec.requests().len() - before;
        rows.push(format!(
            "| {BENCH_PAIRS} `tandem_route53_failover_record` | {what} | {secs:.1} s | {calls} |"
        ));
    };
    step("apply (create)", &|| {
        tf.apply();
    });
    step("plan (no changes)", &|| tf.assert_empty_plan("bench"));
    step("destroy", &|| {
        tf.destroy();
    });
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for r in rec.requests() {
        let path = r.split('?').next().unwrap_or("").to_string();
        let kind = if path.ends_with("/rrset") {
            format!("{} …/rrset", r.split(' ').next().unwrap_or(""))
        } else {
            path
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    Route53(Lane::Moto).delete_zone(&zone);

    let floor = TfDir::on_lane(Lane::Moto, DEFAULT_TAGS);
    floor.write(&format!(
        "resource \"terraform_data\" \"r\" {{\n  count = {BENCH_PAIRS}\n  input = count.index\n}}\n"
    ));
    let mut floor_rows = Vec::new();
    for (what, args) in [
        (
            "apply (create)",
            &["apply", "-auto-approve", "-no-color", "-input=false"][..],
        ),
        (
            "plan (no changes)",
            &["plan", "-no-color", "-input=false", "-detailed-exitcode"][..],
        ),
        (
            "destroy",
            &["destroy", "-auto-approve", "-no-color", "-input=false"][..],
        ),
    ] {
        let t0 = Instant::now();
        let o = floor.run(args);
        assert_eq!(o.code, 0, "terraform_data {what}:\n{}", o.all());
        floor_rows.push(format!(
            "| {BENCH_PAIRS} `terraform_data` | {what} | {:.1} s | 0 |",
            t0.elapsed().as_secs_f64()
        ));
    }
    println!("| Resources | Step | Wall time | Route 53 API calls |");
    println!("|---|---|---|---|");
    for r in rows.iter().chain(&floor_rows) {
        println!("{r}");
    }
    println!("\nCalls by kind: {by_kind:?}");
}

/// Route 53 refuses a non-alias PRIMARY without a health check; the plan
/// says so, on the attribute, before anything is written.
fn failover_primary_without_health_check_fails_at_plan(lane: Lane) {
    skip_unless_acc!();
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(
        r#"
resource "tandem_route53_failover_record" "api" {
  zone_id = "Z123EXAMPLE"
  name    = "api.example.com"
  type    = "A"
  ttl     = 60
  primary {
    records = ["192.0.2.1"]
  }
  secondary {
    records = ["192.0.2.2"]
  }
}
"#,
    );
    let t = tandem_acceptance::flat(&tf.plan_fails().all());
    assert!(
        t.contains("Error: Primary without a health check") && t.contains("primary {"),
        "{t}"
    );
}

/// An edit made between plan and apply is refused by HealthCheckVersion,
/// never overwritten: the version the plan read is the one sent.
#[test]
fn health_check_edited_between_plan_and_apply_is_not_overwritten() {
    skip_unless_acc!();
    let lane = Lane::Strict;
    let r53 = Route53(lane);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    let config = |threshold: u32| {
        format!(
            r#"
resource "tandem_route53_health_check" "web" {{
  type              = "HTTP"
  ip_address        = "192.0.2.10"
  failure_threshold = {threshold}
}}
output "id" {{ value = tandem_route53_health_check.web.id }}
"#
        )
    };
    tf.config(&config(3));
    tf.apply();
    let id = tf.output("id");
    tf.config(&config(5));
    tf.ok(&["plan", "-out=tfplan", "-no-color", "-input=false"]);
    r53.set_failure_threshold(&id, 9);
    let o = tf.run(&["apply", "-no-color", "-input=false", "tfplan"]);
    let t = o.flat();
    assert_ne!(o.code, 0, "the stale plan must not apply:\n{t}");
    assert!(
        t.contains("changed by someone else meanwhile") && t.contains("nothing was overwritten"),
        "{t}"
    );
    let now = block_on(r53.client().get_health_check().health_check_id(&id).send())
        .expect("GetHealthCheck");
    let threshold = now
        .health_check()
        .and_then(|h| h.health_check_config())
        .and_then(|c| c.failure_threshold());
    assert_eq!(threshold, Some(9), "the other edit stands");
    // A fresh plan sees the edit and puts the configuration back.
    tf.assert_plan_shows("after the refusal", &["9 -> 5"]);
    tf.apply();
    tf.assert_empty_plan("after re-applying");
    tf.destroy();
}

/// A CREATE that Route 53 refuses because someone else wrote the records
/// meanwhile is an error; it is never retried as an UPSERT over theirs.
#[test]
fn failover_create_refused_by_route53_is_never_turned_into_an_upsert() {
    skip_unless_acc!();
    let lane = Lane::Strict;
    let strict = tandem_acceptance::strict::StrictLane::shared();
    let r53 = Route53(lane);
    let zone_name = format!("race{}.tandem-test", unique_label("r53"));
    let zone = r53.create_zone(&zone_name);
    let name = format!("api.{zone_name}");
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&format!(
        r#"
resource "tandem_route53_failover_record" "api" {{
  zone_id = "{zone}"
  name    = "{name}"
  type    = "A"
  ttl     = 60
  primary {{
    records         = ["192.0.2.1"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["192.0.2.2"]
  }}
}}
"#,
        hc = r53.health_check()
    ));
    strict.refuse_next_create(&name);
    let t = tandem_acceptance::flat(&tf.apply_fails().all());
    assert!(t.contains("already exist"), "{t}");
    assert!(
        !strict.change_actions(&name).iter().any(|a| a == "UPSERT"),
        "no UPSERT may follow a refused CREATE: {:?}",
        strict.change_actions(&name)
    );
    tf.apply();
    tf.assert_empty_plan("after the second apply");
    tf.destroy();
    r53.delete_zone(&zone);
}

/// Ctrl-C during an apply that is retrying a throttled Route 53: the
/// provider abandons the SDK call in flight when Terraform sends
/// StopProvider, so Terraform exits within seconds, not after the SDK's
/// minutes of backoff.
#[test]
fn interrupting_a_throttled_apply_stops_within_five_seconds() {
    skip_unless_acc!();
    use std::time::Duration;
    let lane = tandem_acceptance::strict::StrictLane::start(
        Moto::shared(),
        tandem_acceptance::strict::StrictConfig::default(),
    )
    .expect("strict lane");
    let dir = TfDir::new();
    dir.write(&format!(
        "{}\nresource \"tandem_route53_zone\" \"z\" {{\n  name = \"stop{}.tandem-test\"\n}}\n",
        lane.provider_block(),
        unique_label("r53")
    ));
    lane.throttle_route53(true);
    let mut apply = dir.spawn(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while lane.route53_throttled() < 2 {
        assert!(
            Instant::now() < deadline,
            "the apply never reached Route 53"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let interrupted = Instant::now();
    apply.interrupt();
    let out = apply.wait(Duration::from_secs(5));
    let took = interrupted.elapsed();
    let out = out.unwrap_or_else(|| panic!("Terraform still running {took:?} after Ctrl-C"));
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        out.flat().contains("cancelled"),
        "the error says the call was cancelled:\n{}",
        out.all()
    );
}

/// The routing control the RECOVERY_CONTROL checks follow (ARC is not
/// emulated: Route 53 only stores the ARN).
const ROUTING_CONTROL: &str =
    "arn:aws:route53-recovery-control::123456789012:controlpanel/abc123/routingcontrol/def456";

fn alarm_check_config(alarm: &str, status: &str) -> String {
    format!(
        r#"
resource "tandem_route53_health_check" "alarm" {{
  type                            = "CLOUDWATCH_METRIC"
  cloudwatch_alarm_name           = "{alarm}"
  cloudwatch_alarm_region         = "eu-west-1"
  insufficient_data_health_status = "{status}"
}}
resource "tandem_route53_health_check" "arc" {{
  type                = "RECOVERY_CONTROL"
  routing_control_arn = "{ROUTING_CONTROL}"
}}
output "alarm_id" {{ value = tandem_route53_health_check.alarm.id }}
output "arc_id" {{ value = tandem_route53_health_check.arc.id }}
"#
    )
}

/// Health checks that follow a CloudWatch alarm or an ARC routing control:
/// create, empty plan, update in place, import, drift, destroy. On the
/// strict lane only: moto drops AlarmIdentifier, InsufficientDataHealthStatus
/// and RoutingControlArn (and invents a port and interval), so on moto
/// these could never read back as written.
#[test]
fn health_checks_on_alarms_and_routing_controls_lifecycle() {
    skip_unless_acc!();
    let lane = Lane::Strict;
    let r53 = Route53(lane);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&alarm_check_config("api-5xx", "Unhealthy"));
    tf.apply();
    tf.assert_empty_plan("after create");
    let (alarm, arc) = (tf.output("alarm_id"), tf.output("arc_id"));
    let held = r53.health_check_config(&alarm);
    assert_eq!(held.alarm_identifier().map(|a| a.name()), Some("api-5xx"));
    assert_eq!(
        held.insufficient_data_health_status().map(|s| s.as_str()),
        Some("Unhealthy")
    );
    assert_eq!(
        r53.health_check_config(&arc).routing_control_arn(),
        Some(ROUTING_CONTROL)
    );

    // The alarm and the status change in place.
    tf.config(&alarm_check_config("api-latency", "LastKnownStatus"));
    tf.assert_plan_shows("update", &["update in-place", "\"api-latency\""]);
    tf.apply();
    tf.assert_empty_plan("after update");
    assert_eq!(tf.output("alarm_id"), alarm, "updated, not replaced");

    tf.reimport("tandem_route53_health_check.alarm", &alarm);
    tf.reimport("tandem_route53_health_check.arc", &arc);

    r53.set_cloudwatch_alarm(&alarm, "eu-west-1", "edited-by-hand");
    tf.assert_plan_shows(
        "out-of-band alarm",
        &["\"edited-by-hand\" -> \"api-latency\"", "update in-place"],
    );
    tf.apply();
    tf.assert_empty_plan("after repair");

    tf.destroy();
    assert!(!r53.health_check_exists(&alarm) && !r53.health_check_exists(&arc));
}

/// 64 hexadecimal digits, a SHA-256 digest as DS records carry.
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn service_records_config(zone: &str, zone_name: &str, hc: &str, https_priority: u32) -> String {
    format!(
        r#"
resource "tandem_route53_failover_record" "https" {{
  zone_id = "{zone}"
  name    = "api.{zone_name}"
  type    = "HTTPS"
  ttl     = 300
  primary {{
    records         = ["{https_priority} . alpn=h2"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["1 backup.{zone_name}. alpn=h2"]
  }}
}}
resource "tandem_route53_failover_record" "svcb" {{
  zone_id = "{zone}"
  name    = "_8443._svc.{zone_name}"
  type    = "SVCB"
  ttl     = 300
  primary {{
    records         = ["16 svc.{zone_name}. port=8443"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["1 fallback.{zone_name}."]
  }}
}}
resource "tandem_route53_failover_record" "ds" {{
  zone_id = "{zone}"
  name    = "child.{zone_name}"
  type    = "DS"
  ttl     = 300
  primary {{
    records         = ["12345 13 2 {DIGEST}"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["54321 13 2 {DIGEST}"]
  }}
}}
"#
    )
}

/// HTTPS, SVCB and DS pairs: create, empty plan, update, import, drift,
/// destroy.
fn failover_https_svcb_and_ds_records_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let zone_name = format!("svc{}.tandem-test", unique_label("r53"));
    let zone = r53.create_zone(&zone_name);
    let hc = r53.health_check();
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&service_records_config(&zone, &zone_name, hc, 1));
    tf.apply();
    tf.assert_empty_plan("after create");
    let sets = r53.record_sets(&zone);
    for ty in [" HTTPS ", " SVCB ", " DS "] {
        assert_eq!(sets.matches(ty).count(), 2, "{ty} pair: {sets}");
    }
    assert!(sets.contains(&format!("[12345 13 2 {DIGEST}]")), "{sets}");

    tf.config(&service_records_config(&zone, &zone_name, hc, 2));
    tf.assert_plan_shows("update", &["update in-place", "\"2 . alpn=h2\""]);
    tf.apply();
    tf.assert_empty_plan("after update");

    for (addr, name, ty) in [
        ("https", format!("api.{zone_name}"), "HTTPS"),
        ("svcb", format!("_8443._svc.{zone_name}"), "SVCB"),
        ("ds", format!("child.{zone_name}"), "DS"),
    ] {
        tf.reimport(
            &format!("tandem_route53_failover_record.{addr}"),
            &format!("{zone}/{name}/{ty}"),
        );
    }

    let api = format!("api.{zone_name}");
    r53.change_of_type(
        &zone,
        "HTTPS",
        &[(
            "UPSERT",
            &api,
            &format!("{api}-primary"),
            "PRIMARY",
            "3 . alpn=h3",
            300,
        )],
    );
    tf.assert_plan_shows("out-of-band value", &["3 . alpn=h3", "update in-place"]);
    tf.apply();
    tf.assert_empty_plan("after repair");

    tf.destroy();
    let sets = r53.record_sets(&zone);
    assert!(
        !sets.contains("failover=PRIMARY") && !sets.contains("failover=SECONDARY"),
        "destroy left records: {sets}"
    );
    r53.delete_zone(&zone);
}

/// TXT text is split into character-strings of at most 255 bytes, not
/// characters, with every non-ASCII byte as an octal escape: 200 × "é" is
/// 200 characters but 400 bytes, which the strict lane (like Route 53)
/// refuses as one string.
fn failover_txt_multi_byte_values_split_by_bytes(lane: Lane) {
    skip_unless_acc!();
    let r53 = Route53(lane);
    let zone_name = format!("utf{}.tandem-test", unique_label("r53"));
    let zone = r53.create_zone(&zone_name);
    let hc = r53.health_check();
    let text = "é".repeat(200);
    let tf = TfDir::on_lane(lane, DEFAULT_TAGS);
    tf.config(&format!(
        r#"
resource "tandem_route53_failover_record" "txt" {{
  zone_id = "{zone}"
  name    = "_verify.{zone_name}"
  type    = "TXT"
  ttl     = 300
  primary {{
    records         = ["{text}"]
    health_check_id = "{hc}"
  }}
  secondary {{
    records = ["café crème"]
  }}
}}
"#
    ));
    tf.apply();
    tf.assert_empty_plan("after create");
    let sets = r53.record_sets(&zone);
    let escaped = "\\303\\251";
    assert!(
        sets.contains(&format!(
            "\"{}\" \"{}\"",
            escaped.repeat(127),
            escaped.repeat(73)
        )),
        "two strings of 254 and 146 bytes: {sets}"
    );
    assert!(sets.contains("\"caf\\303\\251 cr\\303\\250me\""), "{sets}");
    tf.reimport(
        "tandem_route53_failover_record.txt",
        &format!("{zone}/_verify.{zone_name}/TXT"),
    );
    tf.destroy();
    r53.delete_zone(&zone);
}

/// With the provider in another partition's region, the ARNs the provider
/// builds name that partition (`arn:aws-cn:`), and bucket endpoints its
/// domain (`amazonaws.com.cn`).
fn arns_and_endpoints_follow_the_partition(lane: Lane) {
    skip_unless_acc!();
    let bucket = tandem_acceptance::unique("tandem-cn");
    let tf = TfDir::new().with_provider(lane.provider_block_in("cn-north-1", ""));
    tf.config(&format!(
        r#"
resource "tandem_route53_health_check" "api" {{
  type       = "TCP"
  ip_address = "192.0.2.10"
  port       = 443
}}
resource "tandem_s3_bucket" "b" {{
  bucket        = "{bucket}"
  force_destroy = true
}}
output "check_arn" {{ value = tandem_route53_health_check.api.arn }}
output "check_id" {{ value = tandem_route53_health_check.api.id }}
output "bucket_arn" {{ value = tandem_s3_bucket.b.arn }}
output "bucket_domain" {{ value = tandem_s3_bucket.b.bucket_regional_domain_name }}
"#
    ));
    tf.apply();
    tf.assert_empty_plan("after create");
    assert_eq!(
        tf.output("check_arn"),
        format!("arn:aws-cn:route53:::healthcheck/{}", tf.output("check_id"))
    );
    assert_eq!(tf.output("bucket_arn"), format!("arn:aws-cn:s3:::{bucket}"));
    assert_eq!(
        tf.output("bucket_domain"),
        format!("{bucket}.s3.cn-north-1.amazonaws.com.cn")
    );
    tf.destroy();
}
