//! The faithful lane for replication: LocalStack's S3 round-trips rules
//! (And/Tags filters, delete-marker replication, RTC and metrics) where
//! moto hard-codes `Filter{Prefix:""}`. Runs when `scripts/bootstrap` could
//! install LocalStack (it needs Python 3.13) and says clearly when not.

use tandem_acceptance::localstack::LocalStack;
use tandem_acceptance::{skip_unless_acc, unique, TfDir};

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
    id                        = "tagged"
    priority                  = 1
    delete_marker_replication = true
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
