//! `examples/two-region` applied and destroyed through real Terraform
//! against moto: zone, failover name with health checks, two-way replicated
//! buckets, and each region's fleet config and manifests, via the modules.

use tandem_acceptance::{repo_root, skip_unless_acc, unique, Moto, TfDir};

#[test]
fn two_region_example_applies_and_destroys() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    // Keep the example's place next to modules/ so its sources resolve.
    let work = dir.path().join("examples/two-region");
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(repo_root().join("modules"), dir.path().join("modules")).unwrap();
    for f in ["main.tf", "variables.tf", "outputs.tf"] {
        std::fs::copy(
            repo_root().join("examples/two-region").join(f),
            work.join(f),
        )
        .unwrap();
    }
    let suffix = unique("t").replace('-', "");
    let vars = [
        "-var".to_string(),
        format!("aws_endpoint={}", moto.endpoint()),
        "-var".to_string(),
        format!("suffix={suffix}"),
        "-var".to_string(),
        format!("domain={suffix}.tandem.test"),
        // moto reports DeleteMarkerReplication as Disabled whatever was
        // written, so true would show a diff on every plan here.
        "-var".to_string(),
        "replicate_delete_markers=false".to_string(),
    ];
    let run = |args: &[&str]| {
        let mut a: Vec<&str> = vec!["-chdir=examples/two-region"];
        a.extend_from_slice(args);
        a.extend(vars.iter().map(String::as_str));
        dir.ok(&a)
    };
    dir.ok(&[
        "-chdir=examples/two-region",
        "init",
        "-backend=false",
        "-no-color",
        "-input=false",
    ]);
    run(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let out = dir.ok(&["-chdir=examples/two-region", "output", "-json"]);
    let o: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        o["failover_name"]["value"],
        format!("assets.{suffix}.tandem.test")
    );
    let versions = o["config_versions"]["value"].as_object().unwrap();
    assert_eq!(versions.len(), 2);
    let eu = &o["kubernetes_manifests"]["value"]["eu-west-1"];
    let deployment = eu
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.starts_with("Deployment/")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no Deployment among {eu}"));
    assert!(deployment.contains("kind: \"Deployment\""), "{deployment}");
    let plan = {
        let mut a = vec![
            "-chdir=examples/two-region",
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-input=false",
        ];
        a.extend(vars.iter().map(String::as_str));
        dir.run(&a)
    };
    assert_eq!(
        plan.code,
        0,
        "plan after apply must be empty:\n{}",
        plan.all()
    );
    run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
}
