//! The memory cache (moka, bounded by bytes) and request coalescing: the
//! first miss for a key fetches from the origin; concurrent misses for the
//! same key wait for its result and then answer their own request (range,
//! conditional, HEAD) from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use moka::Expiry;
use tokio::sync::watch;

use crate::error::ProxyError;

/// A whole object held in memory.
#[derive(Debug)]
pub struct CachedObject {
    /// Object headers as the origin sent them (minus hop-by-hop ones).
    pub headers: HeaderMap,
    /// The body; slices of it serve ranges without copying.
    pub body: Bytes,
    /// ETag, for preconditions.
    pub etag: Option<String>,
    /// Last-Modified, for preconditions.
    pub last_modified: Option<SystemTime>,
    /// Name of the replica it came from.
    pub replica: String,
    /// Freshness lifetime.
    pub ttl: Duration,
    /// How long past `ttl` the copy is kept: for revalidation with
    /// If-None-Match and for stale-if-error.
    pub keep: Duration,
    /// When it was stored.
    pub stored: Instant,
}

impl CachedObject {
    /// Still within its freshness lifetime.
    pub fn is_fresh(&self) -> bool {
        self.stored.elapsed() <= self.ttl
    }

    /// The same object, stored again now (after a 304 revalidation).
    pub fn refreshed(&self) -> CachedObject {
        CachedObject {
            headers: self.headers.clone(),
            body: self.body.clone(),
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            replica: self.replica.clone(),
            ttl: self.ttl,
            keep: self.keep,
            stored: Instant::now(),
        }
    }

    /// Bytes charged against `cache.max_bytes`: body plus headers, so a
    /// cache of tiny objects is not unbounded by its metadata.
    pub fn weight(&self) -> u32 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        u32::try_from(self.body.len() + h + 256).unwrap_or(u32::MAX)
    }
}

/// A non-200 answer from the origin (404, 403...), shared with coalesced
/// waiters but never cached.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers to send.
    pub headers: HeaderMap,
    /// Body (an S3 XML error, small).
    pub body: Bytes,
    /// Replica that answered.
    pub replica: String,
}

/// What a leader's fetch produced, as seen by the waiters.
#[derive(Debug, Clone)]
pub enum FlightResult {
    /// The object is now in memory.
    Object(Arc<CachedObject>),
    /// The origin answered with something other than the object.
    Answer(Arc<Answer>),
    /// Not cacheable (too large, `no-store`...): fetch for yourself.
    Uncacheable,
    /// Every replica failed; waiters get the same error rather than
    /// stampeding a dead origin.
    Failed(ProxyError),
}

struct PerEntryTtl;

impl Expiry<Arc<str>, Arc<CachedObject>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<CachedObject>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl + value.keep)
    }
}

/// The cache plus the table of fetches in flight.
pub struct Cache {
    store: moka::future::Cache<Arc<str>, Arc<CachedObject>>,
    flights: Mutex<HashMap<Arc<str>, watch::Receiver<Option<FlightResult>>>>,
    /// Largest object kept.
    pub max_object_bytes: u64,
    /// Capacity in bytes.
    pub max_bytes: u64,
}

/// Either lead the fetch for a key or wait for whoever leads it.
pub enum Flight<'a> {
    /// Fetch, then [`Leader::finish`].
    Leader(Leader<'a>),
    /// Wait with [`wait`].
    Follower(watch::Receiver<Option<FlightResult>>),
}

/// The one fetch for a key. Dropping it without finishing (the client went
/// away) releases the waiters, who then fetch for themselves.
pub struct Leader<'a> {
    cache: &'a Cache,
    key: Arc<str>,
    tx: Option<watch::Sender<Option<FlightResult>>>,
}

impl Leader<'_> {
    /// The cache key this flight is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Publishes the result to the waiters (and stores an object).
    pub async fn finish(mut self, r: FlightResult) {
        if let FlightResult::Object(o) = &r {
            self.cache.store.insert(self.key.clone(), o.clone()).await;
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(r));
        }
        self.cache.remove_flight(&self.key);
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.cache.remove_flight(&self.key);
        }
    }
}

/// Waits for the leader; `None` if it went away without a result.
pub async fn wait(mut rx: watch::Receiver<Option<FlightResult>>) -> Option<FlightResult> {
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return Some(r);
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

impl Cache {
    /// A cache of `max_bytes` holding objects up to `max_object_bytes`.
    pub fn new(max_bytes: u64, max_object_bytes: u64) -> Cache {
        let store = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Arc<str>, v: &Arc<CachedObject>| v.weight())
            .expire_after(PerEntryTtl)
            .build();
        Cache {
            store,
            flights: Mutex::new(HashMap::new()),
            max_object_bytes,
            max_bytes,
        }
    }

    /// A fresh object, if present.
    pub async fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.store.get(key).await
    }

    /// Stores an object fetched elsewhere (from the Redis tier).
    pub async fn insert(&self, key: Arc<str>, obj: Arc<CachedObject>) {
        self.store.insert(key, obj).await;
    }

    /// Joins or starts the flight for `key`.
    pub fn flight(&self, key: Arc<str>) -> Flight<'_> {
        let mut f = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = f.get(&key) {
            return Flight::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        f.insert(key.clone(), rx);
        Flight::Leader(Leader {
            cache: self,
            key,
            tx: Some(tx),
        })
    }

    /// A flight in progress for `key`, if any (range requests join one but
    /// never start one).
    pub fn existing_flight(&self, key: &str) -> Option<watch::Receiver<Option<FlightResult>>> {
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn remove_flight(&self, key: &str) {
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Removes every cached object whose key is `generation`, `key` (any
    /// version) or, with `prefix`, every key starting with `key`. Returns
    /// how many objects were removed.
    pub async fn purge(&self, generation: &str, key: &str, prefix: bool) -> usize {
        let head = format!("{generation}\0{key}");
        let victims: Vec<Arc<str>> = self
            .store
            .iter()
            .map(|(k, _)| k)
            .filter(|k| {
                let k: &str = k.as_ref();
                if prefix {
                    k.starts_with(&head)
                } else {
                    k == head
                        || k.strip_prefix(&head)
                            .is_some_and(|rest| rest.starts_with('\0'))
                }
            })
            .map(|k| Arc::clone(&*k))
            .collect();
        for k in &victims {
            self.store.invalidate(k).await;
        }
        victims.len()
    }

    /// Bytes currently charged, and entry count (for /metrics).
    pub fn usage(&self) -> (u64, u64) {
        (self.store.weighted_size(), self.store.entry_count())
    }

    /// Runs moka's pending housekeeping so usage figures are current.
    pub async fn sync(&self) {
        self.store.run_pending_tasks().await;
    }
}

/// The cache key: route generation, key and version, NUL-separated (NUL
/// cannot occur in a validated key).
pub fn key(generation: &str, key: &str, version_id: Option<&str>) -> Arc<str> {
    let mut k =
        String::with_capacity(generation.len() + key.len() + 2 + version_id.map_or(0, str::len));
    k.push_str(generation);
    k.push('\0');
    k.push_str(key);
    if let Some(v) = version_id {
        k.push('\0');
        k.push_str(v);
    }
    k.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obj(n: usize, ttl: Duration) -> Arc<CachedObject> {
        Arc::new(CachedObject {
            headers: HeaderMap::new(),
            body: Bytes::from(vec![0u8; n]),
            etag: None,
            last_modified: None,
            replica: "r".into(),
            ttl,
            keep: Duration::ZERO,
            stored: Instant::now(),
        })
    }

    #[tokio::test]
    async fn one_leader_many_followers_and_release_on_drop() {
        let c = Cache::new(1 << 20, 1 << 20);
        let k = key("g", "a", None);
        let Flight::Leader(l) = c.flight(k.clone()) else {
            panic!()
        };
        let Flight::Follower(f1) = c.flight(k.clone()) else {
            panic!()
        };
        let f2 = c.existing_flight(&k).unwrap();
        l.finish(FlightResult::Object(obj(10, Duration::from_secs(60))))
            .await;
        assert!(matches!(wait(f1).await, Some(FlightResult::Object(_))));
        assert!(matches!(wait(f2).await, Some(FlightResult::Object(_))));
        assert!(c.get(&k).await.is_some());
        // A leader that goes away releases its followers with no result.
        let k2 = key("g", "b", None);
        let Flight::Leader(l) = c.flight(k2.clone()) else {
            panic!()
        };
        let Flight::Follower(f) = c.flight(k2.clone()) else {
            panic!()
        };
        drop(l);
        assert!(wait(f).await.is_none());
        assert!(matches!(c.flight(k2), Flight::Leader(_)));
    }

    #[tokio::test]
    async fn bounded_by_bytes_and_ttl() {
        let c = Cache::new(100_000, 50_000);
        for i in 0..20 {
            c.store
                .insert(
                    key("g", &i.to_string(), None),
                    obj(10_000, Duration::from_secs(60)),
                )
                .await;
        }
        c.sync().await;
        assert!(c.usage().0 <= 100_000, "{:?}", c.usage());
        c.store
            .insert(key("g", "short", None), obj(10, Duration::from_millis(1)))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(c.get(&key("g", "short", None)).await.is_none());
    }

    #[tokio::test]
    async fn purge_by_key_takes_every_version_and_by_prefix_only_the_prefix() {
        let c = Cache::new(1 << 20, 1 << 20);
        for (k, v) in [
            ("a/1", None),
            ("a/1", Some("v1")),
            ("a/10", None),
            ("b/1", None),
        ] {
            c.store
                .insert(key("g", k, v), obj(1, Duration::from_secs(60)))
                .await;
        }
        assert_eq!(c.purge("g", "a/1", false).await, 2);
        assert!(c.get(&key("g", "a/10", None)).await.is_some());
        assert_eq!(c.purge("g", "a/", true).await, 1);
        assert_eq!(c.purge("other", "b/", true).await, 0);
        assert!(c.get(&key("g", "b/1", None)).await.is_some());
    }

    proptest! {
        #[test]
        fn versions_and_generations_never_share_a_key(
            k in "[a-z/]{1,8}", v1 in proptest::option::of("[a-z0-9]{1,6}"), v2 in proptest::option::of("[a-z0-9]{1,6}")
        ) {
            prop_assert_eq!(key("g", &k, v1.as_deref()) == key("g", &k, v2.as_deref()), v1 == v2);
            prop_assert_ne!(key("g1", &k, v1.as_deref()), key("g2", &k, v1.as_deref()));
        }
    }
}
