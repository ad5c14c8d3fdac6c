//! The strict lane: a small HTTP layer of our own in front of moto that
//! enforces the AWS rules moto does not, so acceptance tests see what a
//! first apply against real AWS would see.
//!
//! Requests reach the lane exactly as they would reach AWS (the provider's
//! `endpoints` point at it); the lane reads who sent each one and for which
//! region from its SigV4 credential scope, applies the rules below, and
//! forwards what passes to moto, telling moto the caller's account with
//! moto's own `x-moto-account-id` header. S3 is addressed path-style, as
//! the tests configure it.
//!
//! | Rule | AWS documentation |
//! |---|---|
//! | **S3 home region.** A bucket lives in the region CreateBucket's `LocationConstraint` names (none: us-east-1; `EU`: eu-west-1). A request signed for another region gets `301 PermanentRedirect` with `x-amz-bucket-region` (HeadBucket too, without a body); GetBucketLocation answers from any region, truthfully. A `LocationConstraint` other than the endpoint's region is refused (`IllegalLocationConstraintException`) outside us-east-1. | S3 User Guide, "Making requests" / "Virtual hosting of buckets" (wrong-region requests are redirected with 301 PermanentRedirect); S3 API Reference, HeadBucket (`x-amz-bucket-region`), GetBucketLocation, CreateBucket |
//! | **CreateBucket of a bucket you own:** `200` in us-east-1, `409 BucketAlreadyOwnedByYou` elsewhere; another account's name: `409 BucketAlreadyExists`. | S3 API Reference, CreateBucket, "Errors" |
//! | **PutBucketReplication** is refused (`400 InvalidRequest`) unless the source and every destination bucket exist with versioning Enabled; also a rule replicating delete markers with a tag filter, SSE-KMS objects without a `ReplicaKmsKeyID`, or an `AccessControlTranslation` without `Account`. | S3 User Guide, "Requirements and considerations for replication", "Replicating delete markers between buckets" (not supported for tag-based rules), "Replicating objects created with server-side encryption (SSE-KMS)", "Changing the replica owner"; S3 API Reference, PutBucketReplication |
//! | **Versioning reads lag writes:** for [`StrictConfig::versioning_lag`] after a PutBucketVersioning, GetBucketVersioning may answer the previous state. | S3 User Guide, "Enabling versioning on buckets" (wait 15 minutes after enabling versioning; changes propagate eventually) |
//! | **Another account's bucket:** every request on it gets `403 AccessDenied` (HeadBucket with `x-amz-bucket-region`). No bucket policies are modelled. The account is moto's: the access key's entry in [`StrictConfig::accounts`], else `123456789012`. | S3 API Reference, HeadBucket ("403 Forbidden" when you lack permission), GetBucketLocation (bucket owner only) |
//! | **Deletes refused per version:** versions chosen with [`StrictLane::refuse_delete`] fail DeleteObject with `403 AccessDenied` and appear as per-key `<Error>`s in DeleteObjects (governance locks give way to `x-amz-bypass-governance-retention: true`). DeleteObjects is answered by the lane, key by key, as S3 does. | S3 API Reference, DeleteObjects ("Error" elements per key); S3 User Guide, "Using S3 Object Lock" (governance bypass) |
//! | **Route 53 rate:** [`StrictConfig::route53_requests_per_second`] (5) per account, beyond that `400 Throttling` "Rate exceeded"; [`StrictLane::throttle_route53`] throttles every request. | Route 53 Developer Guide, "Quotas", "Maximums on API requests" |
//! | **Route 53 changes propagate:** a ChangeInfo (ChangeResourceRecordSets, CreateHostedZone, DeleteHostedZone) is `PENDING` for [`StrictConfig::change_pending`] before `INSYNC`, with an ID of its own that GetChange follows. | Route 53 API Reference, ChangeResourceRecordSets, GetChange |
//! | **Failover PRIMARY needs a health check:** a non-alias PRIMARY without `HealthCheckId` is refused (`400 InvalidChangeBatch` "A non-alias primary ResourceRecordSet must have an associated health check"; real Route 53 reports it as a change-batch error). | Route 53 Developer Guide, "Configuring active-passive failover"; the message as AWS returns it (kubernetes-sigs/external-dns#2362) |
//! | **Names outside the zone** are refused (`InvalidChangeBatch` "RRSet with DNS name ... is not permitted in zone ..."), judged on whole labels. | Route 53 API Reference, ChangeResourceRecordSets, "Errors" |
//! | **Change-batch size:** at most 1,000 ResourceRecord elements and 32,000 characters of `Value`s per request, UPSERTs counting twice. | Route 53 Developer Guide, "Quotas", "Maximums on API requests" |
//! | **HealthCheckVersion** starts at 1 and grows with every UpdateHealthCheck; an update naming another version gets `409 HealthCheckVersionMismatch`. | Route 53 API Reference, UpdateHealthCheck (`HealthCheckVersion`) |
//! | **TXT character-strings** of more than 255 bytes (after `\ddd` and `\X` escapes) are refused (`InvalidChangeBatch` "CharacterStringTooLong (Value is too long)"). | RFC 1035 §3.3 (a character-string is a length byte and at most 255 bytes); Route 53 Developer Guide, "Supported DNS record types", TXT (octal escapes) |
//! | **Health checks of type CLOUDWATCH_METRIC and RECOVERY_CONTROL** need their `AlarmIdentifier` or `RoutingControlArn` (`400 InvalidInput`), and read back with them, their `InsufficientDataHealthStatus`, and none of the endpoint settings (port, interval, threshold) moto invents for every check. | Route 53 API Reference, CreateHealthCheck and HealthCheckConfig (`AlarmIdentifier`, `InsufficientDataHealthStatus`, `RoutingControlArn`) |
//!
//! Where moto itself departs from AWS in ways these rules would trip over,
//! the lane corrects it at its edge: GetBucketVersioning gets S3's
//! document, and a CREATE that moto refuses only because it once journalled
//! the same record (moto's change-journal quirk) is replayed as the UPSERT
//! it then equals, under the zone's lock.
//!
//! The lane runs in the test process on a thread of its own, on a free
//! loopback port, and stops when dropped.

mod route53;
mod s3;
mod sigv4;
mod xml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::{HarnessError, Moto};

pub use sigv4::Scope;

/// The account moto gives an access key it does not know; the lane does
/// the same.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Route 53's documented limit: five requests per second per account.
pub const ROUTE53_REQUESTS_PER_SECOND: u32 = 5;

/// How long a change stays PENDING by default: long enough that a caller
/// must really wait for INSYNC (at least one GetChange sees PENDING), short
/// enough for a test suite. Real changes usually take under a minute.
pub const DEFAULT_CHANGE_PENDING: Duration = Duration::from_secs(2);

/// How long versioning reads may lag a write by default: enough that a
/// read straight after the write sees the old state, short enough for tests.
pub const DEFAULT_VERSIONING_LAG: Duration = Duration::from_secs(1);

/// Knobs of a lane, fixed when it starts. [`StrictConfig::default`] is the
/// AWS-like lane the acceptance tests use.
#[derive(Debug, Clone)]
pub struct StrictConfig {
    /// Route 53 requests allowed per second and account (also the burst);
    /// 0 disables the limit.
    pub route53_requests_per_second: u32,
    /// How long each Route 53 change is PENDING before INSYNC.
    pub change_pending: Duration,
    /// How long GetBucketVersioning may answer the state before the last
    /// PutBucketVersioning.
    pub versioning_lag: Duration,
    /// Access key ID to account ID; unknown keys belong to
    /// [`DEFAULT_ACCOUNT`], as in moto.
    pub accounts: BTreeMap<String, String>,
}

impl Default for StrictConfig {
    fn default() -> StrictConfig {
        StrictConfig {
            route53_requests_per_second: ROUTE53_REQUESTS_PER_SECOND,
            change_pending: DEFAULT_CHANGE_PENDING,
            versioning_lag: DEFAULT_VERSIONING_LAG,
            accounts: BTreeMap::new(),
        }
    }
}

impl StrictConfig {
    /// Sets the Route 53 rate per account (0: unlimited).
    pub fn route53_rate(mut self, per_second: u32) -> StrictConfig {
        self.route53_requests_per_second = per_second;
        self
    }

    /// Sets how long changes stay PENDING.
    pub fn change_pending(mut self, d: Duration) -> StrictConfig {
        self.change_pending = d;
        self
    }

    /// Sets how long versioning reads may lag writes.
    pub fn versioning_lag(mut self, d: Duration) -> StrictConfig {
        self.versioning_lag = d;
        self
    }

    /// Makes `access_key` a key of `account`.
    pub fn account(mut self, access_key: &str, account: &str) -> StrictConfig {
        self.accounts
            .insert(access_key.to_string(), account.to_string());
        self
    }
}

/// Why a chosen object version refuses deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A policy denies it: nothing the caller can do.
    AccessDenied,
    /// Object Lock in governance mode: `x-amz-bypass-governance-retention`
    /// lets it go.
    GovernanceLock,
    /// Object Lock in compliance mode: nobody can delete it.
    ComplianceLock,
}

/// A running strict lane.
pub struct StrictLane {
    state: Arc<State>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StrictLane {
    /// One lane with the default rules per test binary, in front of
    /// [`Moto::shared`]; [`crate::sdk::OTHER_ACCESS_KEY`] is a key of
    /// another account there.
    pub fn shared() -> &'static StrictLane {
        static SHARED: OnceLock<StrictLane> = OnceLock::new();
        SHARED.get_or_init(|| {
            let config = StrictConfig::default()
                .account(crate::sdk::OTHER_ACCESS_KEY, crate::sdk::OTHER_ACCOUNT);
            StrictLane::start(Moto::shared(), config).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    /// Starts a lane in front of `moto` on a free loopback port.
    pub fn start(moto: &Moto, config: StrictConfig) -> Result<StrictLane, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::new(moto.port(), config));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let s2 = Arc::clone(&state);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("strict-lane".into())
            .spawn(move || rt.block_on(serve(s2, listener, stopped)))?;
        Ok(StrictLane {
            state,
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A provider block sending every service through this lane.
    pub fn provider_block(&self) -> String {
        self.provider_block_with("")
    }

    /// [`StrictLane::provider_block`] with `extra` (more arguments of the
    /// provider block, e.g. `route53_requests_per_second`) appended.
    pub fn provider_block_with(&self, extra: &str) -> String {
        let e = self.endpoint();
        crate::provider_block_for(&e, &e, None, extra)
    }

    /// Makes deleting `key` (one version, or all with `None`) in `bucket`
    /// fail for `why`.
    pub fn refuse_delete(&self, bucket: &str, key: &str, version_id: Option<&str>, why: Refusal) {
        self.state.lock().refusals.push(DeleteRefusal {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.map(str::to_string),
            why,
        });
    }

    /// Lets every object version be deleted again.
    pub fn clear_refusals(&self) {
        self.state.lock().refusals.clear();
    }

    /// Throttles every Route 53 request (or stops doing so).
    pub fn throttle_route53(&self, all: bool) {
        self.state.lock().throttle_all = all;
    }

    /// How many Route 53 requests were answered with Throttling so far.
    pub fn route53_throttled(&self) -> u64 {
        self.state.lock().throttled
    }

    /// Route 53 requests received so far by operation name (e.g.
    /// `ListResourceRecordSets`); those refused with Throttling are counted
    /// apart, as `ListResourceRecordSets (throttled)`.
    pub fn route53_calls(&self) -> BTreeMap<String, u64> {
        self.state.lock().route53_calls.clone()
    }

    /// Makes the next CREATE of record name `name` fail as "already exists",
    /// as when another writer created the record and removed it again
    /// between the caller's look and its write.
    pub fn refuse_next_create(&self, name: &str) {
        self.state.lock().refuse_create.insert(dns_name(name));
    }

    /// The actions (`CREATE`, `UPSERT`, `DELETE`) of every change to record
    /// name `name` that reached moto, in order.
    pub fn change_actions(&self, name: &str) -> Vec<String> {
        let name = dns_name(name);
        self.state
            .lock()
            .change_log
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The version the lane holds for a health check.
    pub fn health_check_version(&self, id: &str) -> Option<i64> {
        self.state.lock().health_checks.get(id).copied()
    }
}

impl Drop for StrictLane {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A record name as the lane compares them: lowercase, fully qualified,
/// `\052` read as `*`.
pub(crate) fn dns_name(n: &str) -> String {
    let mut s = n.trim().to_ascii_lowercase().replace("\\052", "*");
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

struct DeleteRefusal {
    bucket: String,
    key: String,
    version_id: Option<String>,
    why: Refusal,
}

/// What the lane knows of a bucket created through it.
#[derive(Debug, Clone)]
struct Bucket {
    region: String,
    account: String,
    /// Versioning as last written: `None` never enabled.
    versioning: Option<String>,
    /// Until when reads may still see `lagging`, the state before the last write.
    lag_until: Option<Instant>,
    lagging: Option<String>,
}

/// A token bucket per account: `rate` tokens a second, at most `rate` held.
struct Limiter {
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
struct Inner {
    buckets: HashMap<String, Bucket>,
    refusals: Vec<DeleteRefusal>,
    health_checks: HashMap<String, i64>,
    /// What moto drops of each health check (alarm, routing control).
    health_check_extras: HashMap<String, route53::HealthCheckExtras>,
    /// Change ID to the instant it becomes INSYNC.
    changes: HashMap<String, Instant>,
    next_change: u64,
    zones: HashMap<String, String>,
    limiters: HashMap<String, Limiter>,
    throttle_all: bool,
    throttled: u64,
    /// Route 53 requests by operation; throttled ones under `OP (throttled)`.
    route53_calls: BTreeMap<String, u64>,
    refuse_create: HashSet<String>,
    change_log: Vec<(String, String)>,
}

/// The lane's shared state.
struct State {
    config: StrictConfig,
    moto: Upstream,
    inner: Mutex<Inner>,
    /// One writer per hosted zone at a time, as Route 53 processes a zone's
    /// change batches one after another.
    zone_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl State {
    fn new(moto_port: u16, config: StrictConfig) -> State {
        State {
            config,
            moto: Upstream::new(moto_port),
            inner: Mutex::new(Inner::default()),
            zone_locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn account_of(&self, scope: Option<&Scope>) -> String {
        scope
            .and_then(|s| self.config.accounts.get(&s.access_key))
            .cloned()
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string())
    }

    fn zone_lock(&self, zone: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.zone_locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(zone.to_string()).or_default())
    }

    /// Forwards a request to moto as the caller's account.
    async fn forward(&self, req: &Req) -> Reply {
        self.moto
            .send(
                req.method.clone(),
                &req.path_and_query(),
                req.headers.clone(),
                req.body.clone(),
                &req.account,
            )
            .await
    }
}

/// A request as the lane sees it: read whole, with its scope and account.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    method: Method,
    /// The path, still percent-encoded.
    path: String,
    /// The raw query string, without `?`.
    query: String,
    headers: HeaderMap,
    body: Bytes,
    scope: Option<Scope>,
    account: String,
}

impl Req {
    fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// True when the query has the parameter `name` (with or without a value).
    fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// The decoded value of query parameter `name` (empty when it has none).
    fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response, whole.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        Reply {
            status,
            headers,
            body: body.into(),
        }
    }

    fn xml(status: StatusCode, body: String) -> Reply {
        Reply::new(status, "application/xml", body)
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// The body as text (lossy), for rewriting XML answers.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn with_body(mut self, body: String) -> Reply {
        self.body = Bytes::from(body);
        self.headers.remove(http::header::CONTENT_LENGTH);
        self
    }

    fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut resp = http::Response::new(Full::new(self.body));
        *resp.status_mut() = self.status;
        for (k, v) in &self.headers {
            if k != http::header::TRANSFER_ENCODING && k != http::header::CONNECTION {
                resp.headers_mut().append(k.clone(), v.clone());
            }
        }
        resp
    }
}

/// The HTTP client to moto.
struct Upstream {
    authority: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Upstream {
    fn new(port: u16) -> Upstream {
        Upstream {
            authority: format!("127.0.0.1:{port}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
        account: &str,
    ) -> Reply {
        for h in [
            http::header::HOST,
            http::header::CONNECTION,
            http::header::TRANSFER_ENCODING,
            http::header::EXPECT,
            http::header::CONTENT_LENGTH,
        ] {
            headers.remove(h);
        }
        if let Ok(v) = HeaderValue::from_str(account) {
            headers.insert("x-moto-account-id", v);
        }
        let uri = format!("http://{}{path_and_query}", self.authority);
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.headers_mut() = headers;
        match uri.parse() {
            Ok(u) => *req.uri_mut() = u,
            Err(e) => return Reply::new(StatusCode::BAD_GATEWAY, "text/plain", e.to_string()),
        }
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                return Reply::new(
                    StatusCode::BAD_GATEWAY,
                    "text/plain",
                    format!("strict lane: moto unreachable: {e}"),
                )
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A request of the lane's own to moto, signed as `account`'s default
    /// key for `service` in `region`.
    async fn own(
        &self,
        method: Method,
        path_and_query: &str,
        service: &str,
        region: &str,
        account: &str,
    ) -> Reply {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&sigv4::authorization("strict-lane", region, service))
        {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        headers.insert("x-amz-date", HeaderValue::from_static("20250101T000000Z"));
        self.send(method, path_and_query, headers, Bytes::new(), account)
            .await
    }
}

async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, req).await.into_response()) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(state: &State, req: http::Request<hyper::body::Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Reply::new(StatusCode::BAD_REQUEST, "text/plain", e.to_string()),
    };
    let query = parts.uri.query().unwrap_or("").to_string();
    let scope = sigv4::scope(
        parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &query,
    );
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        account: state.account_of(scope.as_ref()),
        headers: parts.headers,
        body,
        scope,
    };
    match req.scope.as_ref().map(|s| s.service.as_str()) {
        Some("s3") => s3::handle(state, &req).await,
        Some("route53") => route53::handle(state, &req).await,
        _ => state.forward(&req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_fully_qualified_and_lowercase() {
        assert_eq!(dns_name("API.Example.com"), "api.example.com.");
        assert_eq!(dns_name("\\052.example.com."), "*.example.com.");
    }

    #[test]
    fn defaults_are_aws_like() {
        let c = StrictConfig::default().account("OTHER", "210987654321");
        assert_eq!(c.route53_requests_per_second, 5);
        assert!(c.change_pending > Duration::ZERO);
        assert_eq!(c.accounts["OTHER"], "210987654321");
    }
}
