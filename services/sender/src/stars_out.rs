//! Whether the bot's Telegram Stars ran out, as every replica sees it. A
//! paid send refused for the balance (`Verdict::StarsExhausted`) marks it
//! in the rate bucket ([`send_limits::mark_stars_out`]); every replica
//! reads the mark each [`FOLLOW_EVERY`], and for
//! [`send_limits::STARS_RECHECK`] after it sends paid campaigns' items on
//! the free lane (its budget, no `allow_paid_broadcast`) instead of
//! failing their recipients. A replica that has not seen the mark yet gets
//! the same refusal and goes free at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use courier_core::send_limits;
use tokio_util::sync::CancellationToken;

/// How often a replica reads the mark.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// No mark.
const NEVER: i64 = i64::MIN;

#[derive(Clone)]
pub struct StarsOut {
    rates: kv::Store,
    bot_id: String,
    /// When the Stars last ran out (Unix ms), or [`NEVER`].
    since_ms: Arc<AtomicI64>,
}

impl StarsOut {
    pub fn new(rates: kv::Store, bot_id: &str) -> StarsOut {
        StarsOut {
            rates,
            bot_id: bot_id.to_owned(),
            since_ms: Arc::new(AtomicI64::new(NEVER)),
        }
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

    /// Reads the mark other replicas may have set, until shutdown.
    pub async fn follow(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while shutdown.run_until_cancelled(tick.tick()).await.is_some() {
            if let Some(since) = send_limits::stars_out(&self.rates, &self.bot_id).await {
                self.since_ms.fetch_max(since, Ordering::Relaxed);
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
