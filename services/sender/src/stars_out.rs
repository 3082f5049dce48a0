//! Whether the bot's Telegram Stars ran out, as every replica sees it. A
//! paid send refused for the balance (`Verdict::StarsExhausted`) marks it
//! in the rate bucket ([`send_limits::mark_stars_out`]), and so does a
//! replica that finds the balance running low while it sends paid
//! ([`stars::running_low`], asked every `BALANCE_EVERY`). Every replica
//! reads the mark each `FOLLOW_EVERY`, and for
//! [`send_limits::STARS_RECHECK`] after it sends paid campaigns' items on
//! the free lane (its budget, no `allow_paid_broadcast`) instead of
//! failing their recipients. A replica that has not seen the mark yet gets
//! the same refusal and goes free at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use courier_core::{send_limits, stars};
use courier_telegram::bot_api::BotApi;
use tokio_util::sync::CancellationToken;

/// How often a replica reads the mark.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How often a replica sending paid asks for the bot's balance.
const BALANCE_EVERY: Duration = Duration::from_secs(5);
/// No mark.
const NEVER: i64 = i64::MIN;

#[derive(Clone)]
pub struct StarsOut {
    rates: kv::Store,
    bot_id: String,
    /// When the Stars last ran out (Unix ms), or [`NEVER`].
    since_ms: Arc<AtomicI64>,
    /// Asks for the balance.
    api: BotApi,
    /// The paid lane's limit: what a low balance is measured against.
    paid_rate: f64,
    /// Paid sends since the balance was last asked for.
    paid_sends: Arc<AtomicU64>,
    /// Whether this bot counts in `courier_paid_lane_closed` now.
    counted_closed: Arc<AtomicBool>,
}

impl StarsOut {
    pub fn new(rates: kv::Store, bot_id: &str, api: BotApi, paid_rate: f64) -> StarsOut {
        StarsOut {
            rates,
            bot_id: bot_id.to_owned(),
            since_ms: Arc::new(AtomicI64::new(NEVER)),
            api,
            paid_rate,
            paid_sends: Arc::new(AtomicU64::new(0)),
            counted_closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Counts a paid send: while they go out, the balance is watched.
    pub fn paid_sent(&self) {
        self.paid_sends.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a paid campaign's item goes out as a paid broadcast now.
    pub fn paid_lane_open(&self) -> bool {
        let since = self.since_ms.load(Ordering::Relaxed);
        send_limits::paid_lane_open((since != NEVER).then_some(since), now_ms())
    }

    /// Telegram refused a paid send for the balance: every replica sends on
    /// the free lane for a while.
    pub async fn mark(&self) -> Result<(), kv::PutError> {
        let now = now_ms();
        self.since_ms.store(now, Ordering::Relaxed);
        tracing::warn!(
            recheck_s = send_limits::STARS_RECHECK.as_secs(),
            "the bot's Stars cannot pay for paid broadcasts: sending them on the free lane"
        );
        send_limits::mark_stars_out(&self.rates, &self.bot_id, now).await
    }

    /// Reads the mark other replicas may have set and, while this one
    /// sends paid, watches the balance, until shutdown.
    pub async fn follow(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut balance_asked = tokio::time::Instant::now() - BALANCE_EVERY;
        while shutdown.run_until_cancelled(tick.tick()).await.is_some() {
            if let Some(since) = send_limits::stars_out(&self.rates, &self.bot_id).await {
                self.since_ms.fetch_max(since, Ordering::Relaxed);
            }
            self.count_closed(!self.paid_lane_open());
            if balance_asked.elapsed() >= BALANCE_EVERY
                && self.paid_lane_open()
                && self.paid_sends.swap(0, Ordering::Relaxed) > 0
            {
                balance_asked = tokio::time::Instant::now();
                self.watch_balance().await;
            }
        }
        // Not followed any more: no longer counted.
        self.count_closed(false);
    }

    /// Counts this bot in `courier_paid_lane_closed` while its paid lane
    /// is `closed`: the gauge is the number of bots whose paid campaigns
    /// this sender sends on the free lane.
    fn count_closed(&self, closed: bool) {
        if self.counted_closed.swap(closed, Ordering::Relaxed) != closed {
            let change = if closed { 1.0 } else { -1.0 };
            courier_core::metrics::sender()
                .paid_lane_closed
                .inc_by(change);
        }
    }

    async fn watch_balance(&self) {
        let Some(balance) = self.api.star_balance().await else {
            return;
        };
        if stars::running_low(balance, self.paid_rate) {
            tracing::warn!(
                balance = stars::describe(balance),
                "the bot's Stars are running low"
            );
            if let Err(error) = self.mark().await {
                tracing::warn!(%error, "marking the bot's Stars out");
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
