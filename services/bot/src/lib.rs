//! The Telegram bot users talk to: `/start` registers them, `/language`
//! lets them choose the language of the news, and blocking or unblocking
//! the bot is noticed. Each of these is published as a user event; the bot
//! keeps no state of its own, so any number of restarts lose nothing.

mod config;
mod handlers;
mod language;
mod replies;
mod users;

pub use config::BotConfig;

use std::time::Duration;

use anyhow::Context as _;
use courier_core::event::EventPublisher;
use courier_core::{retry, startup};
use teloxide::dispatching::Dispatcher;
use teloxide::dptree;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::Requester;
use teloxide::types::Me;
use teloxide::update_listeners::{Polling, UpdateListener};
use teloxide::{Bot, RequestError};
use tokio_util::sync::CancellationToken;

/// How long one `getUpdates` call waits for news: below the HTTP client's
/// own timeout, and the longest a stop can wait for the call in flight.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Long-polls Telegram and handles updates until `shutdown` fires, then
/// finishes the updates in hand and returns.
pub async fn run(config: BotConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(nats) = startup::nats(&config.nats, "courier-bot", &shutdown).await? else {
        return Ok(());
    };
    let events = EventPublisher::new(nats.js, nats.topology);
    let bot = Bot::new(config.telegram.bot_token.expose()).set_api_url(config.telegram.api_url);
    let Some(me) = bot_api(&bot, &shutdown).await? else {
        return Ok(());
    };
    tracing::info!(username = me.username(), "bot ready");

    let mut polling = Polling::builder(bot.clone())
        .timeout(POLL_TIMEOUT)
        .delete_webhook()
        .await
        .build();
    let mut dispatcher = Dispatcher::builder(bot, handlers::schema())
        .dependencies(dptree::deps![events])
        // Not `Debug` of the update, as by default: that would log what users write.
        .default_handler(|update| async move {
            tracing::debug!(update_id = update.id.0, "nothing to do for this update");
        })
        .build();
    let stop_dispatching = dispatcher.shutdown_token();
    let stop_polling = polling.stop_token();
    let stopper = tokio::spawn(async move {
        shutdown.cancelled().await;
        // The dispatcher's token is the way to stop, but it refuses while
        // the dispatcher is still starting and can miss a request made
        // between two updates. The listener's stop flag does neither, and
        // ending the update stream stops dispatching just as gracefully.
        let _ = stop_dispatching.shutdown();
        stop_polling.stop();
    });
    let dispatched = dispatcher
        .try_dispatch_with_listener(
            polling,
            LoggingErrorHandler::with_custom_text("getting updates failed"),
        )
        .await;
    stopper.abort();
    dispatched.context("starting to dispatch updates")?;
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
