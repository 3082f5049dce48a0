//! The rate schedule, as plain arithmetic: the generic cell rate algorithm
//! over one number, the time of the next free send slot (`next`, Unix
//! microseconds). Reserving `n` slots takes them from `max(next, now)` on,
//! spaced `1 / rate` apart, so no one-second window ever holds more than
//! `rate` sends and an idle schedule banks no burst. A 429 moves `next`
//! past its `retry_after`.
//!
//! [`crate::budget`] keeps `next` in NATS KV so every replica of a token
//! draws from the same schedule.
//!
//! A send may reach Telegram later than its slot (a busy machine, the
//! network), or up to a tick earlier ([`crate::tick`]); the headroom
//! absorbs ~20 ms of that. [`LateArrivals`] judges
//! from each answer how late its send may have arrived, and moves the
//! schedule on by what the headroom does not absorb, so the send 30 slots
//! later cannot land in the same second.

use std::collections::VecDeque;
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

/// Slots reserved at once by one replica: one for each of its sends
/// `waiting` for a slot, at most about 50 ms worth, so a busy replica
/// touches the shared schedule ~20 times a second whatever the rate; at
/// least `MIN_CHUNK`, so a bot at 30/s costs a schedule write per few
/// sends, not per send (one deployment serving fifty such bots would write
/// 1,500 times a second). Sized by what waits, a replica sending slower
/// than the schedule allows does not hold 50 ms of it, mostly unused,
/// while the other replicas' sends wait behind that block.
pub fn chunk(rate: f64, waiting: usize) -> u32 {
    let most = ((rate * 0.05).floor() as u32).max(MIN_CHUNK);
    u32::try_from(waiting)
        .unwrap_or(u32::MAX)
        .clamp(MIN_CHUNK, most)
}

/// The fewest slots reserved at once: 133 ms of a 30/s bot's schedule.
const MIN_CHUNK: u32 = 4;

/// How long the quickest answer is remembered: the best case the next
/// second's sends may have.
const QUICKEST_ANSWER_WINDOW_US: u64 = 2_000_000;
/// Of the drift allowance, what a late arrival may use before the schedule
/// moves; the rest covers the estimate's error.
const LATE_ARRIVAL_MARGIN_US: u64 = 5_000;

/// How late sends reached Telegram, judged from their answers, and how far
/// that moves the schedule on. A send's time from its slot to its answer,
/// beyond the quickest of the last two seconds, bounds how much later it
/// arrived than a send that follows it may: when that goes past what the
/// headroom absorbs, the schedule moves on by the rest. One stall delays
/// many sends at once; the moves made since a send's slot already count
/// for it, so a stall moves the schedule about once. With no answer in the
/// last two seconds to compare with (a campaign's first sends, which may
/// open connections), the quickest answer ever is the baseline. Before the
/// first answer, the baseline is a request's round trip measured on an
/// open connection at start ([`LateArrivals::knows_round_trip`]); with
/// none, a send's whole time to its answer counts as late.
#[derive(Debug, Default)]
pub struct LateArrivals {
    /// (answered, slot to answer): a sliding minimum, quickest first.
    quickest: VecDeque<(u64, u64)>,
    /// (when, by how much) the schedule was moved on, oldest first.
    moves: VecDeque<(u64, u64)>,
    quickest_ever: Option<u64>,
}

impl LateArrivals {
    /// A request on an open connection is answered within `round_trip_us`
    /// at best: a send answered that fast arrived on time.
    pub fn knows_round_trip(&mut self, round_trip_us: u64) {
        self.quickest_ever = Some(
            self.quickest_ever
                .map_or(round_trip_us, |ever| ever.min(round_trip_us)),
        );
    }

    /// The answer to the send of `slot` came at `answered` (both Unix µs):
    /// how far the schedule must move on now, if at all.
    pub fn answered(&mut self, slot: u64, answered: u64) -> Option<u64> {
        let took = answered.saturating_sub(slot);
        let since = answered.saturating_sub(QUICKEST_ANSWER_WINDOW_US);
        while self.quickest.front().is_some_and(|&(at, _)| at < since) {
            self.quickest.pop_front();
        }
        while self.moves.front().is_some_and(|&(at, _)| at < since) {
            self.moves.pop_front();
        }
        let baseline = match self.quickest.front() {
            Some(&(_, quickest)) => quickest,
            None => self.quickest_ever.unwrap_or(0),
        };
        let quickest = baseline.min(took);
        self.quickest_ever = Some(self.quickest_ever.map_or(took, |ever| ever.min(took)));
        while self.quickest.back().is_some_and(|&(_, t)| t >= took) {
            self.quickest.pop_back();
        }
        self.quickest.push_back((answered, took));
        let moved_since_slot: u64 = self
            .moves
            .iter()
            .filter(|&&(at, _)| at >= slot)
            .map(|&(_, by)| by)
            .sum();
        let absorbed = drift_allowance_us().saturating_sub(LATE_ARRIVAL_MARGIN_US);
        let by = took
            .saturating_sub(quickest)
            .saturating_sub(absorbed)
            .saturating_sub(moved_since_slot);
        (by > 0).then(|| {
            self.moves.push_back((answered, by));
            by
        })
    }
}

/// The schedule's next free slot after moving it on by `by` at `now`.
pub fn move_on(next: u64, now: u64, by: u64) -> u64 {
    next.max(now) + by
}

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
            let reservation = reserve(next, 0, chunk(30.0, usize::MAX), interval);
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
        assert_eq!(chunk(30.0, 100), 4);
        assert_eq!(chunk(1000.0, 100), 50);
        assert_eq!(chunk(1000.0, 1), 4);
    }

    #[test]
    fn a_replica_reserves_no_more_than_its_waiting_sends_need() {
        // Limits off (100,000/s): 50 ms is 5,000 slots; a replica with 120
        // sends waiting takes 120 (1.2 ms of the schedule), not a block the
        // other replicas' sends would wait 50 ms behind.
        assert_eq!(chunk(100_000.0, 120), 120);
        assert_eq!(chunk(100_000.0, usize::MAX), 5_000);
        // Paced at 1000/s a replica keeps more waiting than a chunk.
        assert_eq!(chunk(1000.0, 300), 50);
    }

    /// Sends at 30/s, slots reserved a chunk at a time as a replica does;
    /// every send arrives 2 ms after its slot except those of slots in the
    /// 30 ms from 2 s on, which arrive 25 ms late (a busy machine), and
    /// each answer comes 1 ms after its arrival. Answers come in before
    /// the slots after them are reserved. The arrivals, in order.
    fn arrivals_through_a_stall(moving_on: bool) -> Vec<u64> {
        let interval = interval_us(30.0);
        let stall = 2 * SECOND..2 * SECOND + 30_000;
        let mut late = LateArrivals::default();
        let mut answers = VecDeque::new();
        let (mut next, mut arrivals) = (0, Vec::new());
        while next < 5 * SECOND {
            let block = reserve(next, 0, chunk(30.0, usize::MAX), interval);
            next = block.end();
            for slot in (0..block.count).map(|i| block.slot(i)) {
                while let Some(&(answered, sent)) = answers.front().filter(|(at, _)| *at <= slot) {
                    answers.pop_front();
                    if let Some(by) = late.answered(sent, answered)
                        && moving_on
                    {
                        next = move_on(next, answered, by);
                    }
                }
                let delay = if stall.contains(&slot) { 27_000 } else { 2_000 };
                arrivals.push(slot + delay);
                answers.push_back((slot + delay + 1_000, slot));
            }
        }
        arrivals.sort_unstable();
        arrivals
    }

    #[test]
    fn a_stall_past_the_headroom_moves_the_schedule_on_and_keeps_every_second_under_the_rate() {
        assert!(most_in_any_second(&arrivals_through_a_stall(false)) > 30);
        let arrivals = arrivals_through_a_stall(true);
        assert!(most_in_any_second(&arrivals) <= 30);
        let achieved = (arrivals.len() - 1) as f64
            / ((arrivals.last().unwrap() - arrivals[0]) as f64 / SECOND as f64);
        assert!(achieved >= 30.0 * 0.97, "{achieved}");
    }

    /// Judging answers of 50 ms, after the first.
    fn judging_50_ms_answers() -> LateArrivals {
        let mut late = LateArrivals::default();
        late.answered(0, 50_000);
        late
    }

    #[test]
    fn after_a_quiet_spell_the_quickest_answer_ever_is_the_baseline() {
        let mut late = LateArrivals::default();
        let absorbed = drift_allowance_us() - LATE_ARRIVAL_MARGIN_US;
        assert_eq!(late.answered(0, 50_000), Some(50_000 - absorbed));
        assert_eq!(late.answered(34_000, 84_000), None);
        let quiet = 10 * SECOND;
        assert_eq!(late.answered(quiet, quiet + 60_000), None);
        // A connection opened for the first send after the spell.
        let later = 20 * SECOND;
        assert_eq!(
            late.answered(later, later + 90_000),
            Some(90_000 - 50_000 - absorbed)
        );
    }

    #[test]
    fn a_known_round_trip_judges_the_first_answers_by_it() {
        let absorbed = drift_allowance_us() - LATE_ARRIVAL_MARGIN_US;
        let mut late = LateArrivals::default();
        late.knows_round_trip(45_000);
        assert_eq!(late.answered(0, 50_000), None);
        // A send that had to open a connection first.
        let mut late = LateArrivals::default();
        late.knows_round_trip(45_000);
        assert_eq!(late.answered(0, 90_000), Some(90_000 - 45_000 - absorbed));
        // A slower round trip measured later does not raise the baseline.
        late.knows_round_trip(60_000);
        let quiet = 10 * SECOND;
        assert_eq!(
            late.answered(quiet, quiet + 62_000),
            Some(62_000 - 45_000 - absorbed)
        );
    }

    #[test]
    fn answers_within_the_headroom_never_move_the_schedule() {
        let mut late = judging_50_ms_answers();
        let interval = interval_us(30.0);
        for i in 1..300 {
            let slot = i * interval;
            // 50 ms answers, up to 14 ms slower now and then.
            let jitter = (i * 7_919) % 14_000;
            assert_eq!(late.answered(slot, slot + 50_000 + jitter), None, "{i}");
        }
    }

    #[test]
    fn the_sends_of_one_stall_move_the_schedule_once() {
        let mut late = judging_50_ms_answers();
        let interval = interval_us(30.0);
        for i in 1..30 {
            assert_eq!(late.answered(i * interval, i * interval + 50_000), None);
        }
        // Four sends held up together, answered together 40 ms late.
        let stalled = (30..34).map(|i| i * interval);
        let answered = 33 * interval + 50_000 + 40_000;
        let moves: Vec<_> = stalled
            .filter_map(|slot| late.answered(slot, answered))
            .collect();
        let absorbed = drift_allowance_us() - LATE_ARRIVAL_MARGIN_US;
        assert_eq!(moves, [3 * interval + 40_000 - absorbed]);
    }

    #[test]
    fn answers_slower_for_good_stop_moving_the_schedule_once_the_quick_ones_are_forgotten() {
        let mut late = LateArrivals::default();
        let interval = interval_us(30.0);
        let took = |i: u64| if i < 60 { 20_000 } else { 80_000 };
        let moved_at: Vec<_> = (0..300)
            .filter(|&i| {
                late.answered(i * interval, i * interval + took(i))
                    .is_some()
            })
            .collect();
        assert!(!moved_at.is_empty());
        let forgotten = 60 * interval + QUICKEST_ANSWER_WINDOW_US;
        assert!(
            moved_at.iter().all(|&i| i * interval <= forgotten),
            "{moved_at:?}"
        );
    }
}
