//! Bounded waits and writes shared by the Route 53 resources.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_route53::types::{ChangeStatus, Tag, TagResourceType};
use aws_sdk_route53::Client;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::aws::retry::{pause, retry_while, RetryError, EVENTUAL_CONSISTENCY_TIMEOUT};
use crate::aws::{AwsError, Stoppable};

use super::find::NO_ZONE;

/// The longest gap between GetChange polls, and where a process starts:
/// Route 53 usually propagates within 60 s, and asking every 5 s sees that
/// within 5 s while staying far below the account's five requests a
/// second. Changes slower than this are polled exactly as they always
/// were; only faster ones are learned (see [`Propagation`]).
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest gap between polls: a wait never asks more than once a
/// second, since each GetChange spends one of the account's five requests
/// a second and a Terraform slot gains little from less than a second.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The share of changes that should be INSYNC at their first poll, the
/// others costing one more GetChange each. High, because where changes
/// take a steady time each extra poll is a request spent on a PENDING;
/// not 1, because only a PENDING first answer shows that the interval
/// has come down far enough.
const FIRST_POLL_INSYNC_SHARE: f64 = 0.8;

/// How far the interval moves down after a round of INSYNC first answers,
/// one from each wait in flight: each answer moves it the n-th root of
/// this, n the waits in flight, so ten concurrent waits answering alike
/// move it as far as one wait alone does. Large enough to come down from
/// 5 s to 2 s in about ten rounds, small enough that a round of PENDING
/// answers costs one extra GetChange a wait rather than several.
const STEP_DOWN: f64 = 0.9;

/// When a wait for INSYNC asks: every `interval`, learned from the first
/// answers this process has had, between [`MIN_POLL_INTERVAL`] and
/// [`CHANGE_POLL_INTERVAL`].
///
/// A fixed 5 s suits Route 53 on most days, when changes take tens of
/// seconds: nothing sooner would be INSYNC. Where changes take 2 s (fast
/// days, the strict lane), it holds each wait, and so one of Terraform's
/// ten concurrent operations, for 3 s of nothing: a 100-pair apply then
/// runs at what ten slots allow rather than at what the rate allows.
///
/// So the interval tracks the point by which `FIRST_POLL_INSYNC_SHARE`
/// of changes are INSYNC (a stochastic quantile estimate: an INSYNC first
/// answer moves it down by `STEP_DOWN`, a PENDING one up by as much as
/// balances that share). Where changes take 5 s or more every first
/// answer is PENDING, the interval stays at 5 s, and the waits send the
/// very requests they did with a fixed interval. When Route 53 slows down
/// after fast changes, the gaps of each wait double up to 5 s, so the
/// waits that began at a short interval cost a few GetChanges more, not
/// one a second.
#[derive(Debug)]
pub struct Propagation {
    interval: Mutex<Duration>,
    /// Waits under way, which share each round's step.
    waiting: AtomicUsize,
}

impl Default for Propagation {
    fn default() -> Propagation {
        Propagation {
            interval: Mutex::new(CHANGE_POLL_INTERVAL),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl Propagation {
    /// The gap before each GetChange of the next wait.
    pub fn interval(&self) -> Duration {
        *self.interval.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change's first GetChange answered INSYNC (`insync`) or PENDING.
    fn first_answer(&self, insync: bool) {
        let round = if insync {
            STEP_DOWN
        } else {
            // At the share, the expected move is none:
            // share * ln(STEP_DOWN) + (1 - share) * ln(up) = 0.
            (1.0 / STEP_DOWN).powf(FIRST_POLL_INSYNC_SHARE / (1.0 - FIRST_POLL_INSYNC_SHARE))
        };
        let waiting = self.waiting.load(Ordering::Relaxed).max(1);
        let step = round.powf(1.0 / waiting as f64);
        let mut interval = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        *interval = interval
            .mul_f64(step)
            .clamp(MIN_POLL_INTERVAL, CHANGE_POLL_INTERVAL);
    }
}

/// Counts a wait in flight for as long as it lives, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize) -> InFlight<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until the change `change_id`, known to be PENDING, is INSYNC, or
/// `timeout` passes. The first GetChange comes `propagation.interval()`
/// after the change, never at once: that could only repeat the PENDING
/// just answered, at the cost of a request from the account's five a
/// second. Later ones come at gaps doubling from that interval up to
/// [`CHANGE_POLL_INTERVAL`] (from 5 s, every 5 s), the last one at the
/// timeout if it falls between two. The first answer is fed back into
/// `propagation`.
pub async fn wait_change_insync(
    client: &Client,
    propagation: &Propagation,
    cancel: &CancellationToken,
    change_id: &str,
    timeout: Duration,
) -> Result<(), RetryError> {
    let id = change_id.trim_start_matches("/change/").to_string();
    poll_until_insync(
        propagation,
        cancel,
        &format!("Route 53 change {id} to be INSYNC"),
        timeout,
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
                Ok(matches!(
                    out.change_info().map(|c| c.status()),
                    Some(ChangeStatus::Insync)
                ))
            }
        },
    )
    .await
}

/// [`wait_change_insync`]'s schedule around any `insync` check.
async fn poll_until_insync<F, Fut>(
    propagation: &Propagation,
    cancel: &CancellationToken,
    what: &str,
    timeout: Duration,
    mut insync: F,
) -> Result<(), RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, AwsError>>,
{
    // tokio's clock, so tests can run waits on paused time.
    let start = tokio::time::Instant::now();
    let _in_flight = InFlight::new(&propagation.waiting);
    let interval = propagation.interval();
    let mut at = interval.min(timeout);
    let mut gap = interval;
    let mut first = true;
    loop {
        pause(
            cancel,
            (start + at).saturating_duration_since(tokio::time::Instant::now()),
        )
        .await?;
        let done = insync().await?;
        if std::mem::take(&mut first) {
            propagation.first_answer(done);
        }
        if done {
            return Ok(());
        }
        if at >= timeout {
            return Err(RetryError::Timeout {
                what: what.to_string(),
                after: start.elapsed(),
            });
        }
        at = (at + gap).min(timeout);
        gap = (gap * 2).min(CHANGE_POLL_INTERVAL);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;
    use tokio::time::Instant;

    /// A change Route 53 makes INSYNC `takes` after it was made.
    struct Change {
        made: Instant,
        takes: Duration,
        polls: AtomicU32,
    }

    impl Change {
        fn new(takes: Duration) -> Change {
            Change {
                made: Instant::now(),
                takes,
                polls: AtomicU32::new(0),
            }
        }

        async fn get(&self) -> Result<bool, AwsError> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            Ok(self.made.elapsed() >= self.takes)
        }
    }

    /// Waits for `change` as the provider does; returns how late after
    /// becoming INSYNC the wait saw it.
    async fn wait(p: &Propagation, change: &Change) -> Duration {
        poll_until_insync(
            p,
            &CancellationToken::new(),
            "C",
            Duration::from_secs(1800),
            || change.get(),
        )
        .await
        .expect("INSYNC");
        change.made.elapsed() - change.takes
    }

    /// Ten workers, as Terraform's ten concurrent operations, each making
    /// and waiting for `each` changes in turn, the i-th change taking
    /// `takes(i)`; the workers start 300 ms apart. Returns GetChange calls
    /// per change, and how late after becoming INSYNC a change was seen,
    /// on average and at most.
    async fn run(
        p: &Arc<Propagation>,
        each: usize,
        takes: impl Fn(usize) -> Duration,
    ) -> (f64, Duration, Duration) {
        let mut set = tokio::task::JoinSet::new();
        for w in 0..10 {
            let p = Arc::clone(p);
            let takes: Vec<Duration> = (0..each).map(|i| takes(i * 10 + w)).collect();
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(300) * w as u32).await;
                let mut seen = Vec::new();
                for takes in takes {
                    let change = Change::new(takes);
                    let late = wait(&p, &change).await;
                    seen.push((change.polls.load(Ordering::SeqCst), late));
                }
                seen
            });
        }
        let (mut polls, mut total, mut latest) = (0, Duration::ZERO, Duration::ZERO);
        while let Some(r) = set.join_next().await {
            for (n, late) in r.expect("task") {
                polls += n;
                total += late;
                latest = latest.max(late);
            }
        }
        let n = (each * 10) as u32;
        (f64::from(polls) / f64::from(n), total / n, latest)
    }

    /// Route 53 on most days: changes take tens of seconds. Every wait
    /// polls every 5 s, as with a fixed interval: a GetChange per 5 s
    /// begun, none more.
    #[tokio::test(start_paused = true)]
    async fn changes_slower_than_five_seconds_are_polled_every_five() {
        let p = Arc::new(Propagation::default());
        for i in 0..40u64 {
            let change = Change::new(Duration::from_millis(5_001 + i * 997));
            let late = wait(&p, &change).await;
            let polls = change.polls.load(Ordering::SeqCst);
            assert_eq!(
                u64::from(polls),
                change.takes.as_millis().div_ceil(5_000) as u64
            );
            assert!(late < CHANGE_POLL_INTERVAL, "{late:?}");
            assert_eq!(p.interval(), CHANGE_POLL_INTERVAL);
        }
    }

    /// Where changes take 2 s (the strict lane), the interval comes down
    /// to about that, so a wait is seen INSYNC under a second late on
    /// average where the fixed 5 s made it 3 s late, at the price of a
    /// second GetChange for about one change in five.
    #[tokio::test(start_paused = true)]
    async fn where_changes_take_two_seconds_the_waits_learn_it() {
        let p = Arc::new(Propagation::default());
        run(&p, 3, |_| Duration::from_secs(2)).await;
        let (polls, mean, _) = run(&p, 20, |_| Duration::from_secs(2)).await;
        assert!(p.interval() <= Duration::from_secs(3), "{:?}", p.interval());
        assert!(polls <= 1.3, "{polls} GetChange per change");
        assert!(mean <= Duration::from_secs(1), "{mean:?} late on average");
    }

    /// Fast changes, then Route 53 slows down to 30 s: within four changes
    /// a worker the interval is back to 5 s, and meanwhile the gaps after
    /// a PENDING double, so a wait that began at 1 s costs 9 GetChanges,
    /// not 30. The interval never leaves its bounds.
    #[tokio::test(start_paused = true)]
    async fn the_interval_follows_changes_both_ways_within_its_bounds() {
        let p = Arc::new(Propagation::default());
        run(&p, 30, |_| Duration::ZERO).await;
        assert_eq!(p.interval(), MIN_POLL_INTERVAL);
        let (polls, _, latest) = run(&p, 4, |_| Duration::from_secs(30)).await;
        assert_eq!(p.interval(), CHANGE_POLL_INTERVAL);
        assert!(polls <= 9.0, "{polls} GetChange per change");
        assert!(latest <= CHANGE_POLL_INTERVAL, "{latest:?}");
    }

    /// A change still PENDING is asked about once more at the timeout, not
    /// after it, and the error names what was awaited.
    #[tokio::test(start_paused = true)]
    async fn a_wait_asks_last_at_its_timeout() {
        let p = Propagation::default();
        let change = Change::new(Duration::from_secs(3600));
        let start = Instant::now();
        let r = poll_until_insync(
            &p,
            &CancellationToken::new(),
            "Route 53 change C1 to be INSYNC",
            Duration::from_secs(12),
            || change.get(),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("change C1 to be INSYNC"), "{e}");
        assert_eq!(start.elapsed(), Duration::from_secs(12));
        // At 5 s, 10 s and 12 s.
        assert_eq!(change.polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn cancellation_stops_the_wait() {
        let tok = CancellationToken::new();
        tok.cancel();
        let r = poll_until_insync(
            &Propagation::default(),
            &tok,
            "C",
            Duration::from_secs(60),
            || async { Ok(false) },
        )
        .await;
        assert!(matches!(r, Err(RetryError::Cancelled)));
    }
}
