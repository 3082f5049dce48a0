//! The rate schedule, as plain arithmetic: the generic cell rate algorithm
//! over one number, the time of the next free send slot (`next`, Unix
//! microseconds). Reserving `n` slots takes them from `max(next, now)` on,
//! spaced `1 / rate` apart, so no one-second window ever holds more than
//! `rate` sends and an idle schedule banks no burst. A 429 moves `next`
//! past its `retry_after`.
//!
//! [`crate::budget`] keeps `next` in NATS KV so every replica of a token
//! draws from the same schedule.

use std::time::Duration;

/// Pace at this fraction of the configured limit: a send a little late on
/// the wire must not push a one-second window over Telegram's ceiling.
/// At 98%, sends may drift by up to ~20 ms on their way before any
/// one-second window holds more than the limit (docs/decisions/0002).
pub const HEADROOM: f64 = 0.98;

/// How far (µs) sends may drift from their slots, late on the way or
/// jittered on the wire, before a one-second window holds more than the
/// limit: (1/HEADROOM − 1) of a second, about 20 ms.
pub fn drift_allowance_us() -> u64 {
    ((1.0 / HEADROOM - 1.0) * 1_000_000.0) as u64
}

/// How late after its slot a worker may still send: a quarter interval,
/// at least 2 ms (two ticks of tokio's timer) and at most a third of
/// [`drift_allowance_us`], leaving the rest to the network
/// (docs/decisions/0003).
pub fn lateness_tolerance_us(interval_us: u64) -> u64 {
    (interval_us / 4).clamp(2_000, drift_allowance_us() / 3)
}

/// Spacing between sends for `rate` messages per second, in microseconds.
pub fn interval_us(rate: f64) -> u64 {
    (1_000_000.0 / (rate * HEADROOM)).ceil() as u64
}

/// Slots reserved from a schedule: `count` slots `interval_us` apart from
/// `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub first: u64,
    pub count: u32,
    pub interval_us: u64,
}

impl Reservation {
    pub fn slot(&self, i: u32) -> u64 {
        self.first + u64::from(i) * self.interval_us
    }

    pub fn end(&self) -> u64 {
        self.slot(self.count)
    }
}

impl Reservation {
    /// The middle slot: where a block's burst goes.
    pub fn middle(&self) -> u64 {
        self.slot(self.count / 2)
    }
}

/// Reserves `count` slots on a schedule whose next free slot is `next`.
pub fn reserve(next: u64, now: u64, count: u32, interval_us: u64) -> Reservation {
    Reservation {
        first: next.max(now),
        count,
        interval_us,
    }
}

/// The schedule's next free slot after Telegram asked to wait `retry_after`.
pub fn pause(next: u64, now: u64, retry_after: Duration) -> u64 {
    next.max(now + retry_after.as_micros() as u64)
}

/// Slots reserved at once by one replica: about 50 ms worth, so a busy
/// replica touches the shared schedule ~20 times a second whatever the
/// rate, and slots never sit unused for long; at least `MIN_CHUNK`, so a
/// bot at 30/s costs a schedule write per few sends, not per send (one
/// deployment serving fifty such bots would write 1,500 times a second).
pub fn chunk(rate: f64) -> u32 {
    ((rate * 0.05).floor() as u32).max(MIN_CHUNK)
}

/// The fewest slots reserved at once: 133 ms of a 30/s bot's schedule.
const MIN_CHUNK: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::send_limits;

    const SECOND: u64 = 1_000_000;

    fn most_in_any_second(slots: &[u64]) -> usize {
        slots
            .iter()
            .map(|start| {
                slots
                    .iter()
                    .filter(|s| **s >= *start && **s < start + SECOND)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn replicas_drawing_in_turn_never_exceed_the_rate_and_nearly_reach_it() {
        let interval = interval_us(30.0);
        let mut next = 0;
        let mut slots = Vec::new();
        // Three replicas take chunks in turn, all asking "now" = 0.
        for _ in 0..100 {
            let reservation = reserve(next, 0, chunk(30.0), interval);
            next = reservation.end();
            slots.extend((0..reservation.count).map(|i| reservation.slot(i)));
        }
        assert!(most_in_any_second(&slots) <= 30);
        let achieved = slots.len() as f64 / (*slots.last().unwrap() as f64 / SECOND as f64);
        assert!(achieved >= 30.0 * 0.965, "{achieved}");
    }

    /// The busiest second when one second's sends all arrive `drift` late
    /// and the next second's on time: the window opening at the first late
    /// send catches the most.
    fn busiest_second_with_drift(rate: f64, drift: u64) -> usize {
        let interval = interval_us(rate);
        let mut arrivals: Vec<u64> = (0..(rate as u64 * 2))
            .map(|i| i * interval + if i < rate as u64 { drift } else { 0 })
            .collect();
        arrivals.sort_unstable();
        most_in_any_second(&arrivals)
    }

    #[test]
    fn the_headroom_absorbs_its_drift_allowance_and_lateness_takes_a_third() {
        for rate in [1.0, 30.0, 1000.0] {
            let allowance = drift_allowance_us();
            assert!(
                busiest_second_with_drift(rate, allowance) <= rate as usize,
                "{rate}/s"
            );
            // The allowance is all the headroom gives: 2 ms more is over.
            let more = allowance + 2_000;
            assert!(
                busiest_second_with_drift(rate, more) > rate as usize,
                "{rate}/s"
            );
            assert!(
                3 * lateness_tolerance_us(interval_us(rate)) <= allowance,
                "{rate}/s"
            );
        }
    }

    #[test]
    fn an_album_in_the_middle_of_its_block_keeps_every_second_under_the_rate() {
        let interval = interval_us(30.0);
        let mut next = 0;
        let mut arrivals = Vec::new();
        // Single sends with an album of 10 among them, then singles again.
        for messages in [1, 1, 1, 10, 1, 1, 1, 1, 10, 10, 1] {
            let block = reserve(next, 0, send_limits::slots_per_send(messages), interval);
            next = block.end();
            arrivals.extend(std::iter::repeat_n(block.middle(), messages as usize));
        }
        for _ in 0..60 {
            let single = reserve(next, 0, 1, interval);
            next = single.end();
            arrivals.push(single.first);
        }
        arrivals.sort_unstable();
        assert!(most_in_any_second(&arrivals) <= 30);
        assert_eq!(send_limits::slots_per_send(1), 1);
        assert_eq!(send_limits::slots_per_send(10), 19);
    }

    #[test]
    fn an_idle_schedule_banks_no_burst() {
        let interval = interval_us(10.0);
        let reservation = reserve(5, 60 * SECOND, 1, interval);
        assert_eq!(reservation.first, 60 * SECOND);
    }

    #[test]
    fn a_pause_moves_the_schedule_past_retry_after() {
        let next = pause(10, 1_000, Duration::from_secs(7));
        assert_eq!(next, 1_000 + 7 * SECOND);
        assert_eq!(pause(100 * SECOND, 0, Duration::from_secs(1)), 100 * SECOND);
    }

    #[test]
    fn chunks_are_about_fifty_milliseconds_of_sends_and_never_tiny() {
        assert_eq!(chunk(30.0), 4);
        assert_eq!(chunk(1000.0), 50);
    }
}
