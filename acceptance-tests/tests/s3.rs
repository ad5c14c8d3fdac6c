//! S3 resources through real Terraform, on moto and on the strict lane:
//! buckets in two regions from one provider block, versioning, replication
//! between them; empty plans after apply, updates, imports, out-of-band
//! drift, and a destroy in the right order that leaves nothing behind.

use tandem_acceptance::{block_on, on_both_lanes, sdk, skip_unless_acc, unique, Lane, TfDir};

on_both_lanes!(
    buckets_versioning_and_replication_lifecycle,
    replication_refuses_unversioned_destinations_by_name,
    bucket_import_without_force_destroy_plans_empty,
);

fn stack(
    lane: Lane,
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
        provider = lane.provider_block()
    )
}

fn buckets_versioning_and_replication_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let (eu, us) = (unique("tandem-eu"), unique("tandem-us"));
    let (s3_eu, s3_us) = (lane.s3("eu-west-1"), lane.s3("us-east-1"));
    let dir = TfDir::new();

    // Create in two regions, with replication, then nothing to do.
    dir.write(&stack(lane, &eu, &us, "prod", true, "STANDARD_IA"));
    dir.apply();
    dir.plan_is_empty();
    let b = dir.resource("tandem_s3_bucket.eu");
    assert_eq!(b["region"], "eu-west-1");
    assert_eq!(b["arn"], format!("arn:aws:s3:::{eu}"));
    assert_eq!(dir.resource("tandem_s3_bucket.us")["region"], "us-east-1");
    let loc = block_on(s3_eu.get_bucket_location().bucket(&eu).send()).unwrap();
    assert_eq!(
        loc.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
    let rep = block_on(s3_eu.get_bucket_replication().bucket(&eu).send()).unwrap();
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
    dir.write(&stack(lane, &eu, &us, "staging", true, "ONEZONE_IA"));
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("2 to change"), "{plan}");
    dir.apply();
    dir.plan_is_empty();
    let tags = block_on(s3_eu.get_bucket_tagging().bucket(&eu).send()).unwrap();
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
        let plan = tandem_acceptance::flat(&dir.plan_expect_changes());
        assert!(
            plan.contains("force_destroy = false -> true") && plan.contains("1 to change"),
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
    block_on(
        s3_us
            .put_bucket_versioning()
            .bucket(&us)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    block_on(sdk::wait_for_versioning(&s3_us, &us, Some("Suspended")));
    block_on(s3_eu.delete_bucket_tagging().bucket(&eu).send()).unwrap();
    let plan = dir.plan_expect_changes();
    assert!(plan.contains("\"Suspended\" -> \"Enabled\""), "{plan}");
    assert!(plan.contains("env"), "{plan}");
    dir.apply();
    dir.plan_is_empty();

    // Replication deleted outside Terraform is recreated.
    block_on(s3_eu.delete_bucket_replication().bucket(&eu).send()).unwrap();
    let plan = dir.plan_expect_changes();
    assert!(
        plan.contains("tandem_s3_bucket_replication.eu_to_us will be created"),
        "{plan}"
    );
    dir.apply();

    // Objects (with versions) do not block destroy: force_destroy empties.
    block_on(
        s3_eu
            .put_object()
            .bucket(&eu)
            .key("data/a.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"one"))
            .send(),
    )
    .unwrap();
    block_on(
        s3_eu
            .put_object()
            .bucket(&eu)
            .key("data/a.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"two"))
            .send(),
    )
    .unwrap();
    dir.destroy();
    for (c, b) in [(&s3_eu, &eu), (&s3_us, &us)] {
        assert!(
            block_on(c.head_bucket().bucket(b.as_str()).send()).is_err(),
            "{b} still exists"
        );
    }
}

fn replication_refuses_unversioned_destinations_by_name(lane: Lane) {
    skip_unless_acc!();
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
        provider = lane.provider_block()
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
        provider = Lane::Moto.provider_block()
    ));
    let out = dir.plan_fails().flat();
    for want in [
        "Invalid bucket",
        "can only be Suspended",
        "Replication Time Control needs metrics",
        "Duplicate rule priority",
        "Destination in the source region",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
}

fn bucket_import_without_force_destroy_plans_empty(lane: Lane) {
    skip_unless_acc!();
    let b = unique("tandem-imp");
    let dir = TfDir::new();
    dir.write(&format!(
        "{}\nresource \"tandem_s3_bucket\" \"b\" {{\n  bucket = \"{b}\"\n  region = \"eu-west-1\"\n  tags = {{\n    team = \"edge\"\n  }}\n}}\n",
        lane.provider_block()
    ));
    dir.apply();
    dir.plan_is_empty();
    // By name alone: the region is looked up.
    dir.reimport("tandem_s3_bucket.b", &b);
    dir.destroy();
}

on_both_lanes!(
    replication_to_another_region_with_regions_left_unset,
    creating_an_existing_bucket_fails_unless_adopted,
);

/// The issue's main case: the destination bucket lives in another region
/// and neither its versioning resource nor the replication rule repeat
/// that region; every call must go to the bucket's home region.
fn replication_to_another_region_with_regions_left_unset(lane: Lane) {
    skip_unless_acc!();
    let (src, dst) = (unique("tandem-home"), unique("tandem-away"));
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_s3_bucket" "src" {{
  bucket        = "{src}"
  force_destroy = true
}}
resource "tandem_s3_bucket" "dst" {{
  bucket        = "{dst}"
  region        = "eu-west-1"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  status = "Enabled"
}}
# No region: the bucket's own region is found, not the provider's assumed.
resource "tandem_s3_bucket_versioning" "dst" {{
  bucket = tandem_s3_bucket.dst.bucket
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
    }}
  }}
  depends_on = [tandem_s3_bucket_versioning.dst]
}}
"#,
        provider = lane.provider_block()
    ));
    dir.apply();
    dir.plan_is_empty();
    assert_eq!(
        dir.resource("tandem_s3_bucket_versioning.dst")["region"],
        "eu-west-1"
    );
    assert_eq!(
        dir.resource("tandem_s3_bucket_replication.r")["rule"][0]["destination"]["region"],
        "eu-west-1"
    );
    assert_eq!(
        block_on(sdk::versioning(&lane.s3("eu-west-1"), &dst)).as_deref(),
        Some("Enabled")
    );
    dir.reimport("tandem_s3_bucket_versioning.dst", &dst);
    dir.reimport("tandem_s3_bucket_replication.r", &src);
    dir.destroy();
}

fn bucket_config(lane: Lane, bucket: &str, region: &str, extra: &str) -> String {
    format!(
        "{}\nresource \"tandem_s3_bucket\" \"b\" {{\n  bucket = \"{bucket}\"\n  region = \"{region}\"\n  {extra}\n}}\n",
        lane.provider_block()
    )
}

/// S3 answers 200 to creating a bucket you already own in us-east-1, so a
/// create that does not check first would silently take over (and a later
/// force_destroy empty) a bucket Terraform never made.
fn creating_an_existing_bucket_fails_unless_adopted(lane: Lane) {
    skip_unless_acc!();
    for region in ["us-east-1", "eu-west-1"] {
        let b = unique("tandem-exists");
        let c = lane.s3(region);
        block_on(sdk::versioned_bucket(&c, &b));
        let dir = TfDir::new();
        dir.write(&bucket_config(lane, &b, region, ""));
        let out = dir.apply_fails().flat();
        assert!(
            out.contains("already exists") && out.contains("adopt_existing"),
            "{region}: {out}"
        );
        dir.write(&bucket_config(lane, &b, region, "adopt_existing = true"));
        dir.apply();
        dir.plan_is_empty();
        assert_eq!(dir.resource("tandem_s3_bucket.b")["region"], region);
        dir.destroy();
        assert!(
            block_on(c.head_bucket().bucket(&b).send()).is_err(),
            "{b} still exists"
        );
    }
}

/// A destination owned by another account cannot be read (AccessDenied):
/// with `account` set the preflight says what it could not verify and S3
/// has the last word; without it the refusal stays an error.
#[test]
fn cross_account_destination_is_a_warning_not_an_error() {
    skip_unless_acc!();
    let lane = Lane::Strict;
    let (src, dst) = (unique("tandem-mine"), unique("tandem-theirs"));
    let theirs = sdk::s3_as(&lane.endpoint(), "eu-west-1", sdk::OTHER_ACCESS_KEY);
    block_on(sdk::versioned_bucket(&theirs, &dst));
    let config = |account: &str| {
        format!(
            r#"{provider}
resource "tandem_s3_bucket" "src" {{
  bucket        = "{src}"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  status = "Enabled"
}}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = tandem_s3_bucket_versioning.src.bucket
  role   = "arn:aws:iam::123456789012:role/replication"
  rule {{
    id       = "to-them"
    priority = 1
    destination {{
      bucket = "arn:aws:s3:::{dst}"
      {account}
    }}
  }}
}}
"#,
            provider = lane.provider_block()
        )
    };
    let dir = TfDir::new();
    dir.write(&config(""));
    let out = dir.apply_fails().flat();
    assert!(
        out.contains("AccessDenied") && out.contains("set `account`"),
        "{out}"
    );
    dir.write(&config(&format!("account = \"{}\"", sdk::OTHER_ACCOUNT)));
    let out = dir.apply().flat();
    assert!(
        out.contains("Warning")
            && out.contains(&format!(
                "could not verify the versioning of bucket \"{dst}\""
            )),
        "{out}"
    );
    dir.plan_is_empty();
    let r = dir.resource("tandem_s3_bucket_replication.r");
    assert_eq!(r["rule"][0]["destination"]["region"], "eu-west-1", "{r:#}");
    dir.destroy();
    block_on(theirs.delete_bucket().bucket(&dst).send()).expect("their bucket is theirs to delete");
}

/// force_destroy against versions S3 will not delete: every one is named
/// with its reason and the destroy stops instead of listing them forever;
/// the governance bypass is the user's explicit choice.
#[test]
fn force_destroy_reports_versions_it_cannot_delete() {
    skip_unless_acc!();
    let lane = Lane::Strict;
    let strict = tandem_acceptance::strict::StrictLane::shared();
    let b = unique("tandem-locked");
    let c = lane.s3("us-east-1");
    let config = |bypass: bool| {
        format!(
            "{}\nresource \"tandem_s3_bucket\" \"b\" {{\n  bucket = \"{b}\"\n  force_destroy = true\n  force_destroy_bypass_governance = {bypass}\n}}\n",
            lane.provider_block()
        )
    };
    let dir = TfDir::new();
    dir.write(&config(false));
    dir.apply();
    // Versioning from outside Terraform: destroying a versioning resource
    // would suspend it first, and moto then deletes every version of a
    // key when one is deleted.
    block_on(
        c.put_bucket_versioning()
            .bucket(&b)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    let mut versions = Vec::new();
    for key in ["free.txt", "held.txt", "governed.txt"] {
        for body in ["one", "two"] {
            let out = block_on(
                c.put_object()
                    .bucket(&b)
                    .key(key)
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(
                        body.as_bytes(),
                    ))
                    .send(),
            )
            .unwrap();
            versions.push((key, out.version_id().unwrap_or_default().to_string()));
        }
    }
    use tandem_acceptance::strict::Refusal;
    strict.refuse_delete(&b, "held.txt", Some(&versions[2].1), Refusal::AccessDenied);
    strict.refuse_delete(&b, "governed.txt", None, Refusal::GovernanceLock);

    let o = dir.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let out = o.flat();
    assert_ne!(o.code, 0, "destroy must fail:\n{out}");
    for want in [
        format!("held.txt (version {})", versions[2].1),
        format!("governed.txt (version {})", versions[4].1),
        format!("governed.txt (version {})", versions[5].1),
        "AccessDenied".to_string(),
        "force_destroy_bypass_governance".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?}:\n{out}");
    }
    assert!(!out.contains("free.txt"), "free.txt was deletable:\n{out}");

    // The bypass lets governed versions go; a policy denial still stops it.
    dir.write(&config(true));
    dir.apply();
    let o = dir.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    let out = o.all();
    assert_ne!(o.code, 0, "destroy must fail:\n{out}");
    assert!(
        out.contains("held.txt") && !out.contains("governed.txt"),
        "{out}"
    );

    strict.clear_refusals();
    dir.destroy();
    assert!(block_on(c.head_bucket().bucket(&b).send()).is_err());
}

on_both_lanes!(
    replication_replica_key_and_owner_override_lifecycle,
    replication_of_delete_markers_with_a_tag_filter_fails_at_plan,
);

/// The KMS key replicas of SSE-KMS objects are encrypted with.
const REPLICA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:alias/replicas";

fn owner_override_config(lane: Lane, src: &str, dst: &str, key: &str) -> String {
    format!(
        r#"{provider}
resource "tandem_s3_bucket" "src" {{
  bucket        = "{src}"
  region        = "eu-west-1"
  force_destroy = true
}}
resource "tandem_s3_bucket" "dst" {{
  bucket        = "{dst}"
  force_destroy = true
}}
resource "tandem_s3_bucket_versioning" "src" {{
  bucket = tandem_s3_bucket.src.bucket
  status = "Enabled"
}}
resource "tandem_s3_bucket_versioning" "dst" {{
  bucket = tandem_s3_bucket.dst.bucket
  status = "Enabled"
}}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = tandem_s3_bucket_versioning.src.bucket
  role   = "arn:aws:iam::123456789012:role/replication"
  rule {{
    id       = "all"
    priority = 1
    destination {{
      bucket             = tandem_s3_bucket.dst.arn
      account            = "123456789012"
      replica_kms_key_id = "{key}"
      access_control_translation {{
        owner = "Destination"
      }}
    }}
  }}
  depends_on = [tandem_s3_bucket_versioning.dst]
}}
"#,
        provider = lane.provider_block()
    )
}

/// `replica_kms_key_id` and `access_control_translation` (with the
/// `account` it needs): create, empty plan, update, import, drift, destroy.
/// Both live in the rule's Destination, which moto stores and returns as
/// sent, so both lanes prove the round trip.
fn replication_replica_key_and_owner_override_lifecycle(lane: Lane) {
    skip_unless_acc!();
    let (src, dst) = (unique("tandem-own"), unique("tandem-owned"));
    let s3 = lane.s3("eu-west-1");
    let dir = TfDir::new();
    dir.write(&owner_override_config(lane, &src, &dst, REPLICA_KEY));
    dir.apply();
    dir.plan_is_empty();
    let held = block_on(s3.get_bucket_replication().bucket(&src).send()).unwrap();
    let d = held.replication_configuration().unwrap().rules()[0]
        .destination()
        .cloned()
        .unwrap();
    assert_eq!(
        d.encryption_configuration()
            .and_then(|e| e.replica_kms_key_id()),
        Some(REPLICA_KEY)
    );
    assert_eq!(
        d.access_control_translation().map(|t| t.owner().as_str()),
        Some("Destination")
    );

    let other_key = "arn:aws:kms:us-east-1:123456789012:alias/other";
    dir.write(&owner_override_config(lane, &src, &dst, other_key));
    let plan = dir.plan_expect_changes();
    assert!(
        plan.contains("alias/other") && plan.contains("1 to change"),
        "{plan}"
    );
    dir.apply();
    dir.plan_is_empty();

    dir.reimport(
        "tandem_s3_bucket_replication.r",
        &format!("{src}@eu-west-1"),
    );

    // Outside Terraform: the owner override and the key go.
    let mut rule = held.replication_configuration().unwrap().rules()[0].clone();
    rule.destination = Some(
        aws_sdk_s3::types::Destination::builder()
            .bucket(format!("arn:aws:s3:::{dst}"))
            .build()
            .unwrap(),
    );
    let bare = aws_sdk_s3::types::ReplicationConfiguration::builder()
        .role("arn:aws:iam::123456789012:role/replication")
        .rules(rule)
        .build()
        .unwrap();
    block_on(
        s3.put_bucket_replication()
            .bucket(&src)
            .replication_configuration(bare)
            .send(),
    )
    .unwrap();
    let plan = tandem_acceptance::flat(&dir.plan_expect_changes());
    assert!(
        plan.contains("+ access_control_translation {") && plan.contains("+ replica_kms_key_id"),
        "{plan}"
    );
    dir.apply();
    dir.plan_is_empty();
    dir.destroy();
    assert!(block_on(s3.head_bucket().bucket(&src).send()).is_err());
}

/// S3 refuses a rule that replicates delete markers and filters on tags;
/// the plan says so on `delete_marker_replication`, before anything exists.
fn replication_of_delete_markers_with_a_tag_filter_fails_at_plan(lane: Lane) {
    skip_unless_acc!();
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
resource "tandem_s3_bucket_replication" "r" {{
  bucket = "assets-eu"
  region = "eu-west-1"
  role   = "arn:aws:iam::123456789012:role/replication"
  rule {{
    id                        = "tagged"
    priority                  = 1
    delete_marker_replication = true
    filter {{
      tags = {{ replicate = "yes" }}
    }}
    destination {{
      bucket = "arn:aws:s3:::assets-us"
    }}
  }}
}}
"#,
        provider = lane.provider_block()
    ));
    let out = dir.plan_fails().flat();
    assert!(
        out.contains("Error: Delete marker replication with a tag filter")
            && out.contains("delete_marker_replication = true"),
        "{out}"
    );
}
