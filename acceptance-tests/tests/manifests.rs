//! `tandem_proxy_manifests` read through real Terraform: the map of
//! documents works with `for_each` and `yamldecode` exactly as
//! docs/guides/kubernetes.md shows it; every rendered Kubernetes object
//! validates strictly against the Kubernetes API schemas (bundled by
//! `kubernetes-validate`, so offline) for the versions each `pre_stop`
//! choice promises; and the systemd unit passes `systemd-analyze verify`
//! and stays under an exposure score in `systemd-analyze security`.

use std::path::Path;
use std::process::Command;

use tandem_acceptance::{repo_root, skip_unless_acc, Moto, TfDir};

/// The `sleep` preStop action is beta, on by default, from 1.30.
const SLEEP_KUBERNETES: &str = "1.30.0";
/// The oldest version whose schema has no `sleep` action: `pre_stop =
/// "proxy"` is for clusters like it.
const OLD_KUBERNETES: &str = "1.28.0";
/// `systemd-analyze security --offline=yes` scores a unit from 0 (locked
/// down) to 10, and `--threshold` takes tenths. The unit scored 1.2 ("OK")
/// with systemd 252 when this was written; what is left is what a network
/// service cannot give up (Internet sockets, the host's network, the
/// `@system-service` calls). Above 2.0 a hardening line has been lost.
const MAX_EXPOSURE_TENTHS: u32 = 20;

fn kubernetes_validate(version: &str, files: &[std::path::PathBuf]) -> (bool, String) {
    let v = Command::new(repo_root().join(".cache/venv/bin/kubernetes-validate"))
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate (scripts/bootstrap installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    (v.status.success(), text)
}

fn systemd_analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let v = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze (scripts/bootstrap installs the systemd package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    (v.status.success(), text)
}

#[test]
fn rendered_manifests_validate_and_work_as_the_guide_shows() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dir = TfDir::new();
    // `systemd-analyze verify` checks that ExecStart names an executable.
    let binary = dir.path().join("tandem-proxy");
    std::fs::write(&binary, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
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
  cache_max_bytes        = "512MiB"
  credentials_secret     = "tandem-proxy-aws"
  service_account_annotations = {{
    "eks.amazonaws.com/role-arn" = "arn:aws:iam::123456789012:role/assets-proxy"
  }}
  priority_class_name  = "edge-serving"
  priority_class_value = 100000
  binary               = "{binary}"
  env = {{
    RUST_LOG = "info"
  }}
}}

data "tandem_proxy_manifests" "old_cluster" {{
  name          = "assets"
  namespace     = "edge"
  image         = "registry.example.com/tandem-proxy:0.1.0"
  config_source = "s3://fleet-config/assets.json"
  drain_delay   = "10s"
  drain_grace   = "45s"
  pre_stop      = "proxy"
}}

# The guide's pattern, with terraform_data standing in for
# kubernetes_manifest (the kubernetes provider cannot be installed here):
# the same for_each over the map and the same yamldecode.
resource "terraform_data" "manifest" {{
  for_each = data.tandem_proxy_manifests.m.manifests
  input    = yamldecode(each.value)
}}

# And the module's decoded output, built the way it builds it.
locals {{
  objects = {{ for k, v in data.tandem_proxy_manifests.m.manifests_json : k => jsondecode(v) }}
}}

resource "terraform_data" "object" {{
  for_each = local.objects
  input    = each.value
}}

output "kinds" {{ value = {{ for k, r in terraform_data.manifest : k => r.output.kind }} }}
output "object_kinds" {{ value = {{ for k, r in terraform_data.object : k => r.output.kind }} }}
output "manifests" {{ value = data.tandem_proxy_manifests.m.manifests }}
output "old_manifests" {{ value = data.tandem_proxy_manifests.old_cluster.manifests }}
output "unit" {{ value = data.tandem_proxy_manifests.m.systemd_unit }}
"#,
        provider = moto.provider_block(),
        binary = binary.display(),
    ));
    dir.apply();
    dir.plan_is_empty();
    let out = |name: &str| -> serde_json::Value {
        serde_json::from_str(&dir.ok(&["output", "-json", name]).stdout).unwrap()
    };

    // Terraform's own for_each and YAML/JSON decoders take every document.
    let want = serde_json::json!({
        "Deployment/assets": "Deployment",
        "HorizontalPodAutoscaler/assets": "HorizontalPodAutoscaler",
        "PodDisruptionBudget/assets": "PodDisruptionBudget",
        "PriorityClass/edge-serving": "PriorityClass",
        "Service/assets": "Service",
        "ServiceAccount/assets": "ServiceAccount",
    });
    assert_eq!(out("kinds"), want);
    assert_eq!(out("object_kinds"), want);

    // Every object validates strictly; the sleep hook needs 1.30, and the
    // old-cluster variant validates where the hook does not exist.
    let write_all = |prefix: &str, docs: &serde_json::Value| -> Vec<std::path::PathBuf> {
        docs.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let file = dir
                    .path()
                    .join(format!("{prefix}-{}.yaml", k.replace('/', "-")));
                std::fs::write(&file, v.as_str().unwrap()).unwrap();
                file
            })
            .collect()
    };
    let manifests = out("manifests");
    let current = write_all("current", &manifests);
    let (ok, text) = kubernetes_validate(SLEEP_KUBERNETES, &current);
    assert!(
        ok,
        "fails the Kubernetes {SLEEP_KUBERNETES} schema:\n{text}"
    );
    let deployment = |docs: &serde_json::Value| -> Vec<std::path::PathBuf> {
        let file = dir.path().join("deployment-only.yaml");
        std::fs::write(&file, docs["Deployment/assets"].as_str().unwrap()).unwrap();
        vec![file]
    };
    let (ok, text) = kubernetes_validate(OLD_KUBERNETES, &deployment(&manifests));
    assert!(
        !ok && text.contains("'sleep' was unexpected"),
        "the sleep hook must be what {OLD_KUBERNETES} refuses:\n{text}"
    );
    let old = out("old_manifests");
    let (ok, text) = kubernetes_validate(OLD_KUBERNETES, &write_all("old", &old));
    assert!(
        ok,
        "pre_stop = proxy fails the Kubernetes {OLD_KUBERNETES} schema:\n{text}"
    );

    let d = manifests["Deployment/assets"].as_str().unwrap();
    for want in [
        // 10 s delay + 45 s grace + 5 s margin.
        "terminationGracePeriodSeconds: 60",
        "seconds: 10",
        "maxUnavailable: 0",
        "topologyKey: \"topology.kubernetes.io/zone\"",
        "\"s3://fleet-config/assets.json\"",
        "serviceAccountName: \"assets\"",
        "automountServiceAccountToken: false",
        "priorityClassName: \"edge-serving\"",
        "runAsUser: 65532",
        "type: \"RuntimeDefault\"",
        // 1.25 x 512 + 128 + 96 MiB.
        "memory: \"864Mi\"",
    ] {
        assert!(d.contains(want), "{want} missing from\n{d}");
    }
    let sa = manifests["ServiceAccount/assets"].as_str().unwrap();
    assert!(
        sa.contains("eks.amazonaws.com/role-arn: \"arn:aws:iam::123456789012:role/assets-proxy\""),
        "{sa}"
    );
    let old_d = old["Deployment/assets"].as_str().unwrap();
    assert!(!old_d.contains("preStop"), "{old_d}");
    assert!(
        old_d.contains("value: \"10s\""),
        "TANDEM_DRAIN_DELAY=10s:\n{old_d}"
    );
    assert!(
        old_d.contains("terminationGracePeriodSeconds: 60"),
        "{old_d}"
    );
    let hpa = manifests["HorizontalPodAutoscaler/assets"]
        .as_str()
        .unwrap();
    assert!(
        hpa.contains("minReplicas: 3")
            && hpa.contains("maxReplicas: 9")
            && hpa.contains("averageUtilization: 60"),
        "{hpa}"
    );

    // The unit: valid for systemd, hardened, sized like the pod.
    let unit_text = out("unit");
    let unit_text = unit_text.as_str().unwrap();
    assert!(unit_text.contains("TimeoutStopSec=60"), "{unit_text}");
    assert!(
        unit_text.contains(&format!("MemoryMax={}", 864u64 << 20)),
        "{unit_text}"
    );
    assert!(unit_text.contains("Type=notify"), "{unit_text}");
    let unit = dir.path().join("tandem-proxy-assets.service");
    std::fs::write(&unit, unit_text).unwrap();
    let (ok, text) = systemd_analyze(&["verify"], &unit);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    let (ok, text) = systemd_analyze(
        &[
            "security",
            "--offline=yes",
            &format!("--threshold={MAX_EXPOSURE_TENTHS}"),
        ],
        &unit,
    );
    assert!(ok, "exposure above {MAX_EXPOSURE_TENTHS} tenths:\n{text}");
}
