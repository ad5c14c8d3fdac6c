//! The fleet-config format shared by tandem-proxy and the Terraform
//! provider: types with documented defaults, loading (YAML, JSON, `${ENV}`),
//! validation that reports every problem with its path, and the canonical
//! JSON whose hash is the `config_version` a proxy reports.
//!
//! One code path: `tandem-proxy check` and `terraform plan` both call
//! [`FleetConfig::validate`], so they always agree.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod load;
pub mod types;
pub mod units;
pub mod validate;

pub use load::{interpolate, version_of, Format, LoadError};
pub use types::*;
pub use units::{Bytes, Dur};
pub use validate::{bucket_name_problem, parse_s3_url, ConfigPath, Problem, Seg};

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen:
  data: 127.0.0.1:8080
  admin: 127.0.0.1:9090
cache:
  max_bytes: 256MiB
  ttl: 5m
buckets:
  - name: assets
    path_prefix: /assets/
    replicas:
      - name: eu
        bucket: assets-eu
        region: eu-west-1
        priority: 1
        timeout: 500ms
      - name: us
        bucket: assets-us
        region: us-east-1
        endpoint: http://127.0.0.1:8333
        path_style: true
        priority: 2
        credentials:
          access_key_id_env: US_KEY
          secret_access_key_env: US_SECRET
"#;

    fn good() -> FleetConfig {
        FleetConfig::parse(GOOD, Format::Yaml).unwrap()
    }

    fn paths(c: &FleetConfig) -> Vec<String> {
        c.validate().iter().map(|p| p.path.to_string()).collect()
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let c = good();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.drain.delay, DEFAULT_DRAIN_DELAY);
        assert_eq!(c.buckets[0].breaker, Breaker::default());
        assert_eq!(c.buckets[0].replicas[0].timeout, Dur::millis(500));
        assert_eq!(c.buckets[0].replicas[1].timeout, DEFAULT_REPLICA_TIMEOUT);
        assert!(c.buckets[0].cache.enabled);
        assert_eq!(c.access_log, AccessLog::default());
        assert!(c.access_log.enabled && c.access_log.sample == 1.0 && !c.access_log.hash_keys);
        // Older proxies refuse unknown fields: a default section is not
        // written into published documents.
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("access_log"), "{json}");
    }

    #[test]
    fn tracing_is_off_by_default_and_checked_when_on() {
        assert_eq!(good().tracing, None);
        let c = FleetConfig::parse(
            &format!("{GOOD}tracing: {{otlp_endpoint: \"http://127.0.0.1:4318/v1/traces\"}}\n"),
            Format::Yaml,
        )
        .unwrap();
        assert!(paths(&c).is_empty(), "{:?}", paths(&c));
        let t = c.tracing.clone().unwrap();
        assert_eq!(t.sample, DEFAULT_TRACING_SAMPLE);
        assert_eq!(t.service_name, DEFAULT_TRACING_SERVICE_NAME);
        let mut bad = c.clone();
        let b = bad.tracing.as_mut().unwrap();
        b.otlp_endpoint = "https://collector:4318/v1/traces".into();
        b.sample = 2.0;
        b.service_name = " ".into();
        assert_eq!(
            paths(&bad),
            [
                "tracing.otlp_endpoint",
                "tracing.sample",
                "tracing.service_name"
            ]
        );
    }

    #[test]
    fn access_log_sample_is_a_share() {
        let c = FleetConfig::parse(
            &format!("{GOOD}access_log: {{sample: 0.25, hash_keys: true}}\n"),
            Format::Yaml,
        )
        .unwrap();
        assert!(paths(&c).is_empty(), "{:?}", paths(&c));
        assert!(c.access_log.enabled && c.access_log.hash_keys);
        for bad in [-0.1, 1.5, f64::NAN] {
            let mut c = good();
            c.access_log.sample = bad;
            assert_eq!(paths(&c), ["access_log.sample"], "{bad}");
        }
        let err = FleetConfig::parse(
            &format!("{GOOD}access_log: {{sampel: 0.5}}\n"),
            Format::Yaml,
        )
        .unwrap_err();
        assert!(err.to_string().contains("sampel"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = FleetConfig::parse(&GOOD.replace("ttl: 5m", "ttl: 5m\n  tll: 1m"), Format::Yaml)
            .unwrap_err();
        assert!(err.to_string().contains("tll"), "{err}");
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let mut c = good();
        c.listen.admin = "127.0.0.1:8080".into();
        c.cache.max_object_bytes = Bytes(1 << 40);
        c.buckets[0].path_prefix = "assets".into();
        c.buckets[0].replicas[0].timeout = Dur::secs(600);
        c.buckets[0].replicas[1].priority = 1;
        c.buckets[0].replicas[1].bucket = "Bad_Bucket".into();
        c.buckets[0].replicas[1].region = "mars".into();
        c.buckets[0].breaker.failure_threshold = 0;
        c.buckets.push(c.buckets[0].clone());
        let p = paths(&c);
        for want in [
            "listen.admin",
            "cache.max_object_bytes",
            "buckets[0].path_prefix",
            "buckets[0].replicas[0].timeout",
            "buckets[0].replicas[1].priority",
            "buckets[0].replicas[1].bucket",
            "buckets[0].replicas[1].region",
            "buckets[0].breaker.failure_threshold",
            "buckets[1].name",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
    }

    #[test]
    fn listener_tls_needs_both_files_as_absolute_paths() {
        let mut c = good();
        c.listen.tls_cert_file = Some("/etc/tandem/cert.pem".into());
        assert_eq!(paths(&c), ["listen.tls_key_file"]);
        c.listen.tls_key_file = Some("key.pem".into());
        assert_eq!(paths(&c), ["listen.tls_key_file"]);
        c.listen.tls_key_file = Some("/etc/tandem/key.pem".into());
        assert!(paths(&c).is_empty(), "{:?}", paths(&c));
        c.listen.tls_cert_file = None;
        assert_eq!(paths(&c), ["listen.tls_cert_file"]);
    }

    #[test]
    fn a_jwks_needs_an_audience() {
        let mut c = good();
        let auth = |audience: Option<&str>| JwtAuth {
            algorithm: JwtAlgorithm::ES256,
            secret_env: None,
            public_key_file: None,
            jwks_file: Some("/etc/tandem/jwks.json".into()),
            jwks_url: None,
            jwks_refresh: None,
            issuer: None,
            audience: audience.map(Into::into),
            claim_rules: vec![],
        };
        c.buckets[0].auth = Some(auth(None));
        assert_eq!(paths(&c), ["buckets[0].auth.audience"]);
        c.buckets[0].auth = Some(auth(Some("")));
        assert_eq!(paths(&c), ["buckets[0].auth.audience"]);
        c.buckets[0].auth = Some(auth(Some("assets")));
        assert!(paths(&c).is_empty(), "{:?}", paths(&c));

        // From a URL: over TLS or from this host, refreshed sanely, and
        // one key source only.
        let url = |u: &str, refresh: Option<Dur>| JwtAuth {
            jwks_file: None,
            jwks_url: Some(u.into()),
            jwks_refresh: refresh,
            ..auth(Some("assets"))
        };
        for good in [
            "https://id.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8181/jwks",
            "http://localhost/jwks",
        ] {
            c.buckets[0].auth = Some(url(good, None));
            assert!(paths(&c).is_empty(), "{good}: {:?}", paths(&c));
        }
        for bad in [
            "http://id.example.com/jwks",
            "ftp://id.example.com/jwks",
            "https://",
        ] {
            c.buckets[0].auth = Some(url(bad, None));
            assert_eq!(paths(&c), ["buckets[0].auth.jwks_url"], "{bad}");
        }
        c.buckets[0].auth = Some(url("https://id.example.com/jwks", Some(Dur::millis(100))));
        assert_eq!(paths(&c), ["buckets[0].auth.jwks_refresh"]);
        c.buckets[0].auth = Some(JwtAuth {
            jwks_file: Some("/etc/tandem/jwks.json".into()),
            ..url("https://id.example.com/jwks", None)
        });
        assert_eq!(paths(&c), ["buckets[0].auth.public_key_file"]);
        c.buckets[0].auth = Some(JwtAuth {
            audience: None,
            ..url("https://id.example.com/jwks", None)
        });
        assert_eq!(paths(&c), ["buckets[0].auth.audience"]);
    }

    #[test]
    fn auth_redis_source_and_limits_are_checked_together() {
        let mut c = good();
        c.buckets[0].auth = Some(JwtAuth {
            algorithm: JwtAlgorithm::RS256,
            secret_env: Some("X".into()),
            public_key_file: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: None,
            issuer: None,
            audience: None,
            claim_rules: vec![ClaimRule {
                claim: String::new(),
                value: "a".into(),
                prefix: "/a".into(),
            }],
        });
        c.limits.rate_limit = Some(RateLimit {
            requests_per_second: 0.0,
            burst: 0,
            key: RateKey::Ip,
            global: true,
        });
        c.source = Some(Source {
            url: "s3://only-bucket".into(),
            region: String::new(),
            endpoint: Some("localhost".into()),
            poll_interval: Dur::millis(10),
        });
        c.redis = None;
        let p = paths(&c);
        for want in [
            "buckets[0].auth.public_key_file",
            "buckets[0].auth.secret_env",
            "buckets[0].auth.claim_rules[0].claim",
            "buckets[0].auth.claim_rules[0].prefix",
            "limits.rate_limit.requests_per_second",
            "limits.rate_limit.burst",
            "limits.rate_limit.global",
            "source.url",
            "source.region",
            "source.endpoint",
            "source.poll_interval",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
    }

    #[test]
    fn cidrs_parse_and_match_both_families() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.1.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(one.prefix, 32);
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope/8", "::/129", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let mut cfg = good();
        cfg.listen.trusted_proxies = vec!["10.0.0.0/8".into(), "10.0.0.0/99".into()];
        assert_eq!(paths(&cfg), ["listen.trusted_proxies[1]"]);
    }

    #[test]
    fn connection_and_fill_limits_have_defaults_and_are_checked() {
        let c = good();
        // Absent settings stay absent in the canonical document, so a
        // document published before they existed keeps its version.
        assert!(!c.canonical_json().contains("header_timeout"));
        assert_eq!(c.limits.header_timeout(), DEFAULT_HEADER_TIMEOUT.0);
        assert_eq!(c.cache.max_fill_bytes(), (256 << 20) / 4);
        assert_eq!(c.cache.lock_timeout(), DEFAULT_LOCK_TIMEOUT.0);
        let mut c = good();
        c.limits.header_timeout = Some(Dur::secs(0));
        c.limits.keepalive_timeout = Some(Dur::secs(0));
        c.limits.send_timeout = Some(Dur::secs(0));
        c.limits.min_send_rate = Some(Bytes(0));
        c.limits.max_connections = Some(0);
        c.limits.admin_max_connections = Some(0);
        c.cache.lock_timeout = Some(Dur::secs(0));
        c.cache.max_fill_bytes = Some(Bytes(1 << 20));
        c.cache.max_object_bytes = Bytes(2 << 20);
        let p = paths(&c);
        for want in [
            "limits.header_timeout",
            "limits.keepalive_timeout",
            "limits.send_timeout",
            "limits.min_send_rate",
            "limits.max_connections",
            "limits.admin_max_connections",
            "cache.lock_timeout",
            "cache.max_fill_bytes",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
        // The default budget must fit one largest object too.
        let mut c = good();
        c.cache.max_bytes = Bytes(4 << 20);
        c.cache.max_object_bytes = Bytes(2 << 20);
        assert_eq!(paths(&c), ["cache.max_fill_bytes"]);
    }

    #[test]
    fn redis_urls_keep_passwords_out_and_several_need_cluster() {
        let mut c = good();
        c.redis = Some(Redis {
            urls: vec![
                "redis://:hunter2@10.0.0.1:6379".into(),
                "rediss://user:pw@cache.example:6380/0".into(),
                "redis://user@10.0.0.3:6379".into(),
            ],
            cluster: false,
            password_env: None,
            signing_key_env: Some("lower-case".into()),
            previous_signing_key_env: None,
            tls_ca_file: None,
            timeout: DEFAULT_REDIS_TIMEOUT,
            pool_size: DEFAULT_REDIS_POOL_SIZE,
            max_object_bytes: DEFAULT_REDIS_MAX_OBJECT_BYTES,
        });
        let p = paths(&c);
        assert!(p.iter().any(|x| x == "redis.urls[0]"), "{p:?}");
        assert!(p.iter().any(|x| x == "redis.urls[1]"), "{p:?}");
        assert!(
            !p.iter().any(|x| x == "redis.urls[2]"),
            "a user name alone is fine: {p:?}"
        );
        assert!(
            p.iter().any(|x| x == "redis.urls"),
            "several URLs without cluster: {p:?}"
        );
        assert!(
            p.iter().any(|x| x == "redis.signing_key_env"),
            "a key variable must be a variable name: {p:?}"
        );
        c.redis.as_mut().unwrap().signing_key_env = None;
        c.redis.as_mut().unwrap().previous_signing_key_env = Some("OLD_KEY".into());
        assert!(
            paths(&c)
                .iter()
                .any(|x| x == "redis.previous_signing_key_env"),
            "a previous key without a current one"
        );
        let msgs = c
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !msgs.contains("hunter2"),
            "the finding must not echo the password: {msgs}"
        );
    }

    #[test]
    fn a_redis_ca_file_is_absolute_and_needs_a_tls_url() {
        let redis = |urls: &[&str], ca: &str| Redis {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            cluster: urls.len() > 1,
            password_env: None,
            signing_key_env: None,
            previous_signing_key_env: None,
            tls_ca_file: Some(ca.into()),
            timeout: DEFAULT_REDIS_TIMEOUT,
            pool_size: DEFAULT_REDIS_POOL_SIZE,
            max_object_bytes: DEFAULT_REDIS_MAX_OBJECT_BYTES,
        };
        let mut c = good();
        c.redis = Some(redis(
            &["rediss://cache.internal:6380"],
            "/etc/tandem/redis-ca.pem",
        ));
        assert!(c.validate().is_empty(), "{:?}", paths(&c));
        c.redis = Some(redis(&["redis://10.0.0.1:6379"], "ca.pem"));
        let found = paths(&c)
            .iter()
            .filter(|p| *p == "redis.tls_ca_file")
            .count();
        assert_eq!(
            found,
            2,
            "relative path and no rediss:// URL: {:?}",
            paths(&c)
        );
    }

    #[test]
    fn canonical_json_and_version_ignore_key_order_and_format() {
        let a = good();
        let json = a.canonical_json();
        let b = FleetConfig::parse(&json, Format::Json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.config_version(), b.config_version());
        // Same meaning, different key order and defaults spelled out.
        let reordered = r#"{"buckets":[{"replicas":[
            {"region":"eu-west-1","bucket":"assets-eu","name":"eu","timeout":"500ms","priority":1},
            {"priority":2,"path_style":true,"endpoint":"http://127.0.0.1:8333","region":"us-east-1","bucket":"assets-us","name":"us",
             "credentials":{"secret_access_key_env":"US_SECRET","access_key_id_env":"US_KEY"}}],
            "path_prefix":"/assets/","name":"assets"}],
            "cache":{"ttl":"300s","max_bytes":268435456},
            "listen":{"admin":"127.0.0.1:9090","data":"127.0.0.1:8080"}}"#;
        let c = FleetConfig::parse(reordered, Format::Json).unwrap();
        assert_eq!(c.config_version(), a.config_version());
        let mut d = a.clone();
        d.cache.ttl = Dur::secs(60);
        assert_ne!(d.config_version(), a.config_version());
        assert_eq!(a.config_version().len(), 16);
    }

    #[test]
    fn interpolation_replaces_escapes_and_names_missing_variables() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cr3t".to_string());
        assert_eq!(
            interpolate("a: ${TOKEN}\nb: $${LITERAL}\n", env).unwrap(),
            "a: s3cr3t\nb: ${LITERAL}\n"
        );
        let err = interpolate("x: 1\ny: ${NOPE}\n", env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: environment variable NOPE is not set (referenced as ${NOPE})"
        );
        assert!(matches!(
            interpolate("z: ${BAD NAME}", env),
            Err(LoadError::BadReference { .. })
        ));
        assert!(matches!(
            interpolate("z: ${OPEN", env),
            Err(LoadError::BadReference { .. })
        ));
    }

    #[test]
    fn invalid_config_error_lists_every_problem() {
        let err = FleetConfig::load_str("buckets: []\n", Format::Yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 problem(s):\n  buckets: declare at least one bucket route"
        );
    }
}
