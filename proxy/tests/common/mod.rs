//! Real processes for the proxy's integration tests: SeaweedFS origins
//! (signature-checking S3 servers) and the tandem-proxy binary, each killed
//! when its handle drops. Everything listens on 127.0.0.1 only.
#![allow(dead_code)] // each test binary uses a different part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

/// Credentials every SeaweedFS in these tests checks signatures against.
pub const KEY: &str = "tandemtestkey";
/// The matching secret.
pub const SECRET: &str = "tandemtestsecret";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `weed` from the bootstrap venv, or `$TANDEM_WEED`.
pub fn weed_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANDEM_WEED") {
        return p.into();
    }
    let p = repo_root().join(".cache/venv/bin/weed");
    assert!(
        p.exists(),
        "{} is missing: run scripts/bootstrap (or make test)",
        p.display()
    );
    p
}

/// A port nothing listens on now, never one this process handed out
/// before: the kernel may give a just-released port straight back to the
/// next bind (CI once started a proxy with its data and admin listeners on
/// one port), so ports are remembered and a repeat is skipped.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
    // A signal is delivered asynchronously: on a loaded machine a process
    // told to stop may still answer one more request. Wait until it has.
    if sig == "STOP" {
        poll(&format!("{pid} stopped"), Duration::from_secs(10), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            matches!(state, 'T' | 't').then_some(())
        });
    }
}

/// One SeaweedFS (`weed mini`) with every port moved to a free one.
pub struct Seaweed {
    child: Option<Child>,
    pub s3_port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
}

/// Whether process `pid` holds a listening IPv4 TCP socket on each of
/// `ports`: its sockets are the `socket:[inode]` links in
/// `/proc/<pid>/fd`, and `/proc/net/tcp` maps listening inodes to ports.
fn listens_on_all(pid: u32, ports: &[u16]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let owned: std::collections::HashSet<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*state == "0A" && inodes.contains(*inode)).then_some(port)
        })
        .collect();
    ports.iter().all(|p| owned.contains(p))
}

impl Seaweed {
    /// Starts SeaweedFS, retrying on fresh ports: ports come from binding
    /// port 0 and letting go, so another test process can take one of the
    /// eleven before weed binds it.
    pub fn start() -> Seaweed {
        let mut last = String::new();
        for attempt in 1..=3 {
            match Seaweed::try_start(Duration::from_secs(40)) {
                Ok(w) => return w,
                Err(log) => {
                    eprintln!("SeaweedFS start attempt {attempt} failed; retrying on new ports");
                    last = log;
                }
            }
        }
        panic!("SeaweedFS did not start in 3 attempts; last log:\n{last}");
    }

    fn try_start(limit: Duration) -> Result<Seaweed, String> {
        let dir = tempfile::tempdir().unwrap();
        let p: Vec<u16> = (0..11).map(|_| free_port()).collect();
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(weed_bin())
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
            ])
            // Never phone home: tests talk to loopback only.
            .arg("-master.telemetry=false")
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .arg(format!("-metricsPort={}", p[10]))
            .arg(format!("-s3.localSocket={}/s3.sock", dir.path().display()))
            .arg(format!(
                "-filer.localSocket={}/filer.sock",
                dir.path().display()
            ))
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting weed");
        let mut w = Seaweed {
            child: Some(child),
            s3_port: p[6],
            metrics_port: p[10],
            dir,
        };
        let deadline = Instant::now() + limit;
        loop {
            let answered =
                reqwest::blocking::get(format!("http://127.0.0.1:{}/", w.s3_port)).is_ok();
            let log = std::fs::read_to_string(w.dir.path().join("weed.log")).unwrap_or_default();
            let exited = w.child.as_mut().unwrap().try_wait().unwrap().is_some();
            // An answer on the S3 port counts only once this weed itself
            // listens on every port it was given: another test's server can
            // hold a port taken from the free list, answer the probe, and go
            // away later, or take a port weed binds after the S3 one, and
            // weed then exits. (Clean-checkout runs twice saw `create_bucket`
            // refused for 60 s after the probe had succeeded.)
            let lost_a_port = log.contains("address already in use");
            if answered && !exited && !lost_a_port && listens_on_all(w.pid(), &p) {
                return Ok(w);
            }
            if exited || lost_a_port || Instant::now() > deadline {
                w.kill();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(tail);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                KEY, SECRET, None, None, "test",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates a bucket, retrying while the filer finishes starting.
    pub fn bucket(&self, name: &str) {
        let c = self.client();
        block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match c.create_bucket().bucket(name).send().await {
                    Ok(_) => return,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("creating bucket {name}: {e:?}"),
                }
            }
        })
    }

    /// Uploads an object; returns its version id when versioning is on.
    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Option<String> {
        self.put_with(bucket, key, body, |r| r)
    }

    pub fn put_with(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        f: impl FnOnce(
            aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
        ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    ) -> Option<String> {
        let req = f(self
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/octet-stream")
            .body(ByteStream::from(body)));
        block_on(req.send())
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"))
            .version_id
    }

    /// GET requests SeaweedFS itself counted for `bucket` (an origin-side
    /// count independent of the proxy's own metrics).
    pub fn gets(&self, bucket: &str) -> u64 {
        let t = reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .unwrap()
            .text()
            .unwrap();
        t.lines()
            .filter(|l| {
                l.starts_with("SeaweedFS_s3_request_total{")
                    && l.contains(&format!("bucket=\"{bucket}\""))
                    && l.contains("type=\"GET\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub fn kill(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills a child process and reaps it; a SIGSTOPped one is continued
/// first, or it would not die promptly.
fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(c.id().to_string())
            .status();
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Runs a future to completion on a private runtime (tests are
/// synchronous so blocking HTTP clients and threads stay simple).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A replica block for a proxy config.
pub fn replica(name: &str, w: &Seaweed, bucket: &str, priority: u32, timeout: &str) -> String {
    replica_at(name, &w.endpoint(), bucket, priority, timeout)
}

/// A replica block for an origin at `endpoint` (a SeaweedFS, or a
/// [`Relay`] in front of one).
pub fn replica_at(
    name: &str,
    endpoint: &str,
    bucket: &str,
    priority: u32,
    timeout: &str,
) -> String {
    format!(
        "      - name: {name}\n        bucket: {bucket}\n        region: us-east-1\n        endpoint: {endpoint}\n        path_style: true\n        priority: {priority}\n        timeout: {timeout}\n        credentials: {{access_key_id_env: T_KEY, secret_access_key_env: T_SECRET}}\n"
    )
}

/// A TCP relay on loopback in front of an origin, which can make the
/// connections it accepts next slow: their origin-to-proxy bytes then
/// trickle at a set rate. A slow fill is made this way, without touching
/// the origin itself. Every thread stops when the relay drops.
pub struct Relay {
    pub port: u16,
    slow: std::sync::Arc<std::sync::Mutex<(usize, u64)>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let slow = Arc::new(Mutex::new((0usize, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (slow.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((client, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let rate = {
                    let mut g = s.lock().unwrap();
                    if g.0 > 0 {
                        g.0 -= 1;
                        Some(g.1)
                    } else {
                        None
                    }
                };
                let Ok(origin) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (c2, o2) = (client.try_clone().unwrap(), origin.try_clone().unwrap());
                let (st1, st2) = (st.clone(), st.clone());
                std::thread::spawn(move || pump(client, origin, None, &st1));
                std::thread::spawn(move || pump(o2, c2, rate, &st2));
            }
        });
        Relay { port, slow, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next `n` connections relay origin bytes at `bytes_per_sec`.
    pub fn slow_next(&self, n: usize, bytes_per_sec: u64) {
        *self.slow.lock().unwrap() = (n, bytes_per_sec);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, at most `rate` bytes per second when given,
/// until either side closes or the relay stops.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    rate: Option<u64>,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::io::{Read, Write};
    const TICK: Duration = Duration::from_millis(50);
    let step = rate.map_or(64 << 10, |r| (r / 20).max(1) as usize);
    let mut buf = vec![0u8; step];
    from.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if rate.is_some() {
                    std::thread::sleep(TICK);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A field of /proc/PID/status in KiB (VmHWM, VmRSS).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} of {pid}"))
}

/// A running tandem-proxy.
pub struct Proxy {
    child: Option<Child>,
    pub data: String,
    pub admin: String,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

/// The build under test: this workspace's, or `TANDEM_PROXY_BIN` to run the
/// tests against another build (to see a new test fail on the code before
/// its fix).
fn default_bin() -> String {
    std::env::var("TANDEM_PROXY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tandem-proxy").to_string())
}

impl Proxy {
    /// Starts the proxy with `body` (the config after `listen:`) and waits
    /// for /health.
    pub fn start(body: &str) -> Proxy {
        Proxy::start_env(body, &[])
    }

    /// Like [`Proxy::start`], with extra environment variables.
    pub fn start_env(body: &str, env: &[(&str, &str)]) -> Proxy {
        Proxy::start_bin(default_bin(), body, env)
    }

    /// Like [`Proxy::start`], on the release build `scripts/run-tests`
    /// makes (`TANDEM_PROXY_RELEASE_BIN`): for what only the optimised
    /// build shows, such as how its allocations leave the heap.
    pub fn start_release(body: &str) -> Proxy {
        let bin = std::env::var("TANDEM_PROXY_RELEASE_BIN").expect(
            "TANDEM_PROXY_RELEASE_BIN: the release build of tandem-proxy \
             (scripts/run-tests builds it and sets this)",
        );
        Proxy::start_bin(bin, body, &[])
    }

    fn start_bin(bin: String, body: &str, env: &[(&str, &str)]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (dp, ap) = (free_port(), free_port());
        let config = dir.path().join("proxy.yaml");
        std::fs::write(
            &config,
            format!("listen:\n  data: 127.0.0.1:{dp}\n  admin: 127.0.0.1:{ap}\n{body}"),
        )
        .unwrap();
        let args = vec!["--config".to_string(), config.display().to_string()];
        Proxy::spawn_bin(bin, dir, config, (dp, ap), &args, env)
    }

    /// Starts the proxy with explicit arguments (e.g. an s3:// config);
    /// `ports` must match the listen block the config will have.
    pub fn spawn(
        dir: tempfile::TempDir,
        config: PathBuf,
        ports: (u16, u16),
        args: &[String],
        env: &[(&str, &str)],
    ) -> Proxy {
        Proxy::spawn_bin(default_bin(), dir, config, ports, args, env)
    }

    fn spawn_bin(
        bin: String,
        dir: tempfile::TempDir,
        config: PathBuf,
        (dp, ap): (u16, u16),
        args: &[String],
        env: &[(&str, &str)],
    ) -> Proxy {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("proxy.log"))
            .unwrap();
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .env("T_KEY", KEY)
            .env("T_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tandem-proxy");
        let mut p = Proxy {
            child: Some(child),
            data: format!("http://127.0.0.1:{dp}"),
            admin: format!("http://127.0.0.1:{ap}"),
            config,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::blocking::get(format!("{}/health", p.admin))
                .is_ok_and(|r| r.status() == 200);
            if up {
                return p;
            }
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "tandem-proxy exited ({status}) before serving:\n{}",
                    p.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tandem-proxy /health not up within 30s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// Every access log line written so far (stdout shares the log file
    /// with the diagnostic log on stderr; access lines are JSON objects
    /// with `"log":"access"`).
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["log"] == "access")
            .collect()
    }

    /// Rewrites the config file body (listen block kept).
    pub fn rewrite(&self, body: &str) {
        let cur = std::fs::read_to_string(&self.config).unwrap();
        let listen: String = cur.lines().take(3).map(|l| format!("{l}\n")).collect();
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, format!("{listen}{body}")).unwrap();
        std::fs::rename(tmp, &self.config).unwrap();
    }

    pub fn status(&self) -> serde_json::Value {
        reqwest::blocking::get(format!("{}/status", self.admin))
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.admin))
            .unwrap()
            .text()
            .unwrap()
    }

    /// Sum of a metric's series whose line contains every `filters` text.
    pub fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
            })
            .filter(|l| filters.iter().all(|f| l.contains(f)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits for exit and returns the exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("tandem-proxy did not exit within {limit:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Deterministic pseudo-random bytes (so failures are reproducible).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Sends a request line exactly as written (HTTP clients normalise paths
/// such as `%2e%2e`, which is precisely what these tests must not do) and
/// returns the status and body.
pub fn raw_get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `redis-server` (Debian's, installed by scripts/bootstrap), or
/// `$TANDEM_REDIS_SERVER`.
pub fn redis_bin(name: &str) -> PathBuf {
    let var = if name == "redis-cli" {
        "TANDEM_REDIS_CLI"
    } else {
        "TANDEM_REDIS_SERVER"
    };
    if let Ok(p) = std::env::var(var) {
        return p.into();
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/bootstrap (or make test)");
}

/// One `redis-server` on a free loopback port, persistence off; a cluster
/// node when `cluster` is set.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    cluster: bool,
    password: Option<String>,
    /// TLS port and the PEM file of the private CA that signed its certificate.
    pub tls: Option<(u16, std::path::PathBuf)>,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::spawn(free_port(), false, None)
    }

    /// A node that also serves TLS (`rediss://`, see `tls_url`) with a
    /// certificate for 127.0.0.1 from a CA made for this test; the plain
    /// port stays open for `cli`.
    pub fn start_tls() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = write_tls_files(dir.path());
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir,
            cluster: false,
            password: None,
            tls: Some((free_port(), ca_file)),
        };
        r.restart();
        r
    }

    /// A new CA and server certificate in the same files, and a restart
    /// that serves them: what rotating a private CA looks like.
    pub fn rotate_tls(&mut self) {
        write_tls_files(self.dir.path());
        self.restart();
    }

    /// `rediss://` URL of a node from `start_tls`.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls.as_ref().unwrap().0)
    }

    /// A node that requires `AUTH password`.
    pub fn start_with_password(password: &str) -> Redis {
        Redis::spawn(free_port(), false, Some(password.to_string()))
    }

    fn spawn(port: u16, cluster: bool, password: Option<String>) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Redis {
            child: None,
            port,
            dir,
            cluster,
            password,
            tls: None,
        };
        r.restart();
        r
    }

    /// Starts (again) on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let mut cmd = Command::new(redis_bin("redis-server"));
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.path().join("nodes.conf"))
                .args(["--cluster-node-timeout", "2000"]);
        }
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        if let Some((tls_port, ca)) = &self.tls {
            let d = self.dir.path();
            cmd.args([
                "--tls-port",
                &tls_port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(d.join("server.pem"))
            .arg("--tls-key-file")
            .arg(d.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(ca);
        }
        self.child = Some(
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting redis-server"),
        );
        poll("redis-server PING", Duration::from_secs(10), || {
            (self.cli(&["PING"]).trim() == "PONG").then_some(())
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this node and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut c = Command::new(redis_bin("redis-cli"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            c.args(["-a", p, "--no-auth-warning"]);
        }
        let o = c.args(args).output().expect("running redis-cli");
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Keys on this node.
    pub fn dbsize(&self) -> u64 {
        self.cli(&["DBSIZE"]).trim().parse().unwrap_or(0)
    }

    pub fn kill(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Writes `ca.pem`, and `server.pem`/`server.key` for 127.0.0.1 signed by
/// that CA, into `dir` (replacing any there); returns the CA's path.
pub fn write_tls_files(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tandem test Redis CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    // Renamed into place, so a reader never sees half a file.
    let write = |name: &str, pem: String| {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
        dir.join(name)
    };
    write("server.pem", cert.pem());
    write("server.key", key.serialize_pem());
    write("ca.pem", ca.pem())
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of `n` primaries on loopback, made with
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start(n: usize) -> RedisCluster {
        let nodes: Vec<Redis> = (0..n)
            .map(|_| Redis::spawn(free_port(), true, None))
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect();
        let o = Command::new(redis_bin("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            o.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        poll(
            "cluster_state:ok on every node",
            Duration::from_secs(20),
            || {
                nodes
                    .iter()
                    .all(|r| r.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                    .then_some(())
            },
        );
        RedisCluster { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }
}

/// An ES256 signing key an identity provider would hold, and what the
/// proxy is given to check its tokens.
pub struct EsKey {
    pub kid: String,
    key: rcgen::KeyPair,
}

impl EsKey {
    pub fn new(kid: &str) -> EsKey {
        EsKey {
            kid: kid.into(),
            key: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    /// This key as a JWK.
    pub fn jwk(&self) -> serde_json::Value {
        use base64::Engine;
        let raw = self.key.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65])})
    }

    /// A token for `aud`, valid for five minutes, naming this key's kid
    /// (or no kid).
    pub fn token(&self, aud: &str, with_kid: bool) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = with_kid.then(|| self.kid.clone());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 300;
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"sub": "alice", "aud": aud, "exp": exp}),
            &jsonwebtoken::EncodingKey::from_ec_pem(self.key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[&EsKey]) -> String {
    serde_json::json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// Writes `text` to `path` the way a deployment replaces a file: a new
/// file renamed over the old one.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Status of GET `url` with `token`, on a new connection.
pub fn status_with_token(url: &str, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// A TLS terminator on loopback in front of `target` (a SeaweedFS), with
/// a certificate for 127.0.0.1 from a CA made for the test: what an https
/// origin with a private CA (MinIO, Ceph RGW) looks like to the proxy.
pub struct TlsFront {
    pub port: u16,
    target: u16,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    pub fn start(target: u16) -> TlsFront {
        let dir = tempfile::tempdir().unwrap();
        write_tls_files(dir.path());
        let mut f = TlsFront {
            port: free_port(),
            target,
            dir,
            stop: None,
            thread: None,
        };
        f.run();
        f
    }

    /// The PEM file of the CA that signed the current certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A new CA and certificate, and a restart that serves them and drops
    /// every open connection: a server whose CA was rotated.
    pub fn rotate(&mut self) {
        self.halt();
        write_tls_files(self.dir.path());
        self.run();
    }

    fn run(&mut self) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(self.dir.path().join("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(self.dir.path().join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let target = self.target;
        self.stop = Some(tx);
        self.thread = Some(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => return,
                        a = l.accept() => {
                            let Ok((tcp, _)) = a else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                            });
                        }
                    }
                }
            });
            // Dropping the runtime cancels every connection task: their
            // sockets close, as a restarted server's would.
        }));
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.halt();
    }
}
