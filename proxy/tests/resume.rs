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

/// Reads `n` bytes, then calls `mid`, then reads the rest (slowly enough
/// that the proxy is still streaming when `mid` runs).
fn read_with_pause(mut r: reqwest::blocking::Response, n: usize, mid: impl FnOnce()) -> Vec<u8> {
    let mut got = vec![0u8; n];
    r.read_exact(&mut got).unwrap();
    mid();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => panic!("body cut off after {} bytes: {e}", got.len()),
        }
    }
    got
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
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // A ranged download; the primary hangs a third of the way in.
    let r = http
        .get(format!("{}/media/movie.bin", p.data))
        .header("range", "bytes=1000000-40999999")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["x-tandem-replica"], "primary");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 1000000-40999999/{}", body.len())
    );
    let got = read_with_pause(r, 12 << 20, || signal(a.pid(), "STOP"));
    signal(a.pid(), "CONT");
    assert_eq!(got.len(), 40_000_000);
    assert!(
        digest(&got) == digest(&body[1_000_000..41_000_000]),
        "ranged bytes differ after a resume"
    );
    assert_eq!(
        p.metric("tandem_body_resumes_total", &["result=\"ok\""]),
        1.0
    );

    // A whole 64 MiB download; the primary is SIGKILLed halfway.
    let r = http
        .get(format!("{}/media/movie.bin", p.data))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-replica"], "primary");
    assert_eq!(
        r.headers()["content-length"],
        body.len().to_string().as_str()
    );
    let got = read_with_pause(r, 32 << 20, || a.kill());
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
    // Large enough that the kill lands mid-body: the rest cannot sit in
    // socket buffers.
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
