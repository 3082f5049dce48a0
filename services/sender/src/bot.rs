//! One bot's side of sending: its Bot API client, the budgets of its two
//! lanes, its chats' spacing, its Stars and how many of its items a
//! replica works on at once. A sender serves several bots with one
//! [`crate::worker::Worker`] and one `Bot` each; nothing here is shared
//! between bots, so one bot's 429 or revoked token leaves the others'
//! pace alone.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use courier_core::send_limits::Lane;
use courier_telegram::bot_api::BotApi;

use crate::budget::Budget;
use crate::chat_spacing::ChatSpacing;
use crate::in_flight::InFlightLimit;
use crate::stars_out::StarsOut;
use crate::{SenderConfig, limits};

pub struct Bot {
    /// Its id in work items ([`courier_core::topology::DEFAULT_BOT`] for
    /// the services' own).
    pub id: i64,
    pub api: BotApi,
    free_lane: Budget,
    paid_lane: Budget,
    pub stars_out: StarsOut,
    pub chat_spacing: ChatSpacing,
    in_flight: Mutex<InFlightLimit>,
}

/// What every bot's state is made from: the buckets its budgets and chat
/// records live in, and the configured rates.
#[derive(Clone)]
pub struct BotKit {
    pub rates: kv::Store,
    pub chats: kv::Store,
    pub chat_bucket: String,
    pub client: async_nats::Client,
    pub config: SenderConfig,
}

impl BotKit {
    /// The state of bot `id` calling Telegram through `api`, whose token
    /// says its Telegram id (`token_bot_id`): budgets and chat records are
    /// keyed by that, so every replica serving the bot shares them.
    pub async fn bot(&self, id: i64, token_bot_id: &str, api: BotApi) -> Bot {
        let config = &self.config;
        limits::publish(&self.rates, token_bot_id, config).await;
        Bot {
            id,
            free_lane: Budget::new(
                self.rates.clone(),
                token_bot_id,
                Lane::Free,
                config.rate_limit,
            ),
            paid_lane: Budget::new(
                self.rates.clone(),
                token_bot_id,
                Lane::Paid,
                config.paid_rate_limit,
            ),
            stars_out: StarsOut::new(
                self.rates.clone(),
                token_bot_id,
                api.clone(),
                config.paid_rate_limit,
            ),
            chat_spacing: ChatSpacing::new(
                self.chats.clone(),
                self.client.clone(),
                &self.chat_bucket,
                token_bot_id,
                config.chat_rate_limit,
            ),
            in_flight: Mutex::new(counted(InFlightLimit::new(
                usize::from(config.max_in_flight),
                Instant::now(),
            ))),
            api,
        }
    }
}

/// The sender's in-flight limit gauge is the sum over the bots it serves:
/// each bot adds its limit while it is served, and every change of it.
fn count_in_flight_limit(change: f64) {
    courier_core::metrics::sender()
        .in_flight_limit
        .inc_by(change);
}

fn counted(in_flight: InFlightLimit) -> InFlightLimit {
    count_in_flight_limit(in_flight.limit() as f64);
    in_flight
}

impl Drop for Bot {
    fn drop(&mut self) {
        count_in_flight_limit(-(self.in_flight_limit() as f64));
    }
}

impl Bot {
    /// The budget a send on `lane` draws on.
    pub fn lane(&self, lane: Lane) -> &Budget {
        match lane {
            Lane::Paid => &self.paid_lane,
            Lane::Free => &self.free_lane,
        }
    }

    /// Opens `connections` connections to the Bot API and tries the token
    /// ([`BotApi::warm_up`]); both lanes learn the round trip it measured.
    /// Returns the HTTP status Telegram answered with, if it answered.
    pub async fn warm_up(&self, connections: usize) -> Option<u16> {
        let warm = self.api.warm_up(connections).await;
        if let Some(round_trip) = warm.round_trip {
            self.free_lane.knows_round_trip(round_trip);
            self.paid_lane.knows_round_trip(round_trip);
        }
        warm.status
    }

    /// Lets the in-flight limit follow Telegram's answer time.
    pub fn answered_after(&self, took: Duration) {
        let mut in_flight = self.lock_in_flight();
        let before = in_flight.limit();
        if let Some(limit) = in_flight.answered(took, Instant::now()) {
            count_in_flight_limit(limit as f64 - before as f64);
        }
    }

    /// This bot's items a replica may work on at once now.
    pub fn in_flight_limit(&self) -> usize {
        self.lock_in_flight().limit()
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, InFlightLimit> {
        // Plain numbers: consistent whatever a panicking holder did.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
