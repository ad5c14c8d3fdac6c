//! LocalStack's S3, the lane for replication fidelity: it round-trips
//! replication rules (And/Tags filters, delete-marker replication, source
//! selection criteria) where moto answers every rule with
//! `Filter{Prefix:""}` and drops the rest. Installed by `scripts/bootstrap`
//! only where Python 3.13 is available, so tests using it skip, saying so,
//! when it is not.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{free_port, provider_block_for, repo_root, HarnessError, Tethered};

/// How long LocalStack may take to report S3 ready (about 1 s alone; much
/// more on 2 shared cores under a parallel test run).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// LocalStack on a loopback port, tethered to the test process (stopped
/// with it even if never dropped).
pub struct LocalStack {
    _server: Tethered,
    port: u16,
}

/// The Python of LocalStack's venv, if `scripts/bootstrap` installed it.
fn python() -> Option<PathBuf> {
    let p = repo_root().join(".cache/localstack/bin/python");
    p.exists().then_some(p)
}

impl LocalStack {
    /// One LocalStack per test binary, started on first use; `None` when it
    /// is not installed (the caller skips, saying why).
    pub fn shared() -> Option<&'static LocalStack> {
        static SHARED: OnceLock<Option<LocalStack>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let py = python()?;
                Some(LocalStack::start(&py).unwrap_or_else(|e| panic!("{e}")))
            })
            .as_ref()
    }

    fn start(py: &std::path::Path) -> Result<LocalStack, HarnessError> {
        let port = free_port();
        let server = Tethered::spawn(
            &format!(
                "GATEWAY_LISTEN=127.0.0.1:{port} SERVICES=s3 DNS_ADDRESS=0 '{}' -m localstack.runtime.main",
                py.display()
            ),
            "LocalStack",
        )?;
        let ls = LocalStack {
            _server: server,
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !ls.s3_ready() {
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!("LocalStack on port {port}")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(ls)
    }

    fn s3_ready(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = write!(s, "GET /_localstack/health HTTP/1.0\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("\"s3\"")
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A provider block sending S3 and STS to LocalStack (Route 53 too,
    /// although no test here uses LocalStack's, which is moto's).
    pub fn provider_block(&self) -> String {
        let e = self.endpoint();
        provider_block_for(&e, &e, None, "")
    }

    /// An S3 client for `region` on LocalStack.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        crate::sdk::s3(&self.endpoint(), region)
    }
}
