//! What the Redis tier stores, and why a proxy believes it. Anyone who can
//! write to the fleet's Redis could otherwise serve any body, with any
//! headers, to every proxy for as long as they like; so with
//! `redis.signing_key_env` every value carries an HMAC-SHA256 under the
//! fleet's key, bound to its Redis key (a value copied under another key
//! does not verify), and a value that does not verify is a miss. What a
//! verified value may say is still bounded: its headers pass the same
//! allow-list as an origin's, and its TTL and keep window are clamped to
//! the route's own.
//!
//! A value is: magic (`TDM2` signed, `TDM1` unsigned), the MAC when
//! signed, then stored-at (Unix ms), ttl and keep (ms), replica, headers,
//! and the body, so a reader needs one allocation and serves the body as
//! a slice of the value. It is written straight into the Redis command,
//! with no encoded copy in between.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::cache::CachedObject;
use crate::chunks::Chunks;
use crate::conditional::Validators;

/// An unsigned value (no `signing_key_env`).
const UNSIGNED: &[u8; 4] = b"TDM1";
/// A value carrying an HMAC-SHA256.
const SIGNED: &[u8; 4] = b"TDM2";
const MAC_LEN: usize = 32;

/// The fleet's signing keys: values and notices are signed with the
/// current one and accepted under either, so a rolled key does not empty
/// the fleet's cache (values written under the previous key stay good
/// until they expire).
pub struct Keys {
    current: hmac::Key,
    previous: Option<hmac::Key>,
}

impl Keys {
    /// Keys from the secrets `redis.signing_key_env` and
    /// `redis.previous_signing_key_env` name.
    pub fn new(current: &str, previous: Option<&str>) -> Keys {
        let key = |s: &str| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes());
        Keys {
            current: key(current),
            previous: previous.map(key),
        }
    }

    fn sign(&self, parts: &[&[u8]]) -> hmac::Tag {
        mac(&self.current, parts)
    }

    /// Whether `mac` is the HMAC of `parts` under either key (compared in
    /// constant time). The parts are fed to the HMAC one by one: joining
    /// them first would copy the whole value, body included, per read.
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|k| bool::from(mac(k, parts).as_ref().ct_eq(tag)))
    }
}

/// The HMAC of `parts`, in order, under `key`.
fn mac(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut c = hmac::Context::with_key(key);
    for p in parts {
        c.update(p);
    }
    c.sign()
}

fn put_bytes(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_be_bytes());
    v.extend_from_slice(b);
}

/// An object as a Redis value, ready to write into a command.
pub(super) struct Encoded<'a> {
    /// Magic, MAC (when signed) and everything before the body.
    head: Vec<u8>,
    body: &'a Chunks,
}

impl Encoded<'_> {
    /// `o` as stored under Redis key `rkey` at `now`, signed with `keys`.
    pub(super) fn new<'a>(
        o: &'a CachedObject,
        now: SystemTime,
        rkey: &str,
        keys: Option<&Keys>,
    ) -> Encoded<'a> {
        let stored_at = now
            .checked_sub(o.stored.elapsed())
            .unwrap_or(now)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut meta = Vec::with_capacity(512);
        meta.extend_from_slice(&stored_at.to_be_bytes());
        meta.extend_from_slice(&(o.ttl.as_millis() as u64).to_be_bytes());
        meta.extend_from_slice(&(o.keep.as_millis() as u64).to_be_bytes());
        put_bytes(&mut meta, o.replica.as_bytes());
        meta.extend_from_slice(&(o.headers.len() as u32).to_be_bytes());
        for (k, val) in &o.headers {
            put_bytes(&mut meta, k.as_str().as_bytes());
            put_bytes(&mut meta, val.as_bytes());
        }
        let mut head = Vec::with_capacity(meta.len() + 4 + MAC_LEN);
        match keys {
            Some(k) => {
                let mut parts: Vec<&[u8]> = vec![rkey.as_bytes(), &meta];
                parts.extend(o.body.parts().iter().map(|b| &b[..]));
                head.extend_from_slice(SIGNED);
                head.extend_from_slice(k.sign(&parts).as_ref());
            }
            None => head.extend_from_slice(UNSIGNED),
        }
        head.extend_from_slice(&meta);
        Encoded {
            head,
            body: &o.body,
        }
    }

    /// The value as one buffer (tests).
    #[cfg(test)]
    pub(super) fn to_vec(&self) -> Vec<u8> {
        let mut v = self.head.clone();
        v.extend_from_slice(&self.body.to_vec());
        v
    }
}

impl redis::ToRedisArgs for Encoded<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        out.reserve_space_for_args([self.head.len() + self.body.len()]);
        let mut w = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = w.write_all(&self.head);
        for part in self.body.parts() {
            let _ = w.write_all(part);
        }
    }
}

impl redis::ToSingleRedisArg for Encoded<'_> {}

/// The most a value may say about its own lifetime: the route's TTL and
/// keep window.
#[derive(Debug, Clone, Copy)]
pub struct Clamp {
    /// The route's TTL.
    pub ttl: Duration,
    /// The route's keep window (TTL, or `stale_if_error` if longer).
    pub keep: Duration,
}

/// What a value read from Redis turned out to be.
#[derive(Debug)]
pub(super) enum Decoded {
    /// A usable object.
    Object(Box<CachedObject>),
    /// Sound, but past its keep window.
    Expired,
    /// Not believed: unsigned, badly signed or malformed (the label says
    /// which, for `/metrics`).
    Rejected(&'static str),
}

/// Reads a value stored under Redis key `rkey`, at `now`. With `keys`,
/// only a value signed under one of them is believed; without, only an
/// unsigned one (a signed value cannot be checked). The age is recomputed
/// here rather than trusted, since proxies' clocks differ.
pub(super) fn decode(
    v: Bytes,
    now: SystemTime,
    rkey: &str,
    keys: Option<&Keys>,
    clamp: Clamp,
) -> Decoded {
    let (magic, rest) = v.split_at(v.len().min(4));
    let payload_at = match (magic, keys) {
        (m, Some(k)) if m == SIGNED => {
            let Some(mac) = rest.get(..MAC_LEN) else {
                return Decoded::Rejected("malformed");
            };
            if !k.verify(&[rkey.as_bytes(), &rest[MAC_LEN..]], mac) {
                return Decoded::Rejected("bad_signature");
            }
            4 + MAC_LEN
        }
        (m, Some(_)) if m == UNSIGNED => return Decoded::Rejected("unsigned"),
        (m, None) if m == UNSIGNED => 4,
        (m, None) if m == SIGNED => return Decoded::Rejected("signed_without_key"),
        _ => return Decoded::Rejected("malformed"),
    };
    match parse(&v, payload_at, now, clamp) {
        Some(Some(o)) => Decoded::Object(Box::new(o)),
        Some(None) => Decoded::Expired,
        None => Decoded::Rejected("malformed"),
    }
}

/// The payload from `at`: `None` if malformed, `Some(None)` if expired.
fn parse(v: &Bytes, at: usize, now: SystemTime, clamp: Clamp) -> Option<Option<CachedObject>> {
    let mut r = Reader { v, at };
    let stored_at = r.u64()?;
    let ttl = Duration::from_millis(r.u64()?).min(clamp.ttl);
    let keep = Duration::from_millis(r.u64()?).min(clamp.keep);
    let replica = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let n = r.u32()? as usize;
    let mut headers = HeaderMap::with_capacity(n.min(64));
    for _ in 0..n {
        let k = HeaderName::from_bytes(r.bytes()?).ok()?;
        // A slice of the value, as the body is: no copy per header (the
        // value lives as long as the object anyway).
        let val = HeaderValue::from_maybe_shared(r.shared()?).ok()?;
        // A value may only say what an origin's answer could have.
        if crate::response::passes(&k) {
            headers.append(k, val);
        }
    }
    let body = Chunks::one(v.slice(r.at..));
    let now_ms = now.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let age = Duration::from_millis(now_ms.saturating_sub(stored_at));
    if age > ttl + keep {
        return Some(None);
    }
    let stored = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    let validators = Validators::of(&headers);
    let etag = validators.etag.map(str::to_string);
    let last_modified = validators.last_modified;
    Some(Some(CachedObject {
        headers,
        body,
        etag,
        last_modified,
        replica,
        ttl,
        keep,
        stored,
    }))
}

struct Reader<'a> {
    v: &'a Bytes,
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.v.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    /// Like [`Reader::bytes`], as a slice sharing the value's buffer.
    fn shared(&mut self) -> Option<Bytes> {
        let s = self.bytes()?;
        Some(self.v.slice_ref(s))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// How long a signed purge notice is good for: a replayed old notice
/// purges nothing.
pub const NOTICE_MAX_AGE: Duration = Duration::from_secs(60);

/// The MAC of a purge notice's fields.
pub(super) fn notice_mac(keys: &Keys, fields: &[&[u8]]) -> String {
    let tag = keys.sign(fields);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a notice's `mac` (hex) signs `fields` under either key.
pub(super) fn notice_verifies(keys: &Keys, fields: &[&[u8]], mac: &str) -> bool {
    let bytes: Option<Vec<u8>> = (0..mac.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(mac.get(i..i + 2)?, 16).ok())
        .collect();
    bytes.is_some_and(|b| keys.verify(fields, &b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LONG: Clamp = Clamp {
        ttl: Duration::from_secs(3600),
        keep: Duration::from_secs(3600),
    };

    pub(crate) fn object(
        body: &[u8],
        headers: &[(&str, &str)],
        ttl: u64,
        keep: u64,
    ) -> CachedObject {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let v = Validators::of(&h);
        CachedObject {
            etag: v.etag.map(str::to_string),
            last_modified: v.last_modified,
            headers: h,
            body: Chunks::one(Bytes::copy_from_slice(body)),
            replica: "eu".into(),
            ttl: Duration::from_secs(ttl),
            keep: Duration::from_secs(keep),
            stored: Instant::now(),
        }
    }

    fn round_trip(o: &CachedObject, keys: Option<&Keys>, clamp: Clamp) -> Decoded {
        let now = SystemTime::now();
        let v = Encoded::new(o, now, "k", keys).to_vec();
        decode(Bytes::from(v), now, "k", keys, clamp)
    }

    #[test]
    fn round_trip_keeps_metadata_and_validators_signed_or_not() {
        let o = object(
            b"hello",
            &[
                ("etag", "\"abc\""),
                ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ("x-amz-meta-a", "1"),
                ("x-amz-meta-a", "2"),
                ("content-type", "text/plain"),
            ],
            60,
            120,
        );
        let keys = Keys::new("fleet-secret", None);
        for k in [None, Some(&keys)] {
            let Decoded::Object(d) = round_trip(&o, k, LONG) else {
                panic!("not decoded")
            };
            assert_eq!(d.body.to_vec(), b"hello");
            assert_eq!(d.headers, o.headers);
            assert_eq!(d.etag.as_deref(), Some("\"abc\""));
            assert_eq!(d.last_modified, o.last_modified);
            assert_eq!((d.ttl, d.keep, d.replica.as_str()), (o.ttl, o.keep, "eu"));
            assert!(d.is_fresh());
        }
    }

    #[test]
    fn header_values_are_slices_of_the_value_not_copies() {
        let o = object(
            b"hello",
            &[("content-type", "text/plain"), ("x-amz-meta-owner", "ops")],
            60,
            0,
        );
        let now = SystemTime::now();
        let v = Bytes::from(Encoded::new(&o, now, "k", None).to_vec());
        let within = v.as_ptr_range();
        let Decoded::Object(d) = decode(v.clone(), now, "k", None, LONG) else {
            panic!("not decoded")
        };
        assert_eq!(d.headers, o.headers);
        for (name, val) in &d.headers {
            assert!(
                within.contains(&val.as_bytes().as_ptr()),
                "{name} was copied out of the value"
            );
        }
    }

    #[test]
    fn tampered_unsigned_or_misplaced_values_are_not_believed() {
        let o = object(b"hello", &[("content-type", "text/plain")], 60, 0);
        let keys = Keys::new("fleet-secret", None);
        let now = SystemTime::now();
        let v = Encoded::new(&o, now, "k", Some(&keys)).to_vec();
        // One body byte changed.
        let mut t = v.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode(Bytes::from(t), now, "k", Some(&keys), LONG),
            Decoded::Rejected("bad_signature")
        ));
        // A good value copied under another key.
        assert!(matches!(
            decode(Bytes::from(v.clone()), now, "other", Some(&keys), LONG),
            Decoded::Rejected("bad_signature")
        ));
        // Signed under another fleet's key.
        let theirs = Keys::new("not-ours", None);
        assert!(matches!(
            decode(Bytes::from(v.clone()), now, "k", Some(&theirs), LONG),
            Decoded::Rejected("bad_signature")
        ));
        // An unsigned value, once signing is on.
        let plain = Encoded::new(&o, now, "k", None).to_vec();
        assert!(matches!(
            decode(Bytes::from(plain), now, "k", Some(&keys), LONG),
            Decoded::Rejected("unsigned")
        ));
        // During a key rotation the previous key still verifies.
        let rolled = Keys::new("new-secret", Some("fleet-secret"));
        assert!(matches!(
            decode(Bytes::from(v), now, "k", Some(&rolled), LONG),
            Decoded::Object(_)
        ));
    }

    #[test]
    fn a_value_cannot_outlive_the_route_or_smuggle_headers() {
        let o = object(
            b"x",
            &[
                ("content-type", "text/plain"),
                ("set-cookie", "session=stolen"),
            ],
            10 * 365 * 86400,
            0,
        );
        let clamp = Clamp {
            ttl: Duration::from_secs(60),
            keep: Duration::from_secs(60),
        };
        let Decoded::Object(d) = round_trip(&o, None, clamp) else {
            panic!()
        };
        assert_eq!(d.ttl, Duration::from_secs(60));
        assert!(!d.headers.contains_key("set-cookie"));
        assert_eq!(d.headers["content-type"], "text/plain");
    }

    #[test]
    fn age_carries_over_and_expired_values_are_misses() {
        let o = object(b"x", &[], 10, 20);
        let written = SystemTime::now();
        let v = Bytes::from(Encoded::new(&o, written, "k", None).to_vec());
        let Decoded::Object(later) = decode(
            v.clone(),
            written + Duration::from_secs(15),
            "k",
            None,
            LONG,
        ) else {
            panic!()
        };
        assert!(!later.is_fresh(), "15 s old with a 10 s ttl is stale");
        assert!(later.stored.elapsed() >= Duration::from_secs(14));
        assert!(matches!(
            decode(v, written + Duration::from_secs(31), "k", None, LONG),
            Decoded::Expired
        ));
    }

    #[test]
    fn other_formats_and_truncation_are_refused() {
        let o = object(b"body", &[("etag", "\"e\"")], 10, 0);
        let v = Encoded::new(&o, SystemTime::now(), "k", None).to_vec();
        assert!(matches!(
            decode(
                Bytes::from_static(b"TDM9xxxxxxxx"),
                SystemTime::now(),
                "k",
                None,
                LONG
            ),
            Decoded::Rejected("malformed")
        ));
        // Cut inside the header block: never a panic, never a half object.
        for cut in 0..v.len() - o.body.len() {
            assert!(
                matches!(
                    decode(
                        Bytes::copy_from_slice(&v[..cut]),
                        SystemTime::now(),
                        "k",
                        None,
                        LONG
                    ),
                    Decoded::Rejected(_)
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_value_written_is_the_value_read() {
        let mut body = Chunks::one(Bytes::from_static(b"hello "));
        body.push(Bytes::from_static(b"world"));
        let mut o = object(b"", &[("etag", "\"e\"")], 10, 5);
        o.body = body;
        let keys = Keys::new("s", None);
        let now = SystemTime::now();
        let e = Encoded::new(&o, now, "k", Some(&keys));
        let mut cmd = redis::cmd("SET");
        cmd.arg(&e);
        let v = e.to_vec();
        let Decoded::Object(d) = decode(Bytes::from(v.clone()), now, "k", Some(&keys), LONG) else {
            panic!()
        };
        assert_eq!(d.body.to_vec(), b"hello world");
        let packed = cmd.get_packed_command();
        assert!(packed.windows(v.len()).any(|w| w == v.as_slice()));
    }

    #[test]
    fn notices_verify_only_with_their_key() {
        let keys = Keys::new("s", Some("old"));
        let fields: [&[u8]; 2] = [b"g", b"a/1"];
        let mac = notice_mac(&keys, &fields);
        assert!(notice_verifies(&keys, &fields, &mac));
        assert!(!notice_verifies(&keys, &[b"g", b"a/2"], &mac));
        assert!(!notice_verifies(&keys, &fields, "zz"));
        assert!(!notice_verifies(&Keys::new("other", None), &fields, &mac));
    }

    proptest! {
        #[test]
        fn decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = Keys::new("s", None);
            for magic in [&b""[..], UNSIGNED, SIGNED] {
                let mut with = magic.to_vec();
                with.extend_from_slice(&v);
                let _ = decode(Bytes::from(with.clone()), SystemTime::now(), "k", None, LONG);
                let _ = decode(Bytes::from(with), SystemTime::now(), "k", Some(&keys), LONG);
            }
        }
    }
}
