//! A benchmark reference, not a product: the least a proxy built on the
//! same stack as tandem-proxy (tokio, one single-threaded event loop per
//! CPU, hyper's HTTP/1.1 server and connection-level client, a keep-alive
//! connection pool per thread) does on a miss. It does no signing,
//! routing, validation, metrics, timeouts beyond one per request, or
//! failover. `scripts/bench-proxy` runs it beside tandem-proxy and nginx,
//! so the miss-path table shows how much of tandem's added latency is the
//! stack itself on this machine.
//!
//! Usage: `passthrough_floor ORIGIN_HOST:PORT LISTEN_PORT FROM_PREFIX TO_PREFIX`;
//! a GET of `FROM_PREFIX<rest>` is sent to the origin as `TO_PREFIX<rest>`.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Pool = Rc<RefCell<Vec<SendRequest<Empty<Bytes>>>>>;

/// The one time limit: connect and first byte, like a replica timeout.
const TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [origin, port, from, to] = <[String; 4]>::try_from(args)
        .map_err(|_| anyhow::anyhow!("usage: passthrough_floor ORIGIN LISTEN_PORT FROM TO"))?;
    let port: u16 = port.parse().context("LISTEN_PORT")?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).context("binding")?;
    listener.set_nonblocking(true)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::new();
    for _ in 0..threads {
        let l = listener.try_clone()?;
        let (origin, from, to) = (origin.clone(), from.clone(), to.clone());
        handles.push(std::thread::spawn(move || worker(l, origin, from, to)));
    }
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
    }
    Ok(())
}

fn worker(
    listener: std::net::TcpListener,
    origin: String,
    from: String,
    to: String,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::from_std(listener)?;
        let pool: Pool = Rc::default();
        let ctx = Rc::new((origin, from, to));
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (pool, ctx) = (pool.clone(), ctx.clone());
            tokio::task::spawn_local(async move {
                let svc =
                    hyper::service::service_fn(move |req| forward(pool.clone(), ctx.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

async fn forward(
    pool: Pool,
    ctx: Rc<(String, String, String)>,
    req: Request<Incoming>,
) -> anyhow::Result<Response<Incoming>> {
    let (origin, from, to) = &*ctx;
    let ready = {
        let mut p = pool.borrow_mut();
        p.retain(|s| !s.is_closed());
        p.iter()
            .rposition(|s| s.is_ready())
            .map(|i| p.swap_remove(i))
    };
    let mut sender = match ready {
        Some(s) => s,
        None => {
            let tcp = TcpStream::connect(origin.as_str()).await?;
            tcp.set_nodelay(true)?;
            let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::task::spawn_local(conn);
            s
        }
    };
    let path = req.uri().path().replacen(from.as_str(), to, 1);
    let out = Request::get(path)
        .header("host", origin.as_str())
        .body(Empty::new())?;
    let resp = tokio::time::timeout(TIMEOUT, sender.send_request(out)).await??;
    pool.borrow_mut().push(sender);
    Ok(resp)
}
