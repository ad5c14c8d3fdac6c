//! `tandem-review` on plans produced by real Terraform against moto. Each
//! finding the guide lists is planned for exactly that change (one edit of
//! an applied stack), and a harmless change of the same resource must give
//! nothing. Every plan's counts must equal Terraform's own "Plan:" line.
//! Variants are planned with `-refresh=false`: moto reads some replication
//! settings back differently (no prefix, delete markers off), and the
//! refresh would add that as drift to every plan; the drift test refreshes.

use std::process::Command;

use tandem_acceptance::sdk::versioned_bucket;
use tandem_acceptance::{block_on, provider_dir, skip_unless_acc, unique, Moto, TfDir};
use tandem_review::{markdown, Plan, Report, Risk};

/// One edit of the base configuration and the findings it must give.
struct Variant<'a> {
    name: &'a str,
    /// Text replacements applied to the base configuration, each of which
    /// must match.
    edits: &'a [(&'a str, &'a str)],
    /// Extra `terraform plan` arguments.
    args: &'a [&'a str],
    /// The findings, as (rule ID, risk), in any order.
    expect: &'a [(&'a str, Risk)],
}

/// A reviewed plan.
struct Reviewed {
    report: Report,
    json_path: std::path::PathBuf,
}

/// Plans with `args`, reviews the JSON and checks the counts against
/// Terraform's own summary of the same plan.
fn plan_and_review(dir: &TfDir, args: &[&str]) -> Reviewed {
    let mut plan = vec!["plan", "-out=review.tfplan", "-no-color", "-input=false"];
    plan.extend_from_slice(args);
    dir.ok(&plan);
    let json = dir.ok(&["show", "-json", "review.tfplan"]).stdout;
    dir.write_file("plan.json", &json);
    let human = dir.ok(&["show", "-no-color", "review.tfplan"]).stdout;
    let report = Report::of(&Plan::parse(&json).expect("tandem-review reads the plan"));
    let terraform = human
        .lines()
        .find(|l| l.starts_with("Plan:") || l.starts_with("No changes."))
        .unwrap_or_else(|| panic!("no summary line in:\n{human}"));
    assert!(
        terraform.starts_with(&report.summary),
        "Terraform says {terraform:?}, the review {:?}",
        report.summary
    );
    Reviewed {
        report,
        json_path: dir.path().join("plan.json"),
    }
}

/// The text of the top-level block that starts with `start`, through its
/// closing brace (the first one at the start of a line).
fn block(base: &str, start: &str) -> String {
    let from = base
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} is not in the base"));
    let len = base[from..].find("\n}\n").expect("block end") + 3;
    base[from..from + len].to_string()
}

fn found(r: &Report) -> Vec<(String, Risk)> {
    let mut f: Vec<(String, Risk)> = r
        .findings
        .iter()
        .map(|f| (f.rule.id().to_string(), f.risk))
        .collect();
    f.sort();
    f
}

/// Plans every variant against the applied `base` and checks its findings.
fn check_variants(dir: &TfDir, base: &str, variants: &[Variant<'_>]) {
    let mut failures = Vec::new();
    for v in variants {
        let mut config = base.to_string();
        for (from, to) in v.edits {
            assert!(
                config.contains(from),
                "{}: {from:?} is not in the base",
                v.name
            );
            config = config.replacen(from, to, 1);
        }
        dir.write(&config);
        let mut args = vec!["-refresh=false"];
        args.extend_from_slice(v.args);
        let r = plan_and_review(dir, &args).report;
        assert!(
            r.counts.any_resource_change,
            "{}: the edit changes nothing",
            v.name
        );
        let mut want: Vec<(String, Risk)> = v
            .expect
            .iter()
            .map(|(id, r)| (id.to_string(), *r))
            .collect();
        want.sort();
        let got = found(&r);
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}\n{}",
                v.name,
                markdown::render(&r, &markdown::Options::default())
            ));
        }
    }
    dir.write(base);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

const HC_EU2: &str = r#"
resource "tandem_route53_health_check" "eu2" {
  type          = "HTTP"
  fqdn          = "eu2.origin.tandem.test"
  resource_path = "/health"
}
"#;

fn route53_base(moto: &Moto, zone: &str) -> String {
    format!(
        r#"{provider}
resource "tandem_route53_zone" "z" {{
  name          = "{zone}"
  force_destroy = true
}}

resource "tandem_route53_zone" "spare" {{
  name    = "spare-{zone}"
  comment = "spare zone"
}}

resource "tandem_route53_health_check" "eu" {{
  type              = "HTTP"
  fqdn              = "eu.origin.tandem.test"
  resource_path     = "/health"
  failure_threshold = 3
  request_interval  = 30
  disabled          = false
}}
{HC_EU2}
resource "tandem_route53_failover_record" "api" {{
  zone_id = tandem_route53_zone.z.zone_id
  name    = "api.{zone}"
  type    = "A"
  ttl     = 60
  primary {{
    health_check_id = tandem_route53_health_check.eu.id
    alias {{
      name                   = "lb.origin.tandem.test"
      zone_id                = "Z2EXAMPLE"
      evaluate_target_health = false
    }}
  }}
  secondary {{
    records = ["198.51.100.10"]
  }}
}}
"#,
        provider = moto.provider_block()
    )
}

#[test]
fn route53_findings_on_real_plans() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let zone = format!("{}.tandem.test", unique("review"));
    let base = route53_base(moto, &zone);
    let dir = TfDir::new();
    dir.write(&base);
    dir.apply();

    let hc_eu = "health_check_id = tandem_route53_health_check.eu.id";
    let api_name = format!("name    = \"api.{zone}\"");
    let www_name = format!("name    = \"www.{zone}\"");
    let api = block(&base, "resource \"tandem_route53_failover_record\" \"api\"");
    let spare = block(&base, "resource \"tandem_route53_zone\" \"spare\"");
    let variants = [
        Variant {
            name: "failover record: TTL lowered (harmless)",
            edits: &[("ttl     = 60", "ttl     = 30")],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "failover record: TTL raised",
            edits: &[("ttl     = 60", "ttl     = 300")],
            args: &[],
            expect: &[("failover-ttl-raised", Risk::Low)],
        },
        Variant {
            name: "failover record: secondary records changed",
            edits: &[("198.51.100.10", "198.51.100.20")],
            args: &[],
            expect: &[("failover-target-changed", Risk::Medium)],
        },
        Variant {
            name: "failover record: primary alias target changed",
            edits: &[("lb.origin.tandem.test", "lb2.origin.tandem.test")],
            args: &[],
            expect: &[("failover-target-changed", Risk::Medium)],
        },
        Variant {
            name: "failover record: primary loses its health check",
            edits: &[(hc_eu, "")],
            args: &[],
            expect: &[("failover-health-check-removed", Risk::High)],
        },
        Variant {
            name: "failover record: primary follows another health check",
            edits: &[(
                hc_eu,
                "health_check_id = tandem_route53_health_check.eu2.id",
            )],
            args: &[],
            expect: &[("failover-health-check-changed", Risk::Medium)],
        },
        Variant {
            name: "failover record destroyed",
            edits: &[(&api, "")],
            args: &[],
            expect: &[("failover-record-destroyed", Risk::High)],
        },
        Variant {
            name: "failover record replaced (new name)",
            edits: &[(&api_name, &www_name)],
            args: &[],
            expect: &[("failover-record-replaced", Risk::High)],
        },
        Variant {
            // The case that once read as "primary health check removed": the
            // record's health_check_id is unknown, not null.
            name: "health check replaced (request_interval forces it)",
            edits: &[("request_interval  = 30", "request_interval  = 10")],
            args: &[],
            expect: &[
                ("health-check-replaced", Risk::High),
                ("failover-health-check-changed", Risk::Low),
            ],
        },
        Variant {
            name: "health check replaced on request (-replace)",
            edits: &[],
            args: &["-replace=tandem_route53_health_check.eu2"],
            expect: &[("health-check-replaced", Risk::High)],
        },
        Variant {
            name: "health check disabled",
            edits: &[("disabled          = false", "disabled          = true")],
            args: &[],
            expect: &[("health-check-disabled", Risk::Medium)],
        },
        Variant {
            name: "health check: failure_threshold raised",
            edits: &[("failure_threshold = 3", "failure_threshold = 5")],
            args: &[],
            expect: &[("health-check-slower", Risk::Low)],
        },
        Variant {
            name: "health check: threshold lowered and tags added (harmless)",
            edits: &[(
                "failure_threshold = 3",
                "failure_threshold = 2\n  tags = { team = \"edge\" }",
            )],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "health check destroyed",
            edits: &[(HC_EU2, "")],
            args: &[],
            expect: &[("health-check-destroyed", Risk::High)],
        },
        Variant {
            name: "hosted zone destroyed",
            edits: &[(&spare, "")],
            args: &[],
            expect: &[("stateful-destroyed", Risk::High)],
        },
        Variant {
            name: "hosted zone: comment changed (harmless)",
            edits: &[("comment = \"spare zone\"", "comment = \"the spare zone\"")],
            args: &[],
            expect: &[],
        },
    ];
    check_variants(&dir, &base, &variants);

    // Why Terraform replaces, and what forces it, reach the finding.
    dir.write(&base.replace("request_interval  = 30", "request_interval  = 10"));
    let r = plan_and_review(&dir, &["-refresh=false"]);
    let replaced = r
        .report
        .findings
        .iter()
        .find(|f| f.rule.id() == "health-check-replaced")
        .unwrap();
    assert_eq!(
        replaced.reason.as_deref(),
        Some("an argument that forces replacement changes")
    );
    let paths: Vec<String> = replaced
        .replace_paths
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(paths, ["request_interval"]);
    let diff: Vec<String> = replaced.changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(diff, ["- request_interval = 30\n+ request_interval = 10"]);
    dir.write(&base);
    let r = plan_and_review(
        &dir,
        &["-refresh=false", "-replace=tandem_route53_health_check.eu2"],
    );
    assert_eq!(
        r.report.findings[0].reason.as_deref(),
        Some("replacement was requested (`-replace`)")
    );

    // The binary gates the job: 2 on a high finding, 0 with --fail-on=none.
    dir.write(&base.replace(hc_eu, ""));
    let r = plan_and_review(&dir, &["-refresh=false"]);
    let bin = provider_dir().join("tandem-review");
    let status = |extra: &[&str]| {
        Command::new(&bin)
            .arg(&r.json_path)
            .args(extra)
            .output()
            .expect("run tandem-review (cargo build --workspace builds it)")
            .status
            .code()
    };
    assert_eq!(status(&[]), Some(2));
    assert_eq!(status(&["--fail-on=none"]), Some(0));

    // A destroy plan counts and flags everything stateful.
    dir.write(&base);
    let r = plan_and_review(&dir, &["-refresh=false", "-destroy"]);
    let got = found(&r.report);
    for want in [
        "failover-record-destroyed",
        "health-check-destroyed",
        "stateful-destroyed",
    ] {
        assert!(got.iter().any(|(id, _)| id == want), "{want}: {got:?}");
    }

    // Drift: the check disabled behind Terraform's back is reported, and the
    // plan putting it back is harmless.
    let id = dir.resource("tandem_route53_health_check.eu")["id"]
        .as_str()
        .unwrap()
        .to_string();
    block_on(
        tandem_acceptance::sdk::route53(&moto.endpoint())
            .update_health_check()
            .health_check_id(&id)
            .disabled(true)
            .send(),
    )
    .expect("disable the health check outside Terraform");
    let r = plan_and_review(&dir, &[]).report;
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let drift: Vec<(&str, String)> = r
        .drift
        .iter()
        .flat_map(|d| {
            d.changes
                .iter()
                .map(|c| (d.address.as_str(), c.to_string()))
        })
        .collect();
    assert!(
        drift.contains(&(
            "tandem_route53_health_check.eu",
            "- disabled = false\n+ disabled = true".to_string()
        )),
        "{drift:?}"
    );
    let md = markdown::render(&r, &markdown::Options::default());
    assert!(
        md.contains("<code>tandem_route53_health_check.eu</code> changed outside Terraform"),
        "{md}"
    );
    dir.destroy();
}

fn s3_base(moto: &Moto, p: &str) -> String {
    let bucket = |name: &str, region: &str, extra: &str| {
        format!(
            "resource \"tandem_s3_bucket\" \"{name}\" {{\n  bucket = \"{p}-{name}\"\n  region = \"{region}\"\n{extra}}}\n\nresource \"tandem_s3_bucket_versioning\" \"{name}\" {{\n  bucket = tandem_s3_bucket.{name}.bucket\n  region = tandem_s3_bucket.{name}.region\n  status = \"{}\"\n}}\n",
            if name == "spare" { "Suspended" } else { "Enabled" }
        )
    };
    format!(
        r#"{provider}
{eu}
{us}
{dr}
{old}
{spare}
resource "tandem_s3_bucket_replication" "eu_to_us" {{
  bucket = tandem_s3_bucket_versioning.eu.bucket
  region = "eu-west-1"
  role   = "arn:aws:iam::123456789012:role/replication"

  rule {{
    id                        = "all"
    priority                  = 1
    delete_marker_replication = true
    destination {{
      bucket = tandem_s3_bucket.us.arn
    }}
  }}

  rule {{
    id       = "img"
    priority = 2
    status   = "Enabled"
    destination {{
      bucket = tandem_s3_bucket.us.arn
    }}
  }}

  depends_on = [tandem_s3_bucket_versioning.us, tandem_s3_bucket_versioning.dr]
}}

resource "tandem_s3_bucket_replication" "us_to_dr" {{
  bucket = tandem_s3_bucket_versioning.us.bucket
  role   = "arn:aws:iam::123456789012:role/replication"
  rule {{
    id       = "all"
    priority = 1
    destination {{
      bucket = tandem_s3_bucket.dr.arn
    }}
  }}
  depends_on = [tandem_s3_bucket_versioning.dr]
}}
"#,
        provider = moto.provider_block(),
        eu = bucket("eu", "eu-west-1", "  force_destroy = true\n"),
        us = bucket("us", "us-east-1", "  force_destroy = true\n"),
        dr = bucket("dr", "us-east-1", "  force_destroy = true\n"),
        old = bucket("old", "us-east-1", "  force_destroy = true\n"),
        spare = bucket("spare", "us-east-1", "  tags = { team = \"a\" }\n"),
    )
}

#[test]
fn s3_findings_on_real_plans() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let p = unique("rv");
    let base = s3_base(moto, &p);
    let dir = TfDir::new();
    dir.write(&base);
    dir.apply();

    let img_rule = "    id       = \"img\"\n    priority = 2\n    status   = \"Enabled\"\n";
    let all_dm = "delete_marker_replication = true";
    let us_to_dr = block(
        &base,
        "resource \"tandem_s3_bucket_replication\" \"us_to_dr\"",
    );
    let old_versioning = block(&base, "resource \"tandem_s3_bucket_versioning\" \"old\"");
    let spare_bucket = block(&base, "resource \"tandem_s3_bucket\" \"spare\"");
    let spare_versioning = block(&base, "resource \"tandem_s3_bucket_versioning\" \"spare\"");
    let spare_name = format!("bucket = \"{p}-spare\"");
    let spare_renamed = format!("bucket = \"{p}-spare2\"");
    let variants = [
        Variant {
            name: "replication: a rule added and a storage class set (harmless)",
            edits: &[(
                "      bucket = tandem_s3_bucket.us.arn\n    }\n  }\n\n  rule {",
                "      bucket        = tandem_s3_bucket.us.arn\n      storage_class = \"STANDARD_IA\"\n    }\n  }\n\n  rule {\n    id       = \"logs\"\n    priority = 3\n    destination {\n      bucket = tandem_s3_bucket.us.arn\n    }\n  }\n\n  rule {",
            )],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "replication: delete markers turned on (harmless)",
            edits: &[(img_rule, "    id       = \"img\"\n    priority = 2\n    status   = \"Enabled\"\n    delete_marker_replication = true\n")],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "replication rule removed",
            edits: &[(
                "  rule {\n    id       = \"img\"\n    priority = 2\n    status   = \"Enabled\"\n    destination {\n      bucket = tandem_s3_bucket.us.arn\n    }\n  }\n",
                "",
            )],
            args: &[],
            expect: &[("replication-rule-removed", Risk::High)],
        },
        Variant {
            name: "replication rule disabled",
            edits: &[("    status   = \"Enabled\"", "    status   = \"Disabled\"")],
            args: &[],
            expect: &[("replication-rule-disabled", Risk::High)],
        },
        Variant {
            name: "replication rule narrowed by a prefix filter",
            edits: &[(img_rule, "    id       = \"img\"\n    priority = 2\n    status   = \"Enabled\"\n    filter {\n      prefix = \"img/\"\n    }\n")],
            args: &[],
            expect: &[("replication-filter-narrowed", Risk::Medium)],
        },
        Variant {
            name: "replication rule narrowed by a tag filter",
            edits: &[(img_rule, "    id       = \"img\"\n    priority = 2\n    status   = \"Enabled\"\n    filter {\n      tags = { replicate = \"yes\" }\n    }\n")],
            args: &[],
            expect: &[("replication-filter-narrowed", Risk::Medium)],
        },
        Variant {
            name: "replication destination changed",
            edits: &[(
                "    delete_marker_replication = true\n    destination {\n      bucket = tandem_s3_bucket.us.arn",
                "    delete_marker_replication = true\n    destination {\n      bucket = tandem_s3_bucket.dr.arn",
            )],
            args: &[],
            expect: &[("replication-destination-changed", Risk::Medium)],
        },
        Variant {
            name: "delete-marker replication turned off",
            edits: &[(all_dm, "delete_marker_replication = false")],
            args: &[],
            expect: &[("replication-delete-markers-off", Risk::Medium)],
        },
        Variant {
            name: "replication destroyed",
            edits: &[(&us_to_dr, "")],
            args: &[],
            expect: &[("replication-destroyed", Risk::High)],
        },
        Variant {
            name: "versioning suspended",
            edits: &[(&old_versioning, &old_versioning.replace("Enabled", "Suspended"))],
            args: &[],
            expect: &[("versioning-suspended", Risk::High)],
        },
        Variant {
            name: "versioning resource destroyed",
            edits: &[(&old_versioning, "")],
            args: &[],
            expect: &[("versioning-suspended", Risk::High)],
        },
        Variant {
            name: "versioning enabled (harmless)",
            edits: &[("status = \"Suspended\"", "status = \"Enabled\"")],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "bucket destroyed",
            edits: &[(&spare_bucket, ""), (&spare_versioning, "")],
            args: &[],
            expect: &[("stateful-destroyed", Risk::High)],
        },
        Variant {
            name: "bucket replaced (new name)",
            edits: &[(&spare_name, &spare_renamed)],
            args: &[],
            expect: &[("stateful-destroyed", Risk::High)],
        },
        Variant {
            name: "bucket tags changed (harmless)",
            edits: &[("team = \"a\"", "team = \"b\"")],
            args: &[],
            expect: &[],
        },
    ];
    check_variants(&dir, &base, &variants);

    // A bucket replaced by a rename names the attribute that forces it.
    dir.write(&base.replace(&spare_name, &spare_renamed));
    let r = plan_and_review(&dir, &["-refresh=false"]).report;
    let f = &r.findings[0];
    assert_eq!(f.address, "tandem_s3_bucket.spare");
    let paths: Vec<String> = f.replace_paths.iter().map(|p| p.to_string()).collect();
    assert_eq!(paths, ["bucket"]);
    assert!(f.message.contains("force_destroy is off"), "{}", f.message);
    dir.write(&base);
    dir.destroy();
}

fn fleet_base(moto: &Moto, cfg: &str) -> String {
    let route = |name: &str, replicas: &[(&str, u32)]| {
        let mut s =
            format!("  bucket {{\n    name        = \"{name}\"\n    path_prefix = \"/{name}/\"\n");
        for (r, prio) in replicas {
            s.push_str(&format!("    replica {{\n      name     = \"{r}\"\n      bucket   = \"{name}-{r}\"\n      region   = \"eu-west-1\"\n      priority = {prio}\n    }}\n"));
        }
        s.push_str("  }\n");
        s
    };
    format!(
        r#"{provider}
resource "tandem_proxy_fleet" "f" {{
  config_bucket = "{cfg}"
  config_key    = "fleets/f.json"
  cache {{
    max_bytes = "64MiB"
    ttl       = "1m"
  }}
{assets}{logs}}}

resource "tandem_proxy_fleet" "kept" {{
  config_bucket     = "{cfg}"
  config_key        = "fleets/kept.json"
  retain_on_destroy = true
{kept}}}

resource "tandem_proxy_fleet" "gone" {{
  config_bucket = "{cfg}"
  config_key    = "fleets/gone.json"
{gone}}}
"#,
        provider = moto.provider_block(),
        assets = route("assets", &[("eu", 1), ("us", 2)]),
        logs = route("logs", &[("eu", 1)]),
        kept = route("kept", &[("eu", 1)]),
        gone = route("gone", &[("eu", 1)]),
    )
}

#[test]
fn fleet_findings_on_real_plans() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let cfg = unique("rv-cfg");
    block_on(versioned_bucket(
        &tandem_acceptance::sdk::s3(&moto.endpoint(), "us-east-1"),
        &cfg,
    ));
    let base = fleet_base(moto, &cfg);
    let dir = TfDir::new();
    dir.write(&base);
    dir.apply();

    let logs_route = "  bucket {\n    name        = \"logs\"\n    path_prefix = \"/logs/\"\n    replica {\n      name     = \"eu\"\n      bucket   = \"logs-eu\"\n      region   = \"eu-west-1\"\n      priority = 1\n    }\n  }\n";
    let gone = block(&base, "resource \"tandem_proxy_fleet\" \"gone\"");
    let kept = block(&base, "resource \"tandem_proxy_fleet\" \"kept\"");
    let us_replica = "    replica {\n      name     = \"us\"\n      bucket   = \"assets-us\"\n      region   = \"eu-west-1\"\n      priority = 2\n    }\n";
    let variants = [
        Variant {
            name: "fleet: ttl changed and a replica added (harmless)",
            edits: &[
                ("ttl       = \"1m\"", "ttl       = \"2m\""),
                (
                    "      bucket   = \"logs-eu\"\n      region   = \"eu-west-1\"\n      priority = 1\n    }\n",
                    "      bucket   = \"logs-eu\"\n      region   = \"eu-west-1\"\n      priority = 1\n    }\n    replica {\n      name     = \"dr\"\n      bucket   = \"logs-dr\"\n      region   = \"us-east-1\"\n      priority = 2\n    }\n",
                ),
            ],
            args: &[],
            expect: &[],
        },
        Variant {
            name: "fleet drops a route",
            edits: &[(logs_route, "")],
            args: &[],
            expect: &[("fleet-route-dropped", Risk::High)],
        },
        Variant {
            name: "fleet drops a replica",
            edits: &[(us_replica, "")],
            args: &[],
            expect: &[("fleet-replica-dropped", Risk::Medium)],
        },
        Variant {
            name: "fleet config destroyed",
            edits: &[(&gone, "")],
            args: &[],
            expect: &[("stateful-destroyed", Risk::High)],
        },
        Variant {
            name: "fleet config destroyed with retain_on_destroy",
            edits: &[(&kept, "")],
            args: &[],
            expect: &[("stateful-destroyed", Risk::Low)],
        },
    ];
    check_variants(&dir, &base, &variants);
    dir.destroy();
}
