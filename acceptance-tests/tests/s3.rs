//! S3 resources through real Terraform against moto: buckets in two
//! regions from one provider block, versioning, replication between them;
//! empty plans after apply, updates, imports, out-of-band drift, and a
//! destroy in the right order that leaves nothing behind.

use tandem_acceptance::{skip_unless_acc, unique, Moto, TfDir};

fn client(moto: &Moto, region: &str) -> aws_sdk_s3::Client {
    tandem_acceptance::sdk::s3(&moto.endpoint(), region)
}

fn stack(
    moto: &Moto,
    eu: &str,
    us: &str,
    env: &str,
    with_replication: bool,
    storage_class: &str,
) -> String {
    let replication = if with_replication {
        format!(
            r#"
resource "tandem_s3_bucket_replication" "eu_to_us" {{
  bucket = tandem_s3_bucket_versioning.eu.bucket
  region = "eu-west-1"
  role   = "arn:aws:iam::123456789012:role/replication"

  rule {{
    id       = "all"
    priority = 1
    # No prefix filter here: moto answers every rule with Filter {{Prefix:""}},
    # so a prefix could never read back (LocalStack round-trips it).
    destination {{
      bucket        = tandem_s3_bucket.us.arn
      # region left unset: the provider looks it up (us-east-1).
      storage_class = "{storage_class}"
    }}
  }}

  depends_on = [tandem_s3_bucket_versioning.us]
}}
"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{provider}
resource "tandem_s3_bucket" "eu" {{
  bucket        = "{eu}"
  region        = "eu-west-1"
  force_destroy = true
  tags = {{
    env = "{env}"
  }}
}}

resource "tandem_s3_bucket" "us" {{
  bucket        = "{us}"
  force_destroy = true
}}

resource "tandem_s3_bucket_versioning" "eu" {{
  bucket = tandem_s3_bucket.eu.bucket
  region = tandem_s3_bucket.eu.region
  status = "Enabled"
}}

resource "tandem_s3_bucket_versioning" "us" {{
  bucket = tandem_s3_bucket.us.bucket
  status = "Enabled"
}}
{replication}"#,
        provider = moto.provider_block()
    )
}

#[tokio::test]
async fn buckets_versioning_and_replication_lifecycle() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let (eu, us) = (unique("tandem-eu"), unique("tandem-us"));
    let (s3_eu, s3_us) = (client(moto, "eu-west-1"), client(moto, "us-east-1"));
    let dir = TfDir::new();

    // Create in two regions, with replication, then nothing to do.
    dir.write(&stack(moto, &eu, &us, "prod", true, "STANDARD_IA"));
    dir.apply();
    dir.plan_is_empty();
    let b = dir.resource("tandem_s3_bucket.eu");
    assert_eq!(b["region"], "eu-west-1");
    assert_eq!(b["arn"], format!("arn:aws:s3:::{eu}"));
    assert_eq!(dir.resource("tandem_s3_bucket.us")["region"], "us-east-1");
    let loc = s3_eu
        .get_bucket_location()
        .bucket(&eu)
        .send()
        .await
        .unwrap();
    assert_eq!(
        loc.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
    let rep = s3_eu
        .get_bucket_replication()
        .bucket(&eu)
        .send()
        .await
        .unwrap();
    let rule = &rep.replication_configuration().unwrap().rules()[0];
    assert_eq!(rule.priority(), Some(1));
    assert_eq!(
        rule.destination().unwrap().bucket(),
        format!("arn:aws:s3:::{us}")
    );
    let r = dir.resource("tandem_s3_bucket_replication.eu_to_us");
    assert_eq!(
        r["rule"][0]["destination"]["region"], "us-east-1",
        "unset destination region is looked up"
    );

    // Update tags and the replication rule in place.
    dir.write(&stack(moto, &eu, &us, "staging", true, "ONEZONE_IA"));
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("2 to change"), "{plan}");
    dir.apply();
    dir.plan_is_empty();
    let tags = s3_eu.get_bucket_tagging().bucket(&eu).send().await.unwrap();
    assert_eq!(tags.tag_set()[0].value(), "staging");

    // Import each resource by bucket@region and find nothing to change.
    // force_destroy lives only in state, so after an import the next apply
    // records it (no API call), as with terraform-provider-aws.
    for (addr, id) in [
        ("tandem_s3_bucket.eu", format!("{eu}@eu-west-1")),
        ("tandem_s3_bucket.us", us.clone()),
    ] {
        dir.ok(&["state", "rm", "-no-color", addr]);
        dir.ok(&["import", "-no-color", addr, &id]);
        let plan = dir.plan_expect_changes();
        assert!(
            plan.contains("force_destroy               = false -> true")
                && plan.contains("1 to change"),
            "{plan}"
        );
        dir.apply();
        dir.plan_is_empty();
    }
    dir.reimport("tandem_s3_bucket_versioning.eu", &format!("{eu}@eu-west-1"));
    dir.reimport(
        "tandem_s3_bucket_replication.eu_to_us",
        &format!("{eu}@eu-west-1"),
    );

    // Out-of-band changes show up as drift and are put back.
    s3_us
        .put_bucket_versioning()
        .bucket(&us)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3_eu
        .delete_bucket_tagging()
        .bucket(&eu)
        .send()
        .await
        .unwrap();
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("\"Suspended\" -> \"Enabled\""), "{plan}");
    assert!(plan.contains("env"), "{plan}");
    dir.apply();
    dir.plan_is_empty();

    // Replication deleted outside Terraform is recreated.
    s3_eu
        .delete_bucket_replication()
        .bucket(&eu)
        .send()
        .await
        .unwrap();
    let plan = dir.plan_expect_changes();
    assert!(
        plan.contains("tandem_s3_bucket_replication.eu_to_us will be created"),
        "{plan}"
    );
    dir.apply();

    // Objects (with versions) do not block destroy: force_destroy empties.
    s3_eu
        .put_object()
        .bucket(&eu)
        .key("data/a.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    s3_eu
        .put_object()
        .bucket(&eu)
        .key("data/a.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    dir.destroy();
    for (c, b) in [(&s3_eu, &eu), (&s3_us, &us)] {
        assert!(
            c.head_bucket().bucket(b.as_str()).send().await.is_err(),
            "{b} still exists"
        );
    }
}

#[tokio::test]
async fn replication_refuses_unversioned_destinations_by_name() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let (src, dst) = (unique("tandem-src"), unique("tandem-dst"));
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_s3_bucket" "src" {{
  bucket = "{src}"
}}
resource "tandem_s3_bucket" "dst" {{
  bucket = "{dst}"
  region = "eu-west-1"
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  status = "Enabled"
}}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = tandem_s3_bucket_versioning.src.bucket
  role   = "arn:aws:iam::123456789012:role/replication"
  rule {{
    id       = "all"
    priority = 1
    destination {{
      bucket = tandem_s3_bucket.dst.arn
      region = "eu-west-1"
    }}
  }}
}}
"#,
        provider = moto.provider_block()
    ));
    let out = dir.apply_fails().all();
    assert!(
        out.contains("Versioning must be Enabled for replication"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Bucket \"{dst}\" (eu-west-1) has versioning never enabled"
        )),
        "{out}"
    );
    dir.destroy();
}

#[test]
fn invalid_s3_configurations_fail_at_plan() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_s3_bucket" "bad" {{
  bucket = "Not_A_Bucket"
}}
resource "tandem_s3_bucket_versioning" "bad" {{
  bucket = "assets-eu"
  status = "Disabled"
}}
resource "tandem_s3_bucket_replication" "bad" {{
  bucket = "assets-eu"
  region = "eu-west-1"
  role   = "arn:aws:iam::123456789012:role/r"
  rule {{
    id       = "a"
    priority = 1
    destination {{
      bucket           = "arn:aws:s3:::assets-us"
      replication_time = true
    }}
  }}
  rule {{
    id       = "b"
    priority = 1
    destination {{
      bucket = "arn:aws:s3:::assets-eu2"
      region = "eu-west-1"
    }}
  }}
}}
"#,
        provider = moto.provider_block()
    ));
    let out = dir.plan_fails().all();
    for want in [
        "Invalid bucket name",
        "Versioning cannot be disabled",
        "Replication Time Control needs metrics",
        "Duplicate rule priority",
        "Destination in the source region",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
}

#[test]
fn bucket_import_without_force_destroy_plans_empty() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let b = unique("tandem-imp");
    let dir = TfDir::new();
    dir.write(&format!(
        "{}\nresource \"tandem_s3_bucket\" \"b\" {{\n  bucket = \"{b}\"\n  region = \"eu-west-1\"\n  tags = {{\n    team = \"edge\"\n  }}\n}}\n",
        moto.provider_block()
    ));
    dir.apply();
    dir.plan_is_empty();
    // By name alone: the region is looked up.
    dir.reimport("tandem_s3_bucket.b", &b);
    dir.destroy();
}
