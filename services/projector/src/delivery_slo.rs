//! The delivery SLI, `courier_recipients_resolved_total{on_time}`: a
//! recipient is resolved on time when its outcome came within its
//! campaign's ideal time, the audience at the lane's rate limit plus 10%
//! and 10 s, pauses excluded. The SLO burn-rate alerts
//! (`deploy/prometheus/rules/courier.yml`) are built on it.
//!
//! The projector counts it because it sees every outcome once, with the
//! campaign's start, audience and pauses beside it. The rate limits are
//! the ones the senders published (`courier_core::send_limits`), read again
//! at most once a minute.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use courier_core::send_limits::{self, Lane};
use tokio::sync::Mutex;

/// Slack on top of the audience at the rate limit: a share, and a constant
/// for the start (the loader's fan-out, the first pulls).
const SLACK_SHARE: f64 = 0.10;
const SLACK: Duration = Duration::from_secs(10);

/// Outcomes applied this long after they occurred are history (a replay, a
/// rebuild): counting them again would show old campaigns as burning the
/// budget now.
pub const COUNTED_WITHIN: Duration = Duration::from_secs(3600);

/// The published limits are read again after this long.
const RATES_MAX_AGE: Duration = Duration::from_secs(60);

/// When a campaign's last recipient should have its outcome.
pub fn ideal_end(
    started_at: DateTime<Utc>,
    audience: i32,
    rate: f64,
    paused: Duration,
) -> DateTime<Utc> {
    let sending = Duration::from_secs_f64(f64::from(audience.max(0)) / rate * (1.0 + SLACK_SHARE));
    started_at + sending + SLACK + paused
}

/// Recipients resolved, counted for the SLI.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub on_time: u64,
    pub late: u64,
}

impl Resolved {
    /// Outcomes that came at `resolved_at`, for a campaign that should have
    /// ended by `ideal_end`, applied `now`; those older than
    /// [`COUNTED_WITHIN`] are left out.
    pub fn count(
        resolved_at: &[DateTime<Utc>],
        ideal_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Resolved {
        let history = now - COUNTED_WITHIN;
        let mut counted = Resolved::default();
        for at in resolved_at.iter().filter(|at| **at >= history) {
            if *at <= ideal_end {
                counted.on_time += 1;
            } else {
                counted.late += 1;
            }
        }
        counted
    }
}

/// The rate limit of each lane, as the senders published it (the lane's
/// default until one did).
pub struct Rates {
    store: kv::Store,
    read: Mutex<Option<(Instant, [f64; 2])>>,
}

impl Rates {
    pub fn new(store: kv::Store) -> Rates {
        Rates {
            store,
            read: Mutex::new(None),
        }
    }

    pub async fn of(&self, lane: Lane) -> f64 {
        let mut read = self.read.lock().await;
        let rates = match *read {
            Some((at, rates)) if at.elapsed() < RATES_MAX_AGE => rates,
            _ => {
                let rates = [
                    send_limits::lowest_published(&self.store, Lane::Free).await,
                    send_limits::lowest_published(&self.store, Lane::Paid).await,
                ];
                *read = Some((Instant::now(), rates));
                rates
            }
        };
        rates[usize::from(lane == Lane::Paid)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_ideal_time_is_the_audience_at_the_rate_plus_slack_and_pauses() {
        // 3,000 at 30/s: 100 s, 110 s with 10%, 120 s with the constant.
        assert_eq!(ideal_end(at(0), 3000, 30.0, Duration::ZERO), at(120));
        assert_eq!(
            ideal_end(at(0), 3000, 30.0, Duration::from_secs(600)),
            at(720),
            "a 10-minute pause moves the end by as much"
        );
        assert_eq!(
            ideal_end(at(0), 3000, 1000.0, Duration::ZERO),
            at(0) + Duration::from_millis(13_300)
        );
        assert_eq!(ideal_end(at(5), 0, 30.0, Duration::ZERO), at(15));
    }

    #[test]
    fn outcomes_by_the_ideal_end_are_on_time_and_history_is_not_counted() {
        let resolved = [at(-4000), at(100), at(120), at(121), at(500)];
        assert_eq!(
            Resolved::count(&resolved, at(120), at(600)),
            Resolved {
                on_time: 2,
                late: 2
            },
            "the one from more than an hour ago is history (a replay)"
        );
        assert_eq!(Resolved::count(&[], at(120), at(600)), Resolved::default());
    }
}
