//! Pacing sends to a rate budget with the generic cell rate algorithm: each
//! send reserves the next slot of a schedule spaced `1 / rate` apart, so in
//! any one-second window there are never more than `rate` sends, with no
//! bursts at window edges. A 429 moves the whole schedule past its
//! `retry_after`.
//!
//! The schedule itself is plain data ([`Schedule`]); [`Budget`] keeps one
//! per process and waits for the reserved slot.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Pace at this fraction of the configured limit: request latency jitter
/// can bunch two sends together on Telegram's side, and the limit is a
/// ceiling never to touch.
pub const HEADROOM: f64 = 0.98;

/// The theoretical arrival time of the next send.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    next_slot: Option<Instant>,
}

impl Schedule {
    /// A schedule for `rate` sends per second (`rate` > 0).
    pub fn new(rate: f64) -> Schedule {
        Schedule {
            interval: Duration::from_secs_f64(1.0 / (rate * HEADROOM)),
            next_slot: None,
        }
    }

    /// Reserves the next free slot at or after `now` and returns it.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next_slot.map_or(now, |next| next.max(now));
        self.next_slot = Some(slot + self.interval);
        slot
    }

    /// No slot before `until` (Telegram said retry_after).
    pub fn pause_until(&mut self, until: Instant) {
        self.next_slot = Some(self.next_slot.map_or(until, |next| next.max(until)));
    }
}

/// One process's rate budget for one lane (free or paid).
pub struct Budget {
    schedule: Mutex<Schedule>,
}

impl Budget {
    pub fn new(rate: f64) -> Budget {
        Budget {
            schedule: Mutex::new(Schedule::new(rate)),
        }
    }

    /// Waits for this send's slot. Pacing, not retrying: the wait is the
    /// budget's, and the item is held only until its turn.
    pub async fn acquire(&self) {
        let slot = self.schedule.lock().await.reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    pub async fn pause_for(&self, retry_after: Duration) {
        self.schedule
            .lock()
            .await
            .pause_until(Instant::now() + retry_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends_in_window(slots: &[Instant], start: Instant, window: Duration) -> usize {
        slots
            .iter()
            .filter(|s| **s >= start && **s < start + window)
            .count()
    }

    #[test]
    fn no_one_second_window_exceeds_the_rate() {
        let start = Instant::now();
        let mut schedule = Schedule::new(30.0);
        // Everyone asks at once: the schedule spreads them out.
        let slots: Vec<Instant> = (0..300).map(|_| schedule.reserve(start)).collect();
        for offset_ms in (0..9000).step_by(7) {
            let window_start = start + Duration::from_millis(offset_ms);
            assert!(sends_in_window(&slots, window_start, Duration::from_secs(1)) <= 30);
        }
        // ... and still reaches the rate, less the headroom.
        let per_second = 300.0 / (*slots.last().unwrap() - start).as_secs_f64();
        assert!(per_second >= 30.0 * HEADROOM * 0.99, "{per_second}");
    }

    #[test]
    fn an_idle_schedule_does_not_bank_slots() {
        let start = Instant::now();
        let mut schedule = Schedule::new(10.0);
        schedule.reserve(start);
        let later = start + Duration::from_secs(60);
        assert_eq!(schedule.reserve(later), later);
        assert!(schedule.reserve(later) > later);
    }

    #[test]
    fn a_pause_moves_every_later_slot() {
        let start = Instant::now();
        let mut schedule = Schedule::new(100.0);
        schedule.reserve(start);
        schedule.pause_until(start + Duration::from_secs(7));
        assert!(schedule.reserve(start) >= start + Duration::from_secs(7));
    }
}
