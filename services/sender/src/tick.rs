//! A sender's clock ticks. A paced sender's work comes one item at a time
//! (a slot a millisecond apart, an answer, an outcome), and each was a
//! wake-up of the process and a write of its own. Work is gathered on the
//! clock's multiples instead: a send leaves at its lane's departure tick
//! ([`departure_tick_us`]) at or before its slot, and outcomes and chat
//! records are stored at the [`RECORD_TICK`] after their answer, so one
//! wake-up serves a tick's sends and records and shares their writes
//! (docs/decisions/0018, 0019, 0023). Every item of the process, of
//! whichever bot, uses the same ticks.
//!
//! Leaving up to a departure tick early is part of the drift the rate
//! headroom absorbs ([`crate::rate`]): a send's time from its slot to its
//! answer counts it, so [`crate::rate::LateArrivals`] sees it like any
//! other. Records wait longer: nothing Telegram counts waits for them.

use std::time::Duration;

use crate::rate;

/// Every departure tick is a multiple of this.
const BASE_TICK_US: u64 = 5_000;

/// How often records are stored, and the longest departure tick. Records
/// wait longer than a slow lane's sends: nothing Telegram counts waits for
/// them (decision 23). Every departure tick divides it, so every record
/// tick is a departure tick too and one wake-up serves both.
pub const RECORD_TICK: Duration = Duration::from_millis(10);

const RECORD_TICK_US: u64 = RECORD_TICK.as_micros() as u64;
const _: () = assert!(RECORD_TICK_US.is_multiple_of(BASE_TICK_US));

/// The departure tick (µs) of a lane whose slots are `interval_us` apart.
/// A send leaves up to a tick before its slot and may still leave its
/// lateness tolerance after it ([`rate::lateness_tolerance_us`]); both are
/// drift the headroom absorbs, and together they keep to two thirds of it,
/// the rest being the network's. A fast lane (paid, 1000/s: a 2 ms
/// tolerance) leaves on 10 ms ticks, a slow one (free, 30/s: 6.8 ms) on
/// 5 ms ticks (decisions 19 and 23).
pub fn departure_tick_us(interval_us: u64) -> u64 {
    let room = rate::drift_allowance_us() * 2 / 3 - rate::lateness_tolerance_us(interval_us);
    (room / BASE_TICK_US * BASE_TICK_US).clamp(BASE_TICK_US, RECORD_TICK_US)
}

/// When the send of `slot` leaves (both Unix µs): the lane's departure
/// tick at or before it.
pub fn departure(slot: u64, tick_us: u64) -> u64 {
    slot - slot % tick_us
}

/// How long from `now` (Unix µs) until the next record tick.
pub fn until_next(now: u64) -> Duration {
    Duration::from_micros(now.div_ceil(RECORD_TICK_US) * RECORD_TICK_US - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_lane_leaves_on_10_ms_ticks_a_slow_one_on_5_ms_ticks() {
        assert_eq!(departure_tick_us(rate::interval_us(1000.0)), 10_000);
        assert_eq!(departure_tick_us(rate::interval_us(100_000.0)), 10_000);
        assert_eq!(departure_tick_us(rate::interval_us(30.0)), 5_000);
        assert_eq!(departure_tick_us(rate::interval_us(1.0)), 5_000);
    }

    #[test]
    fn leaving_early_and_late_leaves_a_third_of_the_drift_to_the_network() {
        for limit in [1.0, 20.0, 30.0, 60.0, 70.0, 80.0, 100.0, 1000.0, 100_000.0] {
            let interval = rate::interval_us(limit);
            let tick = departure_tick_us(interval);
            assert!(
                tick + rate::lateness_tolerance_us(interval) <= rate::drift_allowance_us() * 2 / 3,
                "{limit}/s"
            );
            assert!(RECORD_TICK_US.is_multiple_of(tick), "{limit}/s");
        }
    }

    #[test]
    fn a_send_leaves_at_the_departure_tick_at_or_before_its_slot() {
        for tick in [5_000, 10_000] {
            assert_eq!(departure(7 * tick, tick), 7 * tick);
            assert_eq!(departure(7 * tick + 1, tick), 7 * tick);
            assert_eq!(departure(8 * tick - 1, tick), 7 * tick);
            // Never a whole tick early.
            for slot in [1, 999, 4_999, 5_000, 12_345_678] {
                assert!(slot - departure(slot, tick) < tick, "{slot}");
            }
        }
    }

    #[test]
    fn records_wait_for_the_next_record_tick() {
        let tick = RECORD_TICK_US;
        assert_eq!(until_next(7 * tick), Duration::ZERO);
        assert_eq!(
            until_next(7 * tick + 1),
            RECORD_TICK - Duration::from_micros(1)
        );
        // Records of answers within one record tick are stored at the same
        // instant, one every lane's sends leave at.
        let at = |now: u64| now + until_next(now).as_micros() as u64;
        assert_eq!(at(7 * tick + 10), at(8 * tick - 10));
        for departure_tick in [5_000, 10_000] {
            assert_eq!(at(7 * tick + 10), departure(8 * tick + 10, departure_tick));
        }
    }
}
