//! A sender's clock tick. A paced sender's work comes one item at a time
//! (a slot a millisecond apart, an answer, an outcome), and each was a
//! wake-up of the process and a write of its own. Work is gathered on the
//! clock's multiples of [`TICK`] instead: a send leaves at the tick at or
//! before its slot, and outcomes and chat records are stored at the tick
//! after their answer, so one wake-up serves a tick's sends and records and
//! shares their writes (docs/decisions/0018). Every item of the process, of
//! whichever bot, uses the same ticks.
//!
//! Leaving up to a tick early is part of the drift the rate headroom
//! absorbs ([`crate::rate`]): a send's time from its slot to its answer
//! counts it, so [`crate::rate::LateArrivals`] sees it like any other.

use std::time::Duration;

/// The tick's length.
pub const TICK: Duration = Duration::from_millis(5);

const TICK_US: u64 = TICK.as_micros() as u64;

/// When the send of `slot` leaves (both Unix µs): the tick at or before it.
pub fn departure(slot: u64) -> u64 {
    slot - slot % TICK_US
}

/// How long from `now` (Unix µs) until the next tick, for a record.
pub fn until_next(now: u64) -> Duration {
    Duration::from_micros(now.div_ceil(TICK_US) * TICK_US - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_leaves_at_the_tick_at_or_before_its_slot() {
        assert_eq!(departure(7 * TICK_US), 7 * TICK_US);
        assert_eq!(departure(7 * TICK_US + 1), 7 * TICK_US);
        assert_eq!(departure(8 * TICK_US - 1), 7 * TICK_US);
        // Never more than a tick early.
        for slot in [1, 999, 4_999, 5_000, 12_345_678] {
            assert!(slot - departure(slot) < TICK_US, "{slot}");
        }
    }

    #[test]
    fn records_wait_for_the_next_tick() {
        assert_eq!(until_next(7 * TICK_US), Duration::ZERO);
        assert_eq!(until_next(7 * TICK_US + 1), TICK - Duration::from_micros(1));
        // Records of answers within one tick are stored at the same
        // instant, the one the sends of the next slots leave at.
        let at = |now: u64| now + until_next(now).as_micros() as u64;
        assert_eq!(at(7 * TICK_US + 10), at(8 * TICK_US - 10));
        assert_eq!(at(7 * TICK_US + 10), departure(8 * TICK_US + 10));
    }
}
