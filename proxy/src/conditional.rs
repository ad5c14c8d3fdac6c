//! Conditional requests (RFC 9110 §13.2.2), evaluated against the cached or
//! fetched object's ETag and Last-Modified, so hits and misses answer alike.

use std::time::SystemTime;

use http::HeaderMap;

/// The outcome of evaluating a request's preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the object (or the requested range).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The validators of a stored or fetched representation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The ETag as the origin sent it, normally quoted.
    pub etag: Option<&'a str>,
    /// Last-Modified.
    pub last_modified: Option<SystemTime>,
}

impl Validators<'_> {
    /// The ETag and Last-Modified of a response's (or a stored object's)
    /// headers.
    pub fn of(h: &HeaderMap) -> Validators<'_> {
        Validators {
            etag: h.get(http::header::ETAG).and_then(|v| v.to_str().ok()),
            last_modified: h
                .get(http::header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        }
    }
}

/// True when the request carries any precondition header this module
/// evaluates (so a pass-through can forward them instead).
pub fn has_preconditions(h: &HeaderMap) -> bool {
    [
        http::header::IF_MATCH,
        http::header::IF_NONE_MATCH,
        http::header::IF_MODIFIED_SINCE,
        http::header::IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|n| h.contains_key(n))
}

/// Evaluates preconditions in the RFC 9110 order: If-Match, then
/// If-Unmodified-Since (only without If-Match), then If-None-Match, then
/// If-Modified-Since (only without If-None-Match).
pub fn evaluate(h: &HeaderMap, v: Validators<'_>) -> Precondition {
    let text = |n: http::header::HeaderName| h.get(n).and_then(|x| x.to_str().ok());
    if let Some(im) = text(http::header::IF_MATCH) {
        if !list_matches(im, v.etag, true) {
            return Precondition::Failed;
        }
    } else if let (Some(ius), Some(lm)) = (
        text(http::header::IF_UNMODIFIED_SINCE).and_then(parse_date),
        v.last_modified,
    ) {
        if lm > ius {
            return Precondition::Failed;
        }
    }
    if let Some(inm) = text(http::header::IF_NONE_MATCH) {
        if list_matches(inm, v.etag, false) {
            return Precondition::NotModified;
        }
    } else if let (Some(ims), Some(lm)) = (
        text(http::header::IF_MODIFIED_SINCE).and_then(parse_date),
        v.last_modified,
    ) {
        if lm <= ims {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// `If-Range`: true when the Range header should be honoured.
pub fn if_range_holds(h: &HeaderMap, v: Validators<'_>) -> bool {
    let Some(ir) = h.get(http::header::IF_RANGE).and_then(|x| x.to_str().ok()) else {
        return true;
    };
    let ir = ir.trim();
    if ir.starts_with('"') || ir.starts_with("W/") {
        return !ir.starts_with("W/") && v.etag.is_some_and(|e| opaque(e) == opaque(ir));
    }
    match (parse_date(ir), v.last_modified) {
        (Some(d), Some(lm)) => d == lm,
        _ => false,
    }
}

fn parse_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

/// The opaque part of an entity tag, tolerating the unquoted form some
/// clients send (S3 itself accepts it).
fn opaque(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
}

/// Matches an `If-Match` / `If-None-Match` list. `strong` refuses weak tags
/// (If-Match uses strong comparison, If-None-Match weak).
fn list_matches(list: &str, etag: Option<&str>, strong: bool) -> bool {
    let Some(etag) = etag else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    let ours = opaque(etag);
    list.split(',').any(|t| {
        let t = t.trim();
        // If-Match never matches a weak tag.
        let usable = !(t.is_empty() || strong && t.starts_with("W/"));
        usable && opaque(t) == ours
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    const LM: &str = "Wed, 21 Oct 2026 07:28:00 GMT";

    fn v() -> Validators<'static> {
        Validators {
            etag: Some("\"abc\""),
            last_modified: Some(httpdate::parse_http_date(LM).unwrap()),
        }
    }

    #[test]
    fn quoted_unquoted_weak_and_lists() {
        use Precondition::*;
        assert_eq!(
            evaluate(&h(&[("if-none-match", "\"abc\"")]), v()),
            NotModified
        );
        assert_eq!(evaluate(&h(&[("if-none-match", "abc")]), v()), NotModified);
        assert_eq!(
            evaluate(&h(&[("if-none-match", "W/\"abc\"")]), v()),
            NotModified
        );
        assert_eq!(
            evaluate(&h(&[("if-none-match", "\"x\", \"abc\"")]), v()),
            NotModified
        );
        assert_eq!(evaluate(&h(&[("if-none-match", "*")]), v()), NotModified);
        assert_eq!(evaluate(&h(&[("if-none-match", "\"x\"")]), v()), Proceed);
        assert_eq!(evaluate(&h(&[("if-match", "\"abc\"")]), v()), Proceed);
        assert_eq!(evaluate(&h(&[("if-match", "W/\"abc\"")]), v()), Failed);
        assert_eq!(evaluate(&h(&[("if-match", "\"x\"")]), v()), Failed);
    }

    #[test]
    fn dates_and_precedence() {
        use Precondition::*;
        let later = httpdate::fmt_http_date(v().last_modified.unwrap() + Duration::from_secs(60));
        let earlier = httpdate::fmt_http_date(v().last_modified.unwrap() - Duration::from_secs(60));
        assert_eq!(evaluate(&h(&[("if-modified-since", LM)]), v()), NotModified);
        assert_eq!(
            evaluate(&h(&[("if-modified-since", &later)]), v()),
            NotModified
        );
        assert_eq!(
            evaluate(&h(&[("if-modified-since", &earlier)]), v()),
            Proceed
        );
        assert_eq!(
            evaluate(&h(&[("if-unmodified-since", &earlier)]), v()),
            Failed
        );
        assert_eq!(
            evaluate(&h(&[("if-unmodified-since", &later)]), v()),
            Proceed
        );
        // If-None-Match wins over If-Modified-Since; If-Match over If-Unmodified-Since.
        assert_eq!(
            evaluate(
                &h(&[("if-none-match", "\"x\""), ("if-modified-since", &later)]),
                v()
            ),
            Proceed
        );
        assert_eq!(
            evaluate(
                &h(&[("if-match", "\"abc\""), ("if-unmodified-since", &earlier)]),
                v()
            ),
            Proceed
        );
        // An unparseable date is ignored, as RFC 9110 requires.
        assert_eq!(
            evaluate(&h(&[("if-modified-since", "yesterday")]), v()),
            Proceed
        );
    }

    #[test]
    fn if_range() {
        assert!(if_range_holds(&h(&[]), v()));
        assert!(if_range_holds(&h(&[("if-range", "\"abc\"")]), v()));
        assert!(!if_range_holds(&h(&[("if-range", "\"old\"")]), v()));
        assert!(!if_range_holds(&h(&[("if-range", "W/\"abc\"")]), v()));
        assert!(if_range_holds(&h(&[("if-range", LM)]), v()));
    }
}
