//! Batched reads: listings of a hosted zone and one of the account's
//! health checks, taken at the first reads of a run and shared by every
//! concurrent and later read in the same provider process.
//!
//! **Zones.** ListResourceRecordSets returns a zone in Route 53's order (by
//! name with its labels reversed, then by type), 300 sets a page, from any
//! name. The first read lists the zone's first page, which is all of a
//! zone of up to 300 sets. A read whose name no page has covered yet lists
//! one page from where the names reads are waiting for begin to share a
//! prefix (or from the lowest of them; see `ZoneView::window_start`); that
//! page covers everything from there to the next page's first name. So a
//! refresh of 100 pairs whose names sort together in a big zone costs two
//! calls, whatever order Terraform reads them in, and so does one pair in
//! a 10,000-set zone (not its 34 pages). After [`WINDOW_LISTINGS`] such
//! pages, the zone's remaining gaps are listed from the bottom up, a page
//! at a time, skipping what is listed already: a refresh costs at most
//! the zone's pages plus that many.
//!
//! A name a partial listing says is absent is confirmed with a listing of
//! its own before it is reported gone, so a mistake in our idea of Route
//! 53's order costs a call, never a record dropped from state.
//!
//! **Health checks.** 100 health checks cost one ListHealthChecks page and
//! ten ListTagsForResources calls instead of 200 calls.
//!
//! Terraform starts a provider process per command and walk, so a snapshot
//! is at most one run old. The provider's own writes are applied to it (a
//! written pair replaces its record sets, a deleted one leaves), and a write
//! whose outcome is unsure drops the zone's snapshot, so a later read in the
//! same run never sees what this process changed as drift.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_route53::types::{HealthCheck, ResourceRecordSet, TagResourceType};
use aws_sdk_route53::Client;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::{AwsError, Stoppable};

use super::find::{self, NO_ZONE};
use super::names;

/// Health checks per ListHealthChecks page: Route 53's default page, and
/// what a refresh of a hundred checks needs in one call.
pub const HEALTH_CHECK_PAGE: i32 = 100;

/// Resources per ListTagsForResources call: Route 53's maximum.
pub const TAGS_PER_CALL: usize = 10;

/// Tags of one resource.
pub type Tags = BTreeMap<String, String>;

/// Partial listings of a zone before a read lists it whole. Two: a run
/// that reads one or two names of a big zone (or names that sort
/// together) pays a call each, and one whose reads are spread over the
/// zone pays at most two calls more than listing it whole at once.
pub const WINDOW_LISTINGS: usize = 2;

/// Record sets of one zone by normalised name and type.
type ZoneRecords = BTreeMap<(String, String), Vec<ResourceRecordSet>>;

/// What this run has listed of one zone.
#[derive(Debug, Default)]
struct ZoneView {
    /// A listing found no such zone.
    missing: bool,
    records: ZoneRecords,
    /// The parts of Route 53's order listed so far, as `[from, to)` in
    /// [`order_key`]s; `to` is `None` at the end of the zone.
    spans: Vec<(String, Option<String>)>,
    /// Partial listings made so far.
    windows: usize,
    /// Names reads wait to see listed, by order key: how many reads.
    waiting: BTreeMap<String, usize>,
}

/// What a zone's listings say about one name and type.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The zone does not exist.
    NoZone,
    /// The name has not been listed yet.
    Unlisted,
    /// Listed: these sets (none, if `whole` is false, still to be
    /// confirmed).
    Listed {
        sets: Vec<ResourceRecordSet>,
        whole: bool,
    },
}

impl ZoneView {
    fn answer(&self, name: &str, ty: &str) -> Answer {
        if self.missing {
            return Answer::NoZone;
        }
        let at = order_key(name);
        if !self.covers(&at) {
            return Answer::Unlisted;
        }
        Answer::Listed {
            sets: self
                .records
                .get(&key(name, ty))
                .cloned()
                .unwrap_or_default(),
            whole: self.whole(),
        }
    }

    /// Where the listings first leave a gap, walking up from the start
    /// of the zone (`""` before any listing); `None` once they cover it all.
    fn first_gap(&self) -> Option<String> {
        let mut spans: Vec<&(String, Option<String>)> = self.spans.iter().collect();
        spans.sort_by(|a, b| a.0.cmp(&b.0));
        let mut reached = String::new();
        for (from, to) in spans {
            if from.as_str() > reached.as_str() {
                break;
            }
            match to {
                None => return None,
                Some(t) if t.as_str() > reached.as_str() => reached.clone_from(t),
                Some(_) => {}
            }
        }
        Some(reached)
    }

    /// Whether the listings cover the whole zone.
    fn whole(&self) -> bool {
        self.first_gap().is_none()
    }

    fn covers(&self, at: &str) -> bool {
        self.spans
            .iter()
            .any(|(from, to)| from.as_str() <= at && to.as_deref().is_none_or(|t| at < t))
    }

    /// Takes in a listing of `[from, to)`: it replaces what was known of
    /// that span (the listing is newer than anything recorded before it).
    fn add(&mut self, sets: Vec<ResourceRecordSet>, from: String, to: Option<String>) {
        let inside = |name: &str| {
            let at = order_key(name);
            from.as_str() <= at.as_str() && to.as_deref().is_none_or(|t| at.as_str() < t)
        };
        self.records.retain(|(name, _), _| !inside(name));
        for s in sets {
            self.records
                .entry(key(s.name(), s.r#type().as_str()))
                .or_default()
                .push(s);
        }
        self.spans.push((from, to));
    }

    /// Where the next partial listing starts, as an [`order_key`]: where
    /// the names reads wait for begin to share a prefix, when that lies
    /// below the lowest of them and in no listing yet, else that lowest
    /// name. Terraform reads ten resources at a time, in no set order, so
    /// the lowest name waiting now is seldom the lowest this run will read.
    /// Names made by `count` or `for_each` (`r0` to `r99`, `api-a`,
    /// `api-b`) share their start, and a page from there covers the names
    /// not yet asked for too: one listing where each lower straggler would
    /// cost another.
    fn window_start(&self) -> Option<String> {
        let unlisted: Vec<&String> = self.waiting.keys().filter(|at| !self.covers(at)).collect();
        let lowest = (*unlisted.first()?).clone();
        let shared = unlisted.iter().fold(lowest.as_str(), |p, at| {
            let n = p
                .bytes()
                .zip(at.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            &p[..n]
        });
        // Only a prefix within one label of plain characters: a cut escape
        // (`\052`) is no name Route 53 takes.
        let last_label = shared.rsplit('.').next().unwrap_or_default();
        if last_label.contains('\\') {
            return Some(lowest);
        }
        let start = order_key(&name_of(shared));
        Some(if start <= lowest && !self.covers(&start) {
            start
        } else {
            lowest
        })
    }

    fn unwait(&mut self, at: &str) {
        if let Some(n) = self.waiting.get_mut(at) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(at);
            }
        }
    }
}

/// One zone's view, and the turn to list it: one listing of a zone at a
/// time, so reads that arrive together share it.
#[derive(Debug, Default)]
struct ZoneEntry {
    turn: tokio::sync::Mutex<()>,
    view: Mutex<ZoneView>,
}

/// A read's place among the zone's waiting reads, given up however the
/// read ends (Terraform may cancel it).
struct Waiting<'a> {
    entry: &'a ZoneEntry,
    at: String,
}

impl<'a> Waiting<'a> {
    fn new(entry: &'a ZoneEntry, name: &str) -> Waiting<'a> {
        let at = order_key(name);
        *lock(&entry.view).waiting.entry(at.clone()).or_insert(0) += 1;
        Waiting { entry, at }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.entry.view).unwait(&self.at);
    }
}

/// Every health check of the account with its tags, by ID.
type HealthChecks = HashMap<String, (HealthCheck, Tags)>;

/// The process's snapshots, kept in the provider's configured state.
#[derive(Debug, Default)]
pub struct Snapshots {
    zones: Mutex<HashMap<String, Arc<ZoneEntry>>>,
    health_checks: OnceCell<Arc<Mutex<HealthChecks>>>,
}

impl Snapshots {
    /// Every record set in `zone` named `name` with type `ty`, from the
    /// zone's listings (see the module doc); `Ok(None)` when the zone does
    /// not exist.
    pub async fn record_sets(
        &self,
        client: &Client,
        cancel: &CancellationToken,
        zone: &str,
        name: &str,
        ty: &str,
    ) -> Result<Option<Vec<ResourceRecordSet>>, AwsError> {
        let entry = self.zone_entry(zone);
        // Bounded: every turn lists something new, and the turn after
        // WINDOW_LISTINGS partial listings lists the whole zone.
        let (sets, whole) = loop {
            match lock(&entry.view).answer(name, ty) {
                Answer::NoZone => return Ok(None),
                Answer::Listed { sets, whole } => break (sets, whole),
                Answer::Unlisted => {}
            }
            let waiting = Waiting::new(&entry, name);
            let _turn = entry.turn.lock().await;
            if lock(&entry.view).answer(name, ty) == Answer::Unlisted {
                list_zone(&entry, client, cancel, zone).await?;
            }
            drop(waiting);
        };
        if !sets.is_empty() || whole {
            return Ok(Some(sets));
        }
        let Some(found) = find::find_record_sets(client, cancel, zone, name, ty).await? else {
            return Ok(None);
        };
        if !found.is_empty() {
            tracing::debug!(
                zone,
                name,
                ty,
                "a partial listing missed record sets Route 53 has"
            );
        }
        Ok(Some(found))
    }

    /// Applies a change batch this process had accepted to the zone's
    /// snapshot: `deletes` leave, `writes` replace what has their name,
    /// type and set identifier.
    pub fn record_change(
        &self,
        zone: &str,
        deletes: &[ResourceRecordSet],
        writes: &[ResourceRecordSet],
    ) {
        let entry = self.zone_entry(zone);
        let records = &mut lock(&entry.view).records;
        for d in deletes.iter().chain(writes) {
            if let Some(sets) = records.get_mut(&key(d.name(), d.r#type().as_str())) {
                sets.retain(|s| s.set_identifier() != d.set_identifier());
            }
        }
        for w in writes {
            records
                .entry(key(w.name(), w.r#type().as_str()))
                .or_default()
                .push(w.clone());
        }
    }

    /// Drops the zone's snapshot: the next read lists it again.
    pub fn forget_zone(&self, zone: &str) {
        lock(&self.zones).remove(&names::zone_id(zone));
    }

    /// The health check `id` with its tags. From the snapshot of all health
    /// checks (listed now on the first read); one absent from it (created
    /// after the listing, or gone) is looked up on its own, so only a check
    /// that Route 53 confirms missing is `Ok(None)`.
    pub async fn health_check(
        &self,
        client: &Client,
        cancel: &CancellationToken,
        id: &str,
    ) -> Result<Option<(HealthCheck, Tags)>, AwsError> {
        let all = self
            .health_checks
            .get_or_try_init(|| async {
                Ok::<_, AwsError>(Arc::new(Mutex::new(
                    list_health_checks(client, cancel).await?,
                )))
            })
            .await?;
        if let Some(found) = lock(all).get(id).cloned() {
            return Ok(Some(found));
        }
        let Some(hc) = find::find_health_check(client, cancel, id).await? else {
            return Ok(None);
        };
        let tags = find::find_tags(client, cancel, TagResourceType::Healthcheck, id).await?;
        Ok(Some((hc, tags)))
    }

    /// Records what this process just wrote or read fresh for health check
    /// `id` (`None`: deleted).
    pub fn health_check_changed(&self, id: &str, now: Option<(HealthCheck, Tags)>) {
        let Some(all) = self.health_checks.get() else {
            return;
        };
        let mut all = lock(all);
        match now {
            Some(hc) => all.insert(id.to_string(), hc),
            None => all.remove(id),
        };
    }

    fn zone_entry(&self, zone: &str) -> Arc<ZoneEntry> {
        Arc::clone(lock(&self.zones).entry(names::zone_id(zone)).or_default())
    }
}

/// Lists the next page of the zone a waiting read needs, with the zone's
/// turn held: first the zone's first page (all of a zone of up to 300
/// sets), then up to [`WINDOW_LISTINGS`] pages from where the waiting
/// names start (`ZoneView::window_start`), then the zone's gaps from the
/// bottom up, a page at a time, skipping what the earlier pages covered.
async fn list_zone(
    entry: &ZoneEntry,
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
) -> Result<(), AwsError> {
    let (from, window) = {
        let v = lock(&entry.view);
        match v.window_start() {
            Some(from) if !v.spans.is_empty() && v.windows < WINDOW_LISTINGS => (from, true),
            _ => match v.first_gap() {
                Some(gap) => (gap, false),
                None => return Ok(()),
            },
        }
    };
    let start = (!from.is_empty()).then(|| name_of(&from));
    let mut listed = find::list_record_sets_from(client, cancel, zone, start.as_deref())
        .await
        .map(|(sets, next)| (sets, next.map(|n| order_key(&n))));
    if let Ok((_, Some(next))) = &listed {
        if next.as_str() <= from.as_str() {
            // A page that ends where it began (one name with more sets
            // than a page): list on exactly, to the end of the zone.
            listed = find::list_record_sets_onwards(client, cancel, zone, start.as_deref())
                .await
                .map(|sets| (sets, None));
        }
    }
    let mut view = lock(&entry.view);
    match listed {
        Ok((sets, to)) => {
            view.windows += usize::from(window);
            view.add(sets, from, to);
            Ok(())
        }
        Err(e) if e.is(NO_ZONE) => {
            view.missing = true;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Where `name` sorts in a ListResourceRecordSets listing: by name with
/// its labels reversed and a trailing dot, compared as bytes
/// (`www.example.com` sorts as `com.example.www.`; Route 53 API Reference,
/// ListResourceRecordSets). The empty key sorts before every name.
fn order_key(name: &str) -> String {
    let n = names::normalize(name);
    let mut k = n.rsplit('.').collect::<Vec<_>>().join(".");
    k.push('.');
    k
}

/// The name an [`order_key`] stands for.
fn name_of(key: &str) -> String {
    key.trim_end_matches('.')
        .rsplit('.')
        .collect::<Vec<_>>()
        .join(".")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(name: &str, ty: &str) -> (String, String) {
    (names::normalize(name), ty.to_string())
}

/// Every health check of the account, in pages of [`HEALTH_CHECK_PAGE`],
/// with their tags in batches of [`TAGS_PER_CALL`].
async fn list_health_checks(
    client: &Client,
    cancel: &CancellationToken,
) -> Result<HealthChecks, AwsError> {
    let mut checks = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let span = tracing::debug_span!("route53.ListHealthChecks", marker = marker.as_deref());
        let out = client
            .list_health_checks()
            .max_items(HEALTH_CHECK_PAGE)
            .set_marker(marker.take())
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await?;
        checks.extend(out.health_checks().iter().cloned());
        match out.next_marker() {
            Some(m) if out.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let mut tags: HashMap<String, Tags> = HashMap::new();
    let ids: Vec<String> = checks.iter().map(|c| c.id().to_string()).collect();
    for chunk in ids.chunks(TAGS_PER_CALL) {
        let span = tracing::debug_span!("route53.ListTagsForResources", count = chunk.len());
        let out = client
            .list_tags_for_resources()
            .resource_type(TagResourceType::Healthcheck)
            .set_resource_ids(Some(chunk.to_vec()))
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await?;
        for set in out.resource_tag_sets() {
            let Some(id) = set.resource_id() else {
                continue;
            };
            tags.insert(
                id.to_string(),
                set.tags()
                    .iter()
                    .filter_map(|t| {
                        Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                    })
                    .collect(),
            );
        }
    }
    Ok(checks
        .into_iter()
        .map(|c| {
            let t = tags.remove(c.id()).unwrap_or_default();
            (c.id().to_string(), (c, t))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSetFailover, RrType};

    fn rrs(name: &str, id: &str, ip: &str) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .set_identifier(id)
            .failover(ResourceRecordSetFailover::Primary)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
            .build()
            .unwrap()
    }

    fn view_of(sets: Vec<ResourceRecordSet>, from: &str, to: Option<&str>) -> ZoneView {
        let mut v = ZoneView::default();
        // "" stands for the start of the zone, as in a whole listing.
        let from = if from.is_empty() {
            String::new()
        } else {
            order_key(from)
        };
        v.add(sets, from, to.map(order_key));
        v
    }

    #[test]
    fn names_sort_by_reversed_labels_as_route53_lists_them() {
        assert_eq!(order_key("www.Example.com."), "com.example.www.");
        let mut names = vec![
            "b.example.com",
            "example.com",
            "a.b.example.com",
            "a-b.example.com",
            "z.example.co",
        ];
        names.sort_by_key(|n| order_key(n));
        assert_eq!(
            names,
            [
                "z.example.co",
                "example.com",
                "a-b.example.com",
                "b.example.com",
                "a.b.example.com"
            ]
        );
        // "-" (45) sorts before "." (46): the trailing dot decides.
        assert!(order_key("a-b.example.com") < order_key("a.example.com"));
        assert!(String::new() < order_key("example.com"));
    }

    #[test]
    fn a_partial_listing_answers_only_inside_its_span() {
        let v = view_of(
            vec![rrs("m.example.com.", "m-primary", "192.0.2.1")],
            "m.example.com",
            Some("q.example.com"),
        );
        assert_eq!(v.answer("a.example.com", "A"), Answer::Unlisted);
        assert_eq!(
            v.answer("q.example.com", "A"),
            Answer::Unlisted,
            "the next page's first name is not covered"
        );
        match v.answer("m.example.com", "A") {
            Answer::Listed { sets, whole } => {
                assert_eq!(sets.len(), 1);
                assert!(!whole);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            v.answer("p.example.com", "A"),
            Answer::Listed {
                sets: vec![],
                whole: false
            },
            "absent from a partial listing: still to be confirmed"
        );
        let whole = view_of(vec![], "", None);
        assert_eq!(
            whole.answer("p.example.com", "A"),
            Answer::Listed {
                sets: vec![],
                whole: true
            }
        );
        // The first page, a window, then the rest from the first page's end.
        let mut v = view_of(vec![], "", Some("c.example.com"));
        v.add(
            vec![],
            order_key("m.example.com"),
            Some(order_key("q.example.com")),
        );
        assert!(!v.whole());
        v.add(vec![], order_key("c.example.com"), None);
        assert!(v.whole());
        let mut gaps = view_of(vec![], "", Some("c.example.com"));
        gaps.add(vec![], order_key("m.example.com"), None);
        assert_eq!(gaps.first_gap().as_deref(), Some("com.example.c."));
        gaps.add(
            vec![],
            order_key("c.example.com"),
            Some(order_key("n.example.com")),
        );
        assert_eq!(
            gaps.first_gap(),
            None,
            "the gap listing ran into the window"
        );
        assert_eq!(name_of(&order_key("www.Example.com.")), "www.example.com");
        let window_only = view_of(vec![], "m.example.com", None);
        assert!(
            !window_only.whole(),
            "a window to the end is not the whole zone"
        );
    }

    #[test]
    fn a_listing_replaces_what_was_known_of_its_span() {
        let mut v = view_of(
            vec![
                rrs("a.example.com.", "a-primary", "192.0.2.1"),
                rrs("m.example.com.", "m-primary", "192.0.2.1"),
            ],
            "",
            None,
        );
        v.add(
            vec![rrs("m.example.com.", "m-primary", "192.0.2.7")],
            order_key("m.example.com"),
            None,
        );
        let Answer::Listed { sets, .. } = v.answer("m.example.com", "A") else {
            panic!()
        };
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].resource_records()[0].value(), "192.0.2.7");
        let Answer::Listed { sets, .. } = v.answer("a.example.com", "A") else {
            panic!()
        };
        assert_eq!(sets.len(), 1, "outside the new span, kept");
    }

    /// A view whose first page listed the zone up to `to`, as every view
    /// has before its first partial listing.
    fn first_page_to(to: &str) -> ZoneEntry {
        let entry = ZoneEntry::default();
        lock(&entry.view).add(vec![], String::new(), Some(order_key(to)));
        entry
    }

    #[test]
    fn the_next_listing_starts_at_the_lowest_unlisted_waiting_name() {
        let entry = first_page_to("b.example.com");
        lock(&entry.view).add(
            vec![],
            order_key("m.example.com"),
            Some(order_key("q.example.com")),
        );
        let _a = Waiting::new(&entry, "z.example.com");
        let b = Waiting::new(&entry, "n.example.com");
        let _c = Waiting::new(&entry, "c.example.com");
        let _c2 = Waiting::new(&entry, "C.example.com.");
        // c, n and z share only the zone, which the first page listed.
        let start = || lock(&entry.view).window_start();
        assert_eq!(start(), Some(order_key("c.example.com")));
        drop(_c);
        assert_eq!(
            start(),
            Some(order_key("c.example.com")),
            "one read still waits for it"
        );
        drop(_c2);
        assert_eq!(start(), Some(order_key("z.example.com")), "n is covered");
        drop(b);
        assert_eq!(lock(&entry.view).waiting.len(), 1);
    }

    /// Terraform reads r57, r23 and r81 of a hundred pairs first: the page
    /// starts at `r`, below r0 to r22, which are still to be asked for,
    /// instead of at r23.
    #[test]
    fn the_next_listing_starts_where_the_waiting_names_share_their_start() {
        let entry = first_page_to("other5.example.com");
        let _w = waiting_for(&entry, &["r57", "r23", "r81"]);
        assert_eq!(
            lock(&entry.view).window_start(),
            Some(order_key("r.example.com"))
        );
        assert!(order_key("r.example.com") < order_key("r0.example.com"));
        // "r-a" sorts before "r.": a page from "r" would miss it.
        let _low = Waiting::new(&entry, "r-a.example.com");
        assert_eq!(
            lock(&entry.view).window_start(),
            Some(order_key("r-a.example.com"))
        );
    }

    /// Reads waiting for these labels of example.com.
    fn waiting_for<'a>(entry: &'a ZoneEntry, labels: &[&str]) -> Vec<Waiting<'a>> {
        labels
            .iter()
            .map(|l| Waiting::new(entry, &format!("{l}.example.com")))
            .collect()
    }

    /// A shared start that cuts an escape, or that a listing covered
    /// already, is no place to list from: the lowest name is.
    #[test]
    fn a_shared_start_that_cuts_an_escape_or_is_listed_is_not_used() {
        let cases = [
            ("b.example.com", ["x\\052a", "x\\053b"]),
            // The first page went up to r3: listing from "r" again would
            // repeat r0 to r2.
            ("r3.example.com", ["r57", "r81"]),
        ];
        for (first_page_end, labels) in cases {
            let entry = first_page_to(first_page_end);
            let _w = waiting_for(&entry, &labels);
            assert_eq!(
                lock(&entry.view).window_start(),
                Some(order_key(&format!("{}.example.com", labels[0])))
            );
        }
    }

    #[test]
    fn own_writes_update_the_snapshot() {
        let s = Snapshots::default();
        *lock(&s.zone_entry("/hostedzone/Z1").view) = view_of(
            vec![
                rrs("a.example.com.", "a-primary", "192.0.2.1"),
                rrs("b.example.com.", "b-primary", "192.0.2.2"),
            ],
            "",
            None,
        );
        s.record_change(
            "Z1",
            &[rrs("b.example.com.", "b-primary", "192.0.2.2")],
            &[rrs("a.example.com", "a-primary", "192.0.2.9")],
        );
        let entry = s.zone_entry("Z1");
        let view = lock(&entry.view);
        let Answer::Listed { sets, .. } = view.answer("a.example.com", "A") else {
            panic!()
        };
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].resource_records()[0].value(), "192.0.2.9");
        assert_eq!(
            view.answer("b.example.com", "A"),
            Answer::Listed {
                sets: vec![],
                whole: true
            }
        );
    }

    #[test]
    fn forgetting_a_zone_drops_its_snapshot() {
        let s = Snapshots::default();
        lock(&s.zone_entry("Z1").view).missing = true;
        s.forget_zone("/hostedzone/Z1");
        assert_eq!(
            lock(&s.zone_entry("Z1").view).answer("a.example.com", "A"),
            Answer::Unlisted
        );
    }
}
