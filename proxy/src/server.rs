//! Listeners and lifecycle: the data and admin listeners, the background
//! breaker prober, config reload on SIGHUP or file change, and the SIGTERM
//! drain (/ready 503 at once, stop accepting after `drain.delay`, let
//! in-flight requests finish within `drain.grace`, exit 0).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tandem_fleet_config::{FleetConfig, Format, DEFAULT_POLL_INTERVAL};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::body::ProxyBody;
use crate::client::OriginClient;
use crate::conn::{Budget, ConnLimits, Guarded, Tracked};
use crate::runtime::Runtime;
use crate::source::{Fetched, S3Source, Source};
use crate::state::State;

/// How often open breakers are checked for a due probe.
const PROBE_TICK: Duration = Duration::from_millis(250);
/// How often the config file is re-read for changes; cheap (a few KiB) and
/// robust to editors and ConfigMap symlink swaps that mtime checks miss.
const CONFIG_POLL: Duration = Duration::from_secs(1);
/// hyper refuses buffers smaller than this.
const MIN_HEADER_BUF: usize = 8192;
/// tokio's time driver wakes its own thread (an eventfd write and a wasted
/// trip through epoll) whenever a timer is registered earlier than every
/// timer it holds. On a worker whose only other timers are 30 s header
/// timeouts, that was every miss: each replica timeout is the earliest.
/// A timer that always fires within this floor keeps any longer replica
/// timeout from being the earliest, at the price of ten wake-ups a second
/// per idle worker.
const TIMER_FLOOR: Duration = Duration::from_millis(100);
/// Idle origin connections are swept every this many `TIMER_FLOOR` ticks
/// (a second): well inside `POOL_IDLE_TIMEOUT`'s margin to S3's own.
const IDLE_SWEEP_TICKS: u32 = 10;

/// Why the proxy could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config is unusable; one line per problem.
    #[error("{path}: {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Config {
        /// Config file.
        path: String,
        /// Every problem.
        problems: Vec<String>,
    },
    /// A listener could not bind.
    #[error("listening on {addr} ({which}): {source}")]
    Bind {
        /// data or admin.
        which: &'static str,
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TLS setup of the origin client failed.
    #[error("setting up the origin TLS client: {0}")]
    Tls(#[from] rustls::Error),
    /// Installing a signal handler failed.
    #[error("installing signal handlers: {0}")]
    Signal(std::io::Error),
    /// A worker thread could not be started.
    #[error("starting a worker thread: {0}")]
    Thread(std::io::Error),
}

fn env_lookup(v: &str) -> Option<String> {
    std::env::var(v).ok()
}

fn problems(e: tandem_fleet_config::LoadError) -> Vec<String> {
    match e {
        tandem_fleet_config::LoadError::Invalid(p) => p.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}

/// Loads and builds the config at `path`.
pub fn load(path: &Path, prev: Option<&Runtime>) -> Result<Runtime, Vec<String>> {
    let cfg = FleetConfig::load_file(path).map_err(problems)?;
    Runtime::build(cfg, prev, &env_lookup)
}

/// Builds a config document fetched from S3 (JSON as published, or YAML).
pub fn load_text(text: &str, prev: Option<&Runtime>) -> Result<Runtime, Vec<String>> {
    let format = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    };
    let cfg = FleetConfig::load_str(text, format).map_err(problems)?;
    Runtime::build(cfg, prev, &env_lookup)
}

/// How many times the S3 config is tried at startup before falling back
/// to the copy on disk.
const STARTUP_ATTEMPTS: u32 = 3;

/// Startup from S3: the object if it can be read and is valid, else the
/// last good copy on disk, else an error.
async fn initial_s3(src: &mut S3Source, client: &OriginClient) -> Result<Runtime, ServeError> {
    let mut why = Vec::new();
    for attempt in 1..=STARTUP_ATTEMPTS {
        match src.fetch(client).await {
            Ok(Fetched::Changed(text)) => match load_text(&text, None) {
                Ok(rt) => {
                    if let Err(e) = src.save_last_good(&text) {
                        tracing::warn!(error = %e, file = ?src.state_file(), "could not store the last good config on disk");
                    }
                    return Ok(rt);
                }
                Err(p) => {
                    why.extend(p);
                    break;
                }
            },
            // The first fetch sends no ETag, so a 304 cannot happen.
            Ok(Fetched::Unchanged) => break,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "config source not readable yet");
                why.push(e.to_string());
                if attempt < STARTUP_ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    src.forget_etag();
    if let Some(text) = src.last_good() {
        match load_text(&text, None) {
            Ok(rt) => {
                tracing::warn!(url = %src.url, file = ?src.state_file(), config_version = %rt.version, "config source unusable; serving the last good config from disk");
                return Ok(rt);
            }
            Err(p) => why.extend(
                p.into_iter()
                    .map(|x| format!("last good copy on disk: {x}")),
            ),
        }
    }
    Err(ServeError::Config {
        path: src.url.clone(),
        problems: why,
    })
}

/// Drain settings from the environment (`TANDEM_DRAIN_DELAY`,
/// `TANDEM_DRAIN_GRACE`), which override the config's so the Kubernetes
/// manifests can keep them equal to the pod's termination grace period.
/// Read at start: a bad value refuses to start, where a rollout shows it,
/// rather than turning every later SIGTERM into an exit without a drain.
#[derive(Debug, Default, Clone, Copy)]
struct DrainOverrides {
    delay: Option<Duration>,
    grace: Option<Duration>,
}

impl DrainOverrides {
    fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<DrainOverrides, ServeError> {
        let mut problems = Vec::new();
        let mut parse = |var: &str| {
            let v = env(var)?;
            humantime::parse_duration(v.trim())
                .map_err(|e| {
                    problems.push(format!(
                        "{var}={v:?}: {e} (a duration with its unit, e.g. 15s)"
                    ))
                })
                .ok()
        };
        let o = DrainOverrides {
            delay: parse("TANDEM_DRAIN_DELAY"),
            grace: parse("TANDEM_DRAIN_GRACE"),
        };
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(ServeError::Config {
                path: "environment".into(),
                problems,
            })
        }
    }

    fn apply(self, d: &mut tandem_fleet_config::Drain) {
        if let Some(v) = self.delay {
            d.delay.0 = v;
        }
        if let Some(v) = self.grace {
            d.grace.0 = v;
        }
    }
}

/// How often the JWKS refresher looks for a `jwks_url` that is due; a
/// token naming an unknown key wakes it at once.
const JWKS_TICK: Duration = Duration::from_secs(1);

/// Fetches every route's `jwks_url` when due: at start, every
/// `jwks_refresh`, again soon after a failure, and early (rate-limited)
/// when a token names a key the set does not hold. A failed fetch keeps
/// the last good keys.
async fn jwks_refresher(state: Arc<State>) {
    let mut tick = tokio::time::interval(JWKS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::auth::JWKS_WANTED.notified() => {}
        }
        let rt = state.runtime.load_full();
        for r in &rt.routes {
            let Some(j) = r.auth.as_ref().and_then(|a| a.remote()) else {
                continue;
            };
            if !j.due(std::time::Instant::now()) {
                continue;
            }
            let got = j.fetch(&state.client).await;
            let route = r.config.name.as_str();
            match j.update(std::time::Instant::now(), got) {
                Ok(keys) => {
                    state.metrics.jwks_fetches.inc(&[route, "ok"]);
                    tracing::info!(route, url = %j.url, keys, "JWKS fetched");
                }
                Err(e) => {
                    state.metrics.jwks_fetches.inc(&[route, "error"]);
                    tracing::warn!(route, url = %j.url, error = %e, "JWKS fetch failed; the last good keys keep serving");
                }
            }
        }
    }
}

/// How often a Redis tier marked down is probed with PING.
const TIER_PROBE: Duration = Duration::from_secs(1);

/// Brings a Redis tier marked down back once it answers; the data path
/// never waits on a dead Redis in the meantime.
async fn tier_prober(state: Arc<State>) {
    let mut tick = tokio::time::interval(TIER_PROBE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rt = state.runtime.load_full();
        if let Some(t) = rt.tier.as_ref().filter(|t| !t.is_up()) {
            t.probe().await;
        }
    }
}

/// Applies purges announced by other proxies through Redis to this
/// proxy's memory, so a purge through any proxy's admin port reaches the
/// whole fleet. Pub/sub is fire-and-forget: a proxy disconnected at the
/// moment of a purge keeps its copy until its TTL (it resubscribes within
/// a second).
async fn purge_listener(state: Arc<State>) {
    loop {
        let rt = state.runtime.load_full();
        let Some(tier) = rt.tier.clone() else {
            tokio::time::sleep(TIER_PROBE).await;
            continue;
        };
        // Resubscribe when a reload replaces the tier.
        let replaced = {
            let state = state.clone();
            let tier = tier.clone();
            async move {
                loop {
                    tokio::time::sleep(TIER_PROBE).await;
                    let cur = state.runtime.load();
                    if !cur.tier.as_ref().is_some_and(|t| Arc::ptr_eq(t, &tier)) {
                        return;
                    }
                }
            }
        };
        let st = state.clone();
        let why = tier
            .listen(
                |n| {
                    if let Err(why) = tier.believe(&n) {
                        st.metrics.tier_rejected.inc(&["notice", why]);
                        tracing::warn!(reason = why, key = %n.key, "ignoring a purge notice that is not the fleet's");
                        return;
                    }
                    let st = st.clone();
                    let tier = tier.clone();
                    tokio::spawn(async move {
                        let cache = st.runtime.load().cache.clone();
                        let purged = cache.purge(&n.generation, &n.key, n.prefix).await;
                        // Writes of the purged copy that were already on
                        // their way finish now, within the purging proxy's
                        // settle time, before its second pass.
                        tier.fence().await;
                        st.metrics.tier_purges_received.inc(&[]);
                        tracing::info!(generation = %n.generation, key = %n.key, prefix = n.prefix, purged, "purged on notice from the fleet");
                    });
                },
                replaced,
            )
            .await;
        if why != "stopped" {
            tracing::debug!(reason = %why, "purge subscription ended; retrying");
            tokio::time::sleep(TIER_PROBE).await;
        }
    }
}

/// Listen addresses given on the command line, overriding the document's
/// `listen` (several proxies on one host can then share one published
/// document).
#[derive(Debug, Default, Clone)]
pub struct ListenOverride {
    /// Data listener.
    pub data: Option<String>,
    /// Admin listener.
    pub admin: Option<String>,
    /// Worker threads (default: one per CPU).
    pub workers: Option<usize>,
}

/// Runs the proxy until SIGTERM/SIGINT and the drain complete.
pub async fn run(source: Source, over: ListenOverride) -> Result<(), ServeError> {
    let drain_env = DrainOverrides::from_env(|v| std::env::var(v).ok())?;
    let client = OriginClient::new()?;
    let (rt, source) = match source {
        Source::File(path) => {
            let rt = load(&path, None).map_err(|problems| ServeError::Config {
                path: path.display().to_string(),
                problems,
            })?;
            (rt, Source::File(path))
        }
        Source::S3(mut src) => (initial_s3(&mut src, &client).await?, Source::S3(src)),
    };
    let mut listen = rt.config.listen.clone();
    if let Some(d) = over.data {
        listen.data = d;
    }
    if let Some(a) = over.admin {
        listen.admin = a;
    }
    let limits = rt.config.limits.clone();
    raise_nofile(&limits);
    let state = State::new(rt, client);
    let bind = |which: &'static str, addr: String| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind {
                which,
                addr,
                source,
            })
    };
    // The data listener is bound here (so a bind error stops startup) and
    // shared by the workers.
    let data = std::net::TcpListener::bind(&listen.data)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServeError::Bind {
            which: "data",
            addr: listen.data.clone(),
            source,
        })?;
    let admin = bind("admin", listen.admin.clone()).await?;
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    let hup = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
    let workers = over.workers.unwrap_or_else(default_workers).max(1);
    tracing::info!(
        data = %listen.data,
        admin = %listen.admin,
        workers,
        config_version = %state.runtime.load().version,
        routes = state.runtime.load().routes.len(),
        "tandem-proxy serving"
    );

    tokio::spawn(admin_loop(state.clone(), admin));
    tokio::spawn(prober(state.clone()));
    tokio::spawn(tier_prober(state.clone()));
    tokio::spawn(jwks_refresher(state.clone()));
    tokio::spawn(purge_listener(state.clone()));
    match source {
        Source::File(path) => tokio::spawn(reloader(state.clone(), path, hup)),
        Source::S3(src) => tokio::spawn(poller(state.clone(), *src, hup)),
    };

    // One single-threaded runtime per worker thread, each accepting from
    // the shared listener, as nginx runs one event loop per worker: a
    // connection stays on one thread, so no work-stealing or cross-thread
    // wake-ups sit on the request path (with a work-stealing runtime the
    // 4 KiB hit p99 was 12x nginx's on two shared cores).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<Duration>);
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let l = data.try_clone().map_err(|source| ServeError::Bind {
            which: "data",
            addr: listen.data.clone(),
            source,
        })?;
        let (st, rx, limits) = (state.clone(), stop_rx.clone(), limits.clone());
        let budget = state.data_conns.clone();
        let h = std::thread::Builder::new()
            .name(format!("tandem-worker-{i}"))
            .spawn(move || worker(st, l, budget, rx, limits))
            .map_err(ServeError::Thread)?;
        handles.push(h);
    }
    drop(data);
    // Config loaded, both listeners bound and served: /ready answers 200
    // from here on, and a `Type=notify` unit counts as started.
    crate::notify::ready();

    let signal_name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };

    // Drain: readiness fails first so load balancers stop sending, while
    // the workers keep accepting what they still send during `delay`.
    let mut drain = state.runtime.load().config.drain.clone();
    drain_env.apply(&mut drain);
    state.draining.store(true, Ordering::SeqCst);
    crate::notify::stopping();
    tracing::info!(signal = signal_name, delay = ?drain.delay.0, grace = ?drain.grace.0, "draining: /ready now 503");
    tokio::time::sleep(drain.delay.0).await;
    let _ = stop_tx.send(Some(drain.grace.0));
    tracing::info!(
        in_flight = state.metrics.in_flight.load(Ordering::Relaxed),
        "stopped accepting; waiting for in-flight requests"
    );
    // Each worker gives its connections `grace`; wait a little longer for
    // the threads themselves.
    let deadline = tokio::time::Instant::now() + drain.grace.0 + Duration::from_secs(1);
    while handles.iter().any(|h| !h.is_finished()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stuck = handles.iter().filter(|h| !h.is_finished()).count();
    if stuck == 0 {
        tracing::info!("drained; exiting");
    } else {
        tracing::warn!(grace = ?drain.grace.0, "grace period over; closing remaining connections");
    }
    Ok(())
}

/// Descriptors kept for everything but client connections: listeners,
/// Redis, config and key files, the runtime's own.
const NOFILE_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard one (as nginx's
/// `worker_rlimit_nofile` and Go's runtime do), and warns when even that
/// is too low for the connection caps: each client connection may hold an
/// origin connection too, and a proxy out of descriptors refuses
/// everyone, admin probes included.
fn raise_nofile(limits: &tandem_fleet_config::Limits) {
    let want = 2 * u64::from(limits.max_connections())
        + u64::from(limits.admin_max_connections())
        + NOFILE_RESERVE;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(have) if have < want => tracing::warn!(
            open_files = have,
            needed = want,
            "the open-file limit is below what limits.max_connections needs; raise it (LimitNOFILE=, ulimit -n) or lower the cap"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
}

/// One worker per available CPU, the way nginx's `worker_processes auto`
/// sizes itself.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// A worker thread: its own runtime, accepting until told to stop, then
/// giving in-flight requests the grace period.
fn worker(
    state: Arc<State>,
    listener: std::net::TcpListener,
    budget: Arc<Budget>,
    mut stop: tokio::sync::watch::Receiver<Option<Duration>>,
    limits: tandem_fleet_config::Limits,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "a worker could not start its runtime");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "a worker could not register the listener");
                return;
            }
        };
        tokio::spawn(async {
            // The same task closes this worker's idle origin connections.
            let mut tick: u32 = 0;
            loop {
                tokio::time::sleep(TIMER_FLOOR).await;
                tick = tick.wrapping_add(1);
                if tick.is_multiple_of(IDLE_SWEEP_TICKS) {
                    crate::client::sweep_idle(crate::client::POOL_IDLE_TIMEOUT);
                }
            }
        });
        let builder = http1_builder(&limits);
        let graceful = GracefulShutdown::new();
        let grace = loop {
            tokio::select! {
                changed = stop.changed() => {
                    let g = *stop.borrow();
                    match (changed, g) {
                        (_, Some(g)) => break g,
                        (Err(_), None) => break Duration::ZERO,
                        (Ok(()), None) => continue,
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let ip = peer.ip();
                        accept(&state, &budget, &builder, Some(&graceful), (stream, ip), crate::serve::handle);
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        };
        drop(listener);
        let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    });
}

/// The HTTP/1.1 server settings of both listeners. hyper's own header
/// timer is off: [`Guarded`] times the whole wait for a head, from accept.
fn http1_builder(limits: &tandem_fleet_config::Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.header_read_timeout(None)
        .max_buf_size((limits.max_header_bytes.0 as usize).max(MIN_HEADER_BUF));
    b
}

/// Serves one accepted connection within `budget` (closing it at once when
/// the listener is full) and under the current config's deadlines,
/// watched by the drain when `graceful` is given. No HTTP state or buffer
/// is made until the client sends its first byte, so a silent connection
/// costs only its socket until the header deadline closes it.
fn accept<H, F>(
    state: &Arc<State>,
    budget: &Arc<Budget>,
    builder: &http1::Builder,
    graceful: Option<&GracefulShutdown>,
    (stream, peer): (tokio::net::TcpStream, std::net::IpAddr),
    handler: H,
) where
    H: Fn(Arc<State>, hyper::Request<hyper::body::Incoming>, std::net::IpAddr) -> F
        + Send
        + Sync
        + 'static,
    F: std::future::Future<Output = hyper::Response<ProxyBody>> + Send + 'static,
{
    let Some(admitted) = budget.admit() else {
        state
            .metrics
            .connections_closed
            .inc(&[budget.listener, "over_capacity"]);
        return;
    };
    let _ = stream.set_nodelay(true);
    let (limits, proxy_protocol, tls, max_header) = {
        let rt = state.runtime.load();
        let data = budget.listener == "data";
        let pp = data && rt.config.listen.proxy_protocol;
        let tls = rt.tls.as_ref().filter(|_| data).map(|t| t.acceptor.clone());
        let max_header = u32::try_from(rt.config.limits.max_header_bytes.0).unwrap_or(u32::MAX);
        (ConnLimits::of(&rt.config.limits), pp, tls, max_header)
    };
    let (state, builder, listener) = (state.clone(), builder.clone(), budget.listener);
    let watcher = graceful.map(GracefulShutdown::watcher);
    tokio::spawn(async move {
        let _admitted = admitted;
        let io = Guarded::first_byte(
            stream,
            peer,
            proxy_protocol,
            limits,
            state.clone(),
            listener,
        );
        let Some(io) = io.await else {
            return;
        };
        let meta = (io.listener(), io.peer(), io.activity());
        // Boxed, so the task of a connection still waiting for its first
        // byte is only the wait above, not hyper's connection state.
        match tls {
            None => {
                let proto = Proto::Http1(builder);
                Box::pin(serve_http(io, meta, state, proto, watcher, handler)).await
            }
            Some(acceptor) => {
                // The handshake reads through the guard, so the header
                // deadline from accept bounds it too.
                let io = match acceptor.accept(io).await {
                    Ok(io) => io,
                    Err(e) => {
                        state
                            .metrics
                            .connections_closed
                            .inc(&[listener, "tls_handshake"]);
                        tracing::debug!(listener, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let proto = if io.get_ref().1.alpn_protocol() == Some(b"h2") {
                    meta.2.set_multiplexed();
                    Proto::H2(h2_builder(max_header))
                } else {
                    Proto::Http1(builder)
                };
                Box::pin(serve_http(io, meta, state, proto, watcher, handler)).await
            }
        }
    });
}

/// Concurrent streams an h2 client may open on one connection: nginx's
/// `http2_max_concurrent_streams` is 128; each stream may hold a fill or
/// a pass-through, so a connection gets no more than a browser needs.
pub const H2_MAX_STREAMS: u32 = 100;

/// Streams a client may open and reset before the server has even taken
/// them, before the connection is refused (GOAWAY): the Rapid Reset
/// attack (CVE-2023-44487) opens and cancels streams as fast as it can.
pub const H2_MAX_PENDING_RESETS: usize = 20;

/// Streams the server may reset for a client's protocol errors before the
/// connection is closed (MadeYouReset, CVE-2025-8671: malformed frames
/// that make the server reset streams whose work has started).
pub const H2_MAX_LOCAL_RESETS: usize = 64;

/// The h2 settings of the data listener (over TLS, by ALPN): the same
/// header size limit as HTTP/1.1, a stream cap and the reset budgets.
/// hyper's own keep-alive pings stay off: the socket's keep-alive deadline
/// closes an idle connection.
fn h2_builder(max_header: u32) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.max_concurrent_streams(H2_MAX_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_RESETS)
        .max_header_list_size(max_header);
    b
}

/// The protocol a connection is served with, and its settings.
enum Proto {
    /// HTTP/1.1 (plain, or TLS that negotiated it or nothing).
    Http1(http1::Builder),
    /// h2, over TLS that negotiated it by ALPN.
    H2(hyper::server::conn::http2::Builder<TokioExecutor>),
}

/// Serves a connection that has sent its first byte (over TLS or not);
/// `meta` is its guard's listener, peer and activity.
async fn serve_http<I, H, F>(
    io: I,
    (listener, peer, act): (&'static str, std::net::IpAddr, Arc<crate::conn::Activity>),
    state: Arc<State>,
    proto: Proto,
    watcher: Option<hyper_util::server::graceful::Watcher>,
    handler: H,
) where
    H: Fn(Arc<State>, hyper::Request<hyper::body::Incoming>, std::net::IpAddr) -> F
        + Send
        + Sync
        + 'static,
    F: std::future::Future<Output = hyper::Response<ProxyBody>> + Send + 'static,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = Arc::new(handler);
    let svc = service_fn(move |req| {
        act.start();
        let (st, act, handler) = (state.clone(), act.clone(), handler.clone());
        async move {
            let resp = handler(st, req, peer).await;
            Ok::<_, Infallible>(resp.map(|b| Tracked::new(b, act)))
        }
    });
    let io = TokioIo::new(io);
    let ended = match (proto, watcher) {
        (Proto::Http1(b), Some(w)) => w.watch(b.serve_connection(io, svc)).await,
        (Proto::Http1(b), None) => b.serve_connection(io, svc).await,
        (Proto::H2(b), Some(w)) => w.watch(b.serve_connection(io, svc)).await,
        (Proto::H2(b), None) => b.serve_connection(io, svc).await,
    };
    if let Err(e) = ended {
        tracing::debug!(listener, error = %e, "connection ended with an error");
    }
}

async fn admin_loop(state: Arc<State>, listener: TcpListener) {
    let budget = state.admin_conns.clone();
    let builder = http1_builder(&state.runtime.load().config.limits);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        accept(
            &state,
            &budget,
            &builder,
            None,
            (stream, peer.ip()),
            |st, req, _| crate::admin::handle(st, req),
        );
    }
}

async fn prober(state: Arc<State>) {
    let mut tick = tokio::time::interval(PROBE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let rt = state.runtime.load_full();
        for r in &rt.routes {
            crate::failover::probe_due(&state.client, r, &state.metrics).await;
        }
    }
}

async fn reloader(state: Arc<State>, path: PathBuf, mut hup: tokio::signal::unix::Signal) {
    let mut last = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(CONFIG_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let hangup = tokio::select! {
            _ = hup.recv() => true,
            _ = tick.tick() => {
                let now = std::fs::read(&path).ok();
                if now.is_none() || now == last {
                    continue;
                }
                last = now;
                false
            }
        };
        // systemd shows a SIGHUP (`systemctl reload`) as reloading until
        // the proxy is ready again, whether the new config was taken or
        // refused: either way the proxy serves.
        if hangup {
            crate::notify::reloading();
            reload(&state, &path, "SIGHUP");
            crate::notify::ready();
        } else {
            reload(&state, &path, "file change");
        }
    }
}

/// Reloads the config file.
pub fn reload(state: &State, path: &Path, why: &str) {
    let cur = state.runtime.load_full();
    apply(state, load(path, Some(&cur)), why);
}

/// Polls the S3 object at the config's `source.poll_interval` (or at once
/// on SIGHUP). An unreachable source is logged and counted; the running
/// config keeps serving.
async fn poller(state: Arc<State>, mut src: S3Source, mut hup: tokio::signal::unix::Signal) {
    loop {
        let every = state
            .runtime
            .load()
            .config
            .source
            .as_ref()
            .map_or(DEFAULT_POLL_INTERVAL.0, |s| s.poll_interval.0);
        let hangup = tokio::select! {
            _ = hup.recv() => true,
            _ = tokio::time::sleep(every) => false,
        };
        let why = if hangup { "SIGHUP" } else { "poll" };
        // SIGHUP asks for everything again: the object even if its ETag
        // did not change, and with it every file the config names (a
        // rotated JWKS or key is picked up by the rebuild).
        if hangup {
            src.forget_etag();
            crate::notify::reloading();
        }
        match src.fetch(&state.client).await {
            Ok(Fetched::Unchanged) => {}
            Ok(Fetched::Changed(text)) => {
                let cur = state.runtime.load_full();
                let built = load_text(&text, Some(&cur));
                if built.is_ok() {
                    if let Err(e) = src.save_last_good(&text) {
                        tracing::warn!(error = %e, "could not store the last good config on disk");
                    }
                }
                apply(&state, built, why);
            }
            Err(e) => {
                state.metrics.reloads.inc(&["source_error"]);
                tracing::warn!(trigger = why, error = %e, "config source unreachable; still serving config_version {}", state.runtime.load().version);
            }
        }
        if hangup {
            crate::notify::ready();
        }
    }
}

/// Swaps in a newly built config; an invalid one is refused, logged and
/// counted, and the current one keeps serving.
fn apply(state: &State, built: Result<Runtime, Vec<String>>, why: &str) {
    let cur = state.runtime.load_full();
    match built {
        Ok(rt) if !rt.differs_from(&cur) => {
            state.metrics.reloads.inc(&["unchanged"]);
            tracing::info!(trigger = why, config_version = %rt.version, "config unchanged");
        }
        Ok(rt) => {
            let addrs = |l: &tandem_fleet_config::Listen| (l.data.clone(), l.admin.clone());
            if addrs(&rt.config.listen) != addrs(&cur.config.listen) {
                tracing::warn!(
                    trigger = why,
                    "listen addresses changed; they take effect at the next restart"
                );
            }
            let v = rt.version.clone();
            let limits = &rt.config.limits;
            state.data_conns.set_max(limits.max_connections());
            state.admin_conns.set_max(limits.admin_max_connections());
            state.runtime.store(Arc::new(rt));
            *state
                .last_reload_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            state.metrics.reloads.inc(&["ok"]);
            tracing::info!(trigger = why, from = %cur.version, to = %v, "config reloaded");
        }
        Err(problems) => {
            state.metrics.reloads.inc(&["invalid"]);
            for p in &problems {
                tracing::error!(trigger = why, problem = %p, "config reload refused; still serving config_version {}", cur.version);
            }
            *state
                .last_reload_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(problems.join("; "));
        }
    }
}
