//! Bounded waits and writes shared by the Route 53 resources.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_route53::types::{ChangeStatus, Tag, TagResourceType};
use aws_sdk_route53::Client;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::retry::{pause, retry_while, wait_for, RetryError, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::{AwsError, Stoppable};

use super::find::NO_ZONE;

/// Pause between GetChange polls. Route 53 usually propagates within 60 s;
/// polling every 5 s sees it promptly while staying far below the API's
/// five requests per second per account.
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Waits until the change `change_id`, known to be PENDING, is INSYNC, or
/// `timeout` passes. The first GetChange comes one poll interval after the
/// change (or at the timeout, if sooner): asking at once could only repeat
/// the PENDING just answered, at the cost of a request from the account's
/// five per second.
pub async fn wait_change_insync(
    client: &Client,
    cancel: &CancellationToken,
    change_id: &str,
    timeout: Duration,
) -> Result<(), RetryError> {
    let id = change_id.trim_start_matches("/change/").to_string();
    let first = CHANGE_POLL_INTERVAL.min(timeout);
    pause(cancel, first).await?;
    let timeout = timeout - first;
    wait_for(
        cancel,
        &format!("Route 53 change {id} to be INSYNC"),
        timeout,
        CHANGE_POLL_INTERVAL,
        || {
            let id = id.clone();
            async move {
                let span = tracing::debug_span!("route53.GetChange", change_id = %id);
                let out = client
                    .get_change()
                    .id(id)
                    .send()
                    .instrument(span)
                    .stoppable(cancel)
                    .await?;
                Ok(match out.change_info().map(|c| c.status()) {
                    Some(ChangeStatus::Insync) => Some(()),
                    _ => None,
                })
            }
        },
    )
    .await
}

/// Runs `op` again while the zone is not yet visible: right after a zone is
/// created (possibly by another resource in the same apply), Route 53 may
/// still answer NoSuchHostedZone for a short while.
pub async fn retry_new_zone<T, F, Fut>(cancel: &CancellationToken, op: F) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    retry_while(cancel, EVENTUAL_CONSISTENCY_TIMEOUT, |e| e.is(NO_ZONE), op).await
}

/// Brings the tags of a zone or health check from `old` to `new` in one call.
pub async fn update_tags(
    client: &Client,
    cancel: &CancellationToken,
    kind: TagResourceType,
    id: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let add: Vec<Tag> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let remove: Vec<String> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let span = tracing::debug_span!("route53.ChangeTagsForResource", resource_id = id);
    client
        .change_tags_for_resource()
        .resource_type(kind)
        .resource_id(id)
        .set_add_tags((!add.is_empty()).then_some(add))
        .set_remove_tag_keys((!remove.is_empty()).then_some(remove))
        .send()
        .instrument(span)
        .stoppable(cancel)
        .await?;
    Ok(())
}
