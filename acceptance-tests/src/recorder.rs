//! A loopback HTTP proxy in front of moto that records every request it
//! forwards, so a test can count the Route 53 calls the provider makes (one
//! change batch per pair, calls per refresh in the benchmark).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::{provider_block_for, HarnessError, Moto, EMULATOR_MOTO};

/// A recording proxy in front of a moto, on a free loopback port. Its
/// thread lives as long as the test process.
pub struct Recorder {
    url: String,
    moto: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Starts a recorder forwarding to `moto`.
    pub fn start(moto: &Moto) -> Result<Recorder, HarnessError> {
        let upstream = SocketAddr::from(([127, 0, 0, 1], moto.port()));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = Arc::clone(&l2);
                std::thread::spawn(move || {
                    let _ = proxy_one(conn, upstream, &log);
                });
            }
        });
        Ok(Recorder {
            url,
            moto: moto.endpoint(),
            log,
        })
    }

    /// A provider block sending Route 53 through this recorder and the rest
    /// straight to moto, with `extra` appended.
    pub fn provider_block(&self, extra: &str) -> String {
        provider_block_for(&self.moto, &self.url, Some(EMULATOR_MOTO), extra)
    }

    /// `METHOD path` of every request seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many requests had `method` and a path (query aside) ending in
    /// `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r.starts_with(method)
                    && r.split('?')
                        .next()
                        .is_some_and(|p| p.ends_with(path_suffix))
            })
            .count()
    }
}

/// Forwards one request (the client is told to close afterwards, so each
/// connection carries exactly one request and framing stays trivial).
fn proxy_one(
    client: TcpStream,
    upstream: SocketAddr,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    if let Some(first) = head.first() {
        let mut parts = first.split_whitespace();
        let entry = format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        if let Ok(mut l) = log.lock() {
            l.push(entry);
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    for h in &head {
        up.write_all(h.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Tell the client this connection ends here.
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let rhead = String::from_utf8_lossy(&resp[..split]).into_owned();
    let rbody = resp.get(split + 4..).unwrap_or_default();
    let mut out = String::new();
    for l in rhead.split("\r\n") {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut client = client;
    client.write_all(out.as_bytes())?;
    client.write_all(rbody)?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}
