//! Process-wide state shared by the listeners, and the health report that
//! /health, /ready and /status are built from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::breaker::State as BreakerState;
use crate::client::OriginClient;
use crate::conn::Budget;
use crate::metrics::Metrics;
use crate::runtime::Runtime;

/// Shared by every connection.
pub struct State {
    /// The serving config; swapped whole on reload.
    pub runtime: ArcSwap<Runtime>,
    /// Counters.
    pub metrics: Metrics,
    /// The access log's queue and writer.
    pub access_log: crate::access::Sink,
    /// The OTLP trace exporter's queue and thread.
    pub tracer: crate::otel::Exporter,
    /// Origin client.
    pub client: OriginClient,
    /// Set at SIGTERM: /ready turns 503 at once.
    pub draining: AtomicBool,
    /// Process start.
    pub started: Instant,
    /// Process start, wall clock (`process_start_time_seconds`).
    pub started_wall: SystemTime,
    /// Why the last reload was refused, until one succeeds.
    pub last_reload_error: Mutex<Option<String>>,
    /// Open connections of the data listener, against `limits.max_connections`.
    pub data_conns: Arc<Budget>,
    /// Open connections of the admin listener, against
    /// `limits.admin_max_connections`.
    pub admin_conns: Arc<Budget>,
}

impl State {
    /// State serving `rt`.
    pub fn new(rt: Runtime, client: OriginClient) -> Arc<State> {
        let limits = &rt.config.limits;
        let data_conns = Budget::new("data", limits.max_connections());
        let admin_conns = Budget::new("admin", limits.admin_max_connections());
        Arc::new(State {
            data_conns,
            admin_conns,
            runtime: ArcSwap::from_pointee(rt),
            metrics: Metrics::default(),
            access_log: crate::access::Sink::default(),
            tracer: crate::otel::Exporter::default(),
            client,
            draining: AtomicBool::new(false),
            started: Instant::now(),
            started_wall: SystemTime::now(),
            last_reload_error: Mutex::new(None),
        })
    }
}

/// One replica's health, as /ready and /status report it.
#[derive(Debug, Serialize)]
pub struct ReplicaHealth {
    /// Route name.
    pub route: String,
    /// Replica name.
    pub name: String,
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Priority.
    pub priority: u32,
    /// Breaker state: closed, half_open or open.
    pub breaker: &'static str,
    /// True while the breaker is closed.
    pub healthy: bool,
}

/// The JSON body of /health and /ready.
#[derive(Debug, Serialize)]
pub struct Health {
    /// ok (all breakers closed), degraded (some replica open or half-open,
    /// every route still servable) or unavailable (draining, or a route
    /// with every breaker open).
    pub status: &'static str,
    /// Proxy version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// The config being served.
    pub config_version: String,
    /// True after SIGTERM.
    pub draining: bool,
    /// Every replica of every route.
    pub replicas: Vec<ReplicaHealth>,
    /// RFC 3339 time of the report.
    pub timestamp: String,
}

/// Builds the health report.
pub fn health(state: &State) -> Health {
    let rt = state.runtime.load();
    let draining = state.draining.load(Ordering::SeqCst);
    let mut replicas = Vec::new();
    let mut any_route_dead = false;
    let mut any_unhealthy = false;
    for r in &rt.routes {
        let mut servable = false;
        for o in &r.origins {
            let s = o.breaker.state();
            servable |= s != BreakerState::Open;
            any_unhealthy |= s != BreakerState::Closed;
            replicas.push(ReplicaHealth {
                route: r.config.name.clone(),
                name: o.name.clone(),
                bucket: o.bucket.clone(),
                region: o.region.clone(),
                priority: o.priority,
                breaker: s.as_str(),
                healthy: s == BreakerState::Closed,
            });
        }
        any_route_dead |= !servable;
    }
    Health {
        status: if draining || any_route_dead {
            "unavailable"
        } else if any_unhealthy {
            "degraded"
        } else {
            "ok"
        },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        config_version: rt.version.clone(),
        draining,
        replicas,
        timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    }
}
