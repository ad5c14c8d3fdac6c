//! The cacheability rules: what an origin answer says about whether a
//! shared cache may keep it, and whether it is worth keeping.

use http::{header, HeaderMap, StatusCode};

use crate::range;

/// `Content-Length` as a number.
pub fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether the origin allows a shared cache to store this response.
pub fn storable(h: &HeaderMap) -> bool {
    if h.contains_key(header::SET_COOKIE) {
        return false;
    }
    h.get_all(header::CACHE_CONTROL).iter().all(|v| {
        let v = v.to_str().unwrap_or("").to_ascii_lowercase();
        !v.split(',')
            .any(|d| matches!(d.trim(), "no-store" | "private" | "no-cache"))
    })
}

/// Whether an answer to a Range or HEAD request shows an object the cache
/// would keep: its whole length (from `Content-Range`, or the length of a
/// 200) fits, and it is storable.
pub fn worth_filling(status: StatusCode, h: &HeaderMap, max_object_bytes: u64) -> bool {
    let total = match status {
        StatusCode::PARTIAL_CONTENT => h
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(range::parse_content_range)
            .and_then(|(_, _, len)| len),
        StatusCode::OK => content_length(h),
        _ => None,
    };
    total.is_some_and(|t| t <= max_object_bytes) && storable(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn private_no_store_and_cookies_are_not_stored() {
        assert!(storable(&h(&[("cache-control", "max-age=60")])));
        for bad in ["no-store", "Private", "public, no-cache"] {
            assert!(!storable(&h(&[("cache-control", bad)])), "{bad}");
        }
        assert!(!storable(&h(&[("set-cookie", "a=b")])));
    }

    #[test]
    fn range_answers_are_worth_filling_by_their_whole_length() {
        let r = h(&[("content-range", "bytes 0-9/100")]);
        assert!(worth_filling(StatusCode::PARTIAL_CONTENT, &r, 100));
        assert!(!worth_filling(StatusCode::PARTIAL_CONTENT, &r, 99));
        let whole = h(&[("content-length", "100")]);
        assert!(worth_filling(StatusCode::OK, &whole, 100));
        assert!(!worth_filling(StatusCode::NOT_FOUND, &whole, 100));
    }
}
