//! The admin listener: /health (liveness), /ready (readiness), /metrics
//! (Prometheus text) and /status (everything an operator asks during an
//! incident). Separate from the data port so probes never queue behind
//! downloads and metrics are never exposed to object clients.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use serde_json::json;

use crate::body::{self, ProxyBody};
use crate::metrics::{gauge, labels};
use crate::state::{health, State};

/// Serves one admin request.
pub async fn handle<B>(state: Arc<State>, req: Request<B>) -> Response<ProxyBody> {
    if req.uri().path() == "/purge" {
        return purge(&state, &req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/health" | "/healthz" | "/livez" => json_resp(StatusCode::OK, &health(&state)),
        "/ready" | "/readyz" => {
            let h = health(&state);
            let code = if h.status == "unavailable" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            json_resp(code, &h)
        }
        "/metrics" => {
            let rt = state.runtime.load_full();
            rt.cache.sync().await;
            let mut g = String::new();
            let (bytes, entries) = rt.cache.usage();
            gauge(
                &mut g,
                "tandem_cache_bytes",
                "Bytes held by the memory cache (bodies plus header overhead).",
                &[(String::new(), bytes as f64)],
            );
            gauge(
                &mut g,
                "tandem_cache_max_bytes",
                "Capacity of the memory cache.",
                &[(String::new(), rt.cache.max_bytes as f64)],
            );
            gauge(
                &mut g,
                "tandem_cache_entries",
                "Objects in the memory cache.",
                &[(String::new(), entries as f64)],
            );
            let (fill, budget) = rt.cache.fill.usage();
            gauge(
                &mut g,
                "tandem_cache_fill_bytes",
                "Bytes reserved by fills in flight and pending Redis writes, against cache.max_fill_bytes.",
                &[(String::new(), fill as f64)],
            );
            gauge(
                &mut g,
                "tandem_cache_fill_budget_bytes",
                "cache.max_fill_bytes: what fills in flight may buffer before misses stream through uncached.",
                &[(String::new(), budget as f64)],
            );
            let conns: Vec<(String, f64)> = [&state.data_conns, &state.admin_conns]
                .iter()
                .map(|b| (labels(&[("listener", b.listener)]), b.open() as f64))
                .collect();
            gauge(
                &mut g,
                "tandem_connections_open",
                "Open client connections, by listener (capped by limits.max_connections and limits.admin_max_connections).",
                &conns,
            );
            let mut up = Vec::new();
            let mut br = Vec::new();
            let mut breakers = Vec::new();
            for r in &rt.routes {
                for o in &r.origins {
                    let s = o.breaker.state();
                    let l = labels(&[
                        ("route", &r.config.name),
                        ("replica", &o.name),
                        ("region", &o.region),
                    ]);
                    up.push((
                        l.clone(),
                        if s == crate::breaker::State::Closed {
                            1.0
                        } else {
                            0.0
                        },
                    ));
                    br.push((l, f64::from(s.gauge())));
                    for each in [
                        crate::breaker::State::Closed,
                        crate::breaker::State::HalfOpen,
                        crate::breaker::State::Open,
                    ] {
                        let l = labels(&[
                            ("route", &r.config.name),
                            ("replica", &o.name),
                            ("state", each.as_str()),
                        ]);
                        breakers.push((l, if each == s { 1.0 } else { 0.0 }));
                    }
                }
            }
            gauge(
                &mut g,
                "tandem_replica_breaker_state",
                "1 for the replica breaker's current state (closed, half_open, open), 0 for the others.",
                &breakers,
            );
            gauge(
                &mut g,
                "tandem_replica_up",
                "1 while the replica's circuit breaker is closed.",
                &up,
            );
            gauge(
                &mut g,
                "tandem_breaker_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                &br,
            );
            if let Some(t) = &rt.tier {
                gauge(
                    &mut g,
                    "tandem_redis_up",
                    "1 while the Redis tier answers; 0 while it is skipped.",
                    &[(String::new(), if t.is_up() { 1.0 } else { 0.0 })],
                );
            }
            gauge(
                &mut g,
                "tandem_config_info",
                "The config being served.",
                &[(labels(&[("config_version", &rt.version)]), 1.0)],
            );
            gauge(
                &mut g,
                "tandem_draining",
                "1 after SIGTERM.",
                &[(
                    String::new(),
                    if state.draining.load(Ordering::SeqCst) {
                        1.0
                    } else {
                        0.0
                    },
                )],
            );
            gauge(
                &mut g,
                "tandem_uptime_seconds",
                "Seconds since the process started.",
                &[(String::new(), state.started.elapsed().as_secs_f64())],
            );
            let _ = writeln!(
                g,
                "# HELP tandem_access_log_dropped_total Access log lines dropped because the writer's queue was full.\n# TYPE tandem_access_log_dropped_total counter\ntandem_access_log_dropped_total {}",
                state.access_log.dropped.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                g,
                "# HELP tandem_otlp_traces_dropped_total Traces dropped because the OTLP exporter's queue was full.\n# TYPE tandem_otlp_traces_dropped_total counter\ntandem_otlp_traces_dropped_total {}",
                state.tracer.dropped.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                g,
                "# HELP tandem_otlp_exports_total Span batches posted to the OTLP endpoint, by result.\n# TYPE tandem_otlp_exports_total counter\ntandem_otlp_exports_total{{result=\"ok\"}} {}\ntandem_otlp_exports_total{{result=\"error\"}} {}",
                state.tracer.exported.load(Ordering::Relaxed),
                state.tracer.failed.load(Ordering::Relaxed)
            );
            crate::metrics::build_info(&mut g);
            crate::metrics::process(&mut g, state.started_wall);
            let t = state.metrics.render(&g);
            Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .body(body::full(Bytes::from(t)))
                .expect("static response")
        }
        "/status" => {
            let rt = state.runtime.load_full();
            rt.cache.sync().await;
            let h = health(&state);
            let m = &state.metrics;
            let (bytes, entries) = rt.cache.usage();
            let routes: Vec<_> = rt
                .routes
                .iter()
                .map(|r| {
                    json!({
                        "name": r.config.name,
                        "path_prefix": r.config.path_prefix,
                        "cache_enabled": r.config.cache.enabled,
                        "requests": m.requests.sum_first(&r.config.name),
                        "failovers": m.failovers.sum_first(&r.config.name),
                        "cache_hits": m.cache_hits.get(&[&r.config.name]),
                        "cache_misses": m.cache_misses.get(&[&r.config.name]),
                        "coalesced": m.coalesced.get(&[&r.config.name]),
                        "jwks": r.auth.as_ref().and_then(|a| a.remote()).map(|j| {
                            let (keys, age, error) = j.status();
                            json!({"url": j.url, "keys": keys, "age_seconds": age, "last_error": error})
                        }),
                        "replicas": r.origins.iter().map(|o| json!({
                            "name": o.name,
                            "bucket": o.bucket,
                            "region": o.region,
                            "endpoint": o.endpoint,
                            "priority": o.priority,
                            "timeout_ms": o.timeout.as_millis() as u64,
                            "breaker": o.breaker.state().as_str(),
                            "failovers_from": m.failovers.get(&[&r.config.name, &o.name]),
                            "last_failure": o.last_failure().map(|(at, why)| json!({
                                "at": humantime::format_rfc3339_millis(at).to_string(),
                                "reason": why,
                            })),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let last_err = state
                .last_reload_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let body = json!({
                "status": h.status,
                "version": h.version,
                "uptime_seconds": h.uptime_seconds,
                "config_version": h.config_version,
                "draining": h.draining,
                "timestamp": h.timestamp,
                "replicas": h.replicas,
                "routes": routes,
                "cache": {"bytes": bytes, "entries": entries, "max_bytes": rt.cache.max_bytes},
                // Up/down and counts only: the URLs may carry credentials.
                "redis": rt.tier.as_ref().map(|t| json!({
                    "up": t.is_up(),
                    "cluster": t.settings.cluster,
                    "nodes_configured": t.settings.urls.len(),
                    "max_object_bytes": t.max_object_bytes,
                    "hits": m.tier_hits.sum_all(),
                    "misses": m.tier_misses.sum_all(),
                    "writes": m.tier_writes.sum_all(),
                    // How far the fleet's shared copies can be trusted.
                    "password": t.password,
                    "tls": t.tls,
                    "signed": t.signed(),
                    "rejected": m.tier_rejected.sum_all(),
                })),
                "reloads": {
                    "ok": m.reloads.get(&["ok"]),
                    "invalid": m.reloads.get(&["invalid"]),
                    "last_error": last_err,
                },
            });
            json_resp(StatusCode::OK, &body)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /health, /ready, /metrics or /status\n",
        ),
    }
}

fn json_resp<T: serde::Serialize>(code: StatusCode, v: &T) -> Response<ProxyBody> {
    let b = serde_json::to_vec_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes());
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body::full(Bytes::from(b)))
        .expect("static response")
}

fn text(code: StatusCode, t: &'static str) -> Response<ProxyBody> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body::full(Bytes::from_static(t.as_bytes())))
        .expect("static response")
}

/// `POST /purge?route=NAME&key=KEY` (every version of one object) or
/// `POST /purge?route=NAME&prefix=PREFIX`, with `Authorization: Bearer`
/// the token named by `admin.purge_token_env`. Without a configured token
/// purge is disabled: an unauthenticated purge would let anyone who reaches
/// the admin port empty the cache onto the origin.
async fn purge<B>(state: &State, req: &Request<B>) -> Response<ProxyBody> {
    let m = &state.metrics;
    if req.method() != Method::POST && req.method() != Method::DELETE {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "purge takes POST or DELETE\n",
        );
    }
    let rt = state.runtime.load_full();
    let Some(token) = rt.purge_token.as_deref() else {
        m.purges.inc(&["disabled"]);
        return json_resp(
            StatusCode::FORBIDDEN,
            &json!({"error": "purge is disabled: set admin.purge_token_env"}),
        );
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        m.purges.inc(&["unauthorized"]);
        let mut r = json_resp(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "a valid bearer token is required"}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let mut route = None;
    let mut target = None;
    for pair in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        match k {
            "route" => route = Some(v),
            "key" => target = Some((v, false)),
            "prefix" => target = Some((v, true)),
            _ => {}
        }
    }
    let (Some(route), Some((key, prefix))) = (route, target) else {
        m.purges.inc(&["bad_request"]);
        return json_resp(
            StatusCode::BAD_REQUEST,
            &json!({"error": "give route= and key= or prefix="}),
        );
    };
    let Some(r) = rt.routes.iter().find(|r| r.config.name == route) else {
        m.purges.inc(&["bad_request"]);
        return json_resp(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no route named {route:?}")}),
        );
    };
    let purged = rt.cache.purge(&r.generation, &key, prefix).await;
    let what = if prefix { "prefix" } else { "key" };
    // The shared tier too, or the next memory miss anywhere in the fleet
    // would bring the purged copy back from Redis.
    let shared = match &rt.tier {
        None => None,
        Some(t) => match t.purge(&r.generation, &key, prefix).await {
            Ok(n) => {
                // Every other proxy's memory, through pub/sub.
                let notice = crate::tier::PurgeNotice::new(&r.generation, &key, prefix);
                let notified = match t.announce(&notice).await {
                    Ok(()) => true,
                    Err(e) => {
                        crate::tier::count_error(m, "announce", &e);
                        tracing::warn!(error = %e, "purged memory and Redis, but could not tell the fleet");
                        false
                    }
                };
                // A second pass, once the fleet has fenced its writes:
                // another proxy may have been writing the purged copy as
                // the first pass ran.
                let mut n = n;
                if notified {
                    tokio::time::sleep(t.settle()).await;
                    match t.purge(&r.generation, &key, prefix).await {
                        Ok(again) => n += again,
                        Err(e) => crate::tier::count_error(m, "purge", &e),
                    }
                }
                Some((n, notified))
            }
            Err(e) => {
                crate::tier::count_error(m, "purge", &e);
                m.purges.inc(&["redis_failed"]);
                tracing::warn!(route = %route, key = %key, prefix, purged, error = %e, "purged memory, but not Redis");
                return json_resp(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"route": route, what: key, "purged": purged,
                        "error": format!("memory purged, Redis not: {e}; retry the purge")}),
                );
            }
        },
    };
    m.purges.inc(&["ok"]);
    tracing::info!(route = %route, key = %key, prefix, purged, purged_redis = shared.map(|s| s.0), "purged");
    let mut body = json!({"route": route, what: key, "purged": purged});
    if let Some((n, notified)) = shared {
        body["purged_redis"] = json!(n);
        body["fleet_notified"] = json!(notified);
    }
    json_resp(StatusCode::OK, &body)
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
