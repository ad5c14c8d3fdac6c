//! Every way a proxied request can fail, mapped to an S3-style response in
//! exactly one place ([`ProxyError::into_response`]), as linkerd2-proxy's
//! outbound `rescue()` does: upstream trouble is a 503 the client may
//! retry, client mistakes are 4xx, and nothing ever panics the connection.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{self, ProxyBody};

/// Why one replica attempt failed; shown in the 503 message and in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Replica name.
    pub replica: String,
    /// What happened, e.g. "connection refused" or "HTTP 503".
    pub reason: String,
}

/// A request that could not be served normally.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// No bucket route's `path_prefix` matches the path.
    #[error("no bucket route serves {path:?}")]
    NoRoute {
        /// The request path.
        path: String,
    },
    /// The request headers exceed `limits.max_header_bytes`.
    #[error("request headers are {size} bytes; the limit is {limit} (limits.max_header_bytes)")]
    HeadersTooLarge {
        /// Bytes of header names and values.
        size: usize,
        /// The configured limit.
        limit: u64,
    },
    /// No valid token for a route with `auth` (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token that does not allow this key (403).
    #[error("{0}")]
    Forbidden(String),
    /// The client exceeded `limits.rate_limit`.
    #[error("request rate limit exceeded; retry in {retry_after_secs}s")]
    RateLimited {
        /// Whole seconds until a token is available (at least 1).
        retry_after_secs: u64,
    },
    /// Only GET and HEAD are served.
    #[error("method {0} is not allowed; this proxy serves GET and HEAD of objects")]
    MethodNotAllowed(String),
    /// The object key is malformed or unsafe.
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    /// The key is longer than S3 allows.
    #[error("object key is {0} bytes; S3 keys are at most 1024 bytes")]
    KeyTooLong(usize),
    /// An S3 sub-resource or operation other than GetObject/HeadObject.
    #[error("query parameter {0:?} selects an S3 operation this proxy does not serve")]
    NotImplemented(String),
    /// The Range header cannot be satisfied for an object of this length.
    #[error("the requested range is not satisfiable for an object of {len} bytes")]
    RangeNotSatisfiable {
        /// Object length.
        len: u64,
    },
    /// If-Match / If-Unmodified-Since failed.
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    /// Every replica failed or was skipped.
    #[error("no replica of {route:?} could serve the request: {}", describe(.attempts))]
    Unavailable {
        /// Route name.
        route: String,
        /// One entry per replica considered.
        attempts: Vec<Attempt>,
    },
    /// A CORS preflight the route does not allow (403, as S3 answers).
    #[error("CORS preflight refused: {0}")]
    CorsForbidden(String),
    /// A bug or an impossible state; logged, never shown in detail.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(a: &[Attempt]) -> String {
    a.iter()
        .map(|a| format!("{}: {}", a.replica, a.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ProxyError {
    /// HTTP status and S3 error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ProxyError::NoRoute { .. } => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            ProxyError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ProxyError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "SlowDown"),
            ProxyError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "AccessDenied"),
            ProxyError::Forbidden(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
            ProxyError::CorsForbidden(_) => (StatusCode::FORBIDDEN, "AccessForbidden"),
            ProxyError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "RequestHeaderSectionTooLarge",
            ),
            ProxyError::InvalidKey(_) => (StatusCode::BAD_REQUEST, "InvalidURI"),
            ProxyError::KeyTooLong(_) => (StatusCode::BAD_REQUEST, "KeyTooLongError"),
            ProxyError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
            ProxyError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange")
            }
            ProxyError::PreconditionFailed => {
                (StatusCode::PRECONDITION_FAILED, "PreconditionFailed")
            }
            ProxyError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            ProxyError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// The S3-style XML error response. HEAD responses carry no body, as
    /// with S3, but keep the status and headers.
    pub fn into_response(
        self,
        resource: &str,
        request_id: &str,
        head: bool,
    ) -> Response<ProxyBody> {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // Details of internal errors go to the log, not to clients.
            ProxyError::Internal(_) => {
                "We encountered an internal error. Please try again.".to_string()
            }
            // Why each replica failed names endpoints, DNS and TLS errors or
            // credential problems: that is for the log and /status. The
            // client gets the route and the request ID to quote.
            ProxyError::Unavailable { route, .. } => format!(
                "no replica of route {route:?} could serve the request; the proxy's log and /status say why (request {request_id})"
            ),
            other => other.to_string(),
        };
        let xml = error_xml(code, &message, resource, request_id);
        let mut b = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/xml")
            .header("x-amz-request-id", request_id);
        match &self {
            ProxyError::RangeNotSatisfiable { len } => {
                b = b.header(header::CONTENT_RANGE, format!("bytes */{len}"));
            }
            ProxyError::Unavailable { .. } => {
                b = b.header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ProxyError::Unauthorized(_) => {
                b = b.header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ProxyError::RateLimited { retry_after_secs } => {
                b = b.header(header::RETRY_AFTER, *retry_after_secs);
            }
            _ => {}
        }
        let len = xml.len();
        let body = if head {
            body::empty()
        } else {
            body::full(Bytes::from(xml))
        };
        b.header(header::CONTENT_LENGTH, len)
            .body(body)
            .expect("static error response is valid")
    }
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => o.push(c),
        }
    }
    o
}

/// An S3 `<Error>` document.
pub fn error_xml(code: &str, message: &str, resource: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(resource),
        xml_escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_escaped_and_well_formed() {
        let x = error_xml("NoSuchKey", "a<b & \"c\"\u{1}", "/k?x=<", "r1");
        assert!(
            x.contains("<Message>a&lt;b &amp; &quot;c&quot;</Message>"),
            "{x}"
        );
        assert!(x.contains("<Resource>/k?x=&lt;</Resource>"));
    }

    #[test]
    fn unavailable_names_every_replica() {
        let e = ProxyError::Unavailable {
            route: "assets".into(),
            attempts: vec![
                Attempt {
                    replica: "eu".into(),
                    reason: "connection refused".into(),
                },
                Attempt {
                    replica: "us".into(),
                    reason: "breaker open".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "no replica of \"assets\" could serve the request: eu: connection refused; us: breaker open"
        );
        let r = e.into_response("/assets/x", "id", false);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let body = futures::executor::block_on(http_body_util::BodyExt::collect(r.into_body()))
            .unwrap()
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("route &quot;assets&quot;") && body.contains("request id"),
            "{body}"
        );
        assert!(
            !body.contains("connection refused") && !body.contains("eu:"),
            "{body}"
        );
    }
}
