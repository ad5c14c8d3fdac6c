//! The foundation: our Terraform launcher, the provider launched by real
//! Terraform through dev_overrides, its schema as Terraform reports it, and
//! a lifecycle on another Terraform/OpenTofu when one is installed.

use tandem_acceptance::{other_terraform, skip_unless_acc, Moto, TfDir};

#[test]
fn launcher_runs_terraform_1_15_5() {
    skip_unless_acc!();
    let dir = TfDir::new();
    let out = dir.ok(&["version", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("version JSON");
    if std::env::var_os("TANDEM_TERRAFORM").is_none() {
        assert_eq!(v["terraform_version"], "1.15.5");
    }
}

#[test]
fn provider_schema_has_a_description_on_every_attribute() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    dir.write(&moto.provider_block());
    let out = dir.ok(&["providers", "schema", "-json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema JSON");
    let p = &doc["provider_schemas"]["registry.terraform.io/tandem/tandem"];
    assert!(
        p.is_object(),
        "provider missing from schema output:\n{}",
        out.stdout
    );
    let mut missing = Vec::new();
    walk(&p["provider"]["block"], "provider", &mut missing);
    for kind in ["resource_schemas", "data_source_schemas"] {
        for (name, s) in p[kind].as_object().into_iter().flatten() {
            walk(&s["block"], name, &mut missing);
        }
    }
    assert!(
        missing.is_empty(),
        "attributes without description: {missing:?}"
    );
}

fn walk(block: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    for (name, a) in block["attributes"].as_object().into_iter().flatten() {
        if a["description"].as_str().unwrap_or("").trim().is_empty() {
            missing.push(format!("{path}.{name}"));
        }
        if let Some(n) = a.get("nested_type") {
            walk(n, &format!("{path}.{name}"), missing);
        }
    }
    for (name, b) in block["block_types"].as_object().into_iter().flatten() {
        walk(&b["block"], &format!("{path}.{name}"), missing);
    }
}

#[test]
fn invalid_provider_block_is_a_diagnostic_with_its_attribute() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    let cfg = moto.provider_block().replace(
        "skip_credentials_validation = true",
        "skip_credentials_validation = true\n  max_retries = 1000",
    );
    // Terraform only validates provider blocks that some resource uses.
    dir.write(&format!(
        "{cfg}\nresource \"tandem_route53_zone\" \"z\" {{ name = \"example.com\" }}\n"
    ));
    let out = dir.run(&["validate", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    let all = out.all();
    assert!(all.contains("Invalid max_retries"), "{all}");
    // Terraform points at the attribute's line in the provider block.
    assert!(all.contains("max_retries = 1000"), "{all}");
}

/// One complete lifecycle on another Terraform or OpenTofu, when present,
/// so we know older cores and forks can drive the provider too.
#[test]
fn smoke_lane_on_another_terraform() {
    skip_unless_acc!();
    let Some(other) = other_terraform() else {
        eprintln!("skipped: no other terraform/tofu on PATH and $TERRAFORM unset");
        return;
    };
    let moto = Moto::shared();
    let dir = TfDir::with_terraform(other.clone());
    dir.write(&format!(
        "{}\nresource \"terraform_data\" \"x\" {{ input = \"smoke\" }}\n",
        moto.provider_block()
    ));
    let out = dir.ok(&["version"]);
    eprintln!("smoke lane: {}", out.stdout.lines().next().unwrap_or(""));
    dir.ok(&["providers", "schema", "-json"]);
    dir.apply();
    dir.plan_is_empty();
    dir.destroy();
}

/// Credentials are checked once with STS when the provider is configured:
/// against moto they pass; against an endpoint that is down the user gets a
/// diagnostic saying what was being done, not a gRPC error.
#[test]
fn credentials_are_validated_with_sts() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let zone = format!(
        "\nresource \"tandem_route53_zone\" \"z\" {{\n  name = \"{}.tandem.test\"\n  force_destroy = true\n}}\n",
        tandem_acceptance::unique("sts")
    );
    let checked = moto.provider_block().replace(
        "skip_credentials_validation = true",
        "skip_credentials_validation = false",
    );
    let dir = TfDir::new();
    dir.write(&format!("{checked}{zone}"));
    dir.plan_expect_changes();

    let dead = format!("http://127.0.0.1:{}", tandem_acceptance::free_port());
    let broken = checked.replace(
        &format!("sts     = \"{}\"", moto.endpoint()),
        &format!("sts     = \"{dead}\""),
    );
    assert_ne!(broken, checked);
    let dir = TfDir::new();
    dir.write(&format!("{broken}{zone}"));
    let started = std::time::Instant::now();
    let out = dir.plan_fails();
    // Retrying a refused connection for max_retries took over four minutes
    // before the credential check got its own small attempt budget.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let all = out.all();
    assert!(
        all.contains("validating credentials with STS GetCallerIdentity"),
        "{all}"
    );
    assert!(!all.contains("rpc error"), "{all}");
}

/// Creates and destroys one bucket with `block` at `TF_LOG=debug`, and
/// returns the apply's whole output (Terraform's log included).
fn bucket_with_debug_log(block: &str, prefix: &str) -> String {
    let mut dir = TfDir::new();
    dir.env("TF_LOG", "debug");
    dir.write(&format!(
        "{block}\nresource \"tandem_s3_bucket\" \"b\" {{\n  bucket = \"{}\"\n}}\n",
        tandem_acceptance::unique(prefix)
    ));
    let out = dir.apply();
    dir.destroy();
    out.all()
}

/// `TF_LOG=debug` shows every AWS call the provider makes, with its
/// operation, attempt and duration, and never the credentials: the access
/// key ID, the secret and the session token appear nowhere in Terraform's
/// whole debug log (which also carries the provider's gRPC traffic).
#[test]
fn debug_log_shows_each_aws_call_and_never_a_secret() {
    skip_unless_acc!();
    const ACCESS_KEY: &str = "AKIATANDEMLOGCHECK01";
    const SECRET: &str = "tandem-secret-that-must-never-be-logged";
    const TOKEN: &str = "tandem-session-token-that-must-never-be-logged";
    let moto = Moto::shared();
    let block = moto
        .provider_block()
        .replace(
            "access_key                  = \"test\"",
            &format!("access_key = \"{ACCESS_KEY}\"\n  token = \"{TOKEN}\""),
        )
        .replace(
            "secret_key                  = \"test\"",
            &format!("secret_key = \"{SECRET}\""),
        );
    assert!(block.contains(SECRET) && block.contains(TOKEN), "{block}");
    let log = bucket_with_debug_log(&block, "log");
    for secret in [ACCESS_KEY, SECRET, TOKEN] {
        assert!(!log.contains(secret), "{secret} is in the debug log");
    }
    let calls: Vec<&str> = log.lines().filter(|l| l.contains("AWS call")).collect();
    assert!(
        calls.iter().any(|l| l.contains("CreateBucket")
            && l.contains("attempt")
            && l.contains("duration_ms")),
        "no CreateBucket line with its attempt and duration:\n{}",
        calls.join("\n")
    );
}

/// With `assume_role`, every call runs on the assumed role's credentials,
/// which come from an AssumeRole call that `TF_LOG=debug` shows like any
/// other (aws-config's own provider made it through a client without our
/// call log), and the provider block's static secret still appears nowhere.
#[test]
fn an_assumed_role_is_used_and_its_assume_role_call_is_logged() {
    skip_unless_acc!();
    const SECRET: &str = "tandem-source-secret-that-must-never-be-logged";
    let moto = Moto::shared();
    let block = moto.provider_block().replace(
        "secret_key                  = \"test\"",
        &format!(
            "secret_key = \"{SECRET}\"\n  assume_role {{\n    role_arn = \"arn:aws:iam::123456789012:role/tandem-log-check\"\n    session_name = \"tandem-acc\"\n  }}"
        ),
    );
    assert!(block.contains("assume_role"), "{block}");
    let log = bucket_with_debug_log(&block, "role");
    assert!(
        !log.contains(SECRET),
        "the source secret is in the debug log"
    );
    let calls: Vec<&str> = log.lines().filter(|l| l.contains("AWS call")).collect();
    assert!(
        calls
            .iter()
            .any(|l| l.contains("AssumeRole") && l.contains("attempt")),
        "no AssumeRole line:\n{}",
        calls.join("\n")
    );
    assert!(
        calls.iter().any(|l| l.contains("CreateBucket")),
        "no CreateBucket line:\n{}",
        calls.join("\n")
    );
}
