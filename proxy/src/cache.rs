//! The memory cache (moka, bounded by bytes), the table of fills in flight
//! that coalesces misses, the budget those fills buffer within, and the
//! purge log that keeps a fill started before a purge from storing what
//! the purge removed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use moka::Expiry;
use tokio::sync::Notify;

use crate::chunks::Chunks;
use crate::error::ProxyError;

/// Bytes charged per cached entry on top of its body and headers: the
/// moka entry with its deque and timer-wheel nodes, the key, the
/// `Arc<CachedObject>` with its strings and chunk list, and what the
/// allocator holds around them. Measured with the cache overflowed with
/// 4 KiB objects (`make bench`, "memory with a full cache"): each entry
/// held 8.5 to 8.8 KiB of RSS, about 1.5 KiB more than it was charged
/// at 2,560 here. glibc's `malloc_stats` put the bytes in use within
/// 0.3 % of each other in builds whose RSS differed by 4 %, and a third
/// of the heap free: the gap is fragmentation from evicting small
/// entries, which only charging it keeps inside `max_bytes`.
pub const ENTRY_OVERHEAD: usize = 4096;

/// Bytes charged per header on top of its name and value: the `HeaderMap`
/// bucket (name, value, hash and links) the value lives in.
const HEADER_OVERHEAD: usize = 96;

/// Inserted bytes moka may hold before its evictions are applied, as a
/// fraction of the capacity (1/32: about 3 %)...
pub const OVERSHOOT: u64 = 32;

/// ...but never less than this: moka itself applies them every 64 writes,
/// which bounds small objects already, and running its housekeeping every
/// few inserts of a small cache cost a Redis hit a quarter more CPU.
pub const OVERSHOOT_FLOOR: u64 = 1 << 20;

/// Purges remembered for fills in flight. A fill older than the oldest of
/// them is not stored at all, so the log never has to grow.
const PURGE_LOG: usize = 1024;

/// A whole object held in memory.
#[derive(Debug)]
pub struct CachedObject {
    /// Object headers as the origin sent them (minus hop-by-hop ones).
    pub headers: HeaderMap,
    /// The body; ranges are served as slices of it, without copying.
    pub body: Chunks,
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
    /// When it was stored, or last confirmed by the origin.
    pub stored: Instant,
}

impl CachedObject {
    /// Still within its freshness lifetime.
    pub fn is_fresh(&self) -> bool {
        self.stored.elapsed() <= self.ttl
    }

    /// How long it may still be kept: `ttl + keep` from when it was stored
    /// (a copy from Redis arrives with some of that already spent).
    pub fn remaining(&self) -> Duration {
        (self.ttl + self.keep).saturating_sub(self.stored.elapsed())
    }

    /// The same object, confirmed by the origin now (a 304): its lifetime
    /// and its stale-if-error window start again.
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

    /// Bytes charged against `cache.max_bytes`: the body plus what holding
    /// it costs, so the configured size is the memory really used.
    pub fn weight(&self) -> u32 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + HEADER_OVERHEAD)
            .sum();
        u32::try_from(self.body.len() + h + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
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

/// Where a fill's object came from, which is what its requests are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// Fetched from a replica.
    Origin,
    /// Read from the Redis tier.
    Redis,
    /// A stale copy the origin confirmed unchanged.
    Revalidated,
}

impl Filled {
    /// The `x-tandem-cache` value.
    pub fn cache_status(self) -> &'static str {
        match self {
            Filled::Origin => "MISS",
            Filled::Redis => "HIT-REDIS",
            Filled::Revalidated => "REVALIDATED",
        }
    }
}

/// What a fill produced, as its waiters see it.
#[derive(Debug, Clone)]
pub enum FlightResult {
    /// The object, now in memory (unless a purge came first).
    Object(Arc<CachedObject>, Filled),
    /// The origin answered with something other than the object.
    Answer(Arc<Answer>),
    /// Not cacheable (too large, `no-store`, over the fill budget): fetch
    /// for yourself.
    Uncacheable,
    /// Every replica failed; waiters get the same error rather than
    /// stampeding a dead origin, and the stale copy the fill had (from
    /// memory or Redis), for stale-if-error.
    Failed(ProxyError, Option<Arc<CachedObject>>),
}

struct PerEntryTtl;

impl Expiry<Arc<str>, Arc<CachedObject>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<CachedObject>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.remaining())
    }

    /// A copy stored again (revalidated, refetched, or read from Redis)
    /// lives from now, not from when the key was first stored.
    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        value: &Arc<CachedObject>,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.remaining())
    }
}

/// The memory fills in flight may hold: each reserves its object's length
/// before reading a byte, and a miss that cannot reserve streams through
/// uncached.
#[derive(Debug)]
pub struct FillBudget {
    limit: u64,
    used: AtomicU64,
}

impl FillBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<FillBudget> {
        Arc::new(FillBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Reserves `n` bytes, if they fit.
    pub fn reserve(self: &Arc<Self>, n: u64) -> Option<Reservation> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.checked_add(n).filter(|&x| x <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: self.clone(),
                        n,
                    })
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Bytes reserved now, and the limit (for /metrics).
    pub fn usage(&self) -> (u64, u64) {
        (self.used.load(Ordering::Relaxed), self.limit)
    }
}

/// Bytes held against the fill budget until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<FillBudget>,
    n: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// What a fill's waiters share: its outcome, set once, and one wake-up
/// list. A `watch` channel did this before, but its sender walks eight
/// wake-up lists when dropped, waiters or not: about 1 % of a Redis hit's
/// CPU, paid by every uncontended hit. Here a leader with no follower
/// (the cell's only holder once the table lets go) wakes nobody.
pub struct Waiters(Arc<FlightCell>);

struct FlightCell {
    /// `Some` once the leader finished; `None` inside if it went away
    /// without a result.
    outcome: OnceLock<Option<FlightResult>>,
    done: Notify,
}

impl FlightCell {
    /// Publishes the outcome and wakes whoever waits. `Arc::strong_count`
    /// is exact here: the table no longer lists the flight, so no new
    /// follower can take a handle.
    fn publish(self: &Arc<Self>, outcome: Option<FlightResult>) {
        let _ = self.outcome.set(outcome);
        if Arc::strong_count(self) > 1 {
            self.done.notify_waiters();
        }
    }
}

struct FlightEntry {
    id: u64,
    cell: Arc<FlightCell>,
}

/// A purge, as remembered for the fills it overtook.
struct Purged {
    epoch: u64,
    generation: String,
    key: String,
    prefix: bool,
}

/// The cache plus the table of fills in flight.
pub struct Cache {
    store: moka::future::Cache<Arc<str>, Arc<CachedObject>>,
    flights: Mutex<HashMap<Arc<str>, FlightEntry>>,
    next_flight: AtomicU64,
    /// Bumped by every purge; a fill remembers the value it started at.
    epoch: AtomicU64,
    purges: Mutex<VecDeque<Purged>>,
    /// Bytes inserted since housekeeping last ran here.
    unapplied: AtomicU64,
    /// What fills may buffer.
    pub fill: Arc<FillBudget>,
    /// Largest object kept.
    pub max_object_bytes: u64,
    /// Capacity in bytes.
    pub max_bytes: u64,
}

/// Either lead the fill for a key or wait for whoever leads it.
pub enum Flight {
    /// Fetch, then [`Leader::finish`].
    Leader(Leader),
    /// Wait with [`wait`].
    Follower(Waiters),
}

/// The one fill for a key. It owns the cache handle, so it can move into a
/// task of its own and outlive the request that started it. Dropping it
/// without finishing releases the waiters, who then fetch for themselves.
pub struct Leader {
    cache: Arc<Cache>,
    key: Arc<str>,
    id: u64,
    epoch: u64,
    /// `None` once finished.
    cell: Option<Arc<FlightCell>>,
}

impl Leader {
    /// The cache key this fill is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether a purge since this fill started covers its key: its result
    /// must not be stored anywhere then.
    pub fn overtaken(&self) -> bool {
        self.cache.purged_since(self.epoch, &self.key)
    }

    /// The purge epoch this fill started at (for the Redis write, which
    /// outlives the fill).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Publishes the result to the waiters, and stores an object unless a
    /// purge overtook the fill.
    pub async fn finish(mut self, r: FlightResult) {
        if let FlightResult::Object(o, _) = &r {
            if !self.overtaken() {
                self.cache.insert(self.key.clone(), o.clone()).await;
            }
        }
        // The table's handle goes first, so that with no follower the
        // publish wakes nobody. A request arriving meanwhile finds the
        // object in memory.
        self.cache.remove_flight(&self.key, self.id);
        if let Some(cell) = self.cell.take() {
            cell.publish(Some(r));
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            self.cache.remove_flight(&self.key, self.id);
            cell.publish(None);
        }
    }
}

/// How a wait for another request's fill ended.
pub enum Waited {
    /// The fill's result.
    Done(FlightResult),
    /// The fill went away without a result (its task was dropped).
    Abandoned,
    /// `cache.lock_timeout` passed first.
    TimedOut,
}

/// Waits up to `limit` for the fill behind `w`.
pub async fn wait(w: Waiters, limit: Duration) -> Waited {
    let cell = w.0;
    let waiting = async {
        loop {
            // Registered before the outcome is checked, so a publish in
            // between still wakes this wait.
            let notified = cell.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = cell.outcome.get() {
                return r.clone();
            }
            notified.await;
        }
    };
    match tokio::time::timeout(limit, waiting).await {
        Ok(Some(r)) => Waited::Done(r),
        Ok(None) => Waited::Abandoned,
        Err(_) => Waited::TimedOut,
    }
}

/// Whether cache key `ck` is `generation`'s `key` (any version) or, with
/// `prefix`, starts with `key`.
fn covers(ck: &str, generation: &str, key: &str, prefix: bool) -> bool {
    let Some(rest) = ck
        .strip_prefix(generation)
        .and_then(|r| r.strip_prefix('\0'))
    else {
        return false;
    };
    if prefix {
        rest.starts_with(key)
    } else {
        rest.strip_prefix(key)
            .is_some_and(|r| r.is_empty() || r.starts_with('\0'))
    }
}

impl Cache {
    /// A cache of `max_bytes` holding objects up to `max_object_bytes`,
    /// whose fills may buffer `max_fill_bytes`.
    pub fn new(max_bytes: u64, max_object_bytes: u64, max_fill_bytes: u64) -> Cache {
        let store = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Arc<str>, v: &Arc<CachedObject>| v.weight())
            .expire_after(PerEntryTtl)
            .build();
        Cache {
            store,
            flights: Mutex::new(HashMap::new()),
            next_flight: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            purges: Mutex::new(VecDeque::new()),
            unapplied: AtomicU64::new(0),
            fill: FillBudget::new(max_fill_bytes),
            max_object_bytes,
            max_bytes,
        }
    }

    /// The object under `key`, fresh or kept for revalidation.
    pub async fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.store.get(key).await
    }

    /// Stores an object. moka applies evictions in batches, so inserted
    /// objects could pile up past `max_bytes` until its next housekeeping;
    /// once they add up to [`OVERSHOOT`] of the capacity, housekeeping runs
    /// here, and the cache's memory stays within that margin of its size.
    pub async fn insert(&self, key: Arc<str>, obj: Arc<CachedObject>) {
        let w = u64::from(obj.weight());
        self.store.insert(key, obj).await;
        let pending = self.unapplied.fetch_add(w, Ordering::AcqRel) + w;
        if pending > (self.max_bytes / OVERSHOOT).max(OVERSHOOT_FLOOR) {
            self.unapplied.store(0, Ordering::Release);
            self.store.run_pending_tasks().await;
        }
    }

    /// Joins or starts the fill for `key`.
    pub fn flight(self: &Arc<Self>, key: Arc<str>) -> Flight {
        let mut f = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = f.get(&key) {
            return Flight::Follower(Waiters(e.cell.clone()));
        }
        let cell = Arc::new(FlightCell {
            outcome: OnceLock::new(),
            done: Notify::new(),
        });
        let id = self.next_flight.fetch_add(1, Ordering::Relaxed);
        f.insert(
            key.clone(),
            FlightEntry {
                id,
                cell: cell.clone(),
            },
        );
        Flight::Leader(Leader {
            cache: self.clone(),
            key,
            id,
            epoch: self.epoch.load(Ordering::Acquire),
            cell: Some(cell),
        })
    }

    /// A fill in progress for `key`, if any (range requests join one but
    /// never start one).
    pub fn existing_flight(&self, key: &str) -> Option<Waiters> {
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|e| Waiters(e.cell.clone()))
    }

    /// Forgets the flight `id` for `key`; a purge may already have
    /// replaced it with a newer one, which stays.
    fn remove_flight(&self, key: &str, id: u64) {
        let mut f = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if f.get(key).is_some_and(|e| e.id == id) {
            f.remove(key);
        }
    }

    /// Whether a purge after `epoch` covers `ck`. When the log no longer
    /// reaches back that far, the answer is yes: storing nothing is safe.
    pub fn purged_since(&self, epoch: u64, ck: &str) -> bool {
        if self.epoch.load(Ordering::Acquire) == epoch {
            return false;
        }
        let log = self.purges.lock().unwrap_or_else(|p| p.into_inner());
        if log.front().is_none_or(|p| p.epoch > epoch + 1) {
            return true;
        }
        log.iter()
            .filter(|p| p.epoch > epoch)
            .any(|p| covers(ck, &p.generation, &p.key, p.prefix))
    }

    /// Removes every cached object whose key is `generation`'s `key` (any
    /// version) or, with `prefix`, every key starting with `key`. Fills in
    /// flight for those keys are cut loose: they still answer the requests
    /// waiting on them, but store nothing, and the next request starts a
    /// fresh fill. Returns how many objects were removed.
    pub async fn purge(&self, generation: &str, key: &str, prefix: bool) -> usize {
        {
            let mut log = self.purges.lock().unwrap_or_else(|p| p.into_inner());
            let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            log.push_back(Purged {
                epoch,
                generation: generation.to_string(),
                key: key.to_string(),
                prefix,
            });
            if log.len() > PURGE_LOG {
                log.pop_front();
            }
        }
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !covers(k, generation, key, prefix));
        let victims: Vec<Arc<str>> = self
            .store
            .iter()
            .map(|(k, _)| k)
            .filter(|k| covers(k, generation, key, prefix))
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
            body: Chunks::one(Bytes::from(vec![0u8; n])),
            etag: None,
            last_modified: None,
            replica: "r".into(),
            ttl,
            keep: Duration::ZERO,
            stored: Instant::now(),
        })
    }

    fn cache() -> Arc<Cache> {
        Arc::new(Cache::new(1 << 20, 1 << 20, 1 << 20))
    }

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn one_leader_many_followers_and_release_on_drop() {
        let c = cache();
        let k = key("g", "a", None);
        let Flight::Leader(l) = c.flight(k.clone()) else {
            panic!()
        };
        let Flight::Follower(f1) = c.flight(k.clone()) else {
            panic!()
        };
        let f2 = c.existing_flight(&k).unwrap();
        l.finish(FlightResult::Object(
            obj(10, Duration::from_secs(60)),
            Filled::Origin,
        ))
        .await;
        assert!(matches!(
            wait(f1, LONG).await,
            Waited::Done(FlightResult::Object(..))
        ));
        assert!(matches!(
            wait(f2, LONG).await,
            Waited::Done(FlightResult::Object(..))
        ));
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
        assert!(matches!(wait(f, LONG).await, Waited::Abandoned));
        assert!(matches!(c.flight(k2), Flight::Leader(_)));
    }

    /// Followers already parked when the leader publishes, on other
    /// threads and racing the publish, are all woken: none misses it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parked_followers_are_woken_by_a_finish_or_a_drop() {
        let c = cache();
        for (round, finish) in (0..50).zip([true, false].into_iter().cycle()) {
            let k = key("g", &format!("park{round}"), None);
            let Flight::Leader(l) = c.flight(k.clone()) else {
                panic!()
            };
            let waits: Vec<_> = (0..8)
                .map(|_| {
                    let Flight::Follower(f) = c.flight(k.clone()) else {
                        panic!()
                    };
                    tokio::spawn(wait(f, LONG))
                })
                .collect();
            tokio::task::yield_now().await;
            if finish {
                let o = obj(1, Duration::from_secs(60));
                l.finish(FlightResult::Object(o, Filled::Origin)).await;
            } else {
                drop(l);
            }
            for w in waits {
                let got = w.await.unwrap();
                assert!(
                    match got {
                        Waited::Done(FlightResult::Object(..)) => finish,
                        Waited::Abandoned => !finish,
                        _ => false,
                    },
                    "round {round}: a follower was not woken with its flight's outcome"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_lock_timeout() {
        let c = cache();
        let k = key("g", "slow", None);
        let Flight::Leader(_l) = c.flight(k.clone()) else {
            panic!()
        };
        let Flight::Follower(f) = c.flight(k) else {
            panic!()
        };
        let t = Instant::now();
        assert!(matches!(
            wait(f, Duration::from_millis(50)).await,
            Waited::TimedOut
        ));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn bounded_by_bytes_and_ttl() {
        let c = Cache::new(100_000, 50_000, 50_000);
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
    async fn a_copy_stored_again_gets_a_fresh_deadline() {
        let c = cache();
        let k = key("g", "re", None);
        let ttl = Duration::from_millis(150);
        c.store.insert(k.clone(), obj(1, ttl)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Revalidated: stored again, it must outlive the first deadline.
        c.store.insert(k.clone(), obj(1, ttl)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(c.get(&k).await.is_some(), "expired on its first deadline");
    }

    #[tokio::test]
    async fn purge_by_key_takes_every_version_and_by_prefix_only_the_prefix() {
        let c = cache();
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

    #[tokio::test]
    async fn a_fill_overtaken_by_a_purge_stores_nothing_and_is_detached() {
        let c = cache();
        let k = key("g", "a/1", None);
        let other = key("g", "b/1", None);
        let Flight::Leader(l) = c.flight(k.clone()) else {
            panic!()
        };
        let Flight::Leader(lo) = c.flight(other.clone()) else {
            panic!()
        };
        let Flight::Follower(waiting) = c.flight(k.clone()) else {
            panic!()
        };
        c.purge("g", "a/", true).await;
        assert!(l.overtaken() && !lo.overtaken());
        // A request after the purge starts a fill of its own.
        let Flight::Leader(fresh) = c.flight(k.clone()) else {
            panic!("joined the overtaken fill")
        };
        l.finish(FlightResult::Object(obj(1, LONG), Filled::Origin))
            .await;
        // Its waiters are still answered; nothing is stored, and the new
        // fill's entry stays.
        assert!(matches!(
            wait(waiting, LONG).await,
            Waited::Done(FlightResult::Object(..))
        ));
        assert!(c.get(&k).await.is_none());
        assert!(c.existing_flight(&k).is_some());
        drop(fresh);
        lo.finish(FlightResult::Object(obj(1, LONG), Filled::Origin))
            .await;
        assert!(c.get(&other).await.is_some());
    }

    #[test]
    fn the_fill_budget_refuses_what_does_not_fit_and_frees_on_drop() {
        let b = FillBudget::new(100);
        let r1 = b.reserve(60).unwrap();
        assert!(b.reserve(50).is_none());
        let r2 = b.reserve(40).unwrap();
        assert_eq!(b.usage(), (100, 100));
        drop(r1);
        drop(r2);
        assert_eq!(b.usage(), (0, 100));
    }

    proptest! {
        #[test]
        fn versions_and_generations_never_share_a_key(
            k in "[a-z/]{1,8}", v1 in proptest::option::of("[a-z0-9]{1,6}"), v2 in proptest::option::of("[a-z0-9]{1,6}")
        ) {
            prop_assert_eq!(key("g", &k, v1.as_deref()) == key("g", &k, v2.as_deref()), v1 == v2);
            prop_assert_ne!(key("g1", &k, v1.as_deref()), key("g2", &k, v1.as_deref()));
        }

        #[test]
        fn a_key_purge_covers_its_versions_only(
            k in "[a-z/]{1,6}", other in "[a-z/]{1,6}", v in proptest::option::of("[a-z0-9]{1,4}")
        ) {
            prop_assert!(covers(&key("g", &k, v.as_deref()), "g", &k, false));
            prop_assert_eq!(covers(&key("g", &other, None), "g", &k, false), other == k);
            prop_assert!(!covers(&key("h", &k, None), "g", &k, false));
        }
    }
}
