//! Building the client's response: from an object in memory (hits and
//! fills alike, so both carry identical headers), from an origin's non-200
//! answer, and the headers every response carries about where it came from.

use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::body::{self, ProxyBody};
use crate::cache::{Answer, CachedObject};
use crate::conditional::{evaluate, if_range_holds, Precondition, Validators};
use crate::error::ProxyError;
use crate::range::{self, Resolved};

/// Origin response headers passed to clients: what describes the object
/// and nothing about the origin. Everything else is dropped, notably the
/// KMS key ARN of `x-amz-server-side-encryption-aws-kms-key-id` (it names
/// the account), `x-amz-id-2` and `x-amz-request-id` (the origin's own
/// request), `x-amz-expiration` (a lifecycle rule's ID) and hop-by-hop
/// headers. User metadata (`x-amz-meta-*`) passes.
pub const PASSED_HEADERS: &[&str] = &[
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "vary",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-delete-marker",
    "x-amz-mp-parts-count",
    "x-amz-object-lock-legal-hold",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-replication-status",
    "x-amz-restore",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-tagging-count",
    "x-amz-version-id",
    "x-amz-website-redirect-location",
];

/// The standard headers of [`PASSED_HEADERS`]: http keeps these as an
/// enum, so comparing with them costs no string comparison.
const PASSED_STANDARD: [HeaderName; 10] = [
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_TYPE,
    header::ETAG,
    header::EXPIRES,
    header::LAST_MODIFIED,
    header::VARY,
];

/// Whether an origin response header may reach clients. Runs for every
/// header of every miss (a binary search of the list by string was 1.5 %
/// of the CPU of a 4 KiB miss), so the standard ones are compared as
/// such and only `x-amz-*` names are looked up.
pub fn passes(n: &HeaderName) -> bool {
    if PASSED_STANDARD.contains(n) {
        return true;
    }
    let s = n.as_str();
    s.starts_with("x-amz-")
        && (s.starts_with("x-amz-meta-") || PASSED_HEADERS.binary_search(&s).is_ok())
}

/// The object headers to keep from an origin response.
pub fn object_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(h.len());
    for (n, v) in h {
        if passes(n) {
            out.append(n.clone(), v.clone());
        }
    }
    if !out.contains_key(header::ACCEPT_RANGES) {
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    out
}

/// The object headers to keep with a cached object. hyper's header values
/// are slices of the connection's read buffer, so keeping them would pin
/// that whole buffer for the object's lifetime (measured: about 10 KB
/// per cached 4 KiB object); the values are copied into one allocation of
/// their own instead.
pub fn stored_headers(h: &HeaderMap) -> HeaderMap {
    let kept = object_headers(h);
    let mut all = bytes::BytesMut::with_capacity(kept.values().map(HeaderValue::len).sum());
    for v in kept.values() {
        all.extend_from_slice(v.as_bytes());
    }
    let all = all.freeze();
    let mut out = HeaderMap::with_capacity(kept.len());
    let mut at = 0;
    for (n, v) in &kept {
        let end = at + v.len();
        // The bytes were a valid value a moment ago.
        if let Ok(copy) = HeaderValue::from_maybe_shared(all.slice(at..end)) {
            out.append(n.clone(), copy);
        }
        at = end;
    }
    out
}

/// Answers from a whole object in memory: preconditions, then Range, with
/// the object's own headers, identical on hits and misses.
pub fn from_object(
    o: &CachedObject,
    h: &HeaderMap,
    head: bool,
    cache_status: &'static str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let v = Validators {
        etag: o.etag.as_deref(),
        last_modified: o.last_modified,
    };
    match evaluate(h, v) {
        Precondition::Failed => return Err(ProxyError::PreconditionFailed),
        Precondition::NotModified => return Ok(not_modified(&o.headers)),
        Precondition::Proceed => {}
    }
    let len = o.body.len() as u64;
    let spec = if if_range_holds(h, v) {
        h.get(header::RANGE)
            .and_then(|r| r.to_str().ok())
            .and_then(range::parse)
    } else {
        None
    };
    let mut headers = o.headers.clone();
    let (status, body) = match range::resolve(spec, len) {
        Resolved::Full => (StatusCode::OK, o.body.clone()),
        Resolved::Partial { start, end } => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&range::content_range(start, end, len))
                    .map_err(|e| ProxyError::Internal(e.to_string()))?,
            );
            (
                StatusCode::PARTIAL_CONTENT,
                o.body.slice(start as usize, end as usize),
            )
        }
        Resolved::Unsatisfiable => return Err(ProxyError::RangeNotSatisfiable { len }),
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::AGE, HeaderValue::from(o.stored.elapsed().as_secs()));
    tag(&mut headers, cache_status, &o.replica);
    let mut out = Response::new(if head {
        body::empty()
    } else {
        body::memory(body, None)
    });
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// `x-tandem-cache`: how an answer was served (`HIT`, `MISS`, ...).
/// Header names are constants so the hot path never parses them.
pub const X_TANDEM_CACHE: HeaderName = HeaderName::from_static("x-tandem-cache");

/// `x-tandem-replica`: the replica an answer came from.
pub const X_TANDEM_REPLICA: HeaderName = HeaderName::from_static("x-tandem-replica");

/// `x-amz-request-id`: S3's request ID header, which answers carry ours in.
pub const X_AMZ_REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-request-id");

/// Tells the client where its answer came from: the cache state and the
/// replica (operators debugging a failover ask exactly this).
pub fn tag(headers: &mut HeaderMap, cache_status: &'static str, replica: &str) {
    headers.insert(X_TANDEM_CACHE, HeaderValue::from_static(cache_status));
    if let Ok(v) = HeaderValue::from_str(replica) {
        headers.insert(X_TANDEM_REPLICA, v);
    }
}

/// A 304 carries the validators and caching headers, no body (RFC 9110
/// §15.4.5).
pub fn not_modified(h: &HeaderMap) -> Response<ProxyBody> {
    let mut out = Response::new(body::empty());
    *out.status_mut() = StatusCode::NOT_MODIFIED;
    for n in [
        header::ETAG,
        header::LAST_MODIFIED,
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::VARY,
        header::CONTENT_LOCATION,
    ] {
        if let Some(v) = h.get(&n) {
            out.headers_mut().insert(n, v.clone());
        }
    }
    out
}

/// Answers with an origin's non-200 answer (404, 403...) a fill shared.
pub fn from_answer(a: &Answer, head: bool) -> Response<ProxyBody> {
    let mut headers = a.headers.clone();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(a.body.len()));
    if let Ok(v) = HeaderValue::from_str(&a.replica) {
        headers.insert(X_TANDEM_REPLICA, v);
    }
    let mut out = Response::new(if head {
        body::empty()
    } else {
        body::full(a.body.clone())
    });
    *out.status_mut() = a.status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_headers_are_the_same_headers_in_one_allocation() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("etag", "\"abc\""),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "2"),
        ] {
            h.append(HeaderName::from_static(k), v.parse().unwrap());
        }
        assert_eq!(stored_headers(&h), object_headers(&h));
    }

    #[test]
    fn object_headers_keep_metadata_and_drop_hop_by_hop() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("etag", "\"abc\""),
            ("x-amz-meta-owner", "ops"),
            ("content-disposition", "attachment"),
            ("connection", "keep-alive"),
            ("x-amz-request-id", "r"),
            ("x-amz-id-2", "host-id"),
            ("x-amz-server-side-encryption", "aws:kms"),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                "arn:aws:kms:eu-west-1:111122223333:key/k",
            ),
            ("set-cookie", "a=b"),
            ("content-length", "3"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        let o = object_headers(&h);
        assert_eq!(o["etag"], "\"abc\"");
        assert_eq!(o["x-amz-meta-owner"], "ops");
        assert_eq!(o["content-disposition"], "attachment");
        assert_eq!(o["accept-ranges"], "bytes");
        assert_eq!(o["x-amz-server-side-encryption"], "aws:kms");
        for dropped in [
            "connection",
            "x-amz-request-id",
            "x-amz-id-2",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "set-cookie",
            "content-length",
        ] {
            assert!(!o.contains_key(dropped), "{dropped}");
        }
    }

    #[test]
    fn the_allow_list_is_sorted_for_its_binary_search() {
        assert!(PASSED_HEADERS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_fast_path_passes_exactly_the_allow_list() {
        for n in PASSED_HEADERS {
            assert!(passes(&HeaderName::from_static(n)), "{n}");
        }
        for n in &PASSED_STANDARD {
            assert!(PASSED_HEADERS.contains(&n.as_str()), "{n} is not listed");
        }
        for n in [
            "content-length",
            "date",
            "server",
            "set-cookie",
            "x-amz-id-2",
            "x-amz-request-id",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-metadata",
        ] {
            assert!(!passes(&HeaderName::from_static(n)), "{n}");
        }
        assert!(passes(&HeaderName::from_static("x-amz-meta-owner")));
    }
}
