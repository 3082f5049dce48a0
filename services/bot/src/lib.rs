//! The Telegram bot users and admins talk to.
//!
//! Users: `/start` registers them, `/language` lets them choose the language
//! of the news, and blocking or unblocking the bot is noticed; each is
//! published as a user event.
//!
//! Admins (owners from `OWNER_IDS`, and those they grant with `/admins`):
//! `/broadcast` walks them through audience, content, buttons and a preview
//! to Start, which publishes the campaign's events; progress cards then
//! follow the campaign from the read model and offer Pause / Resume /
//! Cancel; `/campaigns` lists the recent ones.
//!
//! Every action becomes an event; what the bot shows comes from the
//! Postgres read model. Its own state (admins, dialogs, cards) is in
//! Postgres too, so restarts and replicas lose nothing.

mod actions;
mod activity;
mod admins;
mod amend;
mod approval;
mod broadcast;
mod buttons;
mod cards;
mod config;
mod content;
mod control;
mod dialogue;
mod handlers;
mod incoming;
mod language;
mod menu;
mod metered;
mod preview;
mod progress;
mod replies;
mod report;
mod revise;
mod roles;
mod segment;
mod storage;
mod tags;
mod telegram_stars;
mod timing;
mod transport;
mod users;

pub use config::{BotConfig, BroadcastConfig, Webhook, WebhookConfig};

use std::sync::Arc;

use anyhow::Context as _;
use courier_core::added_bots;
use courier_core::commands::CampaignCommands;
use courier_core::config::{BotToken, TelegramApiConfig, TelegramConfig};
use courier_core::event::EventPublisher;
use courier_core::send_limits::PublishedLimits;
use courier_core::topology::DEFAULT_BOT;
use courier_core::{retry, startup};
use courier_telegram::bot_api::{BotApi, following_no_redirect};
use teloxide::dispatching::Dispatcher;
use teloxide::dptree;
use teloxide::prelude::Requester;
use teloxide::types::Me;
use teloxide::{Bot, RequestError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::cards::Cards;
use crate::dialogue::Dialogues;
use crate::handlers::HandlerError;
use crate::preview::Preview;
use crate::roles::Roles;
use crate::storage::Store;
use crate::transport::Webhooks;

/// Receives updates (long polling, or webhooks when configured) and
/// handles them until `shutdown` fires, then finishes the updates in hand
/// and returns. Serves the default bot (`TELEGRAM_BOT_TOKEN`) and, with
/// `COURIER_TOKEN_KEY`, every bot added with `courierctl bots add`, each
/// with its own users, admins, dialogs and cards.
pub async fn run(config: BotConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let webhook = config.webhook.enabled().map_err(anyhow::Error::msg)?;
    let Some(nats) = startup::nats(&config.nats, "courier-bot", &shutdown).await? else {
        return Ok(());
    };
    let Some(pool) = startup::postgres(&config.database, &shutdown).await? else {
        return Ok(());
    };
    let rates = nats
        .js
        .get_key_value(nats.topology.rate_bucket())
        .await
        .context("opening the rate bucket")?;
    let commands = CampaignCommands::new(nats.js.clone(), nats.topology.clone())
        .await
        .context("opening the events stream")?;
    // Stopped last, once every bot has stopped (or the default bot failed).
    let stop_server = shutdown.child_token();
    let (transport, server) = match webhook {
        None => (Transport::Polling, None),
        Some(webhook) => {
            let (webhooks, server) =
                Webhooks::bind(config.webhook.listen, stop_server.clone()).await?;
            (Transport::Webhook(webhooks, webhook), Some(server))
        }
    };
    let (live_cards, card_rounds) = watch::channel(cards::LiveCards::default());
    tokio::spawn(cards::rounds(
        pool.clone(),
        config.broadcast.progress_interval(),
        live_cards,
        shutdown.clone(),
    ));
    let http = following_no_redirect(teloxide::net::default_reqwest_settings())
        .build()
        .context("building the Bot API's HTTP client")?;
    let previews =
        Preview::client(&config.telegram).context("building the preview's HTTP client")?;
    let shared = Arc::new(Shared {
        http: http.clone(),
        previews,
        starting: tokio::sync::Semaphore::new(BOTS_STARTING_AT_ONCE),
        events: EventPublisher::new(nats.js.clone(), nats.topology.clone()),
        rates,
        commands,
        pool,
        broadcast: Arc::new(config.broadcast),
        telegram_api: config.telegram.api.clone(),
        transport,
        card_rounds,
    });

    let bot = Bot::with_client(config.telegram.bot_token.expose(), http)
        .set_api_url(config.telegram.api.api_url.clone());
    let Some(me) = bot_api(&bot, &shutdown).await? else {
        return Ok(());
    };
    courier_core::metrics::bot();
    courier_core::health::started();
    tracing::info!(username = me.username(), "bot ready");
    if shared.broadcast.owner_ids.is_empty() {
        tracing::warn!("OWNER_IDS is empty: nobody can broadcast");
    }
    let stop_added = shutdown.child_token();
    let added_bots = config.token_key.key().map(|key| {
        let added = shared.clone();
        let stop = stop_added.clone();
        tokio::spawn(async move {
            let serve = |bot_id, token, stop| added.clone().serve_added(bot_id, token, stop);
            added_bots::follow(&nats.js, &nats.topology, &key, serve, stop).await;
        })
    });
    let served = shared
        .serve(DEFAULT_BOT, bot, config.telegram, shutdown.clone())
        .await;
    // Every bot stops with the default one, and finishes what it has in hand.
    stop_added.cancel();
    if let Some(added_bots) = added_bots {
        added_bots
            .await
            .context("following the added bots panicked")?;
    }
    stop_server.cancel();
    if let Some(server) = server {
        server
            .await
            .context("the webhook server panicked")?
            .context("serving the webhooks")?;
    }
    served?;
    tracing::info!("bot stopped");
    Ok(())
}

/// How many bots start talking to Telegram at once ([`Shared::starting`]).
const BOTS_STARTING_AT_ONCE: usize = 16;

/// What every bot served shares.
struct Shared {
    /// One HTTP client, its connections to the Bot API shared by every
    /// bot's requests (a client per bot would be a pool and a TLS
    /// handshake per bot).
    http: reqwest::Client,
    /// The previews' client, shared the same way ([`BotApi::for_bot`]).
    previews: BotApi,
    /// Bots asking Telegram who they are and setting their menus at once,
    /// at most [`BOTS_STARTING_AT_ONCE`]: thousands of bots starting
    /// together are not thousands of requests (and connections) at once.
    starting: tokio::sync::Semaphore,
    /// Where the Bot API is, for every bot's token.
    telegram_api: TelegramApiConfig,
    broadcast: Arc<BroadcastConfig>,
    events: EventPublisher,
    rates: async_nats::jetstream::kv::Store,
    commands: CampaignCommands,
    pool: deadpool_postgres::Pool,
    transport: Transport,
    /// Each round of the progress cards: the bots that have live ones.
    card_rounds: watch::Receiver<cards::LiveCards>,
}

/// How updates arrive, for every bot alike.
enum Transport {
    Polling,
    /// The default bot's webhook; an added bot's is derived from it.
    Webhook(Webhooks, Webhook),
}

impl Shared {
    /// Serves an added bot until `stop` (removed, its token replaced, or
    /// shutdown). A token Telegram refuses stops this bot alone.
    async fn serve_added(self: Arc<Self>, bot_id: i64, token: BotToken, stop: CancellationToken) {
        let telegram = TelegramConfig {
            bot_token: token,
            api: self.telegram_api.clone(),
        };
        let bot = Bot::with_client(telegram.bot_token.expose(), self.http.clone())
            .set_api_url(telegram.api.api_url.clone());
        let starting = self.starting.acquire().await;
        let me = match bot_api(&bot, &stop).await {
            Ok(Some(me)) => me,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(
                    bot = bot_id,
                    error = format!("{error:#}"),
                    "bot not served: give it a new token with `courierctl bots add`"
                );
                return;
            }
        };
        tracing::info!(bot = bot_id, username = me.username(), "serving bot");
        drop(starting);
        if let Err(error) = self.serve(bot_id, bot, telegram, stop).await {
            tracing::error!(
                bot = bot_id,
                error = format!("{error:#}"),
                "serving the bot failed"
            );
        }
    }

    /// Handles `bot`'s updates until `stop`, as bot `bot_id`: its users,
    /// admins, dialogs, cards and rate limits.
    async fn serve(
        &self,
        bot_id: i64,
        bot: Bot,
        telegram: TelegramConfig,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let limits = PublishedLimits::new(self.rates.clone(), telegram.bot_token.bot_id());
        let store =
            Store::new(self.pool.clone(), bot_id).offering(self.broadcast.languages.clone());
        let roles = Roles::new(&self.broadcast.owner_ids, store.clone());
        let starting = self.starting.acquire().await;
        if let Err(error) = menu::install(&bot, &roles.owners().await, &store).await {
            tracing::warn!(bot = bot_id, %error, "setting the admins' command menus failed");
        }
        drop(starting);
        let cards = Cards::new(store.clone(), bot.clone(), limits.clone());
        // Its own token: it must also stop when dispatching fails.
        let stop_progress = stop.child_token();
        let progress = tokio::spawn(cards.clone().run(
            self.card_rounds.clone(),
            self.broadcast.progress_interval(),
            stop_progress.clone(),
        ));
        let preview = Preview::new(
            bot.clone(),
            self.previews.for_bot(&telegram)?,
            limits,
            store.clone(),
        );
        let campaigning = timing::Campaigning {
            preview: preview.clone(),
            config: self.broadcast.clone(),
            commands: self.commands.clone(),
            cards: cards.clone(),
            store: store.clone(),
        };
        let originals = incoming::Originals::default();
        let dependencies = dptree::deps![
            originals.clone(),
            self.events.for_bot(bot_id),
            self.commands.clone(),
            roles,
            store,
            cards,
            Dialogues::new(self.pool.clone(), bot_id),
            Activity::default(),
            preview,
            self.broadcast.clone(),
            campaigning
        ];
        let dispatcher = Dispatcher::builder(
            bot.clone(),
            metered::metered(incoming::with_originals(handlers::schema())),
        )
        .dependencies(dependencies)
        // Not `Debug` of the update, as by default: that would log what users write.
        .default_handler(|update| async move {
            tracing::debug!(update_id = update.id.0, "nothing to do for this update");
        })
        .error_handler(Arc::new(|error: HandlerError| async move {
            tracing::error!(%error, "handling an update failed");
        }))
        .build();
        let dispatched = match &self.transport {
            Transport::Polling => transport::poll(bot, dispatcher, originals, stop).await,
            Transport::Webhook(webhooks, webhook) => {
                let webhook = match bot_id {
                    DEFAULT_BOT => webhook.clone(),
                    added => webhook.of_added_bot(added),
                };
                webhooks
                    .serve(bot, dispatcher, originals, webhook, stop)
                    .await
            }
        };
        stop_progress.cancel();
        let _ = progress.await;
        dispatched
    }
}

/// Waits for the Bot API as for any dependency, but fails at once when it
/// answers with a refusal (a wrong token will not fix itself). `None` when
/// shutdown was requested while waiting.
async fn bot_api(bot: &Bot, shutdown: &CancellationToken) -> anyhow::Result<Option<Me>> {
    let answer = retry::until_ready("the Bot API at TELEGRAM_API_URL", shutdown, || async {
        match bot.get_me().await {
            Ok(me) => Ok(Ok(me)),
            Err(RequestError::Api(refusal)) => Ok(Err(refusal)),
            Err(unreachable) => Err(unreachable),
        }
    })
    .await;
    match answer {
        None => Ok(None),
        Some(Ok(me)) => Ok(Some(me)),
        Some(Err(refusal)) => Err(anyhow::anyhow!(
            "the Bot API at TELEGRAM_API_URL refused getMe (is TELEGRAM_BOT_TOKEN right?): {refusal}"
        )),
    }
}
