//! systemd's readiness protocol (`sd_notify`): under `Type=notify` the
//! service manager passes a datagram socket in `NOTIFY_SOCKET` and waits
//! for `READY=1` before it counts the proxy as started, so units ordered
//! after it and `systemctl start` wait for a proxy that serves. Without
//! `NOTIFY_SOCKET` (Kubernetes, a shell) every call does nothing.
//!
//! The protocol is one datagram per state change; std's `UnixDatagram`
//! sends it, so neither libsystemd nor unsafe code is needed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The socket address is neither a path nor `@` and an abstract name.
    #[error(
        "{NOTIFY_SOCKET}={0:?} is neither an absolute path nor an abstract socket name (@name)"
    )]
    Address(String),
    /// The datagram could not be sent.
    #[error("sending {state:?} to {NOTIFY_SOCKET}={socket:?}: {source}")]
    Send {
        /// What was being sent.
        state: String,
        /// Where to.
        socket: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The address a `NOTIFY_SOCKET` value names: a filesystem path, or, with a
/// leading `@`, a name in Linux's abstract namespace (what systemd passes
/// to services in containers and to `systemd-run --user`).
fn address(socket: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = socket.as_bytes();
    let bad = || NotifyError::Address(socket.to_string_lossy().into_owned());
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(socket).map_err(|_| bad()),
        Some(b'@') if bytes.len() > 1 => abstract_address(&bytes[1..]).ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &[u8]) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name).ok()
}

/// Abstract sockets exist on Linux only.
#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &[u8]) -> Option<SocketAddr> {
    None
}

/// Sends `state` (newline-separated `KEY=value` assignments) to `socket`.
/// Non-blocking: a service manager that does not read must never stall
/// the proxy.
pub fn send(socket: &OsStr, state: &str) -> Result<(), NotifyError> {
    let addr = address(socket)?;
    let fail = |source| NotifyError::Send {
        state: state.to_string(),
        socket: socket.to_string_lossy().into_owned(),
        source,
    };
    let s = UnixDatagram::unbound().map_err(fail)?;
    s.set_nonblocking(true).map_err(fail)?;
    s.send_to_addr(state.as_bytes(), &addr).map_err(fail)?;
    Ok(())
}

/// Tells the service manager `state` when `NOTIFY_SOCKET` is set; a
/// failure is logged, never fatal (systemd then times the start out and
/// says so, which is the right place for the error).
pub fn notify(state: &str) {
    if let Some(socket) = std::env::var_os(NOTIFY_SOCKET) {
        match send(&socket, state) {
            Ok(()) => tracing::debug!(state, "told the service manager"),
            Err(e) => tracing::warn!(error = %e, "could not notify the service manager"),
        }
    }
}

/// Config loaded and listeners bound: what `/ready` answering 200 means.
pub fn ready() {
    notify("READY=1\nSTATUS=serving");
}

/// A SIGHUP reload has started; [`ready`] ends it.
pub fn reloading() {
    notify("RELOADING=1\nSTATUS=reloading the config");
}

/// The drain has started: `/ready` is 503 from now on.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=draining");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(s: &UnixDatagram) -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_path_socket_receives_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        assert_eq!(recv(&listener), "READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_receives_the_state() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tandem-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(recv(&listener), "STOPPING=1");
    }

    #[test]
    fn other_addresses_are_refused_by_name() {
        for bad in ["", "@", "relative/notify"] {
            let e = send(OsStr::new(bad), "READY=1").unwrap_err();
            assert!(matches!(e, NotifyError::Address(_)), "{bad:?}: {e}");
        }
        let e = send(OsStr::new("/nonexistent/notify"), "READY=1").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/notify"), "{e}");
    }
}
