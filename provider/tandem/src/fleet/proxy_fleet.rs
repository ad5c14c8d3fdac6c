//! `tandem_proxy_fleet`: the runtime config of a tandem-proxy fleet,
//! declared in HCL that mirrors the fleet-config format, validated at plan
//! time by the proxy's own `validate()`, published as canonical JSON to a
//! versioned S3 object, and (optionally) watched until the fleet runs it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Map, Value as Json};
use tandem_fleet_config::{ConfigPath, FleetConfig, Format, Seg};
use tfplugin6::{
    Applied, ApplyError, AttrPath, Attribute, Block, Ctx, Diagnostic, Diagnostics, NestedBlock,
    Plan, ReadResult, Resource, Schema, Type, Validator, Value,
};
use tokio_util::sync::CancellationToken;

use super::rollout;
use crate::aws::s3_region::find_bucket_region;
use crate::aws::{ok_if_gone, send, Aws, AwsError};
use crate::provider::{url, URL};

/// A rollout timeout as the rollout reads it (humantime: `2m`, `90s`).
fn duration(v: &str) -> Result<(), String> {
    humantime::parse_duration(v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How long `apply` waits for the fleet when `rollout.timeout` is unset:
/// proxies poll every few seconds, so two minutes covers a slow fleet.
pub const DEFAULT_ROLLOUT_TIMEOUT: &str = "2m";

/// HCL block names (singular, as Terraform users write repeated blocks)
/// and the config fields they fill.
const RENAMES: &[(&str, &str)] = &[
    ("bucket", "buckets"),
    ("replica", "replicas"),
    ("claim_rule", "claim_rules"),
];

/// Attributes of the resource that are not part of the fleet document.
const OWN: &[&str] = &[
    "id",
    "config_bucket",
    "config_key",
    "region",
    "retain_on_destroy",
    "rollout",
    "config_version",
    "object_version_id",
    "document",
];

/// The resource.
pub struct ProxyFleetResource;

fn s(name: &str, desc: &str) -> Attribute {
    Attribute::optional(name, Type::String, desc)
}
fn n(name: &str, desc: &str) -> Attribute {
    Attribute::optional(name, Type::Number, desc)
}
fn b(name: &str, desc: &str) -> Attribute {
    Attribute::optional(name, Type::Bool, desc)
}

fn schema() -> Schema {
    let replica = Block::new(
        "A replica bucket the route reads from; replicas are tried by ascending `priority`.",
    )
    .attr(Attribute::required(
        "name",
        Type::String,
        "Replica name, unique within the route; labels metrics.",
    ))
    .attr(Attribute::required(
        "bucket",
        Type::String,
        "S3 bucket name.",
    ))
    .attr(Attribute::required(
        "region",
        Type::String,
        "AWS region of the bucket, also used for signing.",
    ))
    .attr(s("endpoint", "Custom S3 endpoint; real AWS when unset."))
    .attr(s(
        "tls_ca_file",
        "Absolute path, on the proxies' hosts, of a PEM file with the CA certificates an `https://` `endpoint` must chain to, for an origin with a private CA (MinIO, Ceph RGW). Replaces the Mozilla roots for this replica only; re-read on every reload (SIGHUP).",
    ))
    .attr(b(
        "path_style",
        "Address the bucket path-style (`endpoint/bucket/key`). Default `false`.",
    ))
    .attr(n(
        "priority",
        "Lower is tried first; must be unique within the route. Default 100.",
    ))
    .attr(s(
        "timeout",
        "Connect + first-byte timeout before failing over, e.g. `500ms`. Default `2s`.",
    ))
    .block(NestedBlock::single(
        "credentials",
        Block::new(
            "Credentials by environment variable name, so the published document holds no secret.",
        )
        .attr(Attribute::required(
            "access_key_id_env",
            Type::String,
            "Variable holding the access key ID.",
        ))
        .attr(Attribute::required(
            "secret_access_key_env",
            Type::String,
            "Variable holding the secret access key.",
        ))
        .attr(s("session_token_env", "Variable holding a session token.")),
    ));
    let auth = Block::new("JWT authentication for the route; public when absent.")
        .attr(Attribute::required(
            "algorithm",
            Type::String,
            "`HS256`, `RS256` or `ES256`.",
        ))
        .attr(s(
            "secret_env",
            "HS256: environment variable holding the shared secret.",
        ))
        .attr(s(
            "public_key_file",
            "RS256/ES256: path of a PEM public key on the proxy host.",
        ))
        .attr(s(
            "jwks_file",
            "RS256/ES256: path of a JWKS document on the proxy host.",
        ))
        .attr(s(
            "jwks_url",
            "RS256/ES256: URL of the identity provider's JWKS (`https://`, or `http://` to a loopback address). Fetched at start, every `jwks_refresh`, and early (at most every 30 s) when a token names an unknown key; the last good set is kept when a fetch fails.",
        ))
        .attr(s(
            "jwks_refresh",
            "How often `jwks_url` is fetched again, e.g. `10m` (the default). It bounds how long a key the identity provider removed is still believed.",
        ))
        .attr(s("issuer", "Required `iss` claim."))
        .attr(s("audience", "Required `aud` claim. Required itself with `jwks_file` or `jwks_url`: an identity provider's keys sign tokens for all its applications."))
        .block(NestedBlock::list(
            "claim_rule",
            Block::new("Allows keys under `prefix` to tokens whose `claim` equals `value`.")
                .attr(Attribute::required(
                    "claim",
                    Type::String,
                    "Claim name, e.g. `tenant`.",
                ))
                .attr(Attribute::required(
                    "value",
                    Type::String,
                    "Required claim value.",
                ))
                .attr(Attribute::required(
                    "prefix",
                    Type::String,
                    "Allowed key prefix within the route (no leading `/`).",
                )),
        ));
    let bucket = Block::new(
        "A bucket route: requests under `path_prefix` are served from its replicas.",
    )
    .attr(Attribute::required(
        "name",
        Type::String,
        "Route name; labels metrics and `/status`.",
    ))
    .attr(Attribute::required(
        "path_prefix",
        Type::String,
        "URL path prefix, starting and ending with `/`, e.g. `/assets/`.",
    ))
    .attr(b(
        "fallback_on_404",
        "On a 404, also try lower-priority replicas (for bucket migrations). Default `false`.",
    ))
    .block(NestedBlock::list("replica", replica).min(1))
    .block(NestedBlock::single(
        "breaker",
        Block::new("Circuit breaker applied to each replica of the route.")
            .attr(n(
                "failure_threshold",
                "Consecutive failures that open the breaker. Default 5.",
            ))
            .attr(n(
                "success_threshold",
                "Consecutive half-open successes that close it. Default 2.",
            ))
            .attr(s(
                "open_timeout",
                "Time open before probing again. Default `10s`.",
            ))
            .attr(n(
                "half_open_probes",
                "Concurrent trial requests while half-open. Default 1.",
            )),
    ))
    .block(NestedBlock::single(
        "cache",
        Block::new("Caching of this route's objects.")
            .attr(b("enabled", "Cache this route's objects. Default `true`."))
            .attr(s(
                "ttl",
                "Freshness lifetime overriding the global `cache.ttl`.",
            )),
    ))
    .block(NestedBlock::single("auth", auth))
    .block(NestedBlock::single(
        "cors",
        Block::new("CORS for browser clients: the proxy answers preflights itself and puts the headers on hits, misses and errors alike.")
            .attr(Attribute::required("allowed_origins", Type::list(Type::String), "Origins allowed to read, e.g. `https://app.example.com` (scheme and host), or `*`."))
            .attr(Attribute::optional("allowed_methods", Type::list(Type::String), "`GET` and/or `HEAD`. Default: both."))
            .attr(Attribute::optional("allowed_headers", Type::list(Type::String), "Request headers a browser may send, e.g. `authorization`, or `*`. `Range` and the CORS-safelisted headers need no listing."))
            .attr(Attribute::optional("expose_headers", Type::list(Type::String), "Response headers scripts may read beyond the safelisted ones, e.g. `ETag`."))
            .attr(s("max_age", "How long a browser may cache a preflight answer, at most `24h`. Default `10m`."))
            .attr(b("allow_credentials", "Allow cookies and `Authorization` on cross-origin requests; needs listed origins, not `*`. Default `false`.")),
    ));
    Schema::new(
        Block::new(
            "The runtime config of a tandem-proxy fleet. It is validated at plan time by the proxy's own code (every \
             problem is reported on its attribute), published as canonical JSON to a versioned S3 object that the \
             proxies poll, and, with a `rollout` block, `apply` returns only once enough proxies run it. Import with \
             `bucket/key`.",
        )
        .attr(Attribute::required("config_bucket", Type::String, "Versioned S3 bucket holding the published document. Changing it replaces the resource.").force_new())
        .attr(Attribute::required("config_key", Type::String, "Object key of the published document, e.g. `fleets/assets.json`. Changing it replaces the resource.").force_new())
        .attr(Attribute::optional_computed("region", Type::String, "Region of `config_bucket`; defaults to the provider's region. Changing it replaces the resource.").force_new())
        .attr(Attribute::optional("retain_on_destroy", Type::Bool, "Keep the published object when the resource is destroyed, so running proxies keep their config. Default `false`.").default(false))
        .attr(Attribute::computed("id", Type::String, "`bucket/key` of the published document."))
        .attr(Attribute::computed("config_version", Type::String, "Content hash of the canonical document (first 16 hex digits of SHA-256); what each proxy reports as `config_version`. Stable across key order and formatting."))
        .attr(Attribute::computed("object_version_id", Type::String, "S3 version ID of the published object."))
        .attr(Attribute::computed("document", Type::String, "The canonical JSON document as published."))
        .block(NestedBlock::single(
            "listen",
            Block::new("Listen addresses.")
                .attr(s("data", "S3 data listener, `host:port`. Default `0.0.0.0:8080`."))
                .attr(s("admin", "Admin listener for `/health`, `/ready`, `/metrics`, `/status` and purge. Default `0.0.0.0:9090`."))
                .attr(Attribute::optional("trusted_proxies", Type::list(Type::String), "CIDRs of the load balancers in front (e.g. `10.0.0.0/8`): their `X-Forwarded-For` and `Forwarded` headers are believed, and the client is the right-most address that is not one of them. Rate limits key on that client (an IPv6 client by its /64). Default: none, the TCP peer is the client."))
                .attr(b("proxy_protocol", "Every data connection starts with a PROXY protocol header (v1 or v2), as network load balancers send it; the client is its source address. Only for a listener reachable through that balancer alone. Default `false`."))
                .attr(s("tls_cert_file", "Absolute path, on the proxies' hosts, of the PEM certificate chain the data listener serves TLS with (with `tls_key_file`). Read again on every reload (SIGHUP), so a renewed certificate needs no restart. ALPN offers `h2` and `http/1.1`, with the same deadlines, a stream cap and reset budgets on h2. Default: plain HTTP."))
                .attr(s("tls_key_file", "Absolute path, on the proxies' hosts, of the PEM private key of `tls_cert_file`.")),
        ))
        .block(NestedBlock::single(
            "cache",
            Block::new("The in-memory cache.")
                .attr(s("max_bytes", "Total size of cached bodies, e.g. `256MiB`. Default `256MiB`."))
                .attr(s("max_object_bytes", "Largest object cached. Default `8MiB`."))
                .attr(s("ttl", "Freshness lifetime. Default `5m`."))
                .attr(s("stale_if_error", "Serve a stale copy for up to this long past its TTL when every replica fails."))
                .attr(s("max_fill_bytes", "Memory all fills in flight may hold before their objects are stored; past it a miss streams through uncached. Default: a quarter of `max_bytes`. At least `max_object_bytes`."))
                .attr(s("lock_timeout", "How long a miss waits for another request's fill of the same object before fetching for itself, uncached. Default `5s`.")),
        ))
        .block(NestedBlock::single(
            "limits",
            Block::new("Request limits.")
                .attr(s("max_header_bytes", "Largest request header block. Default `16KiB`."))
                .attr(s("body_timeout", "Longest time to stream one response body. Default `5m`."))
                .attr(s("header_timeout", "Time to receive a request head: from accept for a connection's first request, from its first byte for later ones. Default `10s`."))
                .attr(s("keepalive_timeout", "Idle time allowed between requests on a keep-alive connection; keep it above your load balancer's idle timeout. Default `75s`."))
                .attr(s("send_timeout", "Time a client may take no response bytes before it is dropped. Default `60s`."))
                .attr(s("min_send_rate", "Average rate (bytes per second, e.g. `1KiB`) a client must take a response at once it has run for `send_timeout`. Default `1KiB`."))
                .attr(n("max_connections", "Open connections on the data listener; past it new ones are closed at once. Default 4096."))
                .attr(n("admin_max_connections", "Open connections on the admin listener, a budget of its own so probes answer during a flood. Default 64."))
                .block(NestedBlock::single(
                    "rate_limit",
                    Block::new("A token bucket per client.")
                        .attr(Attribute::required("requests_per_second", Type::Number, "Sustained requests per second."))
                        .attr(Attribute::required("burst", Type::Number, "Burst above the sustained rate."))
                        .attr(Attribute::required("key", Type::String, "`ip` or `subject` (the JWT `sub`)."))
                        .attr(b("global", "Share the bucket across the fleet through Redis (needs the `redis` block); while Redis is down each proxy limits on its own. Default `false`.")),
                )),
        ))
        .block(NestedBlock::single(
            "drain",
            Block::new("SIGTERM behaviour; keep in step with the manifests' preStop and grace period.")
                .attr(s("delay", "Time `/ready` reports 503 before accepting stops. Default `5s`."))
                .attr(s("grace", "Time in-flight requests get after accepting stops. Default `30s`.")),
        ))
        .block(NestedBlock::single(
            "redis",
            Block::new("A Redis/Valkey second cache tier shared by the fleet.")
                .attr(Attribute::required("urls", Type::list(Type::String), "`redis://` or `rediss://` URLs: one node, or several seeds of a cluster (then set `cluster = true`). A password in a URL is refused; use `password_env`."))
                .attr(b("cluster", "Speak Redis Cluster (hash-slot aware). Default `false`."))
                .attr(s("password_env", "Environment variable holding the password."))
                .attr(s("signing_key_env", "Environment variable holding the fleet's signing key (at least 32 bytes): every value and purge notice in Redis carries an HMAC-SHA256 under it, and one that does not verify is ignored. Without it anyone who can write to Redis can serve any body to the fleet."))
                .attr(s("previous_signing_key_env", "Environment variable holding the previous signing key during a rotation: still believed, never used to sign."))
                .attr(s("tls_ca_file", "Absolute path, on the proxies' hosts, of a PEM file with the CA certificates `rediss://` servers must chain to, for a Redis with a private CA. Every URL must then be `rediss://`. Default: the Mozilla roots compiled into the proxy, enough for managed services such as ElastiCache."))
                .attr(s("timeout", "Per-call timeout. Default `50ms`."))
                .attr(n("pool_size", "Connections per proxy. Default 16."))
                .attr(s("max_object_bytes", "Largest object stored in Redis. Default `1MiB`.")),
        ))
        .block(NestedBlock::single(
            "admin",
            Block::new("Admin API settings.").attr(s("purge_token_env", "Environment variable holding the purge API's bearer token; purge is disabled without it.")),
        ))
        .block(NestedBlock::single(
            "access_log",
            Block::new("The proxies' access log: one JSON line per request on stdout (fields in the proxy's operations guide).")
                .attr(b("enabled", "Write the access log. Default `true`."))
                .attr(n("sample", "Share of successful requests logged, `0` to `1`; statuses of 400 and above and cut-off bodies are always logged. Default `1`."))
                .attr(b("hash_keys", "Log `sha256:` and a 16-hex-digit prefix of each object key's SHA-256 instead of the key, for keys that are personal data. Default `false`.")),
        ))
        .block(NestedBlock::single(
            "tracing",
            Block::new("OpenTelemetry traces posted as OTLP/HTTP JSON: a span per request with its cache lookup, Redis lookup and each origin attempt. Off without this block.")
                .attr(Attribute::required("otlp_endpoint", Type::String, "`http://host:port/v1/traces` of an OTLP/HTTP receiver, usually a collector next to the proxy (plain HTTP only)."))
                .attr(n("sample", "Share of requests traced when the client sent no sampled `traceparent`, `0` to `1`. Default `0.01`."))
                .attr(s("service_name", "`service.name` of the spans. Default `tandem-proxy`.")),
        ))
        .block(NestedBlock::single(
            "source",
            Block::new("Where the proxies poll for this config (normally this resource's own object).")
                .attr(Attribute::required("url", Type::String, "`s3://bucket/key`."))
                .attr(Attribute::required("region", Type::String, "Region of the config bucket."))
                .attr(s("endpoint", "Custom S3 endpoint."))
                .attr(s("poll_interval", "Conditional GET interval. Default `5s`.")),
        ))
        .block(NestedBlock::list("bucket", bucket).min(1))
        .block(NestedBlock::single(
            "rollout",
            Block::new("Wait after publishing until enough proxies run the new `config_version` and are ready.")
                .attr(
                    Attribute::required("endpoints", Type::list(Type::String), "Admin base URLs of the proxies, e.g. `http://10.0.1.5:9090`.")
                        .validate(Validator::each(Validator::format(URL, url))),
                )
                .attr(s("timeout", "How long to wait. Default `2m`.").validate(Validator::format("a duration such as `2m` or `90s`", duration)))
                .attr(n("min_ready", "How many proxies must be ready on the new version. Default: all of them.")),
        )),
    )
}

/// HCL value → fleet-config JSON: drops the resource's own attributes and
/// nulls (so the proxy's defaults apply) and renames repeated blocks.
pub fn to_document(v: &Value) -> Json {
    fn conv(v: &Value, top: bool) -> Option<Json> {
        match v {
            Value::Null | Value::Unknown => None,
            Value::Map(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    if top && OWN.contains(&k.as_str()) {
                        continue;
                    }
                    if let Some(j) = conv(x, false) {
                        // Only repeated blocks (lists) are renamed: a replica's
                        // `bucket` attribute is a plain string and keeps its name.
                        let renamed = RENAMES.iter().find(|(h, _)| h == k).map(|(_, c)| *c);
                        let key = match x {
                            Value::List(_) => renamed.unwrap_or(k),
                            _ => k,
                        };
                        out.insert(key.to_string(), j);
                    }
                }
                Some(Json::Object(out))
            }
            Value::List(items) => Some(Json::Array(
                items.iter().filter_map(|x| conv(x, false)).collect(),
            )),
            other => other.to_json(),
        }
    }
    conv(v, true).unwrap_or(Json::Null)
}

/// True when every setting that goes into the document is known (the
/// resource's own computed attributes may still be unknown).
fn document_known(v: &Value) -> bool {
    v.as_map().is_some_and(|m| {
        m.iter()
            .all(|(k, x)| OWN.contains(&k.as_str()) || x.is_wholly_known())
    })
}

/// A fleet-config path → the Terraform attribute path of the same setting.
pub fn attr_path(p: &ConfigPath) -> AttrPath {
    let mut out = AttrPath::default();
    for s in &p.0 {
        out = match s {
            Seg::Field(f) => {
                let hcl = RENAMES
                    .iter()
                    .find(|(_, c)| c == f)
                    .map(|(h, _)| *h)
                    .unwrap_or(f);
                out.attr(hcl)
            }
            Seg::Index(i) => out.index(*i),
        };
    }
    out
}

/// Parses and validates a config value; every problem becomes a diagnostic
/// on its attribute.
pub fn check(v: &Value) -> Result<FleetConfig, Diagnostics> {
    let doc = to_document(v);
    let cfg: FleetConfig = serde_json::from_value(doc).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Invalid fleet config",
            format!("The fleet config does not match the proxy's format: {e}."),
        ))
    })?;
    let problems = cfg.validate();
    if problems.is_empty() {
        return Ok(cfg);
    }
    let mut d = Diagnostics::new();
    for p in problems {
        d.error_at(
            attr_path(&p.path),
            "Invalid fleet config",
            format!("{p}. (tandem-proxy check reports the same.)"),
        );
    }
    Err(d)
}

fn location(v: &Value) -> (String, String) {
    let bucket = v
        .get("config_bucket")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = v.get("config_key").as_str().unwrap_or_default().to_string();
    (bucket, key)
}

/// The config bucket and key, and the bucket's home region: looked up
/// (never the provider's region assumed); `None` when the bucket is gone.
async fn located(
    ctx: &Ctx<Aws>,
    aws: &Aws,
    v: &Value,
) -> Result<Option<(String, String, String)>, FleetError> {
    let (bucket, key) = location(v);
    match find_bucket_region(aws, ctx.cancel_token(), &bucket).await {
        Ok(Some(region)) => Ok(Some((bucket, key, region))),
        Ok(None) => Ok(None),
        Err(source) => Err(FleetError::S3 {
            action: "locating",
            bucket,
            key,
            region: v
                .get("region")
                .as_str()
                .unwrap_or("unknown region")
                .to_string(),
            source,
        }),
    }
}

/// Errors of this resource's AWS calls and rollout, with what was done.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// S3 call failed.
    #[error("{action} fleet config s3://{bucket}/{key} ({region}): {source}")]
    S3 {
        /// What was being done.
        action: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Region.
        region: String,
        /// Cause.
        #[source]
        source: AwsError,
    },
    /// The config bucket is not versioned.
    #[error("bucket {bucket:?} ({region}) must have versioning Enabled, so every published config can be rolled back; it is {status}")]
    NotVersioned {
        /// Bucket.
        bucket: String,
        /// Region.
        region: String,
        /// Its versioning status.
        status: String,
    },
}

fn diag(summary: &str, e: &FleetError) -> Diagnostics {
    Diagnostic::error(summary, tfplugin6::diag::error_chain(e)).into()
}

/// Publishes the document and returns the new object version ID.
async fn publish(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
    key: &str,
    region: &str,
    doc: &str,
) -> Result<String, FleetError> {
    let s3 = aws.s3(region);
    let err = |action, e: AwsError| FleetError::S3 {
        action,
        bucket: bucket.into(),
        key: key.into(),
        region: region.into(),
        source: e,
    };
    let status = crate::aws::s3_versioning::versioning_status(&s3, cancel, bucket)
        .await
        .map_err(|e| err("checking versioning for", e))?
        .unwrap_or_else(|| "not enabled".into());
    if status != "Enabled" {
        return Err(FleetError::NotVersioned {
            bucket: bucket.into(),
            region: region.into(),
            status,
        });
    }
    let out = send(
        cancel,
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .cache_control("no-cache")
            .body(ByteStream::from(doc.as_bytes().to_vec()))
            .send(),
    )
    .await
    .map_err(|e| err("publishing", e))?;
    Ok(out.version_id().unwrap_or_default().to_string())
}

/// The published object, if it exists: its body and version ID.
async fn find_document(
    aws: &Aws,
    cancel: &CancellationToken,
    bucket: &str,
    key: &str,
    region: &str,
) -> Result<Option<(String, String)>, FleetError> {
    match send(
        cancel,
        aws.s3(region).get_object().bucket(bucket).key(key).send(),
    )
    .await
    {
        Ok(out) => {
            let version = out.version_id().unwrap_or_default().to_string();
            let body = out
                .body
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.into_bytes()).into_owned())
                .unwrap_or_default();
            Ok(Some((body, version)))
        }
        Err(e) => {
            if e.is_not_found(&["NoSuchKey", "NoSuchBucket"]) {
                Ok(None)
            } else {
                Err(FleetError::S3 {
                    action: "reading",
                    bucket: bucket.into(),
                    key: key.into(),
                    region: region.into(),
                    source: e,
                })
            }
        }
    }
}

async fn await_rollout(ctx: &Ctx<Aws>, v: &Value, version: &str) -> Result<(), Diagnostics> {
    let r = v.get("rollout");
    let Some(endpoints) = r.get("endpoints").as_list() else {
        return Ok(());
    };
    let endpoints: Vec<String> = endpoints
        .iter()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    let timeout =
        humantime::parse_duration(r.get("timeout").as_str().unwrap_or(DEFAULT_ROLLOUT_TIMEOUT))
            .unwrap_or(Duration::from_secs(120));
    let min_ready = r
        .get("min_ready")
        .as_i64()
        .map(|n| n.max(0) as usize)
        .unwrap_or(endpoints.len());
    let client = rollout::client()
        .map_err(|e| Diagnostics::from(Diagnostic::error("Rollout", e.to_string())))?;
    rollout::wait(
        &client,
        &endpoints,
        version,
        min_ready,
        timeout,
        ctx.cancel_token(),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        Diagnostic::error("Fleet did not roll out the new config", e.to_string())
            .at(AttrPath::root("rollout"))
            .into()
    })
}

fn state_with(
    planned: &Value,
    bucket: &str,
    key: &str,
    region: &str,
    doc: &str,
    version: &str,
    object_version: &str,
) -> Value {
    let mut st = planned.clone();
    st.set("id", Value::string(format!("{bucket}/{key}")));
    st.set("region", Value::string(region));
    st.set("document", Value::string(doc));
    st.set("config_version", Value::string(version));
    st.set("object_version_id", Value::string(object_version));
    st
}

#[async_trait]
impl Resource<Aws> for ProxyFleetResource {
    fn type_name(&self) -> &'static str {
        "tandem_proxy_fleet"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        // Unknown values (e.g. bucket names from resources not yet created)
        // cannot be judged; the plan validates again once they are known.
        if !document_known(config) {
            return;
        }
        if let Err(d) = check(config) {
            diags.extend(d);
        }
        let r = config.get("rollout");
        if let (Some(m), Some(eps)) = (r.get("min_ready").as_i64(), r.get("endpoints").as_list()) {
            if m < 0 || m as usize > eps.len() {
                diags.error_at(
                    AttrPath::root("rollout").attr("min_ready"),
                    "Invalid min_ready",
                    format!("Must be between 0 and the {} endpoints listed.", eps.len()),
                );
            }
        }
    }

    async fn modify_plan(&self, ctx: &Ctx<Aws>, plan: &mut Plan) -> Result<(), Diagnostics> {
        if plan.planned.is_null() {
            return Ok(());
        }
        // An unset region is the config bucket's own, shown at plan time
        // when the bucket exists already, else found at apply.
        let same_bucket = plan.prior.get("config_bucket") == plan.planned.get("config_bucket");
        if plan.config.get("region").is_null()
            && !(same_bucket && plan.prior.get("region").as_str().is_some())
        {
            plan.planned.set("region", Value::Unknown);
            if let (Some(aws), Some(bucket)) =
                (ctx.meta_opt(), plan.planned.get("config_bucket").as_str())
            {
                if let Ok(Some(r)) = find_bucket_region(aws, ctx.cancel_token(), bucket).await {
                    plan.planned.set("region", Value::string(r));
                }
            }
        }
        if !document_known(&plan.planned) {
            return Ok(());
        }
        let cfg = check(&plan.planned)?;
        let doc = cfg.canonical_json();
        let version = cfg.config_version();
        // The document and its version are known at plan time, so reviewers
        // see exactly what will be published.
        let changed = plan.prior.get("document").as_str() != Some(doc.as_str());
        plan.planned.set("document", Value::string(&doc));
        plan.planned.set("config_version", Value::string(&version));
        let (b, k) = location(&plan.planned);
        plan.planned.set("id", Value::string(format!("{b}/{k}")));
        if changed || plan.is_create() {
            plan.planned.set("object_version_id", Value::Unknown);
        }
        Ok(())
    }

    async fn create(
        &self,
        ctx: &Ctx<Aws>,
        planned: &Value,
        _config: &Value,
    ) -> Result<Applied, ApplyError> {
        let aws = ctx.meta()?;
        let cfg = check(planned)?;
        let (bucket, key, region) = located(ctx, aws, planned)
            .await
            .map_err(|e| diag("Publishing the fleet config", &e))?
            .ok_or_else(|| {
                Diagnostic::error(
                    "Config bucket not found",
                    format!("S3 bucket {:?} does not exist.", location(planned).0),
                )
                .at(AttrPath::root("config_bucket"))
            })?;
        let doc = cfg.canonical_json();
        let version = cfg.config_version();
        let ov = publish(aws, ctx.cancel_token(), &bucket, &key, &region, &doc)
            .await
            .map_err(|e| diag("Publishing the fleet config", &e))?;
        let state = state_with(planned, &bucket, &key, &region, &doc, &version, &ov);
        if let Err(d) = await_rollout(ctx, planned, &version).await {
            // Published but not rolled out: keep it in state so nothing leaks.
            return Err(ApplyError {
                diagnostics: d,
                partial: Some(state),
            });
        }
        Ok(state.into())
    }

    async fn read(
        &self,
        ctx: &Ctx<Aws>,
        state: &Value,
        _private: &[u8],
    ) -> Result<ReadResult, Diagnostics> {
        let aws = ctx.meta()?;
        let Some((bucket, key, region)) = located(ctx, aws, state)
            .await
            .map_err(|e| diag("Reading the fleet config", &e))?
        else {
            return Ok(ReadResult::Gone);
        };
        let Some((body, ov)) = find_document(aws, ctx.cancel_token(), &bucket, &key, &region)
            .await
            .map_err(|e| diag("Reading the fleet config", &e))?
        else {
            return Ok(ReadResult::Gone);
        };
        let mut st = state.clone();
        // Out-of-band edits show as drift of `document` and `config_version`;
        // the next apply publishes the declared config again.
        let version = FleetConfig::parse(&body, Format::Json)
            .map(|c| c.config_version())
            .unwrap_or_else(|_| tandem_fleet_config::version_of(body.as_bytes()));
        st.set("document", Value::string(body));
        st.set("config_version", Value::string(version));
        st.set("object_version_id", Value::string(ov));
        st.set("region", Value::string(&region));
        Ok(ReadResult::Found(st.into()))
    }

    async fn update(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        planned: &Value,
        config: &Value,
        _p: &[u8],
    ) -> Result<Applied, ApplyError> {
        let cfg = check(planned)?;
        let doc = cfg.canonical_json();
        if prior.get("document").as_str() == Some(doc.as_str()) {
            // Only rollout or retain settings changed: nothing to publish.
            let mut st = planned.clone();
            st.set("object_version_id", prior.get("object_version_id").clone());
            await_rollout(ctx, planned, &cfg.config_version()).await?;
            return Ok(st.into());
        }
        // Publishing again is the same operation as the first publish.
        self.create(ctx, planned, config).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<Aws>,
        prior: &Value,
        _private: &[u8],
    ) -> Result<(), Diagnostics> {
        if prior.get("retain_on_destroy").as_bool() == Some(true) {
            ctx.warn(Diagnostic::warning(
                "Fleet config retained",
                format!("retain_on_destroy is set, so s3://{} was left in place for the running proxies.", prior.get("id").as_str().unwrap_or("")),
            ));
            return Ok(());
        }
        let aws = ctx.meta()?;
        let Some((bucket, key, region)) = located(ctx, aws, prior)
            .await
            .map_err(|e| diag("Deleting the fleet config", &e))?
        else {
            return Ok(());
        };
        let res = send(
            ctx.cancel_token(),
            aws.s3(&region)
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .send(),
        )
        .await;
        ok_if_gone(res, |e| e.is_not_found(&["NoSuchKey", "NoSuchBucket"])).map_err(|source| {
            diag(
                "Deleting the fleet config",
                &FleetError::S3 {
                    action: "deleting",
                    bucket,
                    key,
                    region,
                    source,
                },
            )
        })
    }

    async fn import(&self, ctx: &Ctx<Aws>, id: &str) -> Result<Value, Diagnostics> {
        let aws = ctx.meta()?;
        let (target, region) = match id.rsplit_once('@') {
            Some((t, r)) => (t, Some(r.to_string())),
            None => (id, None),
        };
        let Some((bucket, key)) = target
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Err(Diagnostic::error(
                "Invalid import ID",
                format!("{id:?} must be `bucket/key` or `bucket/key@region`."),
            )
            .into());
        };
        let region = match region {
            Some(r) => r,
            None => find_bucket_region(aws, ctx.cancel_token(), bucket)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| {
                    Diagnostic::error(
                        "Cannot import",
                        format!("S3 bucket {bucket:?} does not exist."),
                    )
                })?,
        };
        let Some((body, _)) = find_document(aws, ctx.cancel_token(), bucket, key, &region)
            .await
            .map_err(|e| diag("Importing the fleet config", &e))?
        else {
            return Err(Diagnostic::error(
                "Cannot import",
                format!("s3://{bucket}/{key} ({region}) does not exist."),
            )
            .into());
        };
        let cfg = FleetConfig::parse(&body, Format::Json).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Cannot import",
                format!("s3://{bucket}/{key} is not a fleet config: {e}"),
            ))
        })?;
        let ty = schema().value_type();
        let mut v = from_document(&serde_json::to_value(&cfg).unwrap_or(Json::Null), &ty);
        v.set("config_bucket", Value::string(bucket));
        v.set("config_key", Value::string(key));
        v.set("region", Value::string(&region));
        v.set("retain_on_destroy", Value::Bool(false));
        Ok(v)
    }
}

/// Fleet-config JSON → HCL value (for import): the renames reversed;
/// durations and sizes stay as their canonical strings.
pub fn from_document(doc: &Json, ty: &Type) -> Value {
    fn conv(j: &Json) -> Json {
        match j {
            Json::Object(m) => Json::Object(
                m.iter()
                    .map(|(k, v)| {
                        let renamed = RENAMES.iter().find(|(_, c)| c == k).map(|(h, _)| *h);
                        let hcl = match v {
                            Json::Array(_) => renamed.unwrap_or(k),
                            _ => k,
                        };
                        (hcl.to_string(), conv(v))
                    })
                    .collect(),
            ),
            Json::Array(a) => Json::Array(a.iter().map(conv).collect()),
            other => other.clone(),
        }
    }
    Value::from_json(&conv(doc), ty).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, prio: i64) -> Value {
        Value::object([
            ("name", Value::string(name)),
            ("bucket", Value::string(format!("assets-{name}"))),
            ("region", Value::string("eu-west-1")),
            ("priority", Value::int(prio)),
        ])
    }

    fn config() -> Value {
        Value::object([
            ("config_bucket", Value::string("cfg")),
            ("config_key", Value::string("fleet.json")),
            ("cache", Value::object([("ttl", Value::string("1m"))])),
            (
                "bucket",
                Value::List(vec![Value::object([
                    ("name", Value::string("assets")),
                    ("path_prefix", Value::string("/assets/")),
                    (
                        "replica",
                        Value::List(vec![replica("eu", 1), replica("us", 2)]),
                    ),
                ])]),
            ),
        ])
    }

    #[test]
    fn hcl_maps_onto_the_fleet_format() {
        let cfg = check(&config()).unwrap();
        assert_eq!(cfg.buckets[0].replicas[1].name, "us");
        assert_eq!(cfg.cache.ttl.to_string(), "1m");
        assert!(to_document(&config()).get("config_bucket").is_none());
    }

    #[test]
    fn proxy_problems_land_on_terraform_attribute_paths() {
        let mut c = config();
        let mut b = c.get("bucket").as_list().unwrap()[0].clone();
        b.set("path_prefix", Value::string("assets"));
        b.set(
            "replica",
            Value::List(vec![replica("eu", 1), replica("eu", 1)]),
        );
        c.set("bucket", Value::List(vec![b]));
        c.set(
            "cache",
            Value::object([
                ("ttl", Value::string("0s")),
                ("max_bytes", Value::string("1KiB")),
            ]),
        );
        c.set("listen", Value::object([("data", Value::string("nope"))]));
        let d = check(&c).unwrap_err();
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.as_ref().unwrap().to_string())
                .collect();
        for want in [
            "listen.data",
            "cache.max_bytes",
            "cache.ttl",
            "bucket[0].path_prefix",
            "bucket[0].replica[1].name",
            "bucket[0].replica[1].priority",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn unknown_config_is_not_judged() {
        let mut c = config();
        c.set("cache", Value::Unknown);
        let mut d = Diagnostics::new();
        ProxyFleetResource.validate(&c, &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn access_log_and_tracing_reach_the_document_and_survive_import() {
        let mut c = config();
        c.set(
            "access_log",
            Value::object([("hash_keys", Value::Bool(true))]),
        );
        c.set(
            "tracing",
            Value::object([(
                "otlp_endpoint",
                Value::string("http://127.0.0.1:4318/v1/traces"),
            )]),
        );
        let cfg = check(&c).unwrap();
        assert!(cfg.access_log.enabled && cfg.access_log.hash_keys);
        let t = cfg.tracing.as_ref().unwrap();
        assert_eq!(t.sample, tandem_fleet_config::DEFAULT_TRACING_SAMPLE);
        let v = from_document(&serde_json::to_value(&cfg).unwrap(), &schema().value_type());
        let again = check(&v).unwrap();
        assert_eq!(again.access_log, cfg.access_log);
        assert_eq!(again.tracing, cfg.tracing);
        c.set(
            "tracing",
            Value::object([("otlp_endpoint", Value::string("https://collector"))]),
        );
        let d = check(&c).unwrap_err();
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.as_ref().unwrap().to_string())
                .collect();
        assert_eq!(paths, ["tracing.otlp_endpoint"]);
    }

    #[test]
    fn documents_round_trip_for_import() {
        let cfg = check(&config()).unwrap();
        let v = from_document(&serde_json::to_value(&cfg).unwrap(), &schema().value_type());
        let again = check(&v).unwrap();
        assert_eq!(again.config_version(), cfg.config_version());
    }
}
