//! `tandem_proxy_manifests`: deployment artifacts for a tandem-proxy fleet,
//! rendered from the same inputs as the fleet itself so probes, drain
//! timing, memory and disruption budgets cannot drift from what the proxy
//! does.
//!
//! Each Kubernetes object is its own document, keyed `Kind/name`, so a
//! `for_each` over the map gives one `kubernetes_manifest` per object; a
//! systemd unit with its environment file covers VMs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use tandem_fleet_config::{parse_s3_url, Bytes, DEFAULT_CACHE_MAX_BYTES};
use tfplugin6::{
    AttrPath, Attribute, Block, Ctx, DataSource, Diagnostics, Field, Schema, Type, Validator, Value,
};

use crate::aws::Aws;
use crate::model;

const TYPE_NAME: &str = "tandem_proxy_manifests";

/// Port for S3 traffic; the proxy's own default.
pub const DEFAULT_DATA_PORT: i64 = 8080;
/// Port for /health, /ready, /metrics and /status; kept apart from data so
/// probes and scrapes never queue behind object downloads.
pub const DEFAULT_ADMIN_PORT: i64 = 9090;
/// Three replicas survive one zone going away with two still serving.
pub const DEFAULT_REPLICAS: i64 = 3;
/// Upper bound of `replicas` and `max_replicas`: far above any fleet we
/// know of, low enough that a typo (`30000`) is caught at plan.
const MAX_REPLICAS: i64 = 1000;
/// The autoscaler's CPU target: leaves 30 % headroom for a burst while new
/// pods start with cold caches.
const DEFAULT_TARGET_CPU: i64 = 70;
/// Time between /ready turning 503 and the listener closing: long enough
/// for endpoints controllers and load balancers to stop sending traffic.
pub const DEFAULT_DRAIN_DELAY: &str = "5s";
/// Time in-flight requests get to finish after the listener closes.
pub const DEFAULT_DRAIN_GRACE: &str = "30s";
/// The fleet config's own cap on `drain.delay`: longer keeps a
/// terminating proxy out of rotation for too long. The manifests pass the
/// delay in `TANDEM_DRAIN_DELAY` (or a preStop sleep), which the config's
/// check never sees, so the same cap applies here.
const MAX_DRAIN_DELAY: Duration = Duration::from_secs(300);
/// Headroom Kubernetes gets beyond delay + grace before SIGKILL, so a drain
/// that uses its whole budget still exits on its own.
const KILL_MARGIN: Duration = Duration::from_secs(5);
/// A quarter core: what one proxy uses serving a few hundred cache hits a
/// second (docs/benchmarks.md: about 11 µs of CPU per 4 KiB hit, 110 µs per
/// 1 MiB hit); the autoscaler adds pods beyond that.
const DEFAULT_CPU_REQUEST: &str = "250m";
/// The uid and gid of `nonroot` in the distroless base image the proxy's
/// image is built on; pinned so `runAsNonRoot` can be verified by the
/// kubelet (it cannot for a named user) and the state volume is writable.
pub const NONROOT_ID: i64 = 65532;
/// Memory beyond the cache and the fill budget: the release build's RSS at
/// start (8.6 to 9.5 MiB, `make bench`) plus the default 4096 data
/// connections at about 20 KiB each mid-request (hyper's buffers, see
/// docs/proxy/configuration.md#limits), 80 MiB, rounded up to 96 MiB.
pub const MEMORY_OVERHEAD: u64 = 96 << 20;
/// The largest value a user-defined PriorityClass may have; larger ones are
/// reserved for `system-cluster-critical` and `system-node-critical`.
const MAX_USER_PRIORITY: i64 = 1_000_000_000;
/// The state volume holds one config document; the fleet config is far
/// below this, and the cap keeps a runaway writer from filling the node.
const STATE_VOLUME_SIZE: &str = "16Mi";
/// Where the proxy keeps the last good config (its `--state-dir` default).
const STATE_DIR: &str = "/var/lib/tandem-proxy";
/// Where the systemd unit runs the proxy from unless told otherwise.
const DEFAULT_BINARY: &str = "/usr/local/bin/tandem-proxy";

/// The data source.
pub struct ManifestsDataSource;

/// How the pod waits out `drain_delay` before the proxy stops accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreStop {
    /// A `preStop` `sleep` action (Kubernetes 1.30+, where
    /// `PodLifecycleSleepAction` is on by default): SIGTERM arrives after
    /// the delay and the proxy stops accepting at once.
    Sleep,
    /// No hook: SIGTERM arrives at once and the proxy itself keeps
    /// accepting for the delay with /ready 503. For clusters before 1.30;
    /// an `exec` hook is not possible, the distroless image has no `sleep`.
    Proxy,
}

const PRE_STOP_SLEEP: &str = "sleep";
const PRE_STOP_PROXY: &str = "proxy";

fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} must be a DNS label: lowercase letters, digits and '-', at most 63 characters, not starting or ending with '-'"))
    }
}

fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() <= 253 && s.split('.').all(|l| dns_label(l).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be a DNS subdomain: dot-separated DNS labels, at most 253 characters"
        ))
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like `5s` or `1m30s`: {e}"))
}

fn drain_delay(s: &str) -> Result<(), String> {
    if duration(s)? > MAX_DRAIN_DELAY {
        return Err(format!(
            "{s:?} is over 5m: a terminating proxy would stay out of rotation too long"
        ));
    }
    Ok(())
}

/// The fleet config refuses a cache under 1 MiB; so does this.
fn cache_size(s: &str) -> Result<u64, String> {
    let b: Bytes = s.parse()?;
    if b.0 < 1 << 20 {
        return Err(format!("{s:?} is below the proxy's minimum of 1MiB"));
    }
    Ok(b.0)
}

fn size(s: &str) -> Result<u64, String> {
    s.parse::<Bytes>().map(|b| b.0)
}

/// A Kubernetes memory quantity in bytes: a whole number with an optional
/// binary (`Ki` .. `Ei`) or decimal (`k` .. `E`) suffix.
pub fn quantity_bytes(s: &str) -> Result<u64, String> {
    const SUFFIXES: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let bad = || format!("{s:?} is not a memory quantity like `512Mi` or `1Gi`");
    let (digits, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|d| (d, *m)))
        .unwrap_or((s, 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(bad)
}

fn s3_or_path(s: &str) -> Result<(), String> {
    if s.starts_with("s3://") && parse_s3_url(s).is_none() {
        return Err(format!("{s:?} must look like s3://bucket/key"));
    }
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}

fn env_name(k: &str) -> Result<(), String> {
    if k.is_empty()
        || k.starts_with(|ch: char| ch.is_ascii_digit())
        || !k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        Err(format!(
            "{k:?} must use letters, digits and '_', not starting with a digit"
        ))
    } else {
        Ok(())
    }
}

/// An annotation key: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 alphanumerics, '-', '_' or '.'.
fn annotation_key(k: &str) -> Result<(), String> {
    let (prefix, name) = k.rsplit_once('/').map_or((None, k), |(p, n)| (Some(p), n));
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name_ok && prefix.is_none_or(|p| dns_subdomain(p).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "{k:?} is not an annotation key (`prefix/name`, e.g. `eks.amazonaws.com/role-arn`)"
        ))
    }
}

fn absolute_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') && !s.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!("{s:?} must be an absolute path without spaces"))
    }
}

fn schema() -> Schema {
    let s = |name: &str, desc: &str| Attribute::optional(name, Type::String, desc);
    let n = |name: &str, desc: &str| Attribute::optional(name, Type::Number, desc);
    let memory = Validator::format("a memory quantity such as `512Mi`", |s| {
        quantity_bytes(s).map(|_| ())
    });
    Schema::new(
        Block::new(
            "Renders deployment artifacts for a tandem-proxy fleet: a Kubernetes ServiceAccount, Deployment (liveness on \
             `/health`, readiness on `/ready`, zone spreading and anti-affinity, a drain matching the proxy's settings, \
             RollingUpdate with `maxUnavailable = 0`, non-root with the `RuntimeDefault` seccomp profile and no \
             capabilities, memory sized from the cache), Service, PodDisruptionBudget, HorizontalPodAutoscaler and \
             optionally a PriorityClass, each on its own in `manifests` (YAML) and `manifests_json` (JSON), keyed \
             `Kind/name`; and a hardened systemd unit (`Type=notify`) with its environment file.",
        )
        .attr(Attribute::required("name", Type::String, "Name of the fleet; used for every Kubernetes object and the systemd unit.").validate(Validator::format("a DNS label", dns_label)))
        .attr(s("namespace", "Kubernetes namespace. Default `default`.").validate(Validator::format("a DNS label", dns_label)))
        .attr(Attribute::required("image", Type::String, "Container image of tandem-proxy, e.g. `ghcr.io/example/tandem-proxy:0.1.0`. The pod runs it as uid and gid 65532 (distroless `nonroot`)."))
        .attr(Attribute::required(
            "config_source",
            Type::String,
            "Where the proxies read their config: `s3://bucket/key` as published by `tandem_proxy_fleet`, or a file path.",
        ).validate(Validator::format("`s3://bucket/key` or a file path", s3_or_path)))
        .attr(s("config_region", "Region of the config bucket, when `config_source` is an S3 URL."))
        .attr(s("config_endpoint", "Custom S3 endpoint for the config bucket (emulators, S3-compatible stores)."))
        .attr(n("replicas", "Replicas when no autoscaler is wanted, and the autoscaler's minimum otherwise. Default 3 (one zone can go with two still serving).").validate(Validator::between(1, MAX_REPLICAS)))
        .attr(n("max_replicas", "Maximum replicas for the HorizontalPodAutoscaler. Default: twice `replicas`.").validate(Validator::between(1, MAX_REPLICAS)))
        .attr(n("target_cpu_utilization", "Average CPU utilisation (percent of request) the autoscaler aims for. Default 70.").validate(Validator::between(1, 100)))
        .attr(n("data_port", "Port serving S3 requests. Default 8080.").validate(Validator::between(1, 65535)))
        .attr(n("admin_port", "Port serving `/health`, `/ready`, `/metrics` and `/status`; must differ from `data_port` so probes never queue behind downloads. Default 9090.").validate(Validator::between(1, 65535)))
        .attr(s(
            "drain_delay",
            "How long the proxy keeps accepting after termination starts while `/ready` reports 503 (see `pre_stop`). \
             Must match the fleet config's drain delay. Default `5s`; at most `5m`, as in the fleet config.",
        ).validate(Validator::format("a duration of at most `5m`", drain_delay)))
        .attr(s(
            "drain_grace",
            "How long in-flight requests may take after accepting stops; with `drain_delay` and a 5 s margin it sets \
             `terminationGracePeriodSeconds` and the unit's `TimeoutStopSec`. Must match the fleet config. Default `30s`.",
        ).validate(Validator::format("a duration such as `30s`", |s| duration(s).map(|_| ()))))
        .attr(s(
            "pre_stop",
            "How the pod waits out `drain_delay`. `sleep` (default): a `preStop` sleep action, which needs Kubernetes \
             1.30 or later; SIGTERM then arrives after the delay and the proxy stops accepting at once \
             (`TANDEM_DRAIN_DELAY=0s`). `proxy`: for older clusters, no hook; SIGTERM arrives at once and the proxy \
             itself keeps accepting for the delay with `/ready` at 503 (`TANDEM_DRAIN_DELAY` = `drain_delay`). Both \
             drain the same way; an `exec` hook is not offered because the distroless image has no `sleep` or shell.",
        ).validate(Validator::one_of(&[PRE_STOP_SLEEP, PRE_STOP_PROXY])))
        .attr(s(
            "cache_max_bytes",
            "The fleet config's `cache.max_bytes` (e.g. `256MiB`); sizes the pod's memory. Default `256MiB`, the proxy's default.",
        ).validate(Validator::format("a size of at least `1MiB`", |s| cache_size(s).map(|_| ()))))
        .attr(s(
            "cache_max_fill_bytes",
            "The fleet config's `cache.max_fill_bytes`, the in-flight fill budget; sizes the pod's memory. Default: a \
             quarter of `cache_max_bytes`, as in the proxy.",
        ).validate(Validator::format("a size such as `64MiB`", |s| size(s).map(|_| ()))))
        .attr(s("cpu_request", "CPU request per pod. Default `250m` (a few hundred hits a second; the autoscaler adds pods). No CPU limit: throttling a proxy adds latency to every request."))
        .attr(s(
            "memory_request",
            "Memory request per pod. Default: `1.25 × cache_max_bytes + cache_max_fill_bytes + 96Mi`, rounded up to a \
             MiB (480Mi for the default 256 MiB cache). 1.25 is the bound `proxy/tests/bounds.rs` enforces on the \
             cache's RSS (docs/benchmarks.md measured 1.05x to 1.07x with the cache full, and a 286 MiB peak for a \
             256 MiB cache); the fill budget is what misses in flight may hold; 96 MiB covers the runtime (about \
             10 MiB at start) and 4096 connections mid-request at about 20 KiB each. Raise it with \
             `limits.max_connections`.",
        ).validate(memory.clone()))
        .attr(s("memory_limit", "Memory limit per pod, also the systemd unit's `MemoryMax`. Default: `memory_request` (the cache is bounded, so usage beyond the request is a bug to stop, not a burst to allow).").validate(memory))
        .attr(s("credentials_secret", "Name of a Kubernetes Secret whose keys become environment variables (e.g. AWS credentials, JWT secrets referenced by the config). Prefer IRSA or EKS Pod Identity for AWS.").validate(Validator::format("a DNS subdomain", dns_subdomain)))
        .attr(Attribute::optional("env", Type::map(Type::String), "Extra environment variables for the proxy (not for secrets: use `credentials_secret`).").validate(Validator::keys(Validator::format("an environment variable name", env_name))))
        .attr(s("service_account_name", "ServiceAccount the pods run as. Default: `name`. EKS Pod Identity associates an IAM role with this name and namespace; IRSA reads the role from its annotation.").validate(Validator::format("a DNS subdomain", dns_subdomain)))
        .attr(Attribute::optional("create_service_account", Type::Bool, "Render the ServiceAccount. Default `true`; `false` when it exists already (then `service_account_annotations` must be empty)."))
        .attr(Attribute::optional(
            "service_account_annotations",
            Type::map(Type::String),
            "Annotations of the ServiceAccount, e.g. `eks.amazonaws.com/role-arn` for IRSA. EKS Pod Identity needs none.",
        ).validate(Validator::keys(Validator::format("an annotation key", annotation_key))))
        .attr(Attribute::optional(
            "automount_service_account_token",
            Type::Bool,
            "Mount the Kubernetes API token into the pods. Default `false`: the proxy never calls the Kubernetes API. \
             IRSA and EKS Pod Identity do not need it either: their webhook adds its own projected token (audience \
             `sts.amazonaws.com` or `pods.eks.amazonaws.com`) whatever this says.",
        ))
        .attr(s("priority_class_name", "PriorityClass of the pods, so the proxies are not the first preempted under pressure. Default: none.").validate(Validator::format("a DNS subdomain", dns_subdomain)))
        .attr(n(
            "priority_class_value",
            "Render a PriorityClass named `priority_class_name` with this value (not the cluster default, preempting lower priorities). Null: use an existing class.",
        ).validate(Validator::between(-2_147_483_648, MAX_USER_PRIORITY)).validate(Validator::also_requires(&["priority_class_name"])))
        .attr(Attribute::optional(
            "prometheus_rule",
            Type::Bool,
            "Render a `PrometheusRule` (Prometheus Operator) holding the alert rules of \
             `deploy/prometheus/tandem-proxy.rules.yml`, the promtool-tested file. Default `false`: it needs the \
             operator's CRDs in the cluster.",
        ))
        .attr(Attribute::optional(
            "service_monitor",
            Type::Bool,
            "Render a `ServiceMonitor` (Prometheus Operator) scraping the Service's `admin` port at `/metrics` \
             every 15 s. Default `false`: it needs the operator's CRDs; without the operator, the pods' \
             `prometheus.io/*` annotations serve annotation-based scraping.",
        ))
        .attr(s("binary", "Absolute path of the tandem-proxy binary in the systemd unit. Default `/usr/local/bin/tandem-proxy`.").validate(Validator::format("an absolute path", absolute_path)))
        .attr(Attribute::computed("id", Type::String, "`namespace/name`."))
        .attr(Attribute::computed(
            "manifests",
            Type::map(Type::String),
            "Every Kubernetes object as one YAML document, keyed `Kind/name` (e.g. `Deployment/assets`): for \
             `for_each` with `kubernetes_manifest` (through `yamldecode`) or one file per object.",
        ))
        .attr(Attribute::computed(
            "manifests_json",
            Type::map(Type::String),
            "The same objects as JSON, keyed the same way, for `jsondecode`.",
        ))
        .attr(Attribute::computed("systemd_unit", Type::String, "A hardened systemd service unit (`Type=notify`: the proxy reports readiness, reloads and stopping through sd_notify) with the same drain timing and memory limit."))
        .attr(Attribute::computed("systemd_env", Type::String, "The environment file the systemd unit reads (`/etc/tandem-proxy/<name>.env`)."))
    )
}

/// The configuration and state, attribute for attribute.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Model {
    name: Field<String>,
    namespace: Field<String>,
    image: Field<String>,
    config_source: Field<String>,
    config_region: Field<String>,
    config_endpoint: Field<String>,
    replicas: Field<i64>,
    max_replicas: Field<i64>,
    target_cpu_utilization: Field<i64>,
    data_port: Field<i64>,
    admin_port: Field<i64>,
    drain_delay: Field<String>,
    drain_grace: Field<String>,
    pre_stop: Field<String>,
    cache_max_bytes: Field<String>,
    cache_max_fill_bytes: Field<String>,
    cpu_request: Field<String>,
    memory_request: Field<String>,
    memory_limit: Field<String>,
    credentials_secret: Field<String>,
    env: Field<BTreeMap<String, String>>,
    service_account_name: Field<String>,
    create_service_account: Field<bool>,
    service_account_annotations: Field<BTreeMap<String, String>>,
    automount_service_account_token: Field<bool>,
    priority_class_name: Field<String>,
    priority_class_value: Field<i64>,
    prometheus_rule: Field<bool>,
    service_monitor: Field<bool>,
    binary: Field<String>,
    id: Field<String>,
    manifests: Field<BTreeMap<String, String>>,
    manifests_json: Field<BTreeMap<String, String>>,
    systemd_unit: Field<String>,
    systemd_env: Field<String>,
}

/// The inputs, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Fleet name: every object's and the unit's.
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// `--config`.
    pub config_source: String,
    /// `--config-region`.
    pub config_region: Option<String>,
    /// `--config-endpoint`.
    pub config_endpoint: Option<String>,
    /// Replicas, and the autoscaler's minimum.
    pub replicas: i64,
    /// The autoscaler's maximum.
    pub max_replicas: i64,
    /// The autoscaler's CPU target, percent.
    pub target_cpu: i64,
    /// Data port.
    pub data_port: i64,
    /// Admin port.
    pub admin_port: i64,
    /// How long accepting continues after termination starts.
    pub drain_delay: Duration,
    /// How long in-flight requests get after that.
    pub drain_grace: Duration,
    /// Who waits out `drain_delay`.
    pub pre_stop: PreStop,
    /// CPU request.
    pub cpu_request: String,
    /// Memory request (Kubernetes quantity).
    pub memory_request: String,
    /// Memory limit (Kubernetes quantity).
    pub memory_limit: String,
    /// The limit in bytes, for the unit's `MemoryMax`.
    pub memory_limit_bytes: u64,
    /// Secret whose keys become environment variables.
    pub credentials_secret: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// ServiceAccount the pods run as.
    pub service_account: String,
    /// Whether the ServiceAccount is rendered.
    pub create_service_account: bool,
    /// The ServiceAccount's annotations.
    pub service_account_annotations: BTreeMap<String, String>,
    /// Whether the API token is mounted.
    pub automount_token: bool,
    /// The pods' PriorityClass.
    pub priority_class_name: Option<String>,
    /// Render that PriorityClass with this value.
    pub priority_class_value: Option<i64>,
    /// Whether the PrometheusRule is rendered.
    pub prometheus_rule: bool,
    /// Whether the ServiceMonitor is rendered.
    pub service_monitor: bool,
    /// The binary in the systemd unit.
    pub binary: String,
}

/// `1.25 × max_bytes + fill + MEMORY_OVERHEAD`, in whole MiB rounded up:
/// see the `memory_request` attribute for where each term comes from.
pub fn default_memory_mib(max_bytes: u64, fill_bytes: u64) -> u64 {
    let bytes = max_bytes + max_bytes / 4 + fill_bytes + MEMORY_OVERHEAD;
    bytes.div_ceil(1 << 20)
}

/// The inputs of a configuration the schema's validators accepted, with
/// defaults; reports the rules between attributes. Unknown values take
/// their defaults and are not judged.
fn inputs(m: &Model) -> Result<Inputs, Diagnostics> {
    let mut d = Diagnostics::new();
    let text = |f: &Field<String>, default: &str| {
        f.known().cloned().unwrap_or_else(|| default.to_string())
    };
    let name = text(&m.name, "");
    let replicas = m.replicas.known().copied().unwrap_or(DEFAULT_REPLICAS);
    let max_replicas = m.max_replicas.known().copied().unwrap_or(replicas * 2);
    if m.replicas.is_known() && m.max_replicas.is_known() && max_replicas < replicas {
        d.error_at(
            AttrPath::root("max_replicas"),
            "max_replicas below replicas",
            format!("max_replicas ({max_replicas}) must be at least replicas ({replicas})."),
        );
    }
    let data_port = m.data_port.known().copied().unwrap_or(DEFAULT_DATA_PORT);
    let admin_port = m.admin_port.known().copied().unwrap_or(DEFAULT_ADMIN_PORT);
    if !m.data_port.is_unknown() && !m.admin_port.is_unknown() && data_port == admin_port {
        d.error_at(
            AttrPath::root("admin_port"),
            "Ports collide",
            "`admin_port` must differ from `data_port`: probes must not queue behind object downloads.",
        );
    }
    let annotations = m
        .service_account_annotations
        .known()
        .cloned()
        .unwrap_or_default();
    let create_sa = m.create_service_account.known().copied().unwrap_or(true);
    if !create_sa && !annotations.is_empty() {
        d.error_at(
            AttrPath::root("service_account_annotations"),
            "Annotations without a ServiceAccount",
            "`create_service_account` is false, so these annotations would go nowhere: set them on the existing ServiceAccount.",
        );
    }
    let max_bytes = m
        .cache_max_bytes
        .known()
        .and_then(|s| cache_size(s).ok())
        .unwrap_or(DEFAULT_CACHE_MAX_BYTES.0);
    let fill = m
        .cache_max_fill_bytes
        .known()
        .and_then(|s| size(s).ok())
        .unwrap_or(max_bytes / 4);
    let derived = format!("{}Mi", default_memory_mib(max_bytes, fill));
    let memory_request = m.memory_request.known().cloned().unwrap_or(derived);
    let memory_limit = m
        .memory_limit
        .known()
        .cloned()
        .unwrap_or_else(|| memory_request.clone());
    let (req_bytes, limit_bytes) = (
        quantity_bytes(&memory_request).unwrap_or(0),
        quantity_bytes(&memory_limit).unwrap_or(0),
    );
    if !m.memory_request.is_unknown() && m.memory_limit.is_known() && limit_bytes < req_bytes {
        d.error_at(
            AttrPath::root("memory_limit"),
            "Memory limit below the request",
            format!("memory_limit ({memory_limit}) must be at least memory_request ({memory_request}); Kubernetes refuses the pod otherwise."),
        );
    }
    d.clone().into_result()?;
    let dur = |f: &Field<String>, default: &str| duration(&text(f, default)).unwrap_or_default();
    Ok(Inputs {
        namespace: text(&m.namespace, "default"),
        image: text(&m.image, ""),
        config_source: text(&m.config_source, ""),
        config_region: m.config_region.known().cloned(),
        config_endpoint: m.config_endpoint.known().cloned(),
        replicas,
        max_replicas,
        target_cpu: m
            .target_cpu_utilization
            .known()
            .copied()
            .unwrap_or(DEFAULT_TARGET_CPU),
        data_port,
        admin_port,
        drain_delay: dur(&m.drain_delay, DEFAULT_DRAIN_DELAY),
        drain_grace: dur(&m.drain_grace, DEFAULT_DRAIN_GRACE),
        pre_stop: match m.pre_stop.known().map(String::as_str) {
            Some(PRE_STOP_PROXY) => PreStop::Proxy,
            _ => PreStop::Sleep,
        },
        cpu_request: text(&m.cpu_request, DEFAULT_CPU_REQUEST),
        memory_request,
        memory_limit,
        memory_limit_bytes: limit_bytes,
        credentials_secret: m.credentials_secret.known().cloned(),
        env: m.env.known().cloned().unwrap_or_default(),
        service_account: m
            .service_account_name
            .known()
            .cloned()
            .unwrap_or_else(|| name.clone()),
        create_service_account: create_sa,
        service_account_annotations: annotations,
        automount_token: m
            .automount_service_account_token
            .known()
            .copied()
            .unwrap_or(false),
        priority_class_name: m.priority_class_name.known().cloned(),
        priority_class_value: m.priority_class_value.known().copied(),
        prometheus_rule: m.prometheus_rule.known().copied().unwrap_or(false),
        service_monitor: m.service_monitor.known().copied().unwrap_or(false),
        binary: text(&m.binary, DEFAULT_BINARY),
        name,
    })
}

fn args(i: &Inputs) -> Vec<String> {
    let mut a = vec!["--config".to_string(), i.config_source.clone()];
    if let Some(r) = &i.config_region {
        a.extend(["--config-region".to_string(), r.clone()]);
    }
    if let Some(e) = &i.config_endpoint {
        a.extend(["--config-endpoint".to_string(), e.clone()]);
    }
    a
}

fn labels(i: &Inputs) -> Json {
    json!({"app.kubernetes.io/name": "tandem-proxy", "app.kubernetes.io/instance": i.name})
}

fn metadata(i: &Inputs, name: &str) -> Json {
    json!({"name": name, "namespace": i.namespace, "labels": labels(i)})
}

/// termination grace: drain delay + drain grace + margin, whole seconds up.
fn grace_seconds(i: &Inputs) -> u64 {
    (i.drain_delay + i.drain_grace + KILL_MARGIN)
        .as_secs_f64()
        .ceil() as u64
}

/// The drain delay in whole seconds, rounded up so the hook never waits
/// less than the proxy was told.
fn delay_seconds(i: &Inputs) -> u64 {
    i.drain_delay.as_secs_f64().ceil() as u64
}

/// The ServiceAccount object: the identity IRSA (through its annotation)
/// and EKS Pod Identity (through an association naming it) grant AWS
/// credentials to.
pub fn service_account(i: &Inputs) -> Json {
    let mut meta = metadata(i, &i.service_account);
    if !i.service_account_annotations.is_empty() {
        meta["annotations"] = json!(i.service_account_annotations);
    }
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
        "automountServiceAccountToken": i.automount_token
    })
}

/// The PriorityClass object (cluster-scoped, so no namespace).
pub fn priority_class(i: &Inputs, name: &str, value: i64) -> Json {
    json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name, "labels": labels(i)},
        "value": value,
        "globalDefault": false,
        "description": format!("tandem-proxy fleet {}: serving pods outrank batch work.", i.name)
    })
}

/// The Deployment object.
pub fn deployment(i: &Inputs) -> Json {
    let sel = labels(i);
    let mut env: Vec<Json> = i
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    // With the preStop sleep, SIGTERM arrives after drain_delay while
    // Kubernetes has already removed the pod from its Service; waiting
    // again inside the proxy would overrun terminationGracePeriodSeconds.
    // Without it the proxy does the waiting.
    let proxy_delay = match i.pre_stop {
        PreStop::Sleep => Duration::ZERO,
        PreStop::Proxy => i.drain_delay,
    };
    env.push(json!({"name": "TANDEM_DRAIN_DELAY", "value": humantime::format_duration(proxy_delay).to_string()}));
    env.push(json!({"name": "TANDEM_DRAIN_GRACE", "value": humantime::format_duration(i.drain_grace).to_string()}));
    let mut container = json!({
        "name": "tandem-proxy",
        "image": i.image,
        "args": args(i),
        "ports": [
            {"name": "s3", "containerPort": i.data_port, "protocol": "TCP"},
            {"name": "admin", "containerPort": i.admin_port, "protocol": "TCP"}
        ],
        "env": env,
        "resources": {
            "requests": {"cpu": i.cpu_request, "memory": i.memory_request},
            "limits": {"memory": i.memory_limit}
        },
        // Liveness only asks "is the process alive"; a dead replica must
        // never restart the pod, which is what /ready reports instead.
        "livenessProbe": {"httpGet": {"path": "/health", "port": "admin"}, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "admin"}, "periodSeconds": 2, "failureThreshold": 1},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}
        },
        // The root filesystem is read-only; the proxy keeps its last good
        // config here, so a container restart while S3 is unreachable serves.
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}]
    });
    // A zero-second sleep is refused before Kubernetes 1.32; no delay needs
    // no hook.
    if i.pre_stop == PreStop::Sleep && delay_seconds(i) > 0 {
        container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": delay_seconds(i)}}});
    }
    if let Some(secret) = &i.credentials_secret {
        container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
    }
    let mut pod = json!({
        "serviceAccountName": i.service_account,
        "automountServiceAccountToken": i.automount_token,
        "terminationGracePeriodSeconds": grace_seconds(i),
        // Pinned ids, so the kubelet can check runAsNonRoot and the state
        // volume (and a projected IRSA token) is readable by the proxy.
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": NONROOT_ID,
            "runAsGroup": NONROOT_ID,
            "fsGroup": NONROOT_ID,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": sel}
        }],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": sel}}
        }]}},
        "containers": [container],
        "volumes": [{"name": "state", "emptyDir": {"sizeLimit": STATE_VOLUME_SIZE}}]
    });
    if let Some(pc) = &i.priority_class_name {
        pod["priorityClassName"] = json!(pc);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(i, &i.name),
        "spec": {
            "replicas": i.replicas,
            "selector": {"matchLabels": sel},
            // Never lose capacity during a rollout: new pods become ready first.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": sel, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": i.admin_port.to_string(), "prometheus.io/path": "/metrics"}},
                "spec": pod
            }
        }
    })
}

/// The Service object.
pub fn service(i: &Inputs) -> Json {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(i, &i.name),
        "spec": {
            "selector": labels(i),
            "ports": [
                {"name": "s3", "port": i.data_port, "targetPort": "s3", "protocol": "TCP"},
                {"name": "admin", "port": i.admin_port, "targetPort": "admin", "protocol": "TCP"}
            ]
        }
    })
}

/// The PodDisruptionBudget object.
pub fn pdb(i: &Inputs) -> Json {
    // One pod at a time may be evicted; with a single replica that would
    // block node drains forever, so allow it explicitly.
    let spec = if i.replicas > 1 {
        json!({"maxUnavailable": 1, "selector": {"matchLabels": labels(i)}})
    } else {
        json!({"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow", "selector": {"matchLabels": labels(i)}})
    };
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(i, &i.name),
        "spec": spec
    })
}

/// The HorizontalPodAutoscaler object.
pub fn hpa(i: &Inputs) -> Json {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(i, &i.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": i.name},
            "minReplicas": i.replicas,
            "maxReplicas": i.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": i.target_cpu}}}],
            // Caches are cold on new pods: scale down slowly.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}
        }
    })
}

/// The alert rules, one copy for Prometheus and the operator alike:
/// `alert_rules.rs` unit-tests this file with promtool.
const ALERT_RULES: &str = include_str!("../../../../deploy/prometheus/tandem-proxy.rules.yml");

/// The PrometheusRule object: the groups of `ALERT_RULES`.
pub fn prometheus_rule(i: &Inputs) -> Json {
    // The file is the repository's own, parsed by a unit test: it cannot
    // fail here except in a build whose tests failed.
    let rules: Json = serde_yaml_ng::from_str(ALERT_RULES).unwrap_or(Json::Null);
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(i, &i.name),
        "spec": {"groups": rules["groups"]}
    })
}

/// The ServiceMonitor object: the Service's admin port, every 15 s (the
/// dashboard's rates span at least a minute, so four samples each).
pub fn service_monitor(i: &Inputs) -> Json {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(i, &i.name),
        "spec": {
            "selector": {"matchLabels": labels(i)},
            "namespaceSelector": {"matchNames": [i.namespace]},
            "endpoints": [{"port": "admin", "path": "/metrics", "interval": "15s"}]
        }
    })
}

/// Every Kubernetes object, keyed `Kind/name`.
pub fn objects(i: &Inputs) -> BTreeMap<String, Json> {
    let mut all = vec![deployment(i), service(i), pdb(i), hpa(i)];
    if i.prometheus_rule {
        all.push(prometheus_rule(i));
    }
    if i.service_monitor {
        all.push(service_monitor(i));
    }
    if i.create_service_account {
        all.push(service_account(i));
    }
    if let (Some(name), Some(value)) = (&i.priority_class_name, i.priority_class_value) {
        all.push(priority_class(i, name, value));
    }
    all.into_iter()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect()
}

/// The systemd unit and its environment file.
pub fn systemd(i: &Inputs) -> (String, String) {
    let env_file = format!("/etc/tandem-proxy/{}.env", i.name);
    let exec = std::iter::once(i.binary.clone())
        .chain(args(i).into_iter().map(|a| {
            if a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a
            }
        }))
        .collect::<Vec<_>>()
        .join(" ");
    let unit = format!(
        "[Unit]\n\
         Description=tandem-proxy ({name})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         # The proxy sends READY=1 once its config is loaded and its listeners\n\
         # bound (when /ready turns 200), RELOADING=1 and READY=1 around a\n\
         # SIGHUP reload, and STOPPING=1 when a drain starts.\n\
         Type=notify\n\
         NotifyAccess=main\n\
         EnvironmentFile={env_file}\n\
         ExecStart={exec}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         # SIGTERM starts the drain; systemd waits delay + grace + margin\n\
         # before SIGKILL, as Kubernetes does with terminationGracePeriodSeconds.\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec={grace}\n\
         Restart=on-failure\n\
         RestartSec=1\n\
         # The cache is bounded: 1.25 x cache + fill budget + 96 MiB, as the\n\
         # Kubernetes memory limit.\n\
         MemoryMax={memory}\n\
         LimitNOFILE=65536\n\
         StateDirectory=tandem-proxy\n\
         DynamicUser=yes\n\
         # The proxy needs no privilege: ports above 1024, no raw sockets.\n\
         CapabilityBoundingSet=\n\
         AmbientCapabilities=\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         PrivateUsers=yes\n\
         PrivateMounts=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         ProtectProc=invisible\n\
         ProcSubset=pid\n\
         # IP for clients and origins, Unix for sd_notify.\n\
         RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
         RestrictNamespaces=yes\n\
         RestrictRealtime=yes\n\
         RestrictSUIDSGID=yes\n\
         LockPersonality=yes\n\
         MemoryDenyWriteExecute=yes\n\
         SystemCallArchitectures=native\n\
         SystemCallFilter=@system-service\n\
         SystemCallFilter=~@privileged\n\
         SystemCallErrorNumber=EPERM\n\
         DevicePolicy=closed\n\
         UMask=0077\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = i.name,
        grace = grace_seconds(i),
        memory = i.memory_limit_bytes,
    );
    let mut env =
        String::from("# Environment for tandem-proxy; keep secrets here, readable by root only.\n");
    let _ = writeln!(
        env,
        "TANDEM_DRAIN_DELAY={}",
        humantime::format_duration(i.drain_delay)
    );
    let _ = writeln!(
        env,
        "TANDEM_DRAIN_GRACE={}",
        humantime::format_duration(i.drain_grace)
    );
    for (k, v) in &i.env {
        let _ = writeln!(env, "{k}={}", shell_value(v));
    }
    (unit, env)
}

fn shell_value(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Renders JSON as block-style YAML. Strings are always double-quoted (a
/// YAML double-quoted scalar accepts JSON's escapes), so values like `on`,
/// `0755` or `1e3` can never be re-read as another type.
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    yaml_value(&mut out, v, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn yaml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !k.starts_with(['-', '.'])
    {
        k.to_string()
    } else {
        Json::String(k.to_string()).to_string()
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => Json::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

fn yaml_value(out: &mut String, v: &Json, indent: usize, in_list: bool) {
    let pad = " ".repeat(indent);
    match v {
        Json::Object(m) if !m.is_empty() => {
            for (i, (k, x)) in m.iter().enumerate() {
                // The first key of a list item shares the "- " line.
                let lead = if in_list && i == 0 {
                    String::new()
                } else {
                    pad.clone()
                };
                match x {
                    Json::Object(o) if !o.is_empty() => {
                        let _ = writeln!(out, "{lead}{}:", yaml_key(k));
                        yaml_value(out, x, indent + 2, false);
                    }
                    Json::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{lead}{}:", yaml_key(k));
                        yaml_value(out, x, indent, false);
                    }
                    _ => {
                        let _ = writeln!(out, "{lead}{}: {}", yaml_key(k), flow(x));
                    }
                }
            }
        }
        Json::Array(a) if !a.is_empty() => {
            for x in a {
                let _ = write!(out, "{pad}- ");
                match x {
                    Json::Object(o) if !o.is_empty() => yaml_value(out, x, indent + 2, true),
                    Json::Array(inner) if !inner.is_empty() => {
                        out.push('\n');
                        yaml_value(out, x, indent + 2, false);
                    }
                    _ => {
                        let _ = writeln!(out, "{}", flow(x));
                    }
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{}", flow(v));
        }
    }
}

fn flow(v: &Json) -> String {
    match v {
        Json::Object(m) if m.is_empty() => "{}".into(),
        Json::Array(a) if a.is_empty() => "[]".into(),
        other => scalar(other),
    }
}

/// Every output of the data source.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Each Kubernetes object as YAML, keyed `Kind/name`.
    pub manifests: BTreeMap<String, String>,
    /// The same as JSON.
    pub manifests_json: BTreeMap<String, String>,
    /// The systemd unit.
    pub systemd_unit: String,
    /// Its environment file.
    pub systemd_env: String,
}

/// Renders every output of the data source.
pub fn render(i: &Inputs) -> Rendered {
    let objects = objects(i);
    let (systemd_unit, systemd_env) = systemd(i);
    Rendered {
        manifests: objects
            .iter()
            .map(|(k, o)| (k.clone(), to_yaml(o)))
            .collect(),
        manifests_json: objects
            .iter()
            .map(|(k, o)| (k.clone(), o.to_string()))
            .collect(),
        systemd_unit,
        systemd_env,
    }
}

fn read_model(config: &Value) -> Result<Model, Diagnostics> {
    let s = schema();
    Ok(model::read(config, &s, TYPE_NAME, "configuration")?)
}

#[async_trait]
impl DataSource<Aws> for ManifestsDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        match read_model(config).and_then(|m| inputs(&m)) {
            Ok(_) => {}
            Err(d) => diags.extend(d),
        }
    }

    async fn read(&self, _ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let mut m = read_model(config)?;
        let i = inputs(&m)?;
        let r = render(&i);
        m.id = Field::Known(format!("{}/{}", i.namespace, i.name));
        m.manifests = Field::Known(r.manifests);
        m.manifests_json = Field::Known(r.manifests_json);
        m.systemd_unit = Field::Known(r.systemd_unit);
        m.systemd_env = Field::Known(r.systemd_env);
        Ok(model::write(&m, &schema(), TYPE_NAME)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::error_paths;
    use tfplugin6::validate::validate_block;

    fn cfg(pairs: &[(&str, Value)]) -> Value {
        let mut v = Value::object([
            ("name", Value::string("assets")),
            ("image", Value::string("tandem-proxy:0.1.0")),
            (
                "config_source",
                Value::string("s3://fleet-config/prod.json"),
            ),
        ]);
        for (k, x) in pairs {
            v.set(k, x.clone());
        }
        v
    }

    /// Every attribute present, as Terraform sends a configuration.
    fn full(v: &Value) -> Value {
        Value::object(
            schema()
                .block
                .attributes
                .iter()
                .map(|a| (a.name.clone(), v.get(&a.name).clone())),
        )
    }

    fn inputs_of(pairs: &[(&str, Value)]) -> Inputs {
        let c = full(&cfg(pairs));
        assert!(
            validate_block(&schema().block, &c).0.is_empty(),
            "{:?}",
            validate_block(&schema().block, &c)
        );
        inputs(&read_model(&c).unwrap()).unwrap()
    }

    /// The paths of every error validation reports: the schema's
    /// validators, then the data source's cross-field rules.
    fn problems(pairs: &[(&str, Value)]) -> Vec<String> {
        problems_of(&full(&cfg(pairs)))
    }

    fn problems_of(c: &Value) -> Vec<String> {
        let mut d = validate_block(&schema().block, c);
        ManifestsDataSource.validate(c, &mut d);
        error_paths(&d)
    }

    #[test]
    fn drain_settings_set_prestop_and_grace() {
        let i = inputs_of(&[
            ("drain_delay", Value::string("7s")),
            ("drain_grace", Value::string("1m")),
        ]);
        let d = deployment(&i);
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["terminationGracePeriodSeconds"], 72);
        assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 7);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "TANDEM_DRAIN_DELAY", "value": "0s"})),
            "{}",
            c["env"]
        );
        assert_eq!(c["volumeMounts"][0]["mountPath"], STATE_DIR);
        let (unit, env) = systemd(&i);
        assert!(unit.contains("TimeoutStopSec=72"));
        assert!(env.contains("TANDEM_DRAIN_DELAY=7s"));
        assert!(env.contains("TANDEM_DRAIN_GRACE=1m"));
    }

    #[test]
    fn without_the_sleep_hook_the_proxy_waits_out_the_delay() {
        let i = inputs_of(&[
            ("drain_delay", Value::string("7s")),
            ("pre_stop", Value::string("proxy")),
        ]);
        let d = deployment(&i);
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert!(c.get("lifecycle").is_none(), "{c}");
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "TANDEM_DRAIN_DELAY", "value": "7s"})),
            "{}",
            c["env"]
        );
        // The same budget: the wait moved from the hook into the proxy.
        assert_eq!(pod["terminationGracePeriodSeconds"], 42);
    }

    #[test]
    fn a_sub_second_delay_rounds_the_sleep_up() {
        let i = inputs_of(&[("drain_delay", Value::string("500ms"))]);
        let c = &deployment(&i)["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 1);
        let none = inputs_of(&[("drain_delay", Value::string("0s"))]);
        let c = &deployment(&none)["spec"]["template"]["spec"]["containers"][0];
        assert!(c.get("lifecycle").is_none(), "{c}");
    }

    #[test]
    fn memory_follows_the_cache_and_the_fill_budget() {
        // 1.25 x 256 + 64 + 96 MiB.
        let i = inputs_of(&[]);
        assert_eq!(i.memory_request, "480Mi");
        assert_eq!(i.memory_limit, "480Mi");
        assert!(systemd(&i)
            .0
            .contains(&format!("MemoryMax={}\n", 480u64 << 20)));
        // 1.25 x 1024 + 64 + 96 MiB.
        let big = inputs_of(&[
            ("cache_max_bytes", Value::string("1GiB")),
            ("cache_max_fill_bytes", Value::string("64MiB")),
        ]);
        assert_eq!(big.memory_request, "1440Mi");
        let over = inputs_of(&[
            ("memory_request", Value::string("2Gi")),
            ("memory_limit", Value::string("3Gi")),
        ]);
        let c = &deployment(&over)["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"]["requests"]["memory"], "2Gi");
        assert_eq!(c["resources"]["limits"]["memory"], "3Gi");
        assert!(systemd(&over)
            .0
            .contains(&format!("MemoryMax={}\n", 3u64 << 30)));
    }

    #[test]
    fn pods_run_as_their_service_account_unprivileged() {
        let i = inputs_of(&[(
            "service_account_annotations",
            Value::object([(
                "eks.amazonaws.com/role-arn",
                Value::string("arn:aws:iam::123456789012:role/assets"),
            )]),
        )]);
        let pod = &deployment(&i)["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "assets");
        assert_eq!(pod["automountServiceAccountToken"], false);
        let sc = &pod["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], NONROOT_ID);
        assert_eq!(sc["runAsGroup"], NONROOT_ID);
        assert_eq!(sc["fsGroup"], NONROOT_ID);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        let csc = &pod["containers"][0]["securityContext"];
        assert_eq!(csc["readOnlyRootFilesystem"], true);
        assert_eq!(csc["allowPrivilegeEscalation"], false);
        assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
        let o = objects(&i);
        let sa = &o["ServiceAccount/assets"];
        assert_eq!(
            sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::123456789012:role/assets"
        );
        assert!(!o.keys().any(|k| k.starts_with("PriorityClass/")));

        let existing = inputs_of(&[
            ("service_account_name", Value::string("shared-proxy")),
            ("create_service_account", Value::Bool(false)),
        ]);
        assert_eq!(
            deployment(&existing)["spec"]["template"]["spec"]["serviceAccountName"],
            "shared-proxy"
        );
        assert!(!objects(&existing)
            .keys()
            .any(|k| k.starts_with("ServiceAccount/")));
    }

    #[test]
    fn a_priority_class_is_named_and_optionally_rendered() {
        let named = inputs_of(&[("priority_class_name", Value::string("edge-critical"))]);
        assert_eq!(
            deployment(&named)["spec"]["template"]["spec"]["priorityClassName"],
            "edge-critical"
        );
        assert!(!objects(&named).contains_key("PriorityClass/edge-critical"));
        let rendered = inputs_of(&[
            ("priority_class_name", Value::string("edge-critical")),
            ("priority_class_value", Value::int(100_000)),
        ]);
        let pc = &objects(&rendered)["PriorityClass/edge-critical"];
        assert_eq!(pc["value"], 100_000);
        assert!(pc["metadata"].get("namespace").is_none(), "cluster-scoped");
    }

    #[test]
    fn the_operator_objects_carry_the_tested_rules_and_scrape_the_admin_port() {
        let i = inputs_of(&[
            ("prometheus_rule", Value::Bool(true)),
            ("service_monitor", Value::Bool(true)),
        ]);
        let all = objects(&i);
        let rule = &all[&format!("PrometheusRule/{}", i.name)];
        let file: Json = serde_yaml_ng::from_str(ALERT_RULES).expect("the rules file parses");
        assert_eq!(rule["spec"]["groups"], file["groups"]);
        let alerts = rule["spec"]["groups"][0]["rules"]
            .as_array()
            .expect("rules");
        assert!(alerts.len() >= 10, "{}", alerts.len());
        let sm = &all[&format!("ServiceMonitor/{}", i.name)];
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "admin");
        assert_eq!(
            sm["spec"]["selector"]["matchLabels"],
            service(&i)["spec"]["selector"]
        );
        let off = objects(&inputs_of(&[]));
        assert!(!off
            .keys()
            .any(|k| k.starts_with("PrometheusRule/") || k.starts_with("ServiceMonitor/")));
    }

    #[test]
    fn objects_are_keyed_by_kind_and_name() {
        let r = render(&inputs_of(&[]));
        let keys: Vec<&str> = r.manifests.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Deployment/assets",
                "HorizontalPodAutoscaler/assets",
                "PodDisruptionBudget/assets",
                "Service/assets",
                "ServiceAccount/assets"
            ]
        );
        assert_eq!(
            r.manifests.keys().collect::<Vec<_>>(),
            r.manifests_json.keys().collect::<Vec<_>>()
        );
        let sa: Json = serde_json::from_str(&r.manifests_json["ServiceAccount/assets"]).unwrap();
        assert_eq!(sa["kind"], "ServiceAccount");
    }

    #[test]
    fn the_unit_is_hardened_and_waits_for_readiness() {
        let (unit, _) = systemd(&inputs_of(&[]));
        for want in [
            "Type=notify",
            "CapabilityBoundingSet=\n",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "SystemCallFilter=@system-service",
            "SystemCallArchitectures=native",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "RestrictNamespaces=yes",
            "LockPersonality=yes",
            "MemoryDenyWriteExecute=yes",
            "RestrictRealtime=yes",
            "UMask=0077",
            "MemoryMax=",
        ] {
            assert!(unit.contains(want), "{want} missing from\n{unit}");
        }
    }

    #[test]
    fn hpa_and_pdb_follow_replicas() {
        let i = inputs_of(&[
            ("replicas", Value::int(4)),
            ("max_replicas", Value::int(10)),
        ]);
        assert_eq!(hpa(&i)["spec"]["minReplicas"], 4);
        assert_eq!(hpa(&i)["spec"]["maxReplicas"], 10);
        assert_eq!(pdb(&i)["spec"]["maxUnavailable"], 1);
        let one = inputs_of(&[("replicas", Value::int(1))]);
        assert_eq!(
            pdb(&one)["spec"]["unhealthyPodEvictionPolicy"],
            "AlwaysAllow"
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let paths = problems(&[
            ("name", Value::string("Assets_1")),
            ("replicas", Value::int(5)),
            ("max_replicas", Value::int(2)),
            ("admin_port", Value::int(8080)),
            ("drain_delay", Value::string("soon")),
            ("config_source", Value::string("s3://bucket-only")),
            ("env", Value::object([("1BAD", Value::string("x"))])),
            ("pre_stop", Value::string("exec")),
            ("cache_max_bytes", Value::string("512KiB")),
            ("memory_request", Value::string("1.5Gi")),
            ("priority_class_value", Value::int(2_000_000_000)),
            (
                "service_account_annotations",
                Value::object([("not a key", Value::string("x"))]),
            ),
            ("binary", Value::string("tandem-proxy")),
        ]);
        for want in [
            "name",
            "max_replicas",
            "admin_port",
            "drain_delay",
            "config_source",
            "env[\"1BAD\"]",
            "pre_stop",
            "cache_max_bytes",
            "memory_request",
            "priority_class_value",
            "service_account_annotations[\"not a key\"]",
            "binary",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn cross_field_mistakes_are_reported_with_their_path() {
        let paths = problems(&[
            ("memory_request", Value::string("1Gi")),
            ("memory_limit", Value::string("512Mi")),
            ("create_service_account", Value::Bool(false)),
            (
                "service_account_annotations",
                Value::object([("eks.amazonaws.com/role-arn", Value::string("x"))]),
            ),
            ("priority_class_value", Value::int(10)),
            // Over the fleet config's own cap on drain.delay.
            ("drain_delay", Value::string("6m")),
        ]);
        for want in [
            "memory_limit",
            "service_account_annotations",
            "priority_class_value",
            "drain_delay",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let c = full(&cfg(&[
            ("name", Value::Unknown),
            ("config_source", Value::Unknown),
            ("max_replicas", Value::Unknown),
            ("memory_limit", Value::Unknown),
        ]));
        assert_eq!(problems_of(&c), Vec::<String>::new());
        assert_eq!(problems(&[]), Vec::<String>::new());
    }

    #[test]
    fn quantities_are_read_as_bytes() {
        assert_eq!(quantity_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(quantity_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(quantity_bytes("1048576"), Ok(1 << 20));
        for bad in ["", "Mi", "1.5Gi", "-1Mi", "0", "12MB"] {
            assert!(quantity_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn yaml_quotes_every_string_and_nests_lists() {
        let y = to_yaml(&json!({"a": {"b": [1, {"c": "on", "d": []}], "e": {}}, "f-g": "0755"}));
        assert_eq!(
            y,
            "a:\n  b:\n  - 1\n  - c: \"on\"\n    d: []\n  e: {}\nf-g: \"0755\"\n"
        );
    }
}
