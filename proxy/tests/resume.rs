//! Mid-stream resume: the replica streaming a large body dies (SIGKILL) or
//! hangs (SIGSTOP) after bytes reached the client; the proxy continues
//! from the other replica with a Range request checked against the ETag,
//! and the client receives exactly the object's bytes.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;

fn digest(b: &[u8]) -> u64 {
    // FNV-1a: enough to compare two byte strings in a test.
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}

/// A GET over a socket with a 64 KiB receive buffer. Linux autotunes
/// loopback buffers up to 32 MiB, so with an ordinary client a whole test
/// object can sit in kernel buffers before the replica is killed, and
/// nothing would be left to resume; a small client window keeps most of
/// the body unsent until the client reads it.
struct SlowClient {
    s: std::net::TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    left: Vec<u8>,
}

impl SlowClient {
    fn get(base: &str, path: &str, range: Option<&str>) -> SlowClient {
        use socket2::{Domain, Socket, Type};
        use std::io::Write;
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(64 << 10).unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut s: std::net::TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{range}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the headers");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        SlowClient {
            s,
            status,
            headers,
            left: buf[end + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Reads `n` body bytes, calls `mid`, then reads to the end; the error
    /// says how many bytes arrived when the body was cut off.
    fn body_with_pause(mut self, n: usize, mid: impl FnOnce()) -> Result<Vec<u8>, (usize, String)> {
        let len: usize = self.header("content-length").parse().unwrap();
        let mut got = std::mem::take(&mut self.left);
        let mut chunk = vec![0u8; 64 << 10];
        let mut mid = Some(mid);
        while got.len() < len {
            if got.len() >= n {
                if let Some(f) = mid.take() {
                    f();
                }
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return Err((got.len(), "connection closed early".into())),
                Ok(k) => got.extend_from_slice(&chunk[..k]),
                Err(e) => return Err((got.len(), e.to_string())),
            }
        }
        Ok(got)
    }
}

#[test]
fn a_dead_or_hung_replica_mid_body_is_resumed_from_the_next() {
    let (mut a, b) = std::thread::scope(|s| {
        let a = s.spawn(Seaweed::start);
        let b = s.spawn(Seaweed::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let body = bytes(64 << 20, 11);
    for w in [&a, &b] {
        w.bucket("media");
        w.put("media", "movie.bin", body.clone());
    }
    let p = Proxy::start(&format!(
        "cache:\n  max_object_bytes: 1MiB\nbuckets:\n  - name: media\n    path_prefix: /media/\n    replicas:\n{}{}",
        replica("primary", &a, "media", 1, "1s"),
        replica("backup", &b, "media", 2, "1s"),
    ));
    // A ranged download; the primary hangs early on.
    let r = SlowClient::get(&p.data, "/media/movie.bin", Some("bytes=1000000-60999999"));
    assert_eq!(r.status, 206);
    assert_eq!(r.header("x-tandem-replica"), "primary");
    assert_eq!(
        r.header("content-range"),
        format!("bytes 1000000-60999999/{}", body.len())
    );
    let got = r
        .body_with_pause(4 << 20, || signal(a.pid(), "STOP"))
        .unwrap_or_else(|(n, e)| panic!("cut off after {n} bytes: {e}"));
    signal(a.pid(), "CONT");
    assert_eq!(got.len(), 60_000_000);
    assert!(
        digest(&got) == digest(&body[1_000_000..61_000_000]),
        "ranged bytes differ after a resume"
    );
    assert_eq!(
        p.metric("tandem_body_resumes_total", &["result=\"ok\""]),
        1.0
    );

    // A whole 64 MiB download; the primary is SIGKILLed along the way.
    let r = SlowClient::get(&p.data, "/media/movie.bin", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-tandem-replica"), "primary");
    assert_eq!(r.header("content-length"), body.len().to_string());
    let got = r
        .body_with_pause(8 << 20, || a.kill())
        .unwrap_or_else(|(n, e)| panic!("cut off after {n} bytes: {e}"));
    assert_eq!(got.len(), body.len());
    assert!(digest(&got) == digest(&body), "bytes differ after a resume");
    assert_eq!(
        p.metric("tandem_body_resumes_total", &["result=\"ok\""]),
        2.0
    );
    assert!(p.log().contains("body resumed from another replica"));
}

#[test]
fn a_resume_never_splices_another_version() {
    let (mut a, b) = std::thread::scope(|s| {
        let a = s.spawn(Seaweed::start);
        let b = s.spawn(Seaweed::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let v1 = bytes(64 << 20, 12);
    let v2 = bytes(64 << 20, 13);
    a.bucket("media");
    b.bucket("media");
    a.put("media", "clip.bin", v1.clone());
    // The backup holds a different version (replication has not caught up).
    b.put("media", "clip.bin", v2);
    let p = Proxy::start(&format!(
        "cache:\n  max_object_bytes: 1MiB\nbuckets:\n  - name: media\n    path_prefix: /media/\n    replicas:\n{}{}",
        replica("primary", &a, "media", 1, "1s"),
        replica("backup", &b, "media", 2, "1s"),
    ));
    let mut r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(format!("{}/media/clip.bin", p.data))
        .send()
        .unwrap();
    let mut got = vec![0u8; 8 << 20];
    r.read_exact(&mut got).unwrap();
    a.kill();
    // The client must see an aborted body, never v1's head with v2's tail.
    let mut rest = Vec::new();
    let res = r.read_to_end(&mut rest);
    got.extend_from_slice(&rest);
    assert!(
        res.is_err(),
        "the body completed ({} bytes) although its replica died mid-way",
        got.len()
    );
    assert!(got.len() < v1.len());
    assert!(
        digest(&got) == digest(&v1[..got.len()]),
        "bytes of another version were spliced in"
    );
    assert_eq!(
        p.metric("tandem_body_resumes_total", &["result=\"failed\""]),
        1.0
    );
    assert_eq!(
        p.metric("tandem_body_resumes_total", &["result=\"ok\""]),
        0.0
    );
}
