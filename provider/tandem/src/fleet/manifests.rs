//! `tandem_proxy_manifests`: deployment artifacts for a tandem-proxy fleet,
//! rendered from the same inputs as the fleet itself so probes, drain
//! timing and disruption budgets cannot drift from what the proxy does.
//!
//! Outputs are strings, for `kubernetes_manifest` (via `yamldecode`) or
//! `local_file`: a Deployment, Service, PodDisruptionBudget and
//! HorizontalPodAutoscaler, plus a systemd unit with its environment file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use tfplugin6::{AttrPath, Attribute, Block, Ctx, DataSource, Diagnostics, Schema, Type, Value};

use crate::aws::Aws;

/// Port for S3 traffic; the proxy's own default.
pub const DEFAULT_DATA_PORT: i64 = 8080;
/// Port for /health, /ready, /metrics and /status; kept apart from data so
/// probes and scrapes never queue behind object downloads.
pub const DEFAULT_ADMIN_PORT: i64 = 9090;
/// Three replicas survive one zone going away with two still serving.
pub const DEFAULT_REPLICAS: i64 = 3;
/// Time between /ready turning 503 and the listener closing: long enough
/// for endpoints controllers and load balancers to stop sending traffic.
pub const DEFAULT_DRAIN_DELAY: &str = "5s";
/// Time in-flight requests get to finish after the listener closes.
pub const DEFAULT_DRAIN_GRACE: &str = "30s";
/// Headroom Kubernetes gets beyond delay + grace before SIGKILL, so a drain
/// that uses its whole budget still exits on its own.
const KILL_MARGIN: Duration = Duration::from_secs(5);

/// The data source.
pub struct ManifestsDataSource;

fn schema() -> Schema {
    let s = |name: &str, desc: &str| Attribute::optional(name, Type::String, desc);
    let n = |name: &str, desc: &str| Attribute::optional(name, Type::Number, desc);
    Schema::new(
        Block::new(
            "Renders deployment artifacts for a tandem-proxy fleet: a Kubernetes Deployment (liveness on `/health`, \
             readiness on `/ready`, zone spreading and anti-affinity, a preStop delay and termination grace matching \
             the proxy's drain settings, RollingUpdate with `maxUnavailable = 0`), a Service, a PodDisruptionBudget, a \
             HorizontalPodAutoscaler, and a systemd unit with its environment file. Outputs are YAML strings for \
             `kubernetes_manifest` (through `yamldecode`) or `local_file`.",
        )
        .attr(Attribute::required("name", Type::String, "Name of the fleet; used for every Kubernetes object and the systemd unit."))
        .attr(s("namespace", "Kubernetes namespace. Default `default`."))
        .attr(Attribute::required("image", Type::String, "Container image of tandem-proxy, e.g. `ghcr.io/example/tandem-proxy:0.1.0`."))
        .attr(Attribute::required(
            "config_source",
            Type::String,
            "Where the proxies read their config: `s3://bucket/key` as published by `tandem_proxy_fleet`, or a file path.",
        ))
        .attr(s("config_region", "Region of the config bucket, when `config_source` is an S3 URL."))
        .attr(s("config_endpoint", "Custom S3 endpoint for the config bucket (emulators, S3-compatible stores)."))
        .attr(n("replicas", "Replicas when no autoscaler is wanted, and the autoscaler's minimum otherwise. Default 3."))
        .attr(n("max_replicas", "Maximum replicas for the HorizontalPodAutoscaler. Default: twice `replicas`."))
        .attr(n("target_cpu_utilization", "Average CPU utilisation (percent of request) the autoscaler aims for. Default 70."))
        .attr(n("data_port", "Port serving S3 requests. Default 8080."))
        .attr(n("admin_port", "Port serving `/health`, `/ready`, `/metrics` and `/status`. Default 9090."))
        .attr(s(
            "drain_delay",
            "How long the proxy keeps accepting after SIGTERM while `/ready` reports 503; becomes the preStop delay. \
             Must match the fleet config's drain delay. Default `5s`.",
        ))
        .attr(s(
            "drain_grace",
            "How long in-flight requests may take after accepting stops; with `drain_delay` and a 5 s margin it sets \
             `terminationGracePeriodSeconds`. Must match the fleet config. Default `30s`.",
        ))
        .attr(s("cpu_request", "CPU request per pod. Default `250m`."))
        .attr(s("memory_request", "Memory request per pod; size it above the in-memory cache. Default `512Mi`."))
        .attr(s("memory_limit", "Memory limit per pod. Default: `memory_request`."))
        .attr(s("credentials_secret", "Name of a Kubernetes Secret whose keys become environment variables (e.g. AWS credentials, JWT secrets referenced by the config)."))
        .attr(Attribute::optional("env", Type::map(Type::String), "Extra environment variables for the proxy (not for secrets: use `credentials_secret`)."))
        .attr(Attribute::computed("id", Type::String, "`namespace/name`."))
        .attr(Attribute::computed("deployment", Type::String, "The Deployment, as YAML."))
        .attr(Attribute::computed("service", Type::String, "The Service exposing the data and admin ports, as YAML."))
        .attr(Attribute::computed("pod_disruption_budget", Type::String, "The PodDisruptionBudget (at most one pod down voluntarily), as YAML."))
        .attr(Attribute::computed("horizontal_pod_autoscaler", Type::String, "The HorizontalPodAutoscaler (autoscaling/v2), as YAML."))
        .attr(Attribute::computed("all", Type::String, "Every Kubernetes object above, as one multi-document YAML stream."))
        .attr(Attribute::computed("systemd_unit", Type::String, "A systemd service unit running the proxy with the same drain timing."))
        .attr(Attribute::computed("systemd_env", Type::String, "The environment file the systemd unit reads (`/etc/tandem-proxy/<name>.env`)."))
    )
}

/// The inputs, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Fleet name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Image.
    pub image: String,
    /// Config source.
    pub config_source: String,
    /// Config bucket region.
    pub config_region: Option<String>,
    /// Config endpoint.
    pub config_endpoint: Option<String>,
    /// Replicas / HPA minimum.
    pub replicas: i64,
    /// HPA maximum.
    pub max_replicas: i64,
    /// HPA CPU target.
    pub target_cpu: i64,
    /// Data port.
    pub data_port: i64,
    /// Admin port.
    pub admin_port: i64,
    /// Drain delay.
    pub drain_delay: Duration,
    /// Drain grace.
    pub drain_grace: Duration,
    /// CPU request.
    pub cpu_request: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// Secret for env.
    pub credentials_secret: Option<String>,
    /// Extra env.
    pub env: BTreeMap<String, String>,
}

fn opt(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn duration_at(v: &Value, attr: &str, default: &str, d: &mut Diagnostics) -> Duration {
    let text = v.as_str().unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(x) => x,
        Err(e) => {
            d.error_at(
                AttrPath::root(attr),
                "Invalid duration",
                format!("{text:?} is not a duration like `5s` or `1m30s`: {e}."),
            );
            Duration::ZERO
        }
    }
}

/// Reads and checks the configuration; every problem is reported.
pub fn inputs(c: &Value) -> Result<Inputs, Diagnostics> {
    let mut d = Diagnostics::new();
    let name = opt(c.get("name")).unwrap_or_default();
    // DNS-1123 label: Kubernetes object names and the systemd unit share it.
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if c.get("name").is_wholly_known() && !label_ok(&name) {
        d.error_at(AttrPath::root("name"), "Invalid name", format!("{name:?} must be a DNS label: lowercase letters, digits and '-', at most 63 characters, not starting or ending with '-'."));
    }
    let namespace = opt(c.get("namespace")).unwrap_or_else(|| "default".into());
    if !label_ok(&namespace) {
        d.error_at(
            AttrPath::root("namespace"),
            "Invalid namespace",
            format!("{namespace:?} must be a DNS label."),
        );
    }
    let num = |attr: &str, default: i64, lo: i64, hi: i64, d: &mut Diagnostics| -> i64 {
        let v = c.get(attr).as_i64().unwrap_or(default);
        if !(lo..=hi).contains(&v) {
            d.error_at(
                AttrPath::root(attr),
                format!("Invalid {attr}"),
                format!("Must be between {lo} and {hi}, got {v}."),
            );
        }
        v
    };
    let replicas = num("replicas", DEFAULT_REPLICAS, 1, 1000, &mut d);
    let max_replicas = num("max_replicas", replicas * 2, 1, 1000, &mut d);
    if max_replicas < replicas {
        d.error_at(
            AttrPath::root("max_replicas"),
            "max_replicas below replicas",
            format!("max_replicas ({max_replicas}) must be at least replicas ({replicas})."),
        );
    }
    let target_cpu = num("target_cpu_utilization", 70, 1, 100, &mut d);
    let data_port = num("data_port", DEFAULT_DATA_PORT, 1, 65535, &mut d);
    let admin_port = num("admin_port", DEFAULT_ADMIN_PORT, 1, 65535, &mut d);
    if data_port == admin_port {
        d.error_at(AttrPath::root("admin_port"), "Ports collide", "`admin_port` must differ from `data_port`: probes must not queue behind object downloads.");
    }
    let drain_delay = duration_at(
        c.get("drain_delay"),
        "drain_delay",
        DEFAULT_DRAIN_DELAY,
        &mut d,
    );
    let drain_grace = duration_at(
        c.get("drain_grace"),
        "drain_grace",
        DEFAULT_DRAIN_GRACE,
        &mut d,
    );
    let source = opt(c.get("config_source")).unwrap_or_default();
    if c.get("config_source").is_wholly_known()
        && source.starts_with("s3://")
        && source
            .trim_start_matches("s3://")
            .split_once('/')
            .is_none_or(|(b, k)| b.is_empty() || k.is_empty())
    {
        d.error_at(
            AttrPath::root("config_source"),
            "Invalid config source",
            format!("{source:?} must look like s3://bucket/key."),
        );
    }
    let memory_request = opt(c.get("memory_request")).unwrap_or_else(|| "512Mi".into());
    let env: BTreeMap<String, String> = c
        .get("env")
        .as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    for k in env.keys() {
        if k.is_empty()
            || k.starts_with(|ch: char| ch.is_ascii_digit())
            || !k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            d.error_at(
                AttrPath::root("env").key(k),
                "Invalid environment variable name",
                "Use letters, digits and '_', not starting with a digit.",
            );
        }
    }
    d.clone().into_result()?;
    Ok(Inputs {
        name,
        namespace,
        image: opt(c.get("image")).unwrap_or_default(),
        config_source: source,
        config_region: opt(c.get("config_region")),
        config_endpoint: opt(c.get("config_endpoint")),
        replicas,
        max_replicas,
        target_cpu,
        data_port,
        admin_port,
        drain_delay,
        drain_grace,
        cpu_request: opt(c.get("cpu_request")).unwrap_or_else(|| "250m".into()),
        memory_limit: opt(c.get("memory_limit")).unwrap_or_else(|| memory_request.clone()),
        memory_request,
        credentials_secret: opt(c.get("credentials_secret")),
        env,
    })
}

/// Where the proxy keeps the last good config (its `--state-dir` default).
const STATE_DIR: &str = "/var/lib/tandem-proxy";

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

/// termination grace: preStop delay + drain grace + margin, whole seconds up.
fn grace_seconds(i: &Inputs) -> u64 {
    (i.drain_delay + i.drain_grace + KILL_MARGIN)
        .as_secs_f64()
        .ceil() as u64
}

/// The Deployment object.
pub fn deployment(i: &Inputs) -> Json {
    let sel = labels(i);
    let mut env: Vec<Json> = i
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    // The preStop sleep already holds SIGTERM back for drain_delay while
    // Kubernetes removes the pod from its Service; waiting again inside the
    // proxy would overrun terminationGracePeriodSeconds.
    env.push(json!({"name": "TANDEM_DRAIN_DELAY", "value": "0s"}));
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
        // The proxy itself turns /ready 503 at SIGTERM and keeps accepting
        // for drain_delay; the preStop sleep holds SIGTERM back just as long
        // for load balancers that ignore readiness.
        "lifecycle": {"preStop": {"sleep": {"seconds": i.drain_delay.as_secs()}}},
        "securityContext": {
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}
        }
    });
    if let Some(secret) = &i.credentials_secret {
        container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
    }
    // The root filesystem is read-only; the proxy keeps its last good
    // config here, so a container restart while S3 is unreachable serves.
    container["volumeMounts"] = json!([{"name": "state", "mountPath": STATE_DIR}]);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": i.name, "namespace": i.namespace, "labels": sel},
        "spec": {
            "replicas": i.replicas,
            "selector": {"matchLabels": sel},
            // Never lose capacity during a rollout: new pods become ready first.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": sel, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": i.admin_port.to_string(), "prometheus.io/path": "/metrics"}},
                "spec": {
                    "terminationGracePeriodSeconds": grace_seconds(i),
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
                    "volumes": [{"name": "state", "emptyDir": {"sizeLimit": "16Mi"}}]
                }
            }
        }
    })
}

/// The Service object.
pub fn service(i: &Inputs) -> Json {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": i.name, "namespace": i.namespace, "labels": labels(i)},
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
        "metadata": {"name": i.name, "namespace": i.namespace, "labels": labels(i)},
        "spec": spec
    })
}

/// The HorizontalPodAutoscaler object.
pub fn hpa(i: &Inputs) -> Json {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": i.name, "namespace": i.namespace, "labels": labels(i)},
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

/// The systemd unit and its environment file.
pub fn systemd(i: &Inputs) -> (String, String) {
    let env_file = format!("/etc/tandem-proxy/{}.env", i.name);
    let exec = std::iter::once("/usr/local/bin/tandem-proxy".to_string())
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
         Type=simple\n\
         EnvironmentFile={env_file}\n\
         ExecStart={exec}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         # SIGTERM starts the drain; systemd waits delay + grace + margin\n\
         # before SIGKILL, as Kubernetes does with terminationGracePeriodSeconds.\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec={grace}\n\
         Restart=on-failure\n\
         RestartSec=1\n\
         DynamicUser=yes\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         StateDirectory=tandem-proxy\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = i.name,
        grace = grace_seconds(i),
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

/// Renders every output of the data source.
pub fn render(i: &Inputs) -> BTreeMap<&'static str, String> {
    let d = to_yaml(&deployment(i));
    let s = to_yaml(&service(i));
    let p = to_yaml(&pdb(i));
    let h = to_yaml(&hpa(i));
    let all = [d.as_str(), s.as_str(), p.as_str(), h.as_str()].join("---\n");
    let (unit, env) = systemd(i);
    BTreeMap::from([
        ("deployment", d),
        ("service", s),
        ("pod_disruption_budget", p),
        ("horizontal_pod_autoscaler", h),
        ("all", all),
        ("systemd_unit", unit),
        ("systemd_env", env),
    ])
}

#[async_trait]
impl DataSource<Aws> for ManifestsDataSource {
    fn type_name(&self) -> &'static str {
        "tandem_proxy_manifests"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Err(d) = inputs(config) {
            diags.extend(d);
        }
    }

    async fn read(&self, _ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let i = inputs(config)?;
        let mut state = config.clone();
        state.set("id", Value::string(format!("{}/{}", i.namespace, i.name)));
        for (k, v) in render(&i) {
            state.set(k, Value::string(v));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn drain_settings_set_prestop_and_grace() {
        let i = inputs(&cfg(&[
            ("drain_delay", Value::string("7s")),
            ("drain_grace", Value::string("1m")),
        ]))
        .unwrap();
        let d = deployment(&i);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], 72);
        assert_eq!(
            pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
            7
        );
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        assert_eq!(
            pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
            "/ready"
        );
        assert_eq!(
            pod["containers"][0]["livenessProbe"]["httpGet"]["path"],
            "/health"
        );
        let env = &pod["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .contains(&json!({"name": "TANDEM_DRAIN_DELAY", "value": "0s"})),
            "{env}"
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"][0]["mountPath"],
            STATE_DIR
        );
        let (unit, env) = systemd(&i);
        assert!(unit.contains("TimeoutStopSec=72"));
        assert!(env.contains("TANDEM_DRAIN_DELAY=7s"));
        assert!(env.contains("TANDEM_DRAIN_GRACE=1m"));
    }

    #[test]
    fn hpa_and_pdb_follow_replicas() {
        let i = inputs(&cfg(&[
            ("replicas", Value::int(4)),
            ("max_replicas", Value::int(10)),
        ]))
        .unwrap();
        assert_eq!(hpa(&i)["spec"]["minReplicas"], 4);
        assert_eq!(hpa(&i)["spec"]["maxReplicas"], 10);
        assert_eq!(pdb(&i)["spec"]["maxUnavailable"], 1);
        let one = inputs(&cfg(&[("replicas", Value::int(1))])).unwrap();
        assert_eq!(
            pdb(&one)["spec"]["unhealthyPodEvictionPolicy"],
            "AlwaysAllow"
        );
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let bad = cfg(&[
            ("name", Value::string("Assets_1")),
            ("replicas", Value::int(5)),
            ("max_replicas", Value::int(2)),
            ("admin_port", Value::int(8080)),
            ("drain_delay", Value::string("soon")),
            ("config_source", Value::string("s3://bucket-only")),
            ("env", Value::object([("1BAD", Value::string("x"))])),
        ]);
        let d = inputs(&bad).unwrap_err();
        let paths: Vec<String> =
            d.0.iter()
                .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
                .collect();
        for want in [
            "name",
            "max_replicas",
            "admin_port",
            "drain_delay",
            "config_source",
            "env[\"1BAD\"]",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let c = cfg(&[("name", Value::Unknown), ("config_source", Value::Unknown)]);
        assert!(inputs(&c).is_ok());
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
