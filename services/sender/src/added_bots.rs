//! The bots added with `courierctl bots add`. With `COURIER_TOKEN_KEY` set,
//! a sender follows the bots bucket ([`courier_core::added_bots`]) and
//! serves every bot whose sealed token opens: each from its own consumer
//! (`senders-<bot id>`), so a bot's million items wait in the stream rather
//! than in front of another bot's hundred, with its own budgets, in-flight limit and Stars
//! ([`crate::bot`]). A bot added is served at once, a replaced token is
//! used from the next item, a removed bot stops, and a bot whose token
//! Telegram refuses stops alone: its items wait in its consumer until the
//! token is replaced. A bot's consumer is pulled, its token tried and its
//! Stars followed only while the bot has work ([`crate::bots_with_work`]).
//! Why one consumer per bot: docs/decisions/0016.

use std::sync::Arc;

use async_nats::jetstream;
use courier_core::added_bots::{self, BUCKET_RECHECK};
use courier_core::bot_tokens::TokenKey;
use courier_core::config::{BotToken, TelegramConfig};
use courier_core::topology::Topology;
use tokio_util::sync::CancellationToken;

use courier_telegram::bot_api::BotApi;

use crate::bot::BotKit;
use crate::bots_with_work::BotsWithWork;
use crate::worker::Worker;
use crate::{Served, serve};

pub struct AddedBots {
    pub worker: Arc<Worker>,
    pub kit: BotKit,
    /// The default bot's client: added bots share its connections.
    pub api: BotApi,
    pub key: TokenKey,
    pub with_work: Arc<BotsWithWork>,
    pub js: jetstream::Context,
    pub topology: Topology,
}

impl AddedBots {
    /// Serves the added bots, following the bucket, until shutdown.
    pub async fn follow(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let serve = |bot_id, token, stop| this.clone().serve_bot(bot_id, token, stop);
        added_bots::follow(&this.js, &this.topology, &this.key, serve, shutdown).await
    }

    /// Serves bot `bot_id` with `token` until `stop` or Telegram refuses
    /// the token: pulls its consumer while it has work.
    async fn serve_bot(self: Arc<Self>, bot_id: i64, token: BotToken, stop: CancellationToken) {
        let telegram = TelegramConfig {
            bot_token: token,
            api: self.kit.config.telegram.api.clone(),
        };
        let api = match self.api.for_bot(&telegram) {
            Ok(api) => api,
            Err(error) => {
                tracing::error!(bot = bot_id, error = format!("{error:#}"), "bot not served");
                return;
            }
        };
        let bot = self.kit.bot(bot_id, &bot_id.to_string(), api).await;
        tracing::info!(bot = bot_id, "serving bot");
        // An idle bot costs no request: its token is tried, a connection
        // opened and its Stars followed only while it has work.
        while self.with_work.wait_for_work(bot_id, &stop).await {
            if let Some(401 | 404) = bot.warm_up(1).await {
                refused(bot_id);
                return;
            }
            let Some(consumer) = self.consumer(bot_id, &stop).await else {
                return;
            };
            tracing::debug!(bot = bot_id, "pulling the bot's items");
            let idle = stop.child_token();
            tokio::spawn(bot.stars_out.clone().follow(idle.clone()));
            let stop_when_idle = async {
                idle.run_until_cancelled(self.with_work.idle(bot_id)).await;
                idle.cancel();
            };
            let served = async {
                let served = serve(&self.worker, &bot, consumer, &idle).await;
                idle.cancel();
                served
            };
            if tokio::join!(served, stop_when_idle).0 == Served::TokenRefused {
                refused(bot_id);
                return;
            }
            tracing::debug!(bot = bot_id, "the bot has no work: not pulling");
        }
    }

    /// The bot's consumer, made again until it is there or `stop`.
    async fn consumer(
        &self,
        bot_id: i64,
        stop: &CancellationToken,
    ) -> Option<jetstream::consumer::PullConsumer> {
        loop {
            match self.try_consumer(bot_id).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => {
                    tracing::warn!(
                        bot = bot_id,
                        error = format!("{error:#}"),
                        "making the bot's consumer"
                    );
                    let pause = tokio::time::sleep(BUCKET_RECHECK);
                    stop.run_until_cancelled(pause).await?;
                }
            }
        }
    }

    async fn try_consumer(&self, bot_id: i64) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        self.topology.ensure_bot_consumer(&self.js, bot_id).await?;
        self.js
            .get_stream(self.topology.work_stream())
            .await?
            .get_consumer(&self.topology.senders_consumer_of(bot_id))
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }
}

fn refused(bot_id: i64) {
    tracing::error!(
        bot = bot_id,
        "Telegram refused the bot's token (401/404): its sends stopped, other bots go on; \
         give it a new token with `courierctl bots add`"
    );
}
