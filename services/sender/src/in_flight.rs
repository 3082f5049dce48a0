//! How many work items one sender works on at once. Sustaining R sends/s
//! with requests that take L seconds needs about R × L of them in flight
//! (Little's law: 1000/s at 60 ms ≈ 60). Neither is known in advance:
//! Telegram's answer time varies, and a replica's share of the token's rate
//! depends on how many replicas run. So the limit follows what is measured:
//! a margin over the answers per second of the last window times the mean
//! answer time. While the limit is what holds sends back, the rate it
//! allows grows with it, and so does the next limit, until the rate budget
//! is what holds sends back.
//!
//! `SENDER_MAX_IN_FLIGHT` caps one replica; the work consumer's
//! `max_ack_pending` (512) caps all of them together, well below the ~1000
//! requests in flight at which the Bot API answers a bot 429.

use std::time::{Duration, Instant};

/// The limit before anything is measured, and the lowest: 1000/s at up to
/// ~30 ms, or the free lane's 30/s at up to ~1 s, without measuring. Below
/// it, a smaller limit would only save a few idle futures.
pub const FLOOR: usize = 64;
/// Over the measured need: an item takes longer than its request (its rate
/// slot, recording the outcome; longer still on a busy machine), and rate
/// and answer time vary. While the limit holds sends back, it grows only if
/// items take less than this many times the answer time.
const MARGIN: f64 = 2.0;
/// How often the limit follows the measurements.
const WINDOW: Duration = Duration::from_millis(250);
/// Weight of one answer's time in the running mean.
const LATENCY_WEIGHT: f64 = 0.1;

#[derive(Debug)]
pub struct InFlightLimit {
    floor: usize,
    ceiling: usize,
    limit: usize,
    /// Running mean of Telegram's answer time, in seconds.
    mean_latency: Option<f64>,
    window_start: Instant,
    answers_in_window: u32,
}

impl InFlightLimit {
    /// A limit that never exceeds `ceiling` (at least 1).
    pub fn new(ceiling: usize, now: Instant) -> InFlightLimit {
        let ceiling = ceiling.max(1);
        let floor = FLOOR.min(ceiling);
        InFlightLimit {
            floor,
            ceiling,
            limit: floor,
            mean_latency: None,
            window_start: now,
            answers_in_window: 0,
        }
    }

    /// Items to work on at once now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Telegram answered a request after `latency`. Returns the new limit
    /// when a window closed.
    pub fn answered(&mut self, latency: Duration, now: Instant) -> Option<usize> {
        let latency = latency.as_secs_f64();
        let mean = match self.mean_latency {
            Some(mean) => mean + LATENCY_WEIGHT * (latency - mean),
            None => latency,
        };
        self.mean_latency = Some(mean);
        self.answers_in_window += 1;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return None;
        }
        let rate = f64::from(self.answers_in_window) / elapsed.as_secs_f64();
        let need = (MARGIN * rate * mean).ceil() as usize;
        self.limit = need.clamp(self.floor, self.ceiling);
        self.window_start = now;
        self.answers_in_window = 0;
        Some(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds answers taking `latency` at `rate`/s for `seconds`, each window
    /// capped by what the limit lets through: at most `limit / latency`.
    fn run(
        limit: &mut InFlightLimit,
        start: Instant,
        latency: Duration,
        rate: f64,
        seconds: f64,
    ) -> Instant {
        let mut now = start;
        let end = start + Duration::from_secs_f64(seconds);
        while now < end {
            let allowed = rate.min(limit.limit() as f64 / latency.as_secs_f64());
            now += Duration::from_secs_f64(1.0 / allowed);
            limit.answered(latency, now);
        }
        now
    }

    #[test]
    fn starts_at_the_floor() {
        let limit = InFlightLimit::new(500, Instant::now());
        assert_eq!(limit.limit(), FLOOR);
    }

    #[test]
    fn a_slow_api_at_a_high_rate_grows_the_limit_to_rate_times_latency() {
        let start = Instant::now();
        let mut limit = InFlightLimit::new(500, start);
        // 1000/s at 200 ms needs 200 in flight; 64 allow only 320/s.
        run(&mut limit, start, Duration::from_millis(200), 1000.0, 3.0);
        let settled = limit.limit();
        assert!(
            (350..=450).contains(&settled),
            "settled at {settled}, not about 2 × 200"
        );
    }

    #[test]
    fn a_fast_api_or_a_low_rate_stays_at_the_floor() {
        let start = Instant::now();
        let mut limit = InFlightLimit::new(500, start);
        let now = run(&mut limit, start, Duration::from_millis(30), 1000.0, 2.0);
        assert_eq!(limit.limit(), FLOOR, "1000/s at 30 ms: 60 with the margin");
        run(&mut limit, now, Duration::from_millis(800), 30.0, 2.0);
        assert_eq!(limit.limit(), FLOOR, "30/s at 800 ms: 48 with the margin");
    }

    #[test]
    fn the_limit_never_passes_the_ceiling_and_falls_when_latency_does() {
        let start = Instant::now();
        let mut limit = InFlightLimit::new(200, start);
        let now = run(&mut limit, start, Duration::from_secs(2), 1000.0, 10.0);
        assert_eq!(limit.limit(), 200);
        run(&mut limit, now, Duration::from_millis(20), 1000.0, 2.0);
        assert_eq!(limit.limit(), FLOOR);
    }

    #[test]
    fn a_ceiling_below_the_floor_is_the_limit() {
        let start = Instant::now();
        let mut limit = InFlightLimit::new(8, start);
        assert_eq!(limit.limit(), 8);
        run(&mut limit, start, Duration::from_millis(500), 1000.0, 2.0);
        assert_eq!(limit.limit(), 8);
    }
}
