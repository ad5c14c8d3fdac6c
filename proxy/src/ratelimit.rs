//! Per-client token buckets (`limits.rate_limit`): `burst` tokens, refilled
//! at `requests_per_second`. Local to each proxy; with `global: true` the
//! fleet-wide bucket lives in Redis (`tier::Tier::take`) and this one is the
//! fallback while Redis is down, so a dead Redis never turns into 429s or
//! into no limit at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many tracked clients, full buckets are dropped: a client
/// whose bucket is full is indistinguishable from a new one.
const SWEEP_ABOVE: usize = 100_000;

/// The token buckets of one config.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// `rate` tokens per second, at most `burst` stored.
    pub fn new(rate: f64, burst: u32) -> Limiter {
        Limiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says how long until one is available.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        self.bucket(client, now, true)
    }

    /// Whether `client` has a token now, without taking it.
    pub fn peek(&self, client: &str, now: Instant) -> Result<(), Duration> {
        self.bucket(client, now, false)
    }

    fn bucket(&self, client: &str, now: Instant, take: bool) -> Result<(), Duration> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > SWEEP_ABOVE {
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (t, last)| *t + now.duration_since(*last).as_secs_f64() * rate < burst);
        }
        let (tokens, last) = b.entry(client.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burst_then_refill() {
        let l = Limiter::new(2.0, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t).is_ok());
        }
        let wait = l.check("a", t).unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(l.check("b", t).is_ok(), "clients are independent");
        assert!(
            l.peek("b", t).is_ok() && l.peek("b", t).is_ok(),
            "a peek takes nothing"
        );
        assert!(l.check("a", t + Duration::from_millis(500)).is_ok());
    }

    proptest! {
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(rate in 0.5f64..50.0, burst in 1u32..20, gaps in proptest::collection::vec(0u64..200, 1..200)) {
            let l = Limiter::new(rate, burst);
            let t0 = Instant::now();
            let mut now = t0;
            let mut allowed = 0u32;
            for g in gaps {
                now += Duration::from_millis(g);
                if l.check("c", now).is_ok() { allowed += 1; }
            }
            let bound = f64::from(burst) + rate * now.duration_since(t0).as_secs_f64();
            prop_assert!(f64::from(allowed) <= bound + 1e-9, "{allowed} > {bound}");
        }
    }
}
