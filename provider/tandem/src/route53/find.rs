//! Lookups that return "not found" as a value (`Ok(None)`), so callers decide
//! whether absence is drift, success (delete) or an error.

use std::collections::BTreeMap;

use aws_sdk_route53::types::{HealthCheck, ResourceRecordSet, RrType, TagResourceType};
use aws_sdk_route53::Client;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::{AwsError, Stoppable};

use super::names;

/// A hosted zone with its delegation set.
#[derive(Debug, Clone)]
pub struct ZoneInfo {
    /// Zone ID without prefix.
    pub id: String,
    /// Name as Route 53 returns it (fully qualified).
    pub name: String,
    /// The zone's comment, if any.
    pub comment: Option<String>,
    /// Whether the zone is private.
    pub private: bool,
    /// Record set count.
    pub record_count: i64,
    /// Authoritative name servers (empty for private zones).
    pub name_servers: Vec<String>,
}

/// Error codes meaning the hosted zone does not exist.
pub const NO_ZONE: &[&str] = &["NoSuchHostedZone"];
/// Error codes meaning the health check does not exist.
pub const NO_HEALTH_CHECK: &[&str] = &["NoSuchHealthCheck"];

/// The hosted zone `id`, or `None` when it does not exist.
pub async fn find_hosted_zone(
    client: &Client,
    cancel: &CancellationToken,
    id: &str,
) -> Result<Option<ZoneInfo>, AwsError> {
    let span = tracing::debug_span!("route53.GetHostedZone", zone_id = id);
    let out = match client
        .get_hosted_zone()
        .id(id)
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            return if e.is(NO_ZONE) { Ok(None) } else { Err(e) };
        }
    };
    let Some(z) = out.hosted_zone() else {
        return Ok(None);
    };
    Ok(Some(ZoneInfo {
        id: names::zone_id(z.id()),
        name: z.name().to_string(),
        comment: z
            .config()
            .and_then(|c| c.comment())
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        private: z.config().is_some_and(|c| c.private_zone()),
        record_count: z.resource_record_set_count().unwrap_or(0),
        name_servers: out
            .delegation_set()
            .map(|d| d.name_servers().to_vec())
            .unwrap_or_default(),
    }))
}

/// Zones whose name is `name` (any spelling), by ID.
pub async fn find_hosted_zones_by_name(
    client: &Client,
    cancel: &CancellationToken,
    name: &str,
) -> Result<Vec<String>, AwsError> {
    let wanted = names::normalize(name);
    let mut found = Vec::new();
    let mut next: Option<(String, Option<String>)> = Some((names::fqdn(name), None));
    // The list is sorted by name, so paging stops at the first other name.
    while let Some((dns, zid)) = next.take() {
        let span = tracing::debug_span!("route53.ListHostedZonesByName", dns_name = %dns);
        let out = client
            .list_hosted_zones_by_name()
            .dns_name(dns)
            .set_hosted_zone_id(zid)
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await?;
        let mut other = false;
        for z in out.hosted_zones() {
            if names::normalize(z.name()) == wanted {
                found.push(names::zone_id(z.id()));
            } else {
                other = true;
            }
        }
        if out.is_truncated() && !other {
            if let (Some(n), id) = (out.next_dns_name(), out.next_hosted_zone_id()) {
                next = Some((n.to_string(), id.map(str::to_string)));
            }
        }
    }
    Ok(found)
}

/// The health check `id`, or `None` when it does not exist.
pub async fn find_health_check(
    client: &Client,
    cancel: &CancellationToken,
    id: &str,
) -> Result<Option<HealthCheck>, AwsError> {
    let span = tracing::debug_span!("route53.GetHealthCheck", health_check_id = id);
    match client
        .get_health_check()
        .health_check_id(id)
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await
    {
        Ok(o) => Ok(o.health_check().cloned()),
        Err(e) => {
            if e.is(NO_HEALTH_CHECK) || e.status == Some(404) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Every record set in `zone` named `name` with type `rr_type`, whatever
/// its set identifier; `Ok(None)` when the zone does not exist.
pub async fn find_record_sets(
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
    name: &str,
    rr_type: &str,
) -> Result<Option<Vec<ResourceRecordSet>>, AwsError> {
    let wanted = names::normalize(name);
    let ty = RrType::from(rr_type);
    let mut found = Vec::new();
    let mut start = Some((names::fqdn(name), ty.clone(), None::<String>));
    while let Some((n, t, ident)) = start.take() {
        let span =
            tracing::debug_span!("route53.ListResourceRecordSets", zone_id = zone, name = %n);
        let out = match client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(n)
            .start_record_type(t)
            .set_start_record_identifier(ident)
            .send()
            .instrument(span)
            .stoppable(cancel)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return if e.is(NO_ZONE) { Ok(None) } else { Err(e) };
            }
        };
        let mut past = false;
        for rrs in out.resource_record_sets() {
            if names::normalize(rrs.name()) == wanted && *rrs.r#type() == ty {
                found.push(rrs.clone());
            } else {
                // Sorted by name then type: anything else means we are past ours.
                past = true;
            }
        }
        if out.is_truncated() && !past {
            if let (Some(n), Some(t)) = (out.next_record_name(), out.next_record_type()) {
                start = Some((
                    n.to_string(),
                    t.clone(),
                    out.next_record_identifier().map(str::to_string),
                ));
            }
        }
    }
    Ok(Some(found))
}

/// The record set with this name, type and set identifier, if any.
pub async fn find_record_set(
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
    name: &str,
    rr_type: &str,
    set_identifier: &str,
) -> Result<Option<ResourceRecordSet>, AwsError> {
    Ok(find_record_sets(client, cancel, zone, name, rr_type)
        .await?
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.set_identifier() == Some(set_identifier)))
}

/// One page of the zone's record sets, from `name` onwards in Route 53's
/// order (see [`super::snapshot`]; `None`: from the start), and the name
/// the next page would start at (`None`: the page reaches the end of the
/// zone).
pub async fn list_record_sets_from(
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
    name: Option<&str>,
) -> Result<(Vec<ResourceRecordSet>, Option<String>), AwsError> {
    let span = tracing::debug_span!(
        "route53.ListResourceRecordSets",
        zone_id = zone,
        from = name
    );
    let out = client
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .set_start_record_name(name.map(names::fqdn))
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await?;
    let sets = out.resource_record_sets().to_vec();
    // A truncated page without a next name covers up to its last set at
    // most (and nothing if it is empty): never claim more than was seen.
    let next = out.is_truncated().then(|| {
        out.next_record_name()
            .or(sets.last().map(ResourceRecordSet::name))
            .or(name)
            .unwrap_or_default()
            .to_string()
    });
    Ok((sets, next))
}

/// Every record set in a zone (for `force_destroy`, and a refresh that
/// reads many names of it).
pub async fn list_all_record_sets(
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
) -> Result<Vec<ResourceRecordSet>, AwsError> {
    list_record_sets_onwards(client, cancel, zone, None).await
}

/// Every record set in a zone from `name` onwards in Route 53's order
/// (`None`: from the start), in as many pages as it takes.
pub async fn list_record_sets_onwards(
    client: &Client,
    cancel: &CancellationToken,
    zone: &str,
    name: Option<&str>,
) -> Result<Vec<ResourceRecordSet>, AwsError> {
    let mut all = Vec::new();
    let mut start: Option<(String, Option<RrType>, Option<String>)> =
        name.map(|n| (names::fqdn(n), None, None));
    loop {
        let span = tracing::debug_span!("route53.ListResourceRecordSets", zone_id = zone);
        let mut req = client.list_resource_record_sets().hosted_zone_id(zone);
        if let Some((n, t, i)) = start.take() {
            req = req
                .start_record_name(n)
                .set_start_record_type(t)
                .set_start_record_identifier(i);
        }
        let out = req.send().instrument(span).stoppable(cancel).await?;
        all.extend(out.resource_record_sets().iter().cloned());
        match (
            out.is_truncated(),
            out.next_record_name(),
            out.next_record_type(),
        ) {
            (true, Some(n), Some(t)) => {
                start = Some((
                    n.to_string(),
                    Some(t.clone()),
                    out.next_record_identifier().map(str::to_string),
                ))
            }
            _ => return Ok(all),
        }
    }
}

/// Tags of a hosted zone or health check.
pub async fn find_tags(
    client: &Client,
    cancel: &CancellationToken,
    kind: TagResourceType,
    id: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let span = tracing::debug_span!("route53.ListTagsForResource", resource_id = id);
    let out = client
        .list_tags_for_resource()
        .resource_type(kind)
        .resource_id(id)
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await?;
    Ok(out
        .resource_tag_set()
        .map(|s| {
            s.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect()
        })
        .unwrap_or_default())
}
