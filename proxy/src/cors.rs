//! CORS for browser clients, per route (`cors`). The proxy answers a
//! preflight itself, without asking a replica, and puts the same headers
//! on hits, misses and errors alike, with `Vary: Origin` so no cache in
//! between hands one origin's answer to another.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use tandem_fleet_config::{Cors, DEFAULT_CORS_MAX_AGE};

use crate::body::{self, ProxyBody};
use crate::error::ProxyError;

/// Methods a preflight may ask for when `allowed_methods` is empty: all
/// this proxy serves.
const DEFAULT_METHODS: &[&str] = &["GET", "HEAD"];

/// Request headers browsers send without asking (CORS-safelisted), which
/// a preflight may still list.
const SAFELISTED: &[&str] = &[
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "range",
];

/// The `Access-Control-Allow-Origin` value for `origin`, if it may read.
fn allow_origin(cors: &Cors, origin: &HeaderValue) -> Option<HeaderValue> {
    let o = origin.to_str().ok()?;
    if cors
        .allowed_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(o))
    {
        return Some(origin.clone());
    }
    // validate() refuses "*" with credentials.
    cors.allowed_origins
        .iter()
        .any(|a| a == "*")
        .then(|| HeaderValue::from_static("*"))
}

fn methods(cors: &Cors) -> Vec<&str> {
    if cors.allowed_methods.is_empty() {
        DEFAULT_METHODS.to_vec()
    } else {
        cors.allowed_methods.iter().map(String::as_str).collect()
    }
}

fn vary_origin(h: &mut HeaderMap) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers an `OPTIONS` preflight: 204 with what the browser may do, or
/// an S3-style 403 naming what is not allowed.
pub fn preflight(cors: &Cors, req: &HeaderMap) -> Result<Response<ProxyBody>, ProxyError> {
    let refuse = |why: String| Err(ProxyError::CorsForbidden(why));
    let Some(origin) = req.get(header::ORIGIN) else {
        return refuse("a CORS preflight needs an Origin header".into());
    };
    let Some(allow) = allow_origin(cors, origin) else {
        return refuse(format!(
            "origin {:?} is not allowed",
            origin.to_str().unwrap_or("?")
        ));
    };
    let method = req
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let allowed_methods = methods(cors);
    if !allowed_methods.contains(&method) {
        return refuse(format!("method {method:?} is not allowed"));
    }
    let asked: Vec<String> = req
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let any_header = cors.allowed_headers.iter().any(|h| h == "*");
    if let Some(h) = asked.iter().find(|h| {
        !any_header
            && !SAFELISTED.contains(&h.as_str())
            && !cors
                .allowed_headers
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h))
    }) {
        return refuse(format!("request header {h:?} is not allowed"));
    }
    let mut out = Response::new(body::empty());
    *out.status_mut() = StatusCode::NO_CONTENT;
    let h = out.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    if let Ok(v) = HeaderValue::from_str(&allowed_methods.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if !asked.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&asked.join(", ")) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
    }
    let max_age = cors.max_age.unwrap_or(DEFAULT_CORS_MAX_AGE).0.as_secs();
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
    if cors.allow_credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    for n in [
        "Origin",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
    ] {
        h.append(header::VARY, HeaderValue::from_static(n));
    }
    Ok(out)
}

/// Adds CORS headers to an actual response (hit, miss or error) when the
/// request came from an allowed origin.
pub fn decorate(cors: &Cors, req: &HeaderMap, resp: &mut HeaderMap) {
    vary_origin(resp);
    let Some(allow) = req.get(header::ORIGIN).and_then(|o| allow_origin(cors, o)) else {
        return;
    };
    resp.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    if cors.allow_credentials {
        resp.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if !cors.expose_headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
            resp.insert(HeaderName::from_static("access-control-expose-headers"), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], headers: &[&str]) -> Cors {
        Cors {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: vec![],
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec!["ETag".into()],
            max_age: None,
            allow_credentials: false,
        }
    }

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn preflights_allow_what_the_route_allows_and_nothing_else() {
        let c = cors(&["https://app.example.com"], &["authorization"]);
        let ok = preflight(
            &c,
            &req(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "Authorization, range"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.status(), 204);
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-methods"], "GET, HEAD");
        assert_eq!(h["access-control-allow-headers"], "authorization, range");
        assert_eq!(h["access-control-max-age"], "600");
        for (origin, method, headers) in [
            ("https://evil.example", "GET", ""),
            ("https://app.example.com", "PUT", ""),
            ("https://app.example.com", "GET", "x-secret"),
        ] {
            let r = preflight(
                &c,
                &req(&[
                    ("origin", origin),
                    ("access-control-request-method", method),
                    ("access-control-request-headers", headers),
                ]),
            );
            assert!(
                matches!(r, Err(ProxyError::CorsForbidden(_))),
                "{origin} {method} {headers}"
            );
        }
    }

    #[test]
    fn actual_responses_carry_the_origin_and_always_vary_on_it() {
        let c = cors(&["*"], &[]);
        let mut h = HeaderMap::new();
        decorate(&c, &req(&[("origin", "https://any.example")]), &mut h);
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-expose-headers"], "ETag");
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        decorate(
            &cors(&["https://a.example"], &[]),
            &req(&[("origin", "https://b.example")]),
            &mut h,
        );
        assert!(!h.contains_key("access-control-allow-origin"));
        assert_eq!(h["vary"], "Origin");
    }
}
