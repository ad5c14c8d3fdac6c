//! The origin client's connection pool against a real HTTP/1.1 server on
//! loopback that counts the connections it accepts: keep-alive reuse, a
//! second connection while the first is still streaming a body, closed
//! connections never reused, and a refused connection named as such.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use tandem_proxy::client::{sweep_idle, ClientError, OriginClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    KeepAlive,
    /// `Connection: close`, then the socket is closed.
    Close,
    /// The body of the first request on each connection comes late.
    SlowFirstBody,
    // In every mode, the body of a path starting with /busy takes 1.5 s.
}

struct Server {
    port: u16,
    accepts: Arc<AtomicUsize>,
    /// Connections the client closed.
    closed: Arc<AtomicUsize>,
}

async fn server(mode: Mode) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepts = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (n, c) = (accepts.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            // The head and body are two writes; Nagle would hold the
            // second for the client's delayed ACK.
            s.set_nodelay(true).unwrap();
            n.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                if connection(s, mode).await {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    Server {
        port,
        accepts,
        closed,
    }
}

/// Serves requests until the connection ends; true when the client closed it.
async fn connection(mut s: TcpStream, mode: Mode) -> bool {
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        // Read one request head.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match s.read(&mut chunk).await {
                Ok(0) => return true,
                Err(_) => return false,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let close = matches!(mode, Mode::Close);
        let body = format!("body of {path}");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{}\r\n",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return false;
        }
        if path.starts_with("/busy") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        } else if matches!(mode, Mode::SlowFirstBody) && first {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        first = false;
        if s.write_all(body.as_bytes()).await.is_err() || close {
            return false;
        }
    }
}

fn get(port: u16, path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", format!("127.0.0.1:{port}"))
        .body(Empty::new())
        .unwrap()
}

async fn text(r: http::Response<hyper::body::Incoming>) -> String {
    String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn sequential_requests_share_one_keep_alive_connection() {
    let s = server(Mode::KeepAlive).await;
    let c = OriginClient::new().unwrap();
    for i in 0..20 {
        let r = c.request(get(s.port, &format!("/k{i}"))).await.unwrap();
        assert_eq!(text(r).await, format!("body of /k{i}"));
    }
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
    // A clone shares the pool.
    let r = c.clone().request(get(s.port, "/clone")).await.unwrap();
    assert_eq!(text(r).await, "body of /clone");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_still_streaming_a_body_is_not_handed_out() {
    let s = server(Mode::SlowFirstBody).await;
    let c = OriginClient::new().unwrap();
    // Headers are back, the body is not: this connection is busy.
    let first = c.request(get(s.port, "/slow")).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), c.request(get(s.port, "/b")))
        .await
        .expect("a second request must not wait for the first body")
        .unwrap();
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
    assert_eq!(text(second).await, "body of /b");
    assert_eq!(text(first).await, "body of /slow");
    // Both are idle again; the next request reuses one of them.
    let r = c.request(get(s.port, "/c")).await.unwrap();
    assert_eq!(text(r).await, "body of /c");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_closed_connection_is_never_reused() {
    let s = server(Mode::Close).await;
    let c = OriginClient::new().unwrap();
    for i in 0..5 {
        let r = c.request(get(s.port, &format!("/c{i}"))).await.unwrap();
        assert_eq!(text(r).await, format!("body of /c{i}"));
    }
    assert_eq!(s.accepts.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_naming_the_origin() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = OriginClient::new().unwrap();
    let e = c.request(get(port, "/x")).await.unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    assert_eq!(e.kind(), "connect");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("connecting to http://127.0.0.1:{port}: ")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_relative_uri_is_refused() {
    let c = OriginClient::new().unwrap();
    let req = Request::get("/relative").body(Empty::new()).unwrap();
    let e = c.request(req).await.unwrap_err();
    assert!(matches!(e, ClientError::NotAbsolute(_)), "{e:?}");
}

#[tokio::test]
async fn the_sweep_closes_idle_connections_and_keeps_busy_ones() {
    let s = server(Mode::KeepAlive).await;
    let c = OriginClient::new().unwrap();
    let busy = c.request(get(s.port, "/busy")).await.unwrap();
    let r = c.request(get(s.port, "/idle")).await.unwrap();
    assert_eq!(text(r).await, "body of /idle");
    assert_eq!(s.accepts.load(Ordering::SeqCst), 2);
    sweep_idle(Duration::ZERO);
    let t0 = std::time::Instant::now();
    while s.closed.load(Ordering::SeqCst) < 1 && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.closed.load(Ordering::SeqCst), 1, "the idle one is closed");
    // The busy one survived the sweep and finishes its body.
    assert_eq!(text(busy).await, "body of /busy");
    let r = c.request(get(s.port, "/after")).await.unwrap();
    assert_eq!(text(r).await, "body of /after");
    assert_eq!(
        s.accepts.load(Ordering::SeqCst),
        2,
        "the busy one was reused"
    );
}
