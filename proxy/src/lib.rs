//! tandem-proxy: an S3 read-through caching proxy that fails over between
//! replica buckets.
//!
//! One concern per module. A request flows through: the listeners and
//! their connection bounds ([`server`], [`conn`]); the data path
//! ([`serve`]), which learns who the client is ([`forwarded`]), parses the
//! request ([`request`]), and checks rate limits ([`ratelimit`]) and JWT
//! ([`auth`]); CORS ([`cors`]); the memory cache, its fills
//! in flight and their budget ([`cache`], [`fill`], [`chunks`]), the shared
//! Redis/Valkey tier ([`tier`]) and the cacheability rules ([`policy`]);
//! failover between replicas, with one per-request context ([`failover`],
//! [`breaker`], [`origin`], [`sigv4`], [`client`]); reading origin bodies
//! ([`collect`]); the access log and request IDs ([`access`]) and
//! OpenTelemetry traces ([`otel`]); relaying uncached answers with mid-stream resume
//! ([`relay`], [`resume`]); building responses ([`response`], [`range`],
//! [`conditional`], [`body`], [`error`]). Around them: the admin endpoints
//! ([`admin`]), metrics ([`metrics`]), where the config comes from
//! ([`source`]) and what a loaded config serves with ([`runtime`],
//! [`state`]), and readiness for systemd ([`notify`]). The config format
//! and its `validate()` come from `tandem-fleet-config`, the same code the
//! Terraform provider runs at plan time.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod access;
pub mod admin;
pub mod auth;
pub mod body;
pub mod breaker;
pub mod cache;
pub mod chunks;
pub mod client;
pub mod collect;
pub mod conditional;
pub mod conn;
pub mod cors;
pub mod error;
pub mod failover;
pub mod fill;
pub mod forwarded;
pub mod metrics;
pub mod notify;
pub mod origin;
pub mod otel;
pub mod policy;
pub mod range;
pub mod ratelimit;
pub mod relay;
pub mod request;
pub mod response;
pub mod resume;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod sigv4;
pub mod source;
pub mod state;
pub mod tier;
pub mod tls;

use std::path::Path;

use tandem_fleet_config::{FleetConfig, LoadError};

/// Outcome of `check`.
#[derive(Debug)]
pub enum CheckOutcome {
    /// Valid; the version the proxy would report.
    Valid {
        /// `config_version` of the canonical document.
        config_version: String,
        /// Number of bucket routes.
        routes: usize,
    },
    /// Not loadable or not valid; one line per problem.
    Invalid(Vec<String>),
}

/// Loads and validates a config file exactly as the proxy would at start.
pub fn check_file(path: &Path) -> CheckOutcome {
    match FleetConfig::load_file(path) {
        Ok(cfg) => CheckOutcome::Valid {
            config_version: cfg.config_version(),
            routes: cfg.buckets.len(),
        },
        Err(LoadError::Invalid(problems)) => {
            CheckOutcome::Invalid(problems.iter().map(ToString::to_string).collect())
        }
        Err(e) => CheckOutcome::Invalid(vec![e.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_or_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "buckets:\n  - name: a\n    path_prefix: a\n    replicas: []\n",
        )
        .unwrap();
        match check_file(&bad) {
            CheckOutcome::Invalid(p) => {
                assert!(p.contains(&"buckets[0].path_prefix: \"a\" must start and end with '/', e.g. \"/assets/\"".to_string()), "{p:?}");
                assert!(
                    p.iter().any(|l| l.starts_with("buckets[0].replicas: ")),
                    "{p:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"buckets":[{"name":"a","path_prefix":"/a/","replicas":[{"name":"eu","bucket":"assets-eu","region":"eu-west-1"}]}]}"#).unwrap();
        assert!(matches!(
            check_file(&good),
            CheckOutcome::Valid { routes: 1, .. }
        ));
        assert!(matches!(
            check_file(&dir.path().join("missing.yaml")),
            CheckOutcome::Invalid(_)
        ));
    }
}
