//! Who the client is. Behind a load balancer the TCP peer is the balancer,
//! so the client comes from `X-Forwarded-For` or `Forwarded` (believed
//! only from `listen.trusted_proxies`), or from the PROXY protocol header a
//! network load balancer puts before the request (`listen.proxy_protocol`).
//! Rate limits key on the result, an IPv6 client by its /64: one host owns
//! a whole /64, and keying on single addresses would give it 2^64 buckets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::HeaderMap;
use tandem_fleet_config::Cidr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The client of a request from `peer`: the right-most address of the
/// forwarding chain that is not a trusted proxy. Headers from an
/// untrusted peer are ignored (anyone can write them). An entry that is
/// not an address ends the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if xff.is_empty() {
        for v in headers
            .get_all(http::header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            for element in v.split(',') {
                let for_ = element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
                });
                if let Some(f) = for_ {
                    hops.push(forwarded_node(f));
                }
            }
        }
    } else {
        for v in xff {
            hops.extend(v.split(',').map(|a| parse_node(a.trim())));
        }
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// An address as X-Forwarded-For writes it (`192.0.2.1`, `2001:db8::1`, or
/// either with a port).
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

/// An RFC 7239 node: `192.0.2.43`, `"[2001:db8:cafe::17]:4711"`; `unknown`
/// and obfuscated identifiers are not addresses.
fn forwarded_node(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches('"');
    let host = match s.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?,
        None => s.rsplit_once(':').map_or(s, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                s
            }
        }),
    };
    host.parse().ok()
}

/// The rate-limit key of a client: the address, or an IPv6 address's /64.
pub fn rate_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let net = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", Ipv6Addr::from(net))
            }
        },
    }
}

/// The v2 header's fixed signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The longest v1 header, CRLF included (the specification's limit).
const V1_MAX: usize = 107;

/// What a PROXY protocol header at the start of a connection says.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not all of it has arrived yet.
    Incomplete,
    /// Not a PROXY header, or a malformed one.
    Invalid(&'static str),
    /// A header of `len` bytes; `source` is the client, or `None` for a
    /// LOCAL (health-check) connection or an unknown family.
    Complete {
        /// Bytes the header takes.
        len: usize,
        /// The client's address.
        source: Option<IpAddr>,
    },
}

/// Parses a PROXY protocol v1 or v2 header from the first bytes of a
/// connection.
pub fn parse_proxy_header(b: &[u8]) -> ProxyHeader {
    if b.len() < 12 {
        return if V2_SIGNATURE.starts_with(b) || b"PROXY ".starts_with(&b[..b.len().min(6)]) {
            ProxyHeader::Incomplete
        } else {
            ProxyHeader::Invalid("not a PROXY protocol header")
        };
    }
    if b.starts_with(V2_SIGNATURE) {
        return parse_v2(b);
    }
    if b.starts_with(b"PROXY ") {
        return parse_v1(b);
    }
    ProxyHeader::Invalid("not a PROXY protocol header")
}

fn parse_v1(b: &[u8]) -> ProxyHeader {
    let Some(end) = b.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if b.len() >= V1_MAX {
            ProxyHeader::Invalid("PROXY v1 header longer than 107 bytes")
        } else {
            ProxyHeader::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&b[..end]) else {
        return ProxyHeader::Invalid("PROXY v1 header is not text");
    };
    let f: Vec<&str> = line.split(' ').collect();
    let source = match f.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", "TCP4", src, _dst, _sp, _dp] => match src.parse::<Ipv4Addr>() {
            Ok(ip) => Some(IpAddr::V4(ip)),
            Err(_) => return ProxyHeader::Invalid("PROXY v1 TCP4 source is not an address"),
        },
        ["PROXY", "TCP6", src, _dst, _sp, _dp] => match src.parse::<Ipv6Addr>() {
            Ok(ip) => Some(IpAddr::V6(ip)),
            Err(_) => return ProxyHeader::Invalid("PROXY v1 TCP6 source is not an address"),
        },
        _ => return ProxyHeader::Invalid("malformed PROXY v1 header"),
    };
    ProxyHeader::Complete {
        len: end + 2,
        source,
    }
}

fn parse_v2(b: &[u8]) -> ProxyHeader {
    if b.len() < 16 {
        return ProxyHeader::Incomplete;
    }
    if b[12] >> 4 != 2 {
        return ProxyHeader::Invalid("PROXY v2 header of an unknown version");
    }
    let len = 16 + usize::from(u16::from_be_bytes([b[14], b[15]]));
    if b.len() < len {
        return ProxyHeader::Incomplete;
    }
    let local = b[12] & 0x0f == 0;
    let a = &b[16..len];
    let source = match (local, b[13] >> 4) {
        (true, _) => None,
        (false, 1) if a.len() >= 12 => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
        (false, 2) if a.len() >= 36 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&a[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
        (false, 1 | 2) => return ProxyHeader::Invalid("PROXY v2 address block too short"),
        // AF_UNIX or unspecified: no address to use.
        _ => None,
    };
    ProxyHeader::Complete { len, source }
}

/// Reads the PROXY protocol header a connection must start with, within
/// `limit`, consuming exactly its bytes (the request follows); returns its
/// source address. Reads are exact, so a client trickling its header waits
/// on the socket rather than spinning.
pub async fn read_proxy_header(
    stream: &mut TcpStream,
    limit: Duration,
) -> Result<Option<IpAddr>, &'static str> {
    let read = async {
        let failed = |_| "connection closed inside its PROXY header";
        // Both versions are at least 12 bytes long.
        let mut b = vec![0u8; 12];
        stream.read_exact(&mut b).await.map_err(failed)?;
        loop {
            match parse_proxy_header(&b) {
                ProxyHeader::Complete { source, .. } => return Ok(source),
                ProxyHeader::Invalid(why) => return Err(why),
                ProxyHeader::Incomplete => {
                    // v2: the fixed part, then exactly its stated length;
                    // v1: a byte at a time up to its CRLF (at most 107).
                    let more = if b.starts_with(V2_SIGNATURE) {
                        if b.len() < 16 {
                            16 - b.len()
                        } else {
                            16 + usize::from(u16::from_be_bytes([b[14], b[15]])) - b.len()
                        }
                    } else {
                        1
                    };
                    let at = b.len();
                    b.resize(at + more, 0);
                    stream.read_exact(&mut b[at..]).await.map_err(failed)?;
                }
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| "no PROXY header within limits.header_timeout")?
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_peers() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let xff = h(&[("x-forwarded-for", "198.51.100.7, 10.0.0.2")]);
        // From the balancer: the right-most untrusted address.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff, &trusted),
            ip("198.51.100.7")
        );
        // From anyone else: the header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &xff, &trusted),
            ip("203.0.113.9")
        );
        // A client cannot hide behind a spoofed left-most entry.
        let spoofed = h(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        // Several headers are one list, in order.
        let split = h(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &split, &trusted),
            ip("198.51.100.7")
        );
        // RFC 7239.
        let fwd = h(&[(
            "forwarded",
            "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &fwd, &trusted),
            ip("2001:db8:cafe::17")
        );
        // Garbage stops the walk at the last trusted hop.
        let junk = h(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &junk, &trusted), ip("10.0.0.1"));
        // No trusted proxies: the peer, whatever the headers say.
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(rate_key(ip("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_ne!(rate_key(ip("2001:db8:1:3::1")), "2001:db8:1:2::/64");
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(rate_key(ip("192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn proxy_protocol_v1_and_v2_headers() {
        let v1 = b"PROXY TCP4 198.51.100.7 10.0.0.5 51234 8080\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse_proxy_header(v1),
            ProxyHeader::Complete {
                len: 45,
                source: Some(ip("198.51.100.7"))
            }
        );
        assert_eq!(parse_proxy_header(&v1[..20]), ProxyHeader::Incomplete);
        assert_eq!(
            parse_proxy_header(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Complete {
                len: 15,
                source: None
            }
        );
        assert!(matches!(
            parse_proxy_header(b"GET / HTTP/1.1\r\n\r\n"),
            ProxyHeader::Invalid(_)
        ));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 198, 51, 100, 7, 10, 0, 0, 5, 0x1f, 0x90, 0x1f, 0x90,
        ]);
        v2.extend_from_slice(b"GET");
        assert_eq!(
            parse_proxy_header(&v2),
            ProxyHeader::Complete {
                len: 28,
                source: Some(ip("198.51.100.7"))
            }
        );
        assert_eq!(parse_proxy_header(&v2[..20]), ProxyHeader::Incomplete);
        // LOCAL: a health check from the balancer itself.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse_proxy_header(&local),
            ProxyHeader::Complete {
                len: 16,
                source: None
            }
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_proxy_header(&b);
            let mut v2 = V2_SIGNATURE.to_vec();
            v2.extend_from_slice(&b);
            if let ProxyHeader::Complete { len, .. } = parse_proxy_header(&v2) {
                prop_assert!(len <= v2.len());
            }
        }
    }
}
