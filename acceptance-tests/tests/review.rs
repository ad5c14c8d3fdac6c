//! `tandem-review` on plans produced by real Terraform: the risky changes
//! it must flag, the exit status a CI job gates on, and a quiet review of a
//! harmless plan.

use std::path::PathBuf;
use std::process::Command;

use tandem_acceptance::{provider_dir, skip_unless_acc, unique, Moto, TfDir};

fn review_bin() -> PathBuf {
    provider_dir().join("tandem-review")
}

fn stack(moto: &Moto, zone: &str, with_check: bool, extra_ttl: u32) -> String {
    let hc = if with_check {
        r#"
resource "tandem_route53_health_check" "eu" {
  type          = "HTTP"
  fqdn          = "eu.origin.tandem.test"
  resource_path = "/health"
}
"#
    } else {
        ""
    };
    // Without its check, the primary can only be an alias (Route 53
    // refuses a non-alias primary without one); ignoring the target's
    // health, it can no longer fail over.
    let primary = if with_check {
        "records         = [\"192.0.2.10\"]\n    health_check_id = tandem_route53_health_check.eu.id"
    } else {
        "alias {\n      name                   = \"lb.origin.tandem.test\"\n      zone_id                = \"Z2EXAMPLE\"\n      evaluate_target_health = false\n    }"
    };
    format!(
        r#"{provider}
resource "tandem_route53_zone" "z" {{
  name          = "{zone}"
  force_destroy = true
}}
{hc}
resource "tandem_route53_failover_record" "api" {{
  zone_id = tandem_route53_zone.z.zone_id
  name    = "api.{zone}"
  type    = "A"
  ttl     = {extra_ttl}
  primary {{
    {primary}
  }}
  secondary {{
    records = ["198.51.100.10"]
  }}
}}
"#,
        provider = moto.provider_block()
    )
}

/// Plans to a file, renders it as JSON and runs the review on it.
fn review(dir: &TfDir, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["plan", "-out=review.tfplan", "-no-color", "-input=false"];
    args.extend_from_slice(extra);
    dir.ok(&args);
    let json = dir.ok(&["show", "-json", "review.tfplan"]);
    dir.write_file("plan.json", &json.stdout);
    let out = Command::new(review_bin())
        .arg(dir.path().join("plan.json"))
        .output()
        .expect("run tandem-review (cargo build --workspace builds it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn review_flags_risky_plans_from_real_terraform() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let zone = format!("{}.tandem.test", unique("review"));
    let dir = TfDir::new();
    dir.write(&stack(moto, &zone, true, 60));
    dir.apply();

    // Harmless: a TTL change is an in-place update with no findings.
    dir.write(&stack(moto, &zone, true, 120));
    let (code, md) = review(&dir, &[]);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("No risky changes found."), "{md}");
    assert!(md.contains("1 to update"), "{md}");

    // Risky: the primary loses its health check and the check is destroyed.
    dir.write(&stack(moto, &zone, false, 60));
    let (code, md) = review(&dir, &[]);
    assert_eq!(code, 2, "a high finding must fail the job:\n{md}");
    assert!(md.contains("health check removed"), "{md}");
    assert!(md.contains("primary health check removed"), "{md}");

    // Destroying the stack flags the zone and the failover name.
    dir.write(&stack(moto, &zone, true, 60));
    let (code, md) = review(&dir, &["-destroy"]);
    assert_eq!(code, 2, "{md}");
    assert!(md.contains("`tandem_route53_zone.z`"), "{md}");
    assert!(md.contains("failover record set removed"), "{md}");

    dir.destroy();
}
