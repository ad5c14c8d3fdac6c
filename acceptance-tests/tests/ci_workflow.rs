//! The example GitHub Actions workflow (`examples/ci-plan-review/
//! github-actions.yml`), run as GitHub would run it on two pushes to one
//! pull request: each `run:` step's own script in bash with the runner's
//! environment files, `if:` conditions evaluated, and stand-ins for the
//! actions it uses (checkout, setup-terraform, the OIDC credentials action
//! pointed at moto, the SARIF upload). A stand-in GitHub, a local HTTP
//! server that records every call, serves the release files and the
//! comments API. The second push must edit the first push's comment.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use serde_yaml_ng::Value as Yaml;
use tandem_acceptance::{repo_root, skip_unless_acc, terraform_bin, unique, Moto};

/// Longest one workflow step may run (an init, a plan).
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// The token the stand-in GitHub accepts, as `github.token` would be.
const TOKEN: &str = "ghs_standin";
/// Who comments with that token.
const BOT: &str = "github-actions[bot]";
const REPO: &str = "acme/infra";
const PR: u64 = 7;

// ---- the stand-in GitHub ----------------------------------------------

#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    login: String,
    body: String,
}

#[derive(Debug, Default)]
struct GitHub {
    comments: Vec<Comment>,
    /// Every call, as `METHOD path`.
    calls: Vec<String>,
    next_id: u64,
}

struct Request {
    method: String,
    target: String,
    auth: Option<String>,
    body: Vec<u8>,
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut len, mut auth, mut expect) = (0usize, None, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "authorization" => auth = Some(v.trim().to_string()),
            "expect" => expect = v.trim().eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    // curl waits a second for this before sending a larger body.
    if expect {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        auth,
        body,
    })
}

fn respond(s: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

fn comment_json(c: &Comment) -> Json {
    json!({"id": c.id, "body": c.body, "user": {"login": c.login, "type": "Bot"}})
}

/// Answers one request: release files from `dist`, the issue comments API
/// from the shared state.
fn serve(mut s: TcpStream, state: &Mutex<GitHub>, dist: &Path) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut s) else {
        return;
    };
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let mut gh = state.lock().unwrap();
    gh.calls.push(format!("{} {}", req.method, req.target));
    if let Some(file) = path.strip_prefix("/releases/") {
        return match std::fs::read(dist.join(file)) {
            Ok(bytes) => respond(&mut s, 200, "application/octet-stream", &bytes),
            Err(_) => respond(&mut s, 404, "text/plain", b"no such release file"),
        };
    }
    if req.auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return respond(
            &mut s,
            401,
            "application/json",
            br#"{"message":"Bad credentials"}"#,
        );
    }
    let issue = format!("/repos/{REPO}/issues/{PR}/comments");
    let by_id = format!("/repos/{REPO}/issues/comments/");
    match (req.method.as_str(), path) {
        ("GET", p) if p == issue => {
            let param = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let per_page = param("per_page").unwrap_or(30).min(100);
            let page = param("page").unwrap_or(1).max(1);
            let list: Vec<Json> = gh
                .comments
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(comment_json)
                .collect();
            respond(
                &mut s,
                200,
                "application/json",
                Json::Array(list).to_string().as_bytes(),
            );
        }
        ("POST", p) if p == issue => {
            let body: Json = serde_json::from_slice(&req.body).unwrap_or(Json::Null);
            let Some(text) = body["body"].as_str() else {
                return respond(
                    &mut s,
                    422,
                    "application/json",
                    br#"{"message":"body is missing"}"#,
                );
            };
            gh.next_id += 1;
            let c = Comment {
                id: gh.next_id,
                login: BOT.into(),
                body: text.into(),
            };
            let out = comment_json(&c).to_string();
            gh.comments.push(c);
            respond(&mut s, 201, "application/json", out.as_bytes());
        }
        ("PATCH", p) if p.starts_with(&by_id) => {
            let id: u64 = p[by_id.len()..].parse().unwrap_or(0);
            let body: Json = serde_json::from_slice(&req.body).unwrap_or(Json::Null);
            let Some(c) = gh.comments.iter_mut().find(|c| c.id == id) else {
                return respond(
                    &mut s,
                    404,
                    "application/json",
                    br#"{"message":"Not Found"}"#,
                );
            };
            if c.login != BOT {
                return respond(
                    &mut s,
                    403,
                    "application/json",
                    br#"{"message":"not yours"}"#,
                );
            }
            c.body = body["body"].as_str().unwrap_or_default().to_string();
            let out = comment_json(c).to_string();
            respond(&mut s, 200, "application/json", out.as_bytes());
        }
        _ => respond(
            &mut s,
            404,
            "application/json",
            br#"{"message":"Not Found"}"#,
        ),
    }
}

/// The stand-in GitHub on a loopback port; stops when dropped.
struct StandIn {
    state: Arc<Mutex<GitHub>>,
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    fn start(dist: PathBuf, seed: Vec<Comment>) -> StandIn {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let next_id = seed.iter().map(|c| c.id).max().unwrap_or(0);
        let state = Arc::new(Mutex::new(GitHub {
            comments: seed,
            calls: Vec::new(),
            next_id,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        serve(s, &st, &dist);
                    }
                    // Polls for the stop flag between connections.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StandIn {
            state,
            url,
            stop,
            thread: Some(thread),
        }
    }

    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }

    fn comments(&self) -> Vec<Comment> {
        self.state.lock().unwrap().comments.clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- expressions (`${{ }}` and `if:`) ---------------------------------

/// What an expression can see.
struct Context<'a> {
    values: &'a BTreeMap<String, String>,
    /// Whether an earlier step failed.
    failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum V {
    Str(String),
    Bool(bool),
}

impl V {
    fn truthy(&self) -> bool {
        match self {
            V::Str(s) => !s.is_empty(),
            V::Bool(b) => *b,
        }
    }

    fn text(&self) -> String {
        match self {
            V::Str(s) => s.clone(),
            V::Bool(b) => b.to_string(),
        }
    }
}

/// A small evaluator for the expressions the workflow uses: context paths,
/// string literals, `==`, `!=`, `!`, `&&`, `||`, parentheses, and the
/// status functions. Anything else fails the test loudly.
struct Expr<'a> {
    toks: Vec<String>,
    pos: usize,
    ctx: &'a Context<'a>,
}

fn tokens(s: &str) -> Vec<String> {
    let c: Vec<char> = s.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        match c[i] {
            ' ' => i += 1,
            '\'' => {
                let end = c[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .expect("closing quote")
                    + i
                    + 1;
                out.push(c[i..=end].iter().collect());
                i = end + 1;
            }
            '=' | '!' | '&' | '|' if i + 1 < c.len() && (c[i + 1] == '=' || c[i + 1] == c[i]) => {
                out.push(c[i..i + 2].iter().collect());
                i += 2;
            }
            '!' | '(' | ')' => {
                out.push(c[i].to_string());
                i += 1;
            }
            _ => {
                let end = c[i..]
                    .iter()
                    .position(|x| " !=&|()'".contains(*x))
                    .map_or(c.len(), |p| p + i);
                out.push(c[i..end].iter().collect());
                i = end;
            }
        }
    }
    out
}

impl Expr<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> String {
        self.pos += 1;
        self.toks[self.pos - 1].clone()
    }

    fn or(&mut self) -> V {
        let mut v = self.and();
        while self.peek() == Some("||") {
            self.next();
            let r = self.and();
            v = if v.truthy() { v } else { r };
        }
        v
    }

    fn and(&mut self) -> V {
        let mut v = self.unary();
        while self.peek() == Some("&&") {
            self.next();
            let r = self.unary();
            v = if v.truthy() { r } else { v };
        }
        v
    }

    fn unary(&mut self) -> V {
        if self.peek() == Some("!") {
            self.next();
            return V::Bool(!self.unary().truthy());
        }
        let l = self.primary();
        match self.peek() {
            // GitHub compares strings ignoring case.
            Some("==") => {
                self.next();
                let r = self.primary();
                V::Bool(l.text().eq_ignore_ascii_case(&r.text()))
            }
            Some("!=") => {
                self.next();
                let r = self.primary();
                V::Bool(!l.text().eq_ignore_ascii_case(&r.text()))
            }
            _ => l,
        }
    }

    fn primary(&mut self) -> V {
        let t = self.next();
        if t == "(" {
            let v = self.or();
            assert_eq!(self.next(), ")");
            return v;
        }
        if let Some(s) = t.strip_prefix('\'') {
            return V::Str(s.trim_end_matches('\'').to_string());
        }
        if self.peek() == Some("(") {
            self.next();
            assert_eq!(self.next(), ")", "functions here take no arguments");
            return V::Bool(match t.as_str() {
                "always" => true,
                "cancelled" => false,
                "success" => !self.ctx.failed,
                "failure" => self.ctx.failed,
                other => panic!("the stand-in runner does not know {other}()"),
            });
        }
        V::Str(self.ctx.values.get(&t).cloned().unwrap_or_default())
    }
}

fn eval(expr: &str, ctx: &Context<'_>) -> V {
    let mut e = Expr {
        toks: tokens(expr),
        pos: 0,
        ctx,
    };
    let v = e.or();
    assert_eq!(e.pos, e.toks.len(), "cannot read the expression {expr:?}");
    v
}

/// `text` with every `${{ expr }}` replaced by its value.
fn interpolate(text: &str, ctx: &Context<'_>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closing }}") + start;
        out.push_str(&eval(&rest[start + 3..end], ctx).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

// ---- the runner -------------------------------------------------------

fn yaml_str(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn yaml_map(v: &Yaml) -> Vec<(String, String)> {
    v.as_mapping()
        .map(|m| m.iter().map(|(k, v)| (yaml_str(k), yaml_str(v))).collect())
        .unwrap_or_default()
}

/// Reads `NAME=value` lines and `NAME<<DELIM` blocks of a GitHub
/// environment or output file.
fn env_file(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some((k, delim)) = l.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|x| *x != delim).collect();
            out.push((k.to_string(), value.join("\n")));
        } else if let Some((k, v)) = l.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// One run of the job.
struct Run {
    ok: bool,
    /// Each step's name, outcome and output.
    log: Vec<(String, String, String)>,
    /// The environment the last step saw, for commands after the run.
    env: BTreeMap<String, String>,
}

impl Run {
    fn outcome(&self, name_part: &str) -> &str {
        self.log
            .iter()
            .find(|(n, _, _)| n.contains(name_part))
            .map_or("absent", |(_, o, _)| o.as_str())
    }

    fn dump(&self) -> String {
        self.log
            .iter()
            .map(|(n, o, out)| format!("--- {n}: {o}\n{out}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What stands in for GitHub's runner and the world the job sees.
struct Runner<'a> {
    workflow: &'a Yaml,
    workspace: &'a Path,
    github: &'a StandIn,
    moto: &'a Moto,
    vars: BTreeMap<String, String>,
}

impl Runner<'_> {
    fn run(&self, run_id: u32) -> Run {
        let job = &self.workflow["jobs"]["review"];
        assert_eq!(job["runs-on"].as_str(), Some("ubuntu-latest"));
        assert_eq!(
            job["defaults"]["run"]["shell"].as_str(),
            Some("bash"),
            "run steps should say their shell (bash -eo pipefail)"
        );
        let temp = tempfile::tempdir().unwrap();
        let rt = temp.path();
        let (genv, gpath) = (rt.join("github_env"), rt.join("github_path"));
        std::fs::write(&genv, "").unwrap();
        std::fs::write(&gpath, "").unwrap();
        let event = rt.join("event.json");
        std::fs::write(&event, json!({"pull_request": {"number": PR}}).to_string()).unwrap();

        // The machine's environment: the test's PATH (bash, curl, jq,
        // unzip, sha256sum), and what GitHub sets on every runner.
        let mut machine: BTreeMap<String, String> = BTreeMap::new();
        for k in ["PATH", "HOME", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                machine.insert(k.into(), v);
            }
        }
        for (k, v) in [
            ("CI", "true".to_string()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_API_URL", self.github.url.clone()),
            ("GITHUB_REPOSITORY", REPO.into()),
            ("GITHUB_EVENT_NAME", "pull_request".into()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
            ("GITHUB_WORKSPACE", self.workspace.display().to_string()),
            ("GITHUB_ENV", genv.display().to_string()),
            ("GITHUB_PATH", gpath.display().to_string()),
            ("GITHUB_RUN_ID", run_id.to_string()),
            ("RUNNER_TEMP", rt.display().to_string()),
            ("RUNNER_OS", "Linux".into()),
            // Terraform's update check needs the internet, which tests lack.
            ("CHECKPOINT_DISABLE", "1".into()),
            ("RUST_BACKTRACE", "0".into()),
        ] {
            machine.insert(k.into(), v);
        }
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        values.insert("github.token".into(), TOKEN.into());
        values.insert("github.run_id".into(), run_id.to_string());
        values.insert("github.repository".into(), REPO.into());
        values.insert("github.event.pull_request.number".into(), PR.to_string());
        values.insert("runner.temp".into(), rt.display().to_string());
        for (k, v) in &self.vars {
            values.insert(format!("vars.{k}"), v.clone());
        }

        let mut failed = false;
        let mut log = Vec::new();
        let mut extra_env: BTreeMap<String, String> = BTreeMap::new();
        let mut env = BTreeMap::new();
        let steps = job["steps"].as_sequence().expect("steps");
        for (i, step) in steps.iter().enumerate() {
            let name = step["name"]
                .as_str()
                .or(step["uses"].as_str())
                .unwrap_or("step")
                .to_string();
            assert!(
                step.get("continue-on-error").is_none(),
                "{name}: the stand-in runner does not do continue-on-error"
            );
            let ctx = Context {
                values: &values,
                failed,
            };
            let cond = step["if"]
                .as_str()
                .map(|c| {
                    let c = c.trim();
                    let c = c
                        .strip_prefix("${{")
                        .and_then(|c| c.strip_suffix("}}"))
                        .unwrap_or(c);
                    eval(c, &ctx).truthy()
                })
                .unwrap_or(!failed);
            if !cond {
                log.push((name, "skipped".into(), String::new()));
                continue;
            }
            // The environment this step sees, in GitHub's order of
            // precedence.
            env = machine.clone();
            for (k, v) in yaml_map(&self.workflow["env"])
                .into_iter()
                .chain(yaml_map(&job["env"]))
            {
                env.insert(k, interpolate(&v, &ctx));
            }
            env.extend(extra_env.clone());
            for (k, v) in env_file(&genv) {
                env.insert(k, v);
            }
            for (k, v) in yaml_map(&step["env"]) {
                env.insert(k, interpolate(&v, &ctx));
            }
            let mut path: Vec<String> = std::fs::read_to_string(&gpath)
                .unwrap_or_default()
                .lines()
                .rev()
                .map(str::to_string)
                .collect();
            path.push(env.get("PATH").cloned().unwrap_or_default());
            env.insert("PATH".into(), path.join(":"));
            let with: BTreeMap<String, String> = yaml_map(&step["with"])
                .into_iter()
                .map(|(k, v)| (k, interpolate(&v, &ctx)))
                .collect();

            let (ok, out, outputs) = if let Some(uses) = step["uses"].as_str() {
                let (ok, out, set) = self.action(uses, &with, job, rt, &mut extra_env);
                (ok, out, set)
            } else {
                let script = step["run"].as_str().expect("a run or a uses step");
                assert!(
                    !script.contains("${{"),
                    "{name}: an expression spliced into a script is an injection risk"
                );
                let file = rt.join(format!("step{i}.sh"));
                let output = rt.join(format!("output{i}"));
                std::fs::write(&file, script).unwrap();
                std::fs::write(&output, "").unwrap();
                env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
                let (ok, out) = shell(&file, self.workspace, &env);
                (ok, out, env_file(&output))
            };
            if let Some(id) = step["id"].as_str() {
                values.insert(
                    format!("steps.{id}.outcome"),
                    if ok { "success" } else { "failure" }.into(),
                );
                for (k, v) in outputs {
                    values.insert(format!("steps.{id}.outputs.{k}"), v);
                }
            }
            failed |= !ok;
            log.push((name, if ok { "success" } else { "failure" }.into(), out));
        }
        // The runner's temp dir goes with the run, as on GitHub. Commands
        // after the run need only the CLI config (the provider is already
        // installed under infra/.terraform), so it is kept.
        if let Some(cfg) = env.get("TF_CLI_CONFIG_FILE").cloned() {
            let keep = self.workspace.join(format!(".tfrc-run{run_id}"));
            std::fs::copy(&cfg, &keep).unwrap();
            env.insert("TF_CLI_CONFIG_FILE".into(), keep.display().to_string());
        }
        Run {
            ok: !failed,
            log,
            env,
        }
    }

    /// The stand-ins for the actions the workflow uses.
    fn action(
        &self,
        uses: &str,
        with: &BTreeMap<String, String>,
        job: &Yaml,
        rt: &Path,
        extra_env: &mut BTreeMap<String, String>,
    ) -> (bool, String, Vec<(String, String)>) {
        let perm = |p: &str| job["permissions"][p].as_str().unwrap_or("none").to_string();
        let action = uses.split('@').next().unwrap_or(uses);
        match action {
            "actions/checkout" => {
                assert_eq!(perm("contents"), "read", "checkout needs contents: read");
                (true, "workspace already checked out".into(), vec![])
            }
            "hashicorp/setup-terraform" => {
                assert_eq!(
                    with.get("terraform_version").map(String::as_str),
                    Some("1.15.5")
                );
                assert_eq!(
                    with.get("terraform_wrapper").map(String::as_str),
                    Some("false")
                );
                let bin = rt.join("setup-terraform");
                std::fs::create_dir_all(&bin).unwrap();
                let shim = bin.join("terraform");
                std::fs::write(
                    &shim,
                    format!("#!/bin/sh\nexec '{}' \"$@\"\n", terraform_bin().display()),
                )
                .unwrap();
                Command::new("chmod").arg("+x").arg(&shim).status().unwrap();
                let mut p = std::fs::OpenOptions::new()
                    .append(true)
                    .open(rt.join("github_path"))
                    .unwrap();
                writeln!(p, "{}", bin.display()).unwrap();
                (true, "Terraform 1.15.5 (scripts/terraform)".into(), vec![])
            }
            "aws-actions/configure-aws-credentials" => {
                assert_eq!(perm("id-token"), "write", "OIDC needs id-token: write");
                let role = with.get("role-to-assume").cloned().unwrap_or_default();
                assert!(role.starts_with("arn:aws:iam::"), "role-to-assume {role:?}");
                let region = with.get("aws-region").cloned().expect("aws-region");
                // Stand-in for AssumeRoleWithWebIdentity: session
                // credentials for "AWS", which here is moto.
                for (k, v) in [
                    ("AWS_ACCESS_KEY_ID", "test".to_string()),
                    ("AWS_SECRET_ACCESS_KEY", "test".into()),
                    ("AWS_SESSION_TOKEN", format!("session-for-{role}")),
                    ("AWS_REGION", region.clone()),
                    ("AWS_DEFAULT_REGION", region),
                    ("AWS_ENDPOINT_URL", self.moto.endpoint()),
                ] {
                    extra_env.insert(k.into(), v);
                }
                (true, format!("assumed {role}"), vec![])
            }
            "github/codeql-action/upload-sarif" => {
                assert_eq!(perm("security-events"), "write");
                let file = with.get("sarif_file").expect("sarif_file");
                let sarif: Json = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Json::Null);
                let ok = sarif["version"] == "2.1.0";
                let n = sarif["runs"][0]["results"].as_array().map_or(0, Vec::len);
                (ok, format!("uploaded {n} result(s) from {file}"), vec![])
            }
            other => panic!("the stand-in runner has no stand-in for {other}"),
        }
    }
}

/// Runs a step's script as GitHub's `shell: bash` does, bounded in time.
fn shell(script: &Path, cwd: &Path, env: &BTreeMap<String, String>) -> (bool, String) {
    let out_file = script.with_extension("log");
    let log = std::fs::File::create(&out_file).unwrap();
    let mut child = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(script)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_file).unwrap_or_default();
    (status.is_some_and(|s| s.success()), out)
}

/// `terraform -chdir=infra ARGS` with a run's environment, as the merge
/// to the main branch would apply it.
fn terraform(run: &Run, workspace: &Path, args: &str) {
    let script = workspace.join(".apply.sh");
    std::fs::write(
        &script,
        format!("'{}' -chdir=infra {args}\n", terraform_bin().display()),
    )
    .unwrap();
    let (ok, out) = shell(&script, workspace, &run.env);
    assert!(ok, "terraform {args}:\n{out}");
}

#[test]
fn a_second_push_edits_the_first_comment() {
    skip_unless_acc!();
    let moto = Moto::shared();
    let dist = tempfile::tempdir().unwrap();
    let release = Command::new(repo_root().join("scripts/release"))
        .arg("--debug")
        .env("DIST_DIR", dist.path())
        .output()
        .expect("run scripts/release");
    assert!(
        release.status.success(),
        "scripts/release --debug:\n{}",
        String::from_utf8_lossy(&release.stderr)
    );

    // 120 comments of others first, so ours lands on the second page; one
    // of them copies the marker, and must be left alone.
    let mut seed: Vec<Comment> = (1..=120)
        .map(|id| Comment {
            id,
            login: "someone".into(),
            body: format!("comment {id}"),
        })
        .collect();
    seed[3].body = "<!-- tandem-review:infra -->\nnot the bot's".into();
    let github = StandIn::start(dist.path().to_path_buf(), seed);

    let workflow_text =
        std::fs::read_to_string(repo_root().join("examples/ci-plan-review/github-actions.yml"))
            .unwrap();
    let workflow: Yaml = serde_yaml_ng::from_str(&workflow_text).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let infra = workspace.path().join("infra");
    std::fs::create_dir_all(&infra).unwrap();
    let stack =
        std::fs::read_to_string(repo_root().join("examples/ci-plan-review/main.tf")).unwrap();
    std::fs::write(infra.join("main.tf"), &stack).unwrap();
    let domain = format!("{}.tandem.test", unique("ci"));
    std::fs::write(
        infra.join("terraform.tfvars"),
        format!("domain = \"{domain}\"\n"),
    )
    .unwrap();

    let mut vars = BTreeMap::new();
    vars.insert(
        "TANDEM_PLAN_ROLE_ARN".to_string(),
        "arn:aws:iam::123456789012:role/tandem-plan".to_string(),
    );
    vars.insert(
        "TANDEM_RELEASE_URL".to_string(),
        format!("{}/releases", github.url),
    );
    let runner = Runner {
        workflow: &workflow,
        workspace: workspace.path(),
        github: &github,
        moto,
        vars,
    };

    // First push: a plan of creates, no findings; the comment is posted.
    let first = runner.run(1);
    assert!(first.ok, "{}", first.dump());
    assert_eq!(first.outcome("Fail when"), "skipped");
    assert_eq!(
        first.outcome("Upload the findings"),
        "success",
        "{}",
        first.dump()
    );
    let calls = github.take_calls();
    let api: Vec<&String> = calls.iter().filter(|c| !c.contains("/releases/")).collect();
    assert_eq!(
        api,
        [
            &format!("GET /repos/{REPO}/issues/{PR}/comments?per_page=100&page=1"),
            &format!("GET /repos/{REPO}/issues/{PR}/comments?per_page=100&page=2"),
            &format!("POST /repos/{REPO}/issues/{PR}/comments"),
        ],
        "{}",
        first.dump()
    );
    let ours = |g: &StandIn| -> Vec<Comment> {
        g.comments()
            .into_iter()
            .filter(|c| c.login == BOT && c.body.starts_with("<!-- tandem-review:infra -->"))
            .collect()
    };
    let posted = ours(&github);
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].body.contains("No risky changes found."),
        "{}",
        posted[0].body
    );
    assert!(
        posted[0]
            .body
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        posted[0].body
    );

    // The pull request merges and is applied; the next push replaces the
    // health check (its type forces it): a high finding.
    terraform(
        &first,
        workspace.path(),
        "apply -auto-approve -input=false -no-color",
    );
    std::fs::write(
        infra.join("main.tf"),
        stack.replace("type          = \"HTTPS\"", "type          = \"HTTP\""),
    )
    .unwrap();

    let second = runner.run(2);
    assert!(
        !second.ok,
        "a high finding fails the job:\n{}",
        second.dump()
    );
    assert_eq!(second.outcome("Review"), "success", "{}", second.dump());
    assert_eq!(second.outcome("Comment"), "success", "{}", second.dump());
    assert_eq!(second.outcome("Fail when"), "failure");
    let calls = github.take_calls();
    let id = posted[0].id;
    assert!(
        calls.contains(&format!("PATCH /repos/{REPO}/issues/comments/{id}")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("POST")), "{calls:?}");
    let now = ours(&github);
    assert_eq!(now.len(), 1, "still one comment");
    assert_eq!(now[0].id, id);
    assert!(
        now[0].body.contains("health-check-replaced"),
        "{}",
        now[0].body
    );
    assert!(
        now[0].body.contains("This plan reaches `--fail-on=high`"),
        "{}",
        now[0].body
    );
    assert_eq!(
        github.comments()[3].body,
        "<!-- tandem-review:infra -->\nnot the bot's",
        "another user's comment with the marker is never edited"
    );

    std::fs::write(infra.join("main.tf"), &stack).unwrap();
    terraform(
        &second,
        workspace.path(),
        "destroy -auto-approve -input=false -no-color",
    );
}
