//! One rate budget per bot token, shared by every sender replica: the
//! schedule of [`crate::rate`] lives in a NATS KV key (`<bot id>.<lane>`)
//! and replicas reserve slots from it with compare-and-set. A replica takes
//! a small chunk at a time (a slot for each worker waiting, at most ~50 ms
//! of the schedule) and its workers wait for the slots one after another,
//! so a replica never holds more than a chunk of the future; a
//! 429 moves the shared schedule, which pauses the token on every replica
//! (each may still have one chunk of slots out when it happens). An answer
//! that shows its send arrived late moves the shared schedule on
//! ([`rate::LateArrivals`]).
//!
//! Slots are wall-clock times, so replicas need synchronised clocks (NTP);
//! a skew of d shifts that replica's sends by d.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use courier_core::send_limits::{self, Lane};
use tokio::sync::Mutex;

use crate::kv_number::{self, now_us};
use crate::rate::{self, LateArrivals, Reservation};
use crate::tick;

#[derive(Debug, thiserror::Error)]
#[error("rate budget in NATS KV")]
pub struct BudgetError(#[from] kv_number::KvError);

/// The resolution of tokio's timer.
const TIMER_TICK_US: u64 = 1_000;

pub struct Budget {
    kv: kv::Store,
    key: String,
    lane: Lane,
    interval_us: u64,
    rate: f64,
    /// Workers in [`Budget::acquire`] now: how many slots to reserve.
    waiting: AtomicUsize,
    /// Slots this replica reserved and has not used yet. Workers take the
    /// lock in turn (tokio's mutex is fair) and hold it until their slot.
    slots: Mutex<VecDeque<u64>>,
    /// Bumped by every 429, so a worker waiting for a slot learns that its
    /// slot was cancelled.
    pauses: AtomicU64,
    /// This replica's sends' answers, judged for late arrivals.
    late: std::sync::Mutex<LateArrivals>,
}

/// Counts a worker in [`Budget::acquire`] while it lives, however the
/// wait ends (a slot, an error, or dropped at shutdown).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a wait for a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woke {
    InTime,
    /// Telegram said 429 meanwhile: the slot is void.
    AfterPause,
    /// Too late to send without pushing a second over the limit.
    TooLate,
}

impl Budget {
    /// The budget of `lane` of bot `bot_id` at `rate`/s.
    pub fn new(kv: kv::Store, bot_id: &str, lane: Lane, rate: f64) -> Budget {
        Budget {
            kv,
            key: format!("{bot_id}.{}", lane.as_str()),
            lane,
            interval_us: rate::interval_us(rate),
            rate,
            waiting: AtomicUsize::new(0),
            slots: Mutex::new(VecDeque::new()),
            pauses: AtomicU64::new(0),
            late: std::sync::Mutex::new(LateArrivals::default()),
        }
    }

    /// Waits for this send's slot, and says which it was. Pacing, not
    /// retrying: the item is held only until its turn.
    pub async fn acquire(&self) -> Result<u64, BudgetError> {
        let _waiting = Waiting::enter(&self.waiting);
        let mut slots = self.slots.lock().await;
        loop {
            let pauses = self.pauses.load(Ordering::Acquire);
            // A slot left unused past the tolerance is dropped: sent that
            // late, it could push a one-second window over the limit.
            let late = now_us().saturating_sub(rate::lateness_tolerance_us(self.interval_us));
            while slots.front().is_some_and(|slot| *slot < late) {
                slots.pop_front();
                self.count_dropped_slot();
            }
            if slots.is_empty() {
                let count = rate::chunk(self.rate, self.waiting.load(Ordering::Relaxed));
                let reservation = self.reserve(count).await?;
                slots.extend((0..reservation.count).map(|i| reservation.slot(i)));
            }
            let slot = slots
                .pop_front()
                .expect("a reservation has at least one slot");
            match self.sleep_until(slot, pauses).await {
                Woke::InTime => return Ok(slot),
                // Telegram said 429 while we waited: these slots are void.
                Woke::AfterPause => slots.clear(),
                // A busy machine: take a fresh slot instead.
                Woke::TooLate => self.count_dropped_slot(),
            }
        }
    }

    /// Sleeps until `slot`'s departure, the lane's tick at or before it
    /// ([`tick::departure`]); says whether it may still be used (the
    /// lane's pause count was `pauses` when the slot was taken).
    async fn sleep_until(&self, slot: u64, pauses: u64) -> Woke {
        // tokio's timer ticks once a millisecond: a shorter wait would
        // sleep a whole tick, so a departure that close is taken now.
        let wait = tick::departure(slot, tick::departure_tick_us(self.interval_us))
            .saturating_sub(now_us());
        if wait >= TIMER_TICK_US {
            tokio::time::sleep(Duration::from_micros(wait)).await;
        }
        if self.pauses.load(Ordering::Acquire) != pauses {
            Woke::AfterPause
        } else if now_us() > slot + rate::lateness_tolerance_us(self.interval_us) {
            Woke::TooLate
        } else {
            Woke::InTime
        }
    }

    /// Waits for the turn of a send of `messages` messages at once (an
    /// album): the middle of a block of slots of its own
    /// ([`send_limits::slots_per_send`]). One message is [`Budget::acquire`].
    pub async fn acquire_many(&self, messages: u32) -> Result<u64, BudgetError> {
        if messages <= 1 {
            return self.acquire().await;
        }
        loop {
            let pauses = self.pauses.load(Ordering::Acquire);
            let slot = self
                .reserve(send_limits::slots_per_send(messages))
                .await?
                .middle();
            match self.sleep_until(slot, pauses).await {
                Woke::InTime => return Ok(slot),
                Woke::AfterPause => {}
                Woke::TooLate => self.count_dropped_slot(),
            }
        }
    }

    /// The send of `slot` was answered just now: if it may have reached
    /// Telegram too late for the headroom, the schedule moves on.
    pub async fn answered(&self, slot: u64) -> Result<(), BudgetError> {
        let now = now_us();
        let by = self
            .late
            .lock()
            // Plain numbers: consistent whatever a panicking holder did.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .answered(slot, now);
        if let Some(by) = by {
            tracing::debug!(
                key = self.key,
                by_us = by,
                "a late arrival moved the schedule on"
            );
            courier_core::metrics::sender()
                .late_arrival_moves
                .get([self.lane.as_str()])
                .inc_by(Duration::from_micros(by).as_secs_f64());
            self.update(|next| rate::move_on(next, now_us(), by))
                .await?;
        }
        Ok(())
    }

    /// Telegram answers a request on an open connection in `round_trip`:
    /// before this replica's first send is answered, its sends are judged
    /// against that rather than counted late by their whole answer time. A
    /// send leaves up to a departure tick before its slot, so its answer
    /// may come that much sooner after the slot.
    pub fn knows_round_trip(&self, round_trip: Duration) {
        let from_slot = round_trip.saturating_sub(Duration::from_micros(tick::departure_tick_us(
            self.interval_us,
        )));
        self.late
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .knows_round_trip(from_slot.as_micros() as u64);
    }

    fn count_dropped_slot(&self) {
        courier_core::metrics::sender()
            .slots_dropped
            .get([self.lane.as_str()])
            .inc();
    }

    /// Telegram said 429: no replica sends on this lane for `retry_after`.
    pub async fn pause_for(&self, retry_after: Duration) -> Result<(), BudgetError> {
        self.pauses.fetch_add(1, Ordering::AcqRel);
        self.update(|next| rate::pause(next, now_us(), retry_after))
            .await?;
        Ok(())
    }

    /// Reserves `count` consecutive slots of the shared schedule.
    async fn reserve(&self, count: u32) -> Result<Reservation, BudgetError> {
        let interval = self.interval_us;
        let mut reservation = None;
        self.update(|next| {
            let r = rate::reserve(next, now_us(), count, interval);
            reservation = Some(r);
            r.end()
        })
        .await?;
        Ok(reservation.expect("update ran the closure"))
    }

    /// Compare-and-set loop on the schedule's `next` slot.
    async fn update(&self, mut change: impl FnMut(u64) -> u64) -> Result<u64, BudgetError> {
        loop {
            let read = kv_number::read(&self.kv, &self.key)
                .await
                .map_err(BudgetError)?;
            let new_next = change(read.as_ref().and_then(|r| r.number).unwrap_or(0));
            if kv_number::write_if_unchanged(&self.kv, &self.key, new_next, read.as_ref())
                .await
                .map_err(BudgetError)?
            {
                return Ok(new_next);
            }
        }
    }
}
