//! The Redis/Valkey second tier, shared by the fleet: objects up to
//! `redis.max_object_bytes` that one proxy fetched are hits for every other
//! proxy, and the fleet-wide rate limit keeps its token buckets there.
//!
//! Each thread that talks to Redis (every data-path worker, and the control
//! loop for purges and probes) has its own share of the pool, driven by its
//! own event loop: a Redis hit then never hops to another thread and back.
//!
//! Redis is an optimisation, never a dependency. Every call has
//! `redis.timeout`; the first connection-level failure marks the tier down,
//! the data path then skips it entirely (no timeouts paid per request), and
//! a background probe (`probe`, driven by the server's control loop) marks
//! it up again once every pooled connection answers a PING.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RedisFuture, Value};

use crate::cache::CachedObject;

mod value;

use value::{decode, notice_mac, notice_verifies, Decoded, Encoded};
pub use value::{Clamp, Keys, NOTICE_MAX_AGE};

/// Prefix of every object key, with a format version: a proxy that reads a
/// value written in another format must miss, not misparse.
const OBJECT_PREFIX: &str = "tandem:o1:";

/// Prefix of the per-key sets listing the versioned copies of a key.
const VERSIONS_PREFIX: &str = "tandem:v1:";

/// Time allowed for a purge notice to reach the other proxies: pub/sub on
/// one network, a few milliseconds at most.
const PURGE_NOTICE_LATENCY: Duration = Duration::from_millis(50);

/// Channel on which purges are announced to every proxy of the fleet.
/// Classic pub/sub is broadcast cluster-wide, so one subscription to any
/// node hears every proxy's purges.
const PURGE_CHANNEL: &str = "tandem:purge";

/// Prefix of the fleet-wide rate-limit buckets.
const RATE_PREFIX: &str = "tandem:rl:";

/// Keys asked of each node per SCAN step during a prefix purge: large
/// enough to finish quickly, small enough not to block Redis.
const SCAN_COUNT: usize = 1000;

/// A purge walks every node's keyspace; it gets this long in all, not the
/// per-call `redis.timeout`.
pub const PURGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The fleet-wide token bucket, run atomically inside Redis with Redis's
/// own clock, so proxies with skewed clocks still share one rate. Returns
/// `{allowed, wait_ms}`.
const TOKEN_BUCKET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait}
";

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The tier is marked down; the call was not attempted.
    #[error("redis is marked down; skipped until the background probe reaches it")]
    Down,
    /// No answer within `redis.timeout` (or `PURGE_TIMEOUT`).
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
}

/// One multiplexed connection: to a single node (reconnecting by itself)
/// or to a cluster (slot map, MOVED/ASK and reconnects handled inside).
#[derive(Clone)]
enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How a thread's connections are made: lazily, on the thread's own
/// runtime, which then drives them.
enum Factory {
    Node(redis::Client, ConnectionManagerConfig),
    Cluster(redis::cluster::ClusterClient, redis::cluster::ClusterConfig),
}

impl Factory {
    fn make(&self) -> Result<Conn, RedisError> {
        Ok(match self {
            Factory::Node(client, cfg) => Conn::Node(ConnectionManager::new_lazy_with_config(
                client.clone(),
                cfg.clone(),
            )?),
            Factory::Cluster(client, cfg) => {
                Conn::Cluster(client.get_pending_async_connection_with_config(cfg.clone()))
            }
        })
    }
}

/// Identifies a `Tier` in the thread-local pools (an address could be
/// reused by the next tier after a reload).
static TIER_IDS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's connections: for which tier, the connections, and the
    /// round-robin position.
    static LOCAL: RefCell<Option<(u64, Vec<Conn>, usize)>> = const { RefCell::new(None) };
}

/// The tier of one config; reused across reloads that leave the `redis`
/// section and the CA file alone, so connections survive them.
pub struct Tier {
    /// The section it was built from.
    pub settings: tandem_fleet_config::Redis,
    /// The contents of `tls_ca_file` when the tier was built.
    ca_pem: Option<Vec<u8>>,
    id: u64,
    factory: Factory,
    /// Connections per thread: `pool_size` spread over the workers and the
    /// control loop.
    per_thread: usize,
    /// Every thread's connections, so the probe can reach (and so
    /// reconnect) all of them.
    all: Mutex<Vec<Conn>>,
    /// Plain connections to the configured nodes, in order, for the purge
    /// subscription.
    subscribe_to: Vec<redis::Client>,
    up: AtomicBool,
    /// Writes hold it shared; a purge takes it whole to wait them out.
    writes: tokio::sync::RwLock<()>,
    /// The fleet's signing keys (`redis.signing_key_env`): values and
    /// purge notices are signed and checked with them.
    keys: Option<Keys>,
    /// Whether Redis is reached with a password, and over TLS (for
    /// `/status`: a Redis with neither lets anyone who reaches it read and
    /// write the fleet's cache).
    pub password: bool,
    /// See `password`.
    pub tls: bool,
    /// Largest object written to Redis.
    pub max_object_bytes: u64,
    timeout: Duration,
}

impl Tier {
    /// Checks the URLs; connections are made lazily, by each thread on
    /// first use, so building never blocks and a Redis that is down at
    /// startup costs nothing but a warning.
    pub fn new(
        settings: &tandem_fleet_config::Redis,
        password: Option<String>,
        keys: Option<Keys>,
    ) -> Result<Tier, String> {
        let timeout = settings.timeout.0;
        let threads =
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) + 1;
        let per_thread = (settings.pool_size.max(1) as usize).div_ceil(threads);
        // Read here, and compared on every reload (`reusable`): a CA
        // replaced in place takes effect at the next SIGHUP, as nginx's
        // trusted certificates do.
        let tls = match &settings.tls_ca_file {
            None => None,
            Some(f) => {
                let pem =
                    std::fs::read(f).map_err(|e| format!("redis.tls_ca_file: reading {f}: {e}"))?;
                if !pem
                    .windows(b"-----BEGIN CERTIFICATE-----".len())
                    .any(|w| w == b"-----BEGIN CERTIFICATE-----")
                {
                    return Err(format!("redis.tls_ca_file: {f} holds no PEM certificate"));
                }
                Some(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                })
            }
        };
        let mut subscribe_to = Vec::with_capacity(settings.urls.len());
        for (i, url) in settings.urls.iter().enumerate() {
            let mut info = url
                .as_str()
                .into_connection_info()
                .map_err(|e| format!("redis.urls[{i}]: {}", describe(&e)))?;
            if let Some(p) = &password {
                let r = info.redis_settings().clone().set_password(p);
                info = info.set_redis_settings(r);
            }
            let client = match &tls {
                Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
                None => redis::Client::open(info),
            };
            subscribe_to.push(client.map_err(|e| format!("redis.urls[{i}]: {}", describe(&e)))?);
        }
        let factory = if settings.cluster {
            let mut b =
                redis::cluster::ClusterClientBuilder::new(settings.urls.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // One retry inside the client: a MOVED or a reconnect is
                    // worth one more try; more would outlast `timeout`.
                    .retries(1);
            if let Some(p) = &password {
                b = b.password(p);
            }
            if let Some(certs) = &tls {
                b = b.certs(certs.clone());
            }
            let client = b
                .build()
                .map_err(|e| format!("redis.urls: {}", describe(&e)))?;
            let cfg = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Factory::Cluster(client, cfg)
        } else {
            let client = subscribe_to.first().ok_or("redis.urls: empty")?.clone();
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1);
            Factory::Node(client, cfg)
        };
        let has_password = password.is_some();
        let all_tls = settings.urls.iter().all(|u| u.starts_with("rediss://"));
        if !has_password && !all_tls {
            tracing::warn!("redis has neither a password nor TLS: anyone who reaches it can read and write the fleet's cache; set redis.password_env or use rediss://");
        }
        if keys.is_none() {
            tracing::warn!("redis.signing_key_env is not set: values and purge notices in Redis are not signed, so anyone who can write to Redis can serve any body to the fleet or empty its memory");
        }
        Ok(Tier {
            settings: settings.clone(),
            ca_pem: tls.and_then(|t| t.root_cert),
            id: TIER_IDS.fetch_add(1, Ordering::Relaxed),
            factory,
            per_thread,
            all: Mutex::new(Vec::new()),
            subscribe_to,
            // Optimistic: the first failure marks it down within one call.
            up: AtomicBool::new(true),
            writes: tokio::sync::RwLock::new(()),
            keys,
            password: has_password,
            tls: all_tls,
            max_object_bytes: settings.max_object_bytes.0,
            timeout,
        })
    }

    /// Whether a reload to `settings` may keep this tier: the same section,
    /// and a CA file that still holds what it held (an unreadable one is
    /// a change, so the rebuild reports why).
    pub fn reusable(&self, settings: &tandem_fleet_config::Redis) -> bool {
        self.settings == *settings
            && match &settings.tls_ca_file {
                None => true,
                Some(f) => std::fs::read(f).ok() == self.ca_pem,
            }
    }

    /// Whether the data path should use Redis now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// One of this thread's connections (made on first use, on this
    /// thread's runtime).
    fn conn(&self) -> Result<Conn, TierError> {
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if l.as_ref().is_none_or(|(id, _, _)| *id != self.id) {
                let conns = (0..self.per_thread)
                    .map(|_| self.factory.make())
                    .collect::<Result<Vec<_>, _>>()?;
                self.all
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(conns.iter().cloned());
                *l = Some((self.id, conns, 0));
            }
            let (_, conns, next) = l.as_mut().expect("set above");
            *next = (*next + 1) % conns.len();
            Ok(conns[*next].clone())
        })
    }

    /// Runs `cmd` within `redis.timeout`.
    async fn call<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, TierError> {
        self.guarded(self.timeout, |mut c| async move {
            Ok(cmd.query_async(&mut c).await?)
        })
        .await
    }

    /// The one way work reaches Redis: skipped while the tier is down, on
    /// one of this thread's connections, bounded by `limit`, and a
    /// connection-level failure marks the tier down.
    async fn guarded<T, Fut>(
        &self,
        limit: Duration,
        work: impl FnOnce(Conn) -> Fut,
    ) -> Result<T, TierError>
    where
        Fut: std::future::Future<Output = Result<T, TierError>>,
    {
        if !self.is_up() {
            return Err(TierError::Down);
        }
        let c = self.conn()?;
        let r = match tokio::time::timeout(limit, work(c)).await {
            Err(_) => Err(TierError::Timeout(limit)),
            Ok(r) => r,
        };
        if let Err(e) = &r {
            self.failed(e);
        }
        r
    }

    fn failed(&self, e: &TierError) {
        let connection = match e {
            TierError::Down => false,
            TierError::Timeout(_) => true,
            TierError::Redis(r) => {
                r.is_io_error()
                    || r.is_timeout()
                    || r.is_connection_dropped()
                    || r.is_connection_refusal()
                    || r.is_unrecoverable_error()
                    // A cluster without full slot coverage answers
                    // nothing useful until an operator fixes it.
                    || r.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
            }
        };
        if connection && self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, "redis tier down: serving from memory and origin until it answers again");
        }
    }

    /// PINGs every thread's connections (the control loop calls this each
    /// second while the tier is down) and marks the tier up once all of
    /// them answer. Each connection reconnects only when a command fails on
    /// it, so probing some would leave the rest broken.
    pub async fn probe(&self) -> bool {
        let limit = self.timeout.max(Duration::from_millis(500));
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if all.is_empty() {
            match self.conn() {
                Ok(c) => all.push(c),
                Err(_) => return false,
            }
        }
        let pings = all.into_iter().map(|mut c| async move {
            matches!(
                tokio::time::timeout(limit, redis::cmd("PING").query_async::<String>(&mut c)).await,
                Ok(Ok(_))
            )
        });
        let ok = futures::future::join_all(pings)
            .await
            .into_iter()
            .all(|ok| ok);
        if ok && !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("redis tier up again");
        }
        ok
    }

    /// The object stored under cache key `ck`, if it is there, believed
    /// (see [`value`]) and within its keep window, its lifetime clamped to
    /// `clamp`.
    pub async fn get(&self, ck: &str, clamp: Clamp) -> Result<Lookup, TierError> {
        let rkey = object_key(ck);
        let mut get = redis::cmd("GET");
        get.arg(&rkey);
        let v: Option<Vec<u8>> = self.call(get).await?;
        let Some(v) = v else {
            return Ok(Lookup::Miss);
        };
        Ok(
            match decode(
                Bytes::from(v),
                SystemTime::now(),
                &rkey,
                self.keys.as_ref(),
                clamp,
            ) {
                Decoded::Object(o) => Lookup::Hit(Arc::new(*o)),
                Decoded::Expired => Lookup::Miss,
                Decoded::Rejected(why) => Lookup::Rejected(why),
            },
        )
    }

    /// Whether values and notices are signed.
    pub fn signed(&self) -> bool {
        self.keys.is_some()
    }

    /// Stores `o` under `ck` for what is left of its ttl + keep (Redis
    /// expires it then), unless `still_valid` says a purge has overtaken
    /// it. The check and the write happen under the purge fence, so a
    /// purge that passed [`Tier::fence`] is never followed by a write of
    /// what it purged. Objects over `max_object_bytes` are not stored. The
    /// body goes straight from the cached chunks into the command.
    pub async fn put(
        &self,
        ck: &str,
        o: &CachedObject,
        still_valid: impl FnOnce() -> bool,
    ) -> Result<bool, TierError> {
        if o.body.len() as u64 > self.max_object_bytes {
            return Ok(false);
        }
        let _fence = self.writes.read().await;
        if !still_valid() {
            return Ok(false);
        }
        let ms = o.remaining().as_millis().max(1) as u64;
        let rkey = object_key(ck);
        let mut set = redis::cmd("SET");
        set.arg(&rkey)
            .arg(Encoded::new(
                o,
                SystemTime::now(),
                &rkey,
                self.keys.as_ref(),
            ))
            .arg("PX")
            .arg(ms);
        self.call::<()>(set).await?;
        // A versioned copy is listed under its key, so a purge of the key
        // finds every version without scanning the keyspace.
        if let Some((head, _)) = split_version(ck) {
            let index = versions_key(head);
            let mut add = redis::cmd("SADD");
            add.arg(&index).arg(object_key(ck));
            self.call::<i64>(add).await?;
            let mut keep = redis::cmd("PEXPIRE");
            keep.arg(&index).arg(ms).arg("GT");
            // NX for an index that has no expiry yet; GT extends it.
            if self.call::<i64>(keep).await? == 0 {
                let mut first = redis::cmd("PEXPIRE");
                first.arg(&index).arg(ms).arg("NX");
                self.call::<i64>(first).await?;
            }
        }
        Ok(true)
    }

    /// How long a purge waits after announcing itself before its second
    /// pass over Redis: every proxy that heard the notice has by then
    /// fenced its own writes (each bounded by `redis.timeout`), so a copy
    /// one of them was writing as the purge began is removed too.
    pub fn settle(&self) -> Duration {
        self.timeout * 2 + PURGE_NOTICE_LATENCY
    }

    /// Waits until every write that started before now has finished: a
    /// purge calls it after marking what it purges, so no write of the
    /// purged copy can land after it.
    pub async fn fence(&self) {
        drop(self.writes.write().await);
    }

    /// Takes one token of `client`'s fleet-wide bucket: `Ok(Ok(()))` when
    /// allowed, `Ok(Err(wait))` when not.
    pub async fn take(
        &self,
        client: &str,
        rate: f64,
        burst: u32,
    ) -> Result<Result<(), Duration>, TierError> {
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        let script = SCRIPT.get_or_init(|| redis::Script::new(TOKEN_BUCKET));
        let mut inv = script.key(format!("{RATE_PREFIX}{client}"));
        inv.arg(rate / 1000.0).arg(burst.max(1));
        let (allowed, wait): (i64, i64) = self
            .guarded(self.timeout, |mut c| async move {
                Ok(inv.invoke_async(&mut c).await?)
            })
            .await?;
        Ok(if allowed == 1 {
            Ok(())
        } else {
            Err(Duration::from_millis(wait.max(1) as u64))
        })
    }

    /// Removes `key` (every version) or, with `prefix`, every key starting
    /// with it, of route `generation`. Returns how many were removed. A
    /// key's versions are found through its index; only a prefix purge
    /// walks the keyspace (every primary of a cluster).
    pub async fn purge(
        &self,
        generation: &str,
        key: &str,
        prefix: bool,
    ) -> Result<usize, TierError> {
        self.fence().await;
        let head_ck = format!("{generation}\0{key}");
        let head = object_key(&head_ck);
        let pattern = format!("{}*", glob_escape(&head));
        let index = versions_key(&head_ck);
        self.guarded(PURGE_TIMEOUT, |mut c| async move {
            let mut victims: Vec<Vec<u8>> = Vec::new();
            if prefix {
                match &mut c {
                    Conn::Node(n) => victims.extend(scan(n, None, &pattern).await?),
                    Conn::Cluster(cl) => {
                        let nodes: String = cl
                            .route_command(
                                redis::cmd("CLUSTER").arg("NODES").clone(),
                                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                            )
                            .await
                            .and_then(|v| String::from_redis_value(v).map_err(Into::into))?;
                        for (host, port) in primaries(&nodes) {
                            victims.extend(scan(&mut *cl, Some((host, port)), &pattern).await?);
                        }
                    }
                }
            } else {
                let versions: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                    .arg(&index)
                    .query_async(&mut c)
                    .await?;
                victims.push(head.into_bytes());
                victims.extend(versions);
                victims.push(index.into_bytes());
            }
            let mut removed = 0usize;
            for k in &victims {
                // One key per call: in a cluster the keys live in different
                // slots, and UNLINK frees memory off Redis's main thread.
                let n: usize = redis::cmd("UNLINK").arg(k).query_async(&mut c).await?;
                if !k.starts_with(VERSIONS_PREFIX.as_bytes()) {
                    removed += n;
                }
            }
            Ok(removed)
        })
        .await
    }
}

/// Counts a failed or skipped Redis call by operation; one that merely
/// found the tier down is not logged (the transition already was).
pub fn count_error(metrics: &crate::metrics::Metrics, op: &str, e: &TierError) {
    let reason = match e {
        TierError::Down => "down",
        _ => {
            tracing::debug!(op, error = %e, "redis call failed");
            "error"
        }
    };
    metrics.tier_errors.inc(&[op, reason]);
}

/// What a lookup in Redis found.
#[derive(Debug)]
pub enum Lookup {
    /// A believed copy.
    Hit(Arc<CachedObject>),
    /// Nothing (or an expired copy).
    Miss,
    /// A copy that was not believed (unsigned, badly signed, malformed).
    Rejected(&'static str),
}

/// A purge as announced on [`PURGE_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgeNotice {
    /// Route generation.
    pub generation: String,
    /// Key, or key prefix.
    pub key: String,
    /// Whether `key` is a prefix.
    pub prefix: bool,
    /// When it was sent (Unix ms): a signed notice older than
    /// [`NOTICE_MAX_AGE`] is a replay.
    #[serde(default)]
    pub at: u64,
    /// HMAC-SHA256 (hex) of the fields above under the fleet's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl PurgeNotice {
    /// A notice of a purge, sent now.
    pub fn new(generation: &str, key: &str, prefix: bool) -> PurgeNotice {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        PurgeNotice {
            generation: generation.to_string(),
            key: key.to_string(),
            prefix,
            at,
            mac: None,
        }
    }

    fn fields(&self) -> [Vec<u8>; 4] {
        [
            self.generation.clone().into_bytes(),
            self.key.clone().into_bytes(),
            vec![u8::from(self.prefix)],
            self.at.to_be_bytes().to_vec(),
        ]
    }
}

impl Tier {
    /// Whether a notice read from the channel is to be acted on: signed
    /// under the fleet's key and fresh, when the fleet signs.
    pub fn believe(&self, n: &PurgeNotice) -> Result<(), &'static str> {
        let Some(keys) = &self.keys else {
            return Ok(());
        };
        let Some(mac) = &n.mac else {
            return Err("unsigned");
        };
        let fields = n.fields();
        let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        if !notice_verifies(keys, &parts, mac) {
            return Err("bad_signature");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if now.abs_diff(n.at) > NOTICE_MAX_AGE.as_millis() as u64 {
            return Err("stale");
        }
        Ok(())
    }

    /// Tells every proxy subscribed to this Redis to purge its memory too.
    pub async fn announce(&self, notice: &PurgeNotice) -> Result<(), TierError> {
        let mut notice = notice.clone();
        if let Some(keys) = &self.keys {
            let fields = notice.fields();
            let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
            notice.mac = Some(notice_mac(keys, &parts));
        }
        let payload = serde_json::to_string(&notice).unwrap_or_default();
        self.call::<i64>(
            redis::cmd("PUBLISH")
                .arg(PURGE_CHANNEL)
                .arg(payload)
                .clone(),
        )
        .await
        .map(|_| ())
    }

    /// Subscribes to purge notices on the first configured node that
    /// accepts, calling `on` for each, until the subscription breaks or
    /// `stop` resolves. Returns why it ended.
    pub async fn listen(
        &self,
        mut on: impl FnMut(PurgeNotice),
        stop: impl std::future::Future<Output = ()>,
    ) -> String {
        use futures::StreamExt as _;
        let mut last = String::from("no node configured");
        for client in &self.subscribe_to {
            let limit = self.timeout.max(Duration::from_secs(1));
            let sub = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(PURGE_CHANNEL).await?;
                Ok::<_, RedisError>(ps)
            };
            let ps = match tokio::time::timeout(limit, sub).await {
                Ok(Ok(ps)) => ps,
                Ok(Err(e)) => {
                    last = describe(&e);
                    continue;
                }
                Err(_) => {
                    last = format!("no answer within {limit:?}");
                    continue;
                }
            };
            let mut stream = ps.into_on_message();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return "stopped".into(),
                    msg = stream.next() => match msg {
                        None => return "subscription closed".into(),
                        Some(m) => match serde_json::from_slice::<PurgeNotice>(m.get_payload_bytes()) {
                            Ok(n) => on(n),
                            Err(e) => tracing::warn!(error = %e, "ignoring a malformed purge notice"),
                        },
                    },
                }
            }
        }
        last
    }
}

/// SCANs one node (or the single node) for `pattern`.
async fn scan<C: RouteTo>(
    c: &mut C,
    node: Option<(String, u16)>,
    pattern: &str,
) -> Result<Vec<Vec<u8>>, TierError> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let cmd = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .clone();
        let (next, keys): (u64, Vec<Vec<u8>>) = c.run_on(cmd, node.clone()).await?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Sends a command to one node of a cluster, or to the one node.
trait RouteTo {
    fn run_on<T: FromRedisValue + Send>(
        &mut self,
        cmd: Cmd,
        node: Option<(String, u16)>,
    ) -> impl std::future::Future<Output = Result<T, TierError>> + Send;
}

impl RouteTo for ConnectionManager {
    async fn run_on<T: FromRedisValue + Send>(
        &mut self,
        cmd: Cmd,
        _node: Option<(String, u16)>,
    ) -> Result<T, TierError> {
        Ok(cmd.query_async(self).await?)
    }
}

impl RouteTo for ClusterConnection {
    async fn run_on<T: FromRedisValue + Send>(
        &mut self,
        cmd: Cmd,
        node: Option<(String, u16)>,
    ) -> Result<T, TierError> {
        let routing = match node {
            Some((host, port)) => {
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port })
            }
            None => RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        };
        let v = self.route_command(cmd, routing).await?;
        Ok(T::from_redis_value(v).map_err(RedisError::from)?)
    }
}

/// The primaries listed by CLUSTER NODES, as (host, port).
fn primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_id, addr, flags) = (f.next()?, f.next()?, f.next()?);
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((
                host.trim_matches(['[', ']']).to_string(),
                port.parse().ok()?,
            ))
        })
        .collect()
}

/// The Redis key of cache key `ck`.
fn object_key(ck: &str) -> String {
    format!("{OBJECT_PREFIX}{ck}")
}

/// Escapes Redis glob metacharacters, so a purged prefix matches literally.
fn glob_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Reports a Redis error without the URL (it may hold a password).
fn describe(e: &RedisError) -> String {
    format!("{:?}: {}", e.kind(), e.detail().unwrap_or("invalid"))
}

/// The key of the set listing the versioned copies of cache key `ck`
/// (which has no version part).
fn versions_key(ck: &str) -> String {
    format!("{VERSIONS_PREFIX}{ck}")
}

/// Splits a versioned cache key (`generation\0key\0version`) into its
/// key part and the version; `None` for an unversioned one.
fn split_version(ck: &str) -> Option<(&str, &str)> {
    let (head, version) = ck.rsplit_once('\0')?;
    head.contains('\0').then_some((head, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_keys_split_at_their_last_separator() {
        assert_eq!(split_version("g\0a/b\0v1"), Some(("g\0a/b", "v1")));
        assert_eq!(split_version("g\0a/b"), None);
    }

    #[test]
    fn purge_patterns_match_literally() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn primaries_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:30002@40002,host.example master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected 10923-16383
";
        assert_eq!(
            primaries(nodes),
            vec![
                ("127.0.0.1".to_string(), 30001),
                ("127.0.0.1".to_string(), 30002)
            ]
        );
    }
}
