//! `tandem_proxy_manifests` read through real Terraform; every rendered
//! Kubernetes object validates against the Kubernetes API schemas (bundled
//! by `kubernetes-validate`, so offline), strictly, and carries the fleet's
//! settings.

use std::process::Command;

use tandem_acceptance::{repo_root, skip_unless_acc, Moto, TfDir};

/// The oldest Kubernetes minor we promise (preStop `sleep` needs 1.30+).
const KUBERNETES_VERSION: &str = "1.31.0";

#[test]
fn rendered_manifests_validate_and_match_the_fleet() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    dir.write(&format!(
        r#"{provider}
data "tandem_proxy_manifests" "m" {{
  name                   = "assets"
  namespace              = "edge"
  image                  = "registry.example.com/tandem-proxy:0.1.0"
  config_source          = "s3://fleet-config/assets.json"
  config_region          = "eu-west-1"
  replicas               = 3
  max_replicas           = 9
  target_cpu_utilization = 60
  drain_delay            = "10s"
  drain_grace            = "45s"
  credentials_secret     = "tandem-proxy-aws"
  env = {{
    RUST_LOG = "info"
  }}
}}

output "deployment" {{ value = data.tandem_proxy_manifests.m.deployment }}
output "service" {{ value = data.tandem_proxy_manifests.m.service }}
output "pdb" {{ value = data.tandem_proxy_manifests.m.pod_disruption_budget }}
output "hpa" {{ value = data.tandem_proxy_manifests.m.horizontal_pod_autoscaler }}
output "unit" {{ value = data.tandem_proxy_manifests.m.systemd_unit }}
output "decoded_replicas" {{ value = yamldecode(data.tandem_proxy_manifests.m.deployment).spec.replicas }}
"#,
        provider = moto.provider_block()
    ));
    dir.apply();
    dir.plan_is_empty();
    let out = |name: &str| dir.ok(&["output", "-raw", name]).stdout;

    // Terraform's own YAML decoder reads what we render.
    assert_eq!(out("decoded_replicas").trim(), "3");

    let validate = repo_root().join(".cache/venv/bin/kubernetes-validate");
    for name in ["deployment", "service", "pdb", "hpa"] {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, out(name)).unwrap();
        let v = Command::new(&validate)
            .args(["--strict", "-k", KUBERNETES_VERSION])
            .arg(&file)
            .output()
            .expect("kubernetes-validate (scripts/bootstrap installs it)");
        assert!(
            v.status.success(),
            "{name} fails the Kubernetes {KUBERNETES_VERSION} schema:\n{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }

    let deployment = out("deployment");
    // 10 s delay + 45 s grace + 5 s margin.
    assert!(
        deployment.contains("terminationGracePeriodSeconds: 60"),
        "{deployment}"
    );
    assert!(deployment.contains("seconds: 10"), "{deployment}");
    assert!(deployment.contains("maxUnavailable: 0"), "{deployment}");
    assert!(
        deployment.contains("topologyKey: \"topology.kubernetes.io/zone\""),
        "{deployment}"
    );
    assert!(
        deployment.contains("\"s3://fleet-config/assets.json\""),
        "{deployment}"
    );
    let hpa = out("hpa");
    assert!(
        hpa.contains("minReplicas: 3")
            && hpa.contains("maxReplicas: 9")
            && hpa.contains("averageUtilization: 60"),
        "{hpa}"
    );
    assert!(out("pdb").contains("maxUnavailable: 1"));
    assert!(out("unit").contains("TimeoutStopSec=60"));
}
