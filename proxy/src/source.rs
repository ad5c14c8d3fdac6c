//! Where the config comes from: a local file (re-read on change or SIGHUP)
//! or the S3 object the Terraform provider publishes, polled with
//! If-None-Match. The last good S3 document is kept on local disk, so a
//! proxy restarted while S3 is unreachable still serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tandem_fleet_config::{parse_s3_url, Dur, Replica};

use crate::breaker::CircuitBreaker;
use crate::client::{error_chain, OriginClient};
use crate::origin::Origin;

/// A config object request gives up after this long; the poll simply
/// tries again at the next interval.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(10);
/// Published documents are a few KiB; anything this large is not one.
const MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// Why the config object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is not `s3://bucket/key`.
    #[error("--config {0:?}: expected s3://bucket/key")]
    BadUrl(String),
    /// Setting up the request failed (endpoint, credentials).
    #[error("config source {url}: {reason}")]
    Setup {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request failed or S3 answered with an error.
    #[error("reading config {url}: {reason}")]
    Read {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// What a poll found.
pub enum Fetched {
    /// Same ETag as last time (304).
    Unchanged,
    /// A new document.
    Changed(String),
}

/// The published config object.
pub struct S3Source {
    /// `s3://bucket/key`.
    pub url: String,
    key: String,
    origin: Origin,
    etag: Option<String>,
    state_file: Option<PathBuf>,
}

impl S3Source {
    /// A source for `url` in `region`, at `endpoint` (path-style) or real
    /// AWS; credentials come from the standard AWS chain. `state_dir` holds
    /// the last good document.
    pub fn new(
        url: &str,
        region: &str,
        endpoint: Option<&str>,
        state_dir: Option<&Path>,
    ) -> Result<S3Source, SourceError> {
        let (bucket, key) =
            parse_s3_url(url).ok_or_else(|| SourceError::BadUrl(url.to_string()))?;
        let r = Replica {
            name: "config-source".into(),
            bucket: bucket.into(),
            region: region.into(),
            endpoint: endpoint.map(Into::into),
            // Custom endpoints (MinIO, SeaweedFS, moto) rarely resolve
            // bucket subdomains; AWS itself does.
            path_style: endpoint.is_some(),
            priority: 0,
            timeout: Dur(SOURCE_TIMEOUT),
            credentials: None,
            tls_ca_file: None,
        };
        let origin = Origin::new(
            (0, 0),
            &r,
            Arc::new(CircuitBreaker::new(&Default::default())),
            &|_| None,
        )
        .map_err(|e| SourceError::Setup {
            url: url.into(),
            reason: e.to_string(),
        })?;
        let state_file = state_dir.map(|d| {
            let name: String = format!("{bucket}/{key}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            d.join(format!("last-good-{name}.json"))
        });
        Ok(S3Source {
            url: url.into(),
            key: key.into(),
            origin,
            etag: None,
            state_file,
        })
    }

    /// Conditional GET of the object.
    pub async fn fetch(&mut self, client: &OriginClient) -> Result<Fetched, SourceError> {
        let read = |reason: String| SourceError::Read {
            url: self.url.clone(),
            reason,
        };
        let mut fwd = HeaderMap::new();
        if let Some(e) = self
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            fwd.insert(header::IF_NONE_MATCH, e);
        }
        let req = self
            .origin
            .signed_request(&Method::GET, &self.key, None, &fwd)
            .await
            .map_err(read)?;
        let resp = tokio::time::timeout(SOURCE_TIMEOUT, client.request(req))
            .await
            .map_err(|_| read(format!("no response within {SOURCE_TIMEOUT:?}")))?
            .map_err(|e| read(error_chain(&e)))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        let etag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = tokio::time::timeout(SOURCE_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| read("body not received in time".into()))?
            .map_err(|e| read(e.to_string()))?
            .to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]).to_string();
            return Err(read(format!("HTTP {}: {}", status.as_u16(), text.trim())));
        }
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(read(format!(
                "document is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
                body.len()
            )));
        }
        let text =
            String::from_utf8(body.to_vec()).map_err(|_| read("document is not UTF-8".into()))?;
        if etag.is_some() && etag == self.etag {
            return Ok(Fetched::Unchanged);
        }
        self.etag = etag;
        Ok(Fetched::Changed(text))
    }

    /// Forgets the ETag, so the next fetch returns the document even if it
    /// did not change (after a refused document, to retry it later would be
    /// pointless; after startup from disk, it must be compared).
    pub fn forget_etag(&mut self) {
        self.etag = None;
    }

    /// Stores the last good document (write to a temporary file, then
    /// rename, so a crash never leaves half a config).
    pub fn save_last_good(&self, text: &str) -> std::io::Result<()> {
        let Some(f) = &self.state_file else {
            return Ok(());
        };
        if let Some(d) = f.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = f.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, f)
    }

    /// The last good document, if one was stored.
    pub fn last_good(&self) -> Option<String> {
        self.state_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
    }

    /// Where the last good document lives.
    pub fn state_file(&self) -> Option<&Path> {
        self.state_file.as_deref()
    }
}

/// The config source chosen on the command line.
pub enum Source {
    /// A local YAML or JSON file.
    File(PathBuf),
    /// The published S3 object.
    S3(Box<S3Source>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_state_file_names() {
        assert!(matches!(
            S3Source::new("https://x/y", "us-east-1", None, None),
            Err(SourceError::BadUrl(_))
        ));
        let s = S3Source::new(
            "s3://cfg-bucket/fleets/a b.json",
            "eu-west-1",
            Some("http://127.0.0.1:5000"),
            Some(Path::new("/var/lib/tandem-proxy")),
        )
        .unwrap();
        assert_eq!(
            s.state_file().unwrap(),
            Path::new("/var/lib/tandem-proxy/last-good-cfg-bucket_fleets_a_b.json.json")
        );
    }
}
