//! Watching a fleet roll out a config: after publishing, poll each proxy's
//! admin `/ready` until enough of them report the new `config_version` and
//! are ready, or fail listing every lagging endpoint and what it reports.
//! Also the single probe behind `tandem_proxy_fleet_status`.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Per-request timeout for one probe: an admin endpoint answers from
/// memory, so anything slower is as good as down for a rollout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between polling rounds; proxies poll their config source at
/// seconds granularity, so faster polling only adds load.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What one proxy reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The admin base URL polled.
    pub endpoint: String,
    /// HTTP status of `/ready`, when it answered.
    pub http_status: Option<u16>,
    /// `status` field: ok, degraded or unavailable.
    pub status: Option<String>,
    /// The config version it runs.
    pub config_version: Option<String>,
    /// Proxy build version.
    pub version: Option<String>,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
    /// The raw JSON body, for data sources that expose more.
    pub body: Option<serde_json::Value>,
}

impl Report {
    /// Ready (HTTP 200) and running `want`.
    pub fn is_done(&self, want: &str) -> bool {
        self.http_status == Some(200) && self.config_version.as_deref() == Some(want)
    }

    /// One line for a diagnostic.
    pub fn describe(&self) -> String {
        match (&self.error, self.http_status) {
            (Some(e), _) => format!("{}: unreachable ({e})", self.endpoint),
            (None, s) => format!(
                "{}: /ready {} , status {}, config_version {}",
                self.endpoint,
                s.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                self.status.as_deref().unwrap_or("-"),
                self.config_version.as_deref().unwrap_or("(none)")
            )
            .replace(" ,", ","),
        }
    }
}

#[derive(Deserialize)]
struct ReadyBody {
    status: Option<String>,
    config_version: Option<String>,
    version: Option<String>,
}

/// Errors of a rollout wait.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Not enough proxies reached the version in time.
    #[error("{ready} of {total} proxies run config_version {want} and are ready after {waited:?}; {min_ready} required. Lagging:\n{lagging}")]
    Lagging {
        /// The version awaited.
        want: String,
        /// How many were done.
        ready: usize,
        /// How many were polled.
        total: usize,
        /// How many were required.
        min_ready: usize,
        /// Time spent.
        waited: Duration,
        /// One line per lagging endpoint.
        lagging: String,
        /// Every endpoint's last report.
        reports: Vec<Report>,
    },
    /// Terraform asked the provider to stop.
    #[error("cancelled while waiting for the rollout")]
    Cancelled,
    /// The HTTP client could not be built.
    #[error("building HTTP client: {0}")]
    Client(String),
}

/// An HTTP client for admin endpoints.
pub fn client() -> Result<reqwest::Client, RolloutError> {
    reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| RolloutError::Client(e.to_string()))
}

/// Probes one proxy's `/ready` (which carries the same JSON as `/health`).
pub async fn probe(client: &reqwest::Client, endpoint: &str) -> Report {
    let base = endpoint.trim_end_matches('/');
    let mut r = Report {
        endpoint: endpoint.to_string(),
        http_status: None,
        status: None,
        config_version: None,
        version: None,
        error: None,
        body: None,
    };
    match client.get(format!("{base}/ready")).send().await {
        Err(e) => r.error = Some(error_text(&e)),
        Ok(resp) => {
            r.http_status = Some(resp.status().as_u16());
            match resp.json::<serde_json::Value>().await {
                Ok(body) => {
                    if let Ok(b) = serde_json::from_value::<ReadyBody>(body.clone()) {
                        r.status = b.status;
                        r.config_version = b.config_version;
                        r.version = b.version;
                    }
                    r.body = Some(body);
                }
                Err(e) => r.error = Some(format!("/ready did not return JSON: {}", error_text(&e))),
            }
        }
    }
    r
}

fn error_text(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        let m = x.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = x.source();
    }
    s
}

/// Polls every endpoint until at least `min_ready` are ready on `want`.
pub async fn wait(
    client: &reqwest::Client,
    endpoints: &[String],
    want: &str,
    min_ready: usize,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<Report>, RolloutError> {
    let start = Instant::now();
    loop {
        let reports = futures_join(client, endpoints).await;
        let ready = reports.iter().filter(|r| r.is_done(want)).count();
        if ready >= min_ready {
            return Ok(reports);
        }
        if start.elapsed() + POLL_INTERVAL > timeout {
            let lagging = reports
                .iter()
                .filter(|r| !r.is_done(want))
                .map(|r| format!("  - {}", r.describe()))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(RolloutError::Lagging {
                want: want.to_string(),
                ready,
                total: reports.len(),
                min_ready,
                waited: start.elapsed(),
                lagging,
                reports,
            });
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = cancel.cancelled() => return Err(RolloutError::Cancelled),
        }
    }
}

/// Probes all endpoints concurrently, keeping their order.
pub async fn futures_join(client: &reqwest::Client, endpoints: &[String]) -> Vec<Report> {
    let handles: Vec<_> = endpoints
        .iter()
        .map(|e| {
            let c = client.clone();
            let e = e.clone();
            tokio::spawn(async move { probe(&c, &e).await })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (h, e) in handles.into_iter().zip(endpoints) {
        out.push(h.await.unwrap_or_else(|err| Report {
            endpoint: e.clone(),
            http_status: None,
            status: None,
            config_version: None,
            version: None,
            error: Some(format!("probe task failed: {err}")),
            body: None,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-route HTTP server answering /ready with whatever `state` holds.
    async fn fake_proxy(state: Arc<Mutex<(u16, String)>>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let (code, version) = state.lock().unwrap().clone();
                    let body = format!(
                        r#"{{"status":"ok","version":"0.1.0","config_version":"{version}"}}"#
                    );
                    let resp = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn returns_once_enough_proxies_run_the_version() {
        let a = Arc::new(Mutex::new((200, "v1".to_string())));
        let b = Arc::new(Mutex::new((200, "v1".to_string())));
        let eps = vec![fake_proxy(a.clone()).await, fake_proxy(b.clone()).await];
        let c = client().unwrap();
        let tok = CancellationToken::new();
        let flip = {
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                a.lock().unwrap().1 = "v2".into();
                b.lock().unwrap().1 = "v2".into();
            })
        };
        let reports = wait(&c, &eps, "v2", 2, Duration::from_secs(10), &tok)
            .await
            .unwrap();
        assert!(reports.iter().all(|r| r.is_done("v2")));
        flip.await.unwrap();
    }

    #[tokio::test]
    async fn failure_lists_each_lagging_endpoint_and_what_it_reports() {
        let ok = fake_proxy(Arc::new(Mutex::new((200, "v2".to_string())))).await;
        let old = fake_proxy(Arc::new(Mutex::new((200, "v1".to_string())))).await;
        let draining = fake_proxy(Arc::new(Mutex::new((503, "v2".to_string())))).await;
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let eps = vec![ok.clone(), old.clone(), draining.clone(), dead.clone()];
        let err = wait(
            &client().unwrap(),
            &eps,
            "v2",
            3,
            Duration::from_secs(1),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("1 of 4 proxies run config_version v2"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{old}: /ready 200, status ok, config_version v1")),
            "{msg}"
        );
        assert!(msg.contains(&format!("{draining}: /ready 503")), "{msg}");
        assert!(msg.contains(&format!("{dead}: unreachable")), "{msg}");
        assert!(!msg.contains(&format!("  - {ok}")), "{msg}");
    }

    #[tokio::test]
    async fn cancellation_stops_the_wait() {
        let old = fake_proxy(Arc::new(Mutex::new((200, "v1".to_string())))).await;
        let tok = CancellationToken::new();
        tok.cancel();
        let err = wait(
            &client().unwrap(),
            &[old],
            "v2",
            1,
            Duration::from_secs(30),
            &tok,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RolloutError::Cancelled));
    }
}
