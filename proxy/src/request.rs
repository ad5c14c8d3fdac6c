//! Turning a client request into (route, object key, version): path prefix
//! routing, exactly-once percent-decoding, key safety checks and the query
//! parameters S3 defines for GetObject. Pure, so it is property-tested.

use percent_encoding::percent_decode_str;

use crate::error::ProxyError;

/// S3's limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A parsed object request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRequest {
    /// Index of the matched route.
    pub route: usize,
    /// The decoded object key.
    pub key: String,
    /// `?versionId=`, decoded.
    pub version_id: Option<String>,
}

/// Query parameters that select an S3 operation other than GetObject, or a
/// variant of it this proxy cannot cache safely. Refusing them (501) beats
/// answering them with the object body.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "legal-hold",
    "lifecycle",
    "list-type",
    "location",
    "logging",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
    "prefix",
    "delimiter",
    "marker",
    "continuation-token",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "X-Amz-Signature",
    "X-Amz-Credential",
];

/// Finds the route with the longest `path_prefix` that `raw_path` starts
/// with. Matching is on the raw path, so `/assets%2F` never matches
/// `/assets/`.
pub fn route_for<'a>(
    raw_path: &str,
    prefixes: impl Iterator<Item = &'a str>,
) -> Option<(usize, usize)> {
    prefixes
        .enumerate()
        .filter(|(_, p)| raw_path.starts_with(p))
        .max_by_key(|(_, p)| p.len())
        .map(|(i, p)| (i, p.len()))
}

/// Parses path and query. `prefixes` are the routes' `path_prefix`es in
/// route order.
pub fn parse<'a>(
    raw_path: &str,
    query: Option<&str>,
    prefixes: impl Iterator<Item = &'a str>,
) -> Result<ObjectRequest, ProxyError> {
    let (route, plen) = route_for(raw_path, prefixes).ok_or_else(|| ProxyError::NoRoute {
        path: raw_path.to_string(),
    })?;
    let key = decode_key(&raw_path[plen..])?;
    let version_id = parse_query(query.unwrap_or(""))?;
    Ok(ObjectRequest {
        route,
        key,
        version_id,
    })
}

/// Decodes a raw (percent-encoded) key once and refuses unsafe keys.
pub fn decode_key(raw: &str) -> Result<String, ProxyError> {
    if raw.is_empty() {
        return Err(ProxyError::InvalidKey(
            "the path names a bucket route but no object key".into(),
        ));
    }
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    let key = String::from_utf8(bytes)
        .map_err(|_| ProxyError::InvalidKey("the key is not valid UTF-8 once decoded".into()))?;
    if key.len() > MAX_KEY_BYTES {
        return Err(ProxyError::KeyTooLong(key.len()));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(ProxyError::InvalidKey(
            "the key contains a control character".into(),
        ));
    }
    if key.starts_with('/') {
        return Err(ProxyError::InvalidKey(
            "the key starts with '/' (an empty path segment after the route prefix)".into(),
        ));
    }
    // Both separators: some origins and tools treat '\' as one.
    if key.split(['/', '\\']).any(|seg| seg == ".." || seg == ".") {
        return Err(ProxyError::InvalidKey(
            "the key contains a '.' or '..' path segment".into(),
        ));
    }
    // Still-encoded dots, slashes, backslashes or percents after one decode
    // are a double-encoding attempt: a later decoder would see '..' or '/'.
    let lower = key.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%25", "%00"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err(ProxyError::InvalidKey(
            "the key is percent-encoded twice".into(),
        ));
    }
    Ok(key)
}

/// Extracts `versionId`; refuses S3 sub-resources. Other parameters (cache
/// busters such as `?v=3`) are ignored and never reach the origin or the
/// cache key.
pub fn parse_query(q: &str) -> Result<Option<String>, ProxyError> {
    let mut version = None;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode_str(k).decode_utf8_lossy();
        if k == "versionId" {
            let v = percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .map_err(|_| ProxyError::InvalidKey("versionId is not valid UTF-8".into()))?
                .into_owned();
            if v.is_empty() || v.len() > 1024 || v.chars().any(|c| c.is_control()) {
                return Err(ProxyError::InvalidKey(format!("invalid versionId {v:?}")));
            }
            if version.replace(v).is_some() {
                return Err(ProxyError::InvalidKey("versionId given twice".into()));
            }
        } else if SUBRESOURCES.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
            return Err(ProxyError::NotImplemented(k.into_owned()));
        }
    }
    Ok(version)
}

/// Percent-encodes a key for the origin URL and its SigV4 canonical URI:
/// everything but unreserved characters and '/'.
pub fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// Percent-encodes a query value (SigV4 rules: no '/').
pub fn encode_query_value(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: [&str; 3] = ["/assets/", "/assets/img/", "/logs/"];

    fn p(path: &str, q: Option<&str>) -> Result<ObjectRequest, ProxyError> {
        parse(path, q, P.iter().copied())
    }

    #[test]
    fn longest_prefix_wins_and_keys_decode_once() {
        assert_eq!(p("/assets/a.css", None).unwrap().route, 0);
        let r = p("/assets/img/a%20b.png", Some("versionId=v%2B1&v=3")).unwrap();
        assert_eq!(
            (r.route, r.key.as_str(), r.version_id.as_deref()),
            (1, "a b.png", Some("v+1"))
        );
        assert!(matches!(
            p("/other/x", None),
            Err(ProxyError::NoRoute { .. })
        ));
        assert!(matches!(
            p("/assets%2Fx", None),
            Err(ProxyError::NoRoute { .. })
        ));
    }

    #[test]
    fn unsafe_keys_are_refused() {
        for bad in [
            "/assets/",
            "/assets/../secret",
            "/assets/a/%2e%2e/b",
            "/assets/a/%252e%252e/b",
            "/assets/a%252fb",
            "/assets/%2Fetc",
            "/assets/a/./b",
            "/assets/a\\..\\b",
            "/assets/a%00b",
            "/assets/a%0ab",
            "/assets/%ff",
        ] {
            assert!(p(bad, None).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            p(&format!("/assets/{}", "k".repeat(1025)), None),
            Err(ProxyError::KeyTooLong(1025))
        ));
        for ok in [
            "/assets/a..b",
            "/assets/.hidden",
            "/assets/a%20b/c%2Bd",
            "/assets/日本",
        ] {
            assert!(p(ok, None).is_ok(), "{ok} refused");
        }
    }

    #[test]
    fn subresources_are_not_served() {
        for q in [
            "acl",
            "tagging",
            "uploads",
            "list-type=2",
            "partNumber=1",
            "response-content-type=x",
        ] {
            assert!(
                matches!(p("/assets/a", Some(q)), Err(ProxyError::NotImplemented(_))),
                "{q}"
            );
        }
        assert!(p("/assets/a", Some("versionId=")).is_err());
        assert!(p("/assets/a", Some("versionId=a&versionId=b")).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(path in "/[\\PC%./\\\\]{0,64}", q in proptest::option::of("[\\PC&=%]{0,32}")) {
            let _ = p(&path, q.as_deref());
        }

        #[test]
        fn accepted_keys_have_no_traversal_and_round_trip(key in "[a-zA-Z0-9 ._~/%+-]{1,40}") {
            let path = format!("/logs/{}", encode_key(&key));
            if let Ok(r) = p(&path, None) {
                prop_assert_eq!(&r.key, &key);
                prop_assert!(!r.key.split('/').any(|s| s == ".." || s == "."));
                prop_assert!(!r.key.starts_with('/'));
            }
        }

        #[test]
        fn double_encoded_separators_are_refused(pre in "[a-z]{0,6}", enc in prop::sample::select(vec!["2e", "2E", "2f", "2F", "5c", "5C", "00"]), post in "[a-z]{0,6}") {
            // "%25" + "2e" decodes once to "%2e", which a second decoder would
            // turn into '.': refused, never decoded twice.
            let r = decode_key(&format!("{pre}%25{enc}{post}"));
            prop_assert!(r.is_err());
        }
    }
}
