//! Batched reads: one paginated listing per hosted zone and one of the
//! account's health checks, taken at the first read of a run and shared by
//! every concurrent and later read in the same provider process.
//!
//! A refresh of 100 failover pairs in a zone of 1,200 record sets then costs
//! the zone's 4 or 5 ListResourceRecordSets pages instead of 100 calls, and
//! 100 health checks cost one ListHealthChecks page and ten
//! ListTagsForResources calls instead of 200 calls. The first read starts
//! the listing; reads arriving meanwhile wait for it (single flight).
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

/// Record sets of one zone by normalised name and type.
type ZoneRecords = BTreeMap<(String, String), Vec<ResourceRecordSet>>;

/// A zone's listing; `None` when the zone does not exist.
type ZoneCell = Arc<OnceCell<Option<Arc<Mutex<ZoneRecords>>>>>;

/// Every health check of the account with its tags, by ID.
type HealthChecks = HashMap<String, (HealthCheck, Tags)>;

/// The process's snapshots, kept in the provider's configured state.
#[derive(Debug, Default)]
pub struct Snapshots {
    zones: Mutex<HashMap<String, ZoneCell>>,
    health_checks: OnceCell<Arc<Mutex<HealthChecks>>>,
}

impl Snapshots {
    /// Every record set in `zone` named `name` with type `ty`, from the
    /// zone's snapshot (listed now if this is the first read); `Ok(None)`
    /// when the zone does not exist.
    pub async fn record_sets(
        &self,
        client: &Client,
        cancel: &CancellationToken,
        zone: &str,
        name: &str,
        ty: &str,
    ) -> Result<Option<Vec<ResourceRecordSet>>, AwsError> {
        let cell = self.zone_cell(zone);
        let listing = cell
            .get_or_try_init(|| async {
                match find::list_all_record_sets(client, cancel, zone).await {
                    Ok(all) => Ok(Some(Arc::new(Mutex::new(by_key(all))))),
                    Err(e) if e.is(NO_ZONE) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(listing.as_ref().map(|records| {
            lock(records)
                .get(&key(name, ty))
                .cloned()
                .unwrap_or_default()
        }))
    }

    /// Applies a change batch this process had accepted to the zone's
    /// snapshot, if there is one: `deletes` leave, `writes` replace what
    /// has their name, type and set identifier.
    pub fn record_change(
        &self,
        zone: &str,
        deletes: &[ResourceRecordSet],
        writes: &[ResourceRecordSet],
    ) {
        let Some(Some(records)) = self.zone_cell(zone).get().cloned() else {
            return;
        };
        let mut records = lock(&records);
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

    fn zone_cell(&self, zone: &str) -> ZoneCell {
        Arc::clone(lock(&self.zones).entry(names::zone_id(zone)).or_default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(name: &str, ty: &str) -> (String, String) {
    (names::normalize(name), ty.to_string())
}

fn by_key(all: Vec<ResourceRecordSet>) -> ZoneRecords {
    let mut out = ZoneRecords::new();
    for s in all {
        out.entry(key(s.name(), s.r#type().as_str()))
            .or_default()
            .push(s);
    }
    out
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

    #[tokio::test]
    async fn own_writes_update_the_snapshot() {
        let s = Snapshots::default();
        let cell = s.zone_cell("/hostedzone/Z1");
        cell.set(Some(Arc::new(Mutex::new(by_key(vec![
            rrs("a.example.com.", "a-primary", "192.0.2.1"),
            rrs("b.example.com.", "b-primary", "192.0.2.2"),
        ])))))
        .unwrap();
        s.record_change(
            "Z1",
            &[rrs("b.example.com.", "b-primary", "192.0.2.2")],
            &[rrs("a.example.com", "a-primary", "192.0.2.9")],
        );
        let records = cell.get().unwrap().clone().unwrap();
        let records = lock(&records);
        let a = &records[&key("a.example.com", "A")];
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].resource_records()[0].value(), "192.0.2.9");
        assert!(records[&key("b.example.com", "A")].is_empty());
    }

    #[test]
    fn forgetting_a_zone_drops_its_snapshot() {
        let s = Snapshots::default();
        s.zone_cell("Z1").set(None).unwrap();
        s.forget_zone("/hostedzone/Z1");
        assert!(s.zone_cell("Z1").get().is_none());
    }
}
