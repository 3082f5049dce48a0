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

pub use config::{BotConfig, BroadcastConfig, WebhookConfig};

use std::sync::Arc;

use anyhow::Context as _;
use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::send_limits::PublishedLimits;
use courier_core::topology::DEFAULT_BOT;
use courier_core::{retry, startup};
use teloxide::dispatching::Dispatcher;
use teloxide::dptree;
use teloxide::prelude::Requester;
use teloxide::types::Me;
use teloxide::{Bot, RequestError};
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::cards::Cards;
use crate::dialogue::Dialogues;
use crate::handlers::HandlerError;
use crate::preview::Preview;
use crate::roles::Roles;
use crate::storage::Store;

/// Receives updates (long polling, or a webhook when configured) and
/// handles them until `shutdown` fires, then finishes the updates in hand
/// and returns.
pub async fn run(config: BotConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let webhook = config.webhook.enabled().map_err(anyhow::Error::msg)?;
    let Some(nats) = startup::nats(&config.nats, "courier-bot", &shutdown).await? else {
        return Ok(());
    };
    let Some(pool) = startup::postgres(&config.database, &shutdown).await? else {
        return Ok(());
    };
    let events = EventPublisher::new(nats.js.clone(), nats.topology.clone());
    let limits = PublishedLimits::new(
        nats.js
            .get_key_value(nats.topology.rate_bucket())
            .await
            .context("opening the rate bucket")?,
        config.telegram.bot_token.bot_id(),
    );
    let commands = CampaignCommands::new(nats.js, nats.topology)
        .await
        .context("opening the events stream")?;
    let bot = Bot::new(config.telegram.bot_token.expose())
        .set_api_url(config.telegram.api.api_url.clone());
    let Some(me) = bot_api(&bot, &shutdown).await? else {
        return Ok(());
    };
    courier_core::metrics::bot();
    courier_core::health::started();
    tracing::info!(username = me.username(), "bot ready");
    if config.broadcast.owner_ids.is_empty() {
        tracing::warn!("OWNER_IDS is empty: nobody can broadcast");
    }

    // This process serves the default bot; others are served by senders only
    // until the bot service serves every bot.
    let store = Store::new(pool.clone(), DEFAULT_BOT);
    if let Err(error) = menu::install(&bot, &config.broadcast.owner_ids, &store).await {
        tracing::warn!(%error, "setting the admins' command menus failed");
    }
    let cards = Cards::new(store.clone(), bot.clone(), limits.clone());
    // Its own token: it must also stop when dispatching fails.
    let stop_progress = shutdown.child_token();
    let progress = tokio::spawn(
        cards
            .clone()
            .run(config.broadcast.progress_interval(), stop_progress.clone()),
    );
    let preview = Preview::new(bot.clone(), &config.telegram, limits, store.clone())
        .context("building the preview's HTTP client")?;
    let broadcast = Arc::new(config.broadcast);
    let campaigning = timing::Campaigning {
        preview: preview.clone(),
        config: broadcast.clone(),
        commands: commands.clone(),
        cards: cards.clone(),
        store: store.clone(),
    };
    let originals = incoming::Originals::default();
    let dependencies = dptree::deps![
        originals.clone(),
        events,
        commands,
        Roles::new(&broadcast.owner_ids, store.clone()),
        store,
        cards,
        Dialogues::new(pool),
        Activity::default(),
        preview,
        broadcast,
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
    let dispatched = match webhook {
        None => transport::poll(bot, dispatcher, originals, shutdown).await,
        Some((url, secret)) => {
            transport::webhook(
                bot,
                dispatcher,
                originals,
                url,
                config.webhook.listen,
                secret,
                shutdown,
            )
            .await
        }
    };
    stop_progress.cancel();
    let _ = progress.await;
    dispatched?;
    tracing::info!("bot stopped");
    Ok(())
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
