//! How updates arrive: long polling by default, or a webhook (axum) when
//! `BOT_WEBHOOK_URL` is set, with Telegram's secret-token header checked
//! on every request (teloxide answers 401 without it). Either way the
//! dispatcher handles them until shutdown, then finishes those in hand.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use teloxide::Bot;
use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::update_listeners::webhooks::{self, Options};
use teloxide::update_listeners::{Polling, UpdateListener};
use tokio_util::sync::CancellationToken;

use crate::handlers::HandlerError;

/// How long one `getUpdates` call waits for news: below the HTTP client's
/// own timeout, and the longest a stop can wait for the call in flight.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

type BotDispatcher = Dispatcher<Bot, HandlerError, teloxide::dispatching::DefaultKey>;

pub async fn poll(
    bot: Bot,
    dispatcher: BotDispatcher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let polling = Polling::builder(bot)
        .timeout(POLL_TIMEOUT)
        .delete_webhook()
        .await
        .build();
    dispatch(dispatcher, polling, shutdown).await
}

pub async fn webhook(
    bot: Bot,
    dispatcher: BotDispatcher,
    url: url::Url,
    listen: SocketAddr,
    secret: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Bound first, so a taken port is an error rather than teloxide's panic.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on BOT_WEBHOOK_LISTEN {listen}"))?;
    let options = Options::new(listen, url).secret_token(secret);
    // Calls setWebhook (with the secret); deletes the webhook when stopped.
    let (updates, stopped, router) = webhooks::axum_to_router(bot, options)
        .await
        .context("setting the webhook at BOT_WEBHOOK_URL")?;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
    });
    tracing::info!(%listen, "receiving updates by webhook");
    let dispatched = dispatch(dispatcher, updates, shutdown).await;
    server
        .await
        .context("the webhook server panicked")?
        .context("serving the webhook")?;
    dispatched
}

async fn dispatch<L>(
    mut dispatcher: BotDispatcher,
    mut updates: L,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    L: UpdateListener + Send,
    L::Err: std::fmt::Debug + Send,
{
    let stop_dispatching = dispatcher.shutdown_token();
    let stop_listening = updates.stop_token();
    let stopper = tokio::spawn(async move {
        shutdown.cancelled().await;
        // The dispatcher's token is the way to stop, but it refuses while
        // the dispatcher is still starting and can miss a request made
        // between two updates. The listener's stop flag does neither, and
        // ending the update stream stops dispatching just as gracefully.
        let _ = stop_dispatching.shutdown();
        stop_listening.stop();
    });
    let dispatched = dispatcher
        .try_dispatch_with_listener(
            updates,
            LoggingErrorHandler::with_custom_text("getting updates failed"),
        )
        .await;
    stopper.abort();
    dispatched.context("starting to dispatch updates")
}
