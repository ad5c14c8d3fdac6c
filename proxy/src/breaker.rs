//! A per-replica circuit breaker: closed → open after `failure_threshold`
//! consecutive failures; open → half-open after `open_timeout`, admitting
//! at most `half_open_probes` concurrent trials; half-open → closed after
//! `success_threshold` successes, or back to open on any failure.
//!
//! Time is passed in, so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tandem_fleet_config::Breaker as Settings;

/// The externally visible state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Traffic flows.
    Closed,
    /// Trial requests only.
    HalfOpen,
    /// The replica is skipped.
    Open,
}

impl State {
    /// Name used in /status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }

    /// Gauge value in /metrics (0 closed, 1 half-open, 2 open).
    pub fn gauge(self) -> u8 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

/// Permission to send one request; report its outcome with
/// [`CircuitBreaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// A normal request through a closed breaker.
    Normal,
    /// A half-open trial.
    Probe,
}

/// One replica's breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    success_threshold: u32,
    open_timeout: Duration,
    probes: u32,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker with these settings.
    pub fn new(s: &Settings) -> CircuitBreaker {
        CircuitBreaker {
            failure_threshold: s.failure_threshold.max(1),
            success_threshold: s.success_threshold.max(1),
            open_timeout: s.open_timeout.0,
            probes: s.half_open_probes.max(1),
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the state invalid
        // (every transition is a single assignment), so poison is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state as reported (an open breaker whose timeout has passed is
    /// still "open" until a trial request is let through).
    pub fn state(&self) -> State {
        match *self.lock() {
            Inner::Closed { .. } => State::Closed,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// True when a trial may be sent now: an open breaker whose timeout
    /// has passed, or a half-open one with a free probe slot. The
    /// background prober uses this so a breaker closes without waiting for
    /// client traffic.
    pub fn probe_due(&self, now: Instant) -> bool {
        match *self.lock() {
            Inner::Open { until } => now >= until,
            Inner::HalfOpen { in_flight, .. } => in_flight < self.probes,
            Inner::Closed { .. } => false,
        }
    }

    /// Asks to send a request now. `None` means skip this replica.
    pub fn try_acquire(&self, now: Instant) -> Option<Permit> {
        let mut g = self.lock();
        match *g {
            Inner::Closed { .. } => Some(Permit::Normal),
            Inner::Open { until } if now >= until => {
                *g = Inner::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                };
                Some(Permit::Probe)
            }
            Inner::Open { .. } => None,
            Inner::HalfOpen {
                ref mut in_flight, ..
            } => {
                if *in_flight < self.probes {
                    *in_flight += 1;
                    Some(Permit::Probe)
                } else {
                    None
                }
            }
        }
    }

    /// Records an outcome; returns the new state when it changed.
    pub fn record(&self, permit: Permit, success: bool, now: Instant) -> Option<State> {
        let mut g = self.lock();
        let before = state_of(&g);
        match (&mut *g, permit) {
            (Inner::Closed { failures }, _) => {
                if success {
                    *failures = 0;
                } else {
                    *failures += 1;
                    if *failures >= self.failure_threshold {
                        *g = Inner::Open {
                            until: now + self.open_timeout,
                        };
                    }
                }
            }
            (
                Inner::HalfOpen {
                    in_flight,
                    successes,
                },
                Permit::Probe,
            ) => {
                *in_flight = in_flight.saturating_sub(1);
                if !success {
                    *g = Inner::Open {
                        until: now + self.open_timeout,
                    };
                } else {
                    *successes += 1;
                    if *successes >= self.success_threshold {
                        *g = Inner::Closed { failures: 0 };
                    }
                }
            }
            // A normal request admitted before the breaker opened: its
            // outcome says nothing about the trial, so it is ignored.
            (Inner::HalfOpen { .. }, Permit::Normal) | (Inner::Open { .. }, _) => {}
        }
        let after = state_of(&g);
        (before != after).then_some(after)
    }

    /// Gives back a probe permit whose request was abandoned (the client
    /// went away), so the half-open slot is not lost.
    pub fn release(&self, permit: Permit) {
        if permit == Permit::Probe {
            if let Inner::HalfOpen { in_flight, .. } = &mut *self.lock() {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }
}

fn state_of(i: &Inner) -> State {
    match i {
        Inner::Closed { .. } => State::Closed,
        Inner::Open { .. } => State::Open,
        Inner::HalfOpen { .. } => State::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tandem_fleet_config::Dur;

    fn b(fail: u32, ok: u32, probes: u32) -> CircuitBreaker {
        CircuitBreaker::new(&Settings {
            failure_threshold: fail,
            success_threshold: ok,
            open_timeout: Dur::secs(10),
            half_open_probes: probes,
        })
    }

    #[test]
    fn open_half_open_closed() {
        let t0 = Instant::now();
        let br = b(3, 2, 1);
        for _ in 0..2 {
            let p = br.try_acquire(t0).unwrap();
            assert_eq!(br.record(p, false, t0), None);
        }
        // A success resets the consecutive count.
        br.record(Permit::Normal, true, t0);
        for _ in 0..2 {
            br.record(Permit::Normal, false, t0);
        }
        assert_eq!(br.record(Permit::Normal, false, t0), Some(State::Open));
        assert_eq!(br.try_acquire(t0 + Duration::from_secs(9)), None);
        let t1 = t0 + Duration::from_secs(10);
        assert!(br.probe_due(t1));
        assert_eq!(br.try_acquire(t1), Some(Permit::Probe));
        assert_eq!(br.state(), State::HalfOpen);
        // Only one probe at a time.
        assert_eq!(br.try_acquire(t1), None);
        assert_eq!(br.record(Permit::Probe, true, t1), None);
        assert_eq!(br.try_acquire(t1), Some(Permit::Probe));
        assert_eq!(br.record(Permit::Probe, true, t1), Some(State::Closed));
    }

    #[test]
    fn failed_probe_reopens_and_abandoned_probe_frees_its_slot() {
        let t0 = Instant::now();
        let br = b(1, 1, 1);
        br.record(Permit::Normal, false, t0);
        let t1 = t0 + Duration::from_secs(10);
        let p = br.try_acquire(t1).unwrap();
        br.release(p);
        let p = br.try_acquire(t1).unwrap();
        assert_eq!(br.record(p, false, t1), Some(State::Open));
        assert_eq!(br.try_acquire(t1), None);
        assert!(!br.probe_due(t1 + Duration::from_secs(9)));
    }

    proptest! {
        #[test]
        fn never_more_probes_than_allowed_and_opens_exactly_at_threshold(
            fail in 1u32..6, probes in 1u32..4,
            ops in proptest::collection::vec((any::<bool>(), 0u64..30), 0..60)
        ) {
            let br = b(fail, 2, probes);
            let t0 = Instant::now();
            let mut now = t0;
            let mut held = Vec::new();
            let mut consecutive = 0u32;
            for (ok, dt) in ops {
                now += Duration::from_secs(dt);
                let before = br.state();
                if let Some(p) = br.try_acquire(now) {
                    if p == Permit::Probe { held.push(p); }
                    let in_flight = held.len() as u32;
                    prop_assert!(in_flight <= probes);
                    if p == Permit::Probe { held.pop(); }
                    let changed = br.record(p, ok, now);
                    if before == State::Closed && p == Permit::Normal {
                        consecutive = if ok { 0 } else { consecutive + 1 };
                        prop_assert_eq!(changed == Some(State::Open), consecutive == fail);
                        if consecutive == fail { consecutive = 0; }
                    }
                    if changed == Some(State::Closed) { consecutive = 0; }
                } else {
                    prop_assert_ne!(before, State::Closed);
                }
            }
        }
    }
}
