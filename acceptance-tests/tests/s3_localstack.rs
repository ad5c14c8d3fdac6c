//! The faithful lane for replication: LocalStack's S3 round-trips rules
//! (And/Tags filters, delete-marker replication, RTC and metrics, source
//! selection criteria) where moto hard-codes `Filter{Prefix:""}` and drops
//! `SourceSelectionCriteria`. Runs when `scripts/bootstrap` could install
//! LocalStack (it needs Python 3.13) and says clearly when not.

use tandem_acceptance::localstack::LocalStack;
use tandem_acceptance::{block_on, skip_unless_acc, unique, TfDir};

#[test]
fn replication_with_tags_rtc_and_delete_markers_plans_empty_on_localstack() {
    skip_unless_acc!();
    let Some(ls) = LocalStack::shared() else {
        eprintln!("skipped: LocalStack lane not installed (.cache/localstack needs Python 3.13; see scripts/bootstrap)");
        return;
    };
    let (src, dst) = (unique("ls-src"), unique("ls-dst"));
    let dir = TfDir::new().with_provider(ls.provider_block());
    dir.config(&format!(
        r#"
resource "tandem_s3_bucket" "src" {{
  bucket        = "{src}"
  region        = "eu-west-1"
  force_destroy = true
}}
resource "tandem_s3_bucket" "dst" {{
  bucket        = "{dst}"
  region        = "us-east-1"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  region = tandem_s3_bucket.src.region
  status = "Enabled"
}}
resource "tandem_s3_bucket_versioning" "dst" {{
  bucket = tandem_s3_bucket.dst.bucket
  region = tandem_s3_bucket.dst.region
  status = "Enabled"
}}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = tandem_s3_bucket_versioning.src.bucket
  region = tandem_s3_bucket_versioning.src.region
  role   = "arn:aws:iam::000000000000:role/replication"

  rule {{
    id       = "tagged"
    priority = 1
    filter {{
      prefix = "img/"
      tags = {{
        replicate = "yes"
        tier      = "hot"
      }}
    }}
    destination {{
      bucket           = tandem_s3_bucket.dst.arn
      region           = tandem_s3_bucket_versioning.dst.region
      storage_class    = "STANDARD_IA"
      replication_time = true
      metrics          = true
    }}
  }}

  rule {{
    id       = "one-tag"
    priority = 2
    filter {{
      tags = {{
        archive = "true"
      }}
    }}
    destination {{
      bucket = tandem_s3_bucket.dst.arn
      region = tandem_s3_bucket_versioning.dst.region
    }}
  }}

  # Delete markers replicate only from rules without tags: S3 refuses the
  # combination (the plan does too; LocalStack accepts it).
  rule {{
    id                        = "markers"
    priority                  = 3
    delete_marker_replication = true
    filter {{
      prefix = "logs/"
    }}
    destination {{
      bucket = tandem_s3_bucket.dst.arn
      region = tandem_s3_bucket_versioning.dst.region
    }}
  }}
}}
"#
    ));
    dir.apply();
    // The point of this lane: what S3 returns reads back exactly as written.
    dir.plan_is_empty();
    dir.reimport(
        "tandem_s3_bucket_replication.r",
        &format!("{src}@eu-west-1"),
    );
    dir.destroy();
}

fn two_way_config(a: &str, b: &str) -> String {
    let rule = |from: &str, to: &str| {
        format!(
            r#"
resource "tandem_s3_bucket_replication" "{from}" {{
  bucket = tandem_s3_bucket_versioning.{from}.bucket
  role   = "arn:aws:iam::000000000000:role/replication"
  rule {{
    id                        = "to-{to}"
    priority                  = 1
    replica_modifications     = true
    sse_kms_encrypted_objects = true
    destination {{
      bucket             = tandem_s3_bucket.{to}.arn
      replica_kms_key_id = "arn:aws:kms:us-east-1:000000000000:alias/replicas-{to}"
    }}
  }}
  depends_on = [tandem_s3_bucket_versioning.{to}]
}}
"#
        )
    };
    let bucket = |name: &str, id: &str, region: &str| {
        format!(
            r#"
resource "tandem_s3_bucket" "{id}" {{
  bucket        = "{name}"
  region        = "{region}"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "{id}" {{
  bucket = tandem_s3_bucket.{id}.bucket
  region = tandem_s3_bucket.{id}.region
  status = "Enabled"
}}
"#
        )
    };
    format!(
        "{}{}{}{}",
        bucket(a, "a", "eu-west-1"),
        bucket(b, "b", "us-east-1"),
        rule("a", "b"),
        rule("b", "a")
    )
}

/// Two-way replication as the guide describes it, with
/// `replica_modifications` and SSE-KMS objects (with their replica key) on
/// both sides: create, empty plan, import, drift, destroy. moto drops
/// `SourceSelectionCriteria`, so this runs on LocalStack.
#[test]
fn two_way_replication_with_replica_modifications_and_sse_kms_on_localstack() {
    skip_unless_acc!();
    let Some(ls) = LocalStack::shared() else {
        eprintln!("skipped: LocalStack lane not installed (.cache/localstack needs Python 3.13; see scripts/bootstrap)");
        return;
    };
    let (a, b) = (unique("ls-two-a"), unique("ls-two-b"));
    let dir = TfDir::new().with_provider(ls.provider_block());
    dir.config(&two_way_config(&a, &b));
    dir.apply();
    dir.plan_is_empty();
    let s3 = ls.s3("eu-west-1");
    let held = block_on(s3.get_bucket_replication().bucket(&a).send()).unwrap();
    let rule = held.replication_configuration().unwrap().rules()[0].clone();
    let criteria = rule.source_selection_criteria().expect("criteria kept");
    assert!(criteria.replica_modifications().is_some());
    assert!(criteria.sse_kms_encrypted_objects().is_some());

    dir.reimport("tandem_s3_bucket_replication.a", &format!("{a}@eu-west-1"));
    dir.reimport("tandem_s3_bucket_replication.b", &b);

    // Outside Terraform: the criteria of a's rule go.
    let mut bare = rule;
    bare.source_selection_criteria = None;
    let config = aws_sdk_s3::types::ReplicationConfiguration::builder()
        .role("arn:aws:iam::000000000000:role/replication")
        .rules(bare)
        .build()
        .unwrap();
    block_on(
        s3.put_bucket_replication()
            .bucket(&a)
            .replication_configuration(config)
            .send(),
    )
    .unwrap();
    let plan = tandem_acceptance::flat(&dir.plan_expect_changes());
    assert!(
        plan.contains("replica_modifications = false -> true")
            && plan.contains("sse_kms_encrypted_objects = false -> true"),
        "{plan}"
    );
    dir.apply();
    dir.plan_is_empty();
    dir.destroy();
}
