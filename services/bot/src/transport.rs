//! How updates arrive: long polling by default, or webhooks (axum) when
//! `BOT_WEBHOOK_URL` is set, every bot's on one listener and a path of its
//! own, with Telegram's secret-token header checked on every request
//! (teloxide answers 401 without it). Either way each
//! update goes through [`Originals`] first (a message is kept as Telegram
//! sent it), and the dispatcher handles them until shutdown, then finishes
//! those in hand.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use futures::Stream;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;
use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::payloads::SetWebhookSetters as _;
use teloxide::prelude::Requester as _;
use teloxide::requests::{JsonRequest, Payload, Request as _};
use teloxide::stop::{StopFlag, StopToken, mk_stop_token};
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::webhooks::{self, Options};
use teloxide::update_listeners::{StatefulListener, UpdateListener};
use teloxide::{Bot, RequestError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::Webhook;
use crate::handlers::HandlerError;
use crate::incoming::Originals;

/// How long one `getUpdates` call waits for news: below the HTTP client's
/// own timeout, and the longest a stop can wait for the call in flight.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

pub type BotDispatcher = Dispatcher<Bot, HandlerError, teloxide::dispatching::DefaultKey>;

/// After a failed `getUpdates`, the wait before the next one.
const POLL_RETRY: Duration = Duration::from_secs(1);

/// The largest update body the webhook reads (Telegram's are a few KiB).
const MAX_UPDATE_BYTES: usize = 1 << 20;

/// Telegram's header with the webhook's secret.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub async fn poll(
    bot: Bot,
    dispatcher: BotDispatcher,
    originals: Originals,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Polling and a webhook exclude each other; if this fails, getUpdates
    // says why, and polling retries.
    if let Err(error) = bot.delete_webhook().await {
        tracing::warn!(%error, "deleting the webhook before polling failed");
    }
    dispatch(dispatcher, polling(bot, originals), shutdown).await
}

/// getUpdates answered as JSON, so each update reaches [`Originals`] before
/// teloxide reads it.
#[derive(Debug, Clone, Serialize)]
struct GetUpdatesAsJson {
    offset: i32,
    timeout: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_updates: Option<Vec<AllowedUpdate>>,
}

impl Payload for GetUpdatesAsJson {
    type Output = Vec<Value>;
    const NAME: &'static str = "getUpdates";

    fn timeout_hint(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout.into()))
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<Update, RequestError>> + Send>>;

/// The long-polling listener: the update kinds the handlers asked for
/// (teloxide hints them before the first call), and a stop that confirms
/// the updates handed out so far with one last call, as teloxide's own
/// `Polling` does.
struct PollingListener {
    updates: UpdateStream,
    stop: StopToken,
    allowed: Arc<Mutex<Option<Vec<AllowedUpdate>>>>,
}

struct PollingState {
    bot: Bot,
    originals: Originals,
    offset: i32,
    ready: VecDeque<Update>,
    allowed: Arc<Mutex<Option<Vec<AllowedUpdate>>>>,
    stopped: StopFlag,
    confirmed: bool,
}

fn polling(bot: Bot, originals: Originals) -> impl UpdateListener<Err = RequestError> {
    let (stop, stopped) = mk_stop_token();
    let allowed = Arc::new(Mutex::new(None));
    let state = PollingState {
        bot,
        originals,
        offset: 0,
        ready: VecDeque::new(),
        allowed: allowed.clone(),
        stopped,
        confirmed: false,
    };
    let listener = PollingListener {
        updates: Box::pin(futures::stream::unfold(state, next_update)),
        stop,
        allowed,
    };
    StatefulListener::new_with_hints(
        listener,
        updates_of,
        |listener: &mut PollingListener| listener.stop.clone(),
        Some(
            |listener: &mut PollingListener, hint: &mut dyn Iterator<Item = AllowedUpdate>| {
                *listener.allowed.lock().expect("no panic holding the hint") = Some(hint.collect());
            },
        ),
    )
}

fn updates_of(listener: &mut PollingListener) -> &mut UpdateStream {
    &mut listener.updates
}

async fn next_update(
    mut state: PollingState,
) -> Option<(Result<Update, RequestError>, PollingState)> {
    loop {
        if let Some(update) = state.ready.pop_front() {
            return Some((Ok(update), state));
        }
        if state.stopped.is_stopped() {
            if !state.confirmed {
                state.confirmed = true;
                // Confirms what was handed out, without waiting for more.
                let _ = state.get_updates(0).await;
            }
            return None;
        }
        let answer = tokio::select! {
            () = state.stopped.clone() => continue,
            answer = state.get_updates(POLL_TIMEOUT.as_secs() as u32) => answer,
        };
        match answer {
            Ok(updates) => {
                for update in updates {
                    let id = update["update_id"].as_i64().unwrap_or_default();
                    state.offset = state.offset.max(i32::try_from(id + 1).unwrap_or(i32::MAX));
                    // From a borrowed `Value`: teloxide's `Update` reads
                    // its keys as borrowed strings.
                    match Update::deserialize(&state.originals.admit(update)) {
                        Ok(update) => state.ready.push_back(update),
                        Err(error) => tracing::warn!(id, %error, "an update teloxide cannot read"),
                    }
                }
            }
            Err(error) => {
                // The dispatcher logs it; the next call waits a little.
                tokio::select! {
                    () = state.stopped.clone() => {}
                    () = tokio::time::sleep(POLL_RETRY) => {}
                }
                return Some((Err(error), state));
            }
        }
    }
}

impl PollingState {
    async fn get_updates(&self, timeout: u32) -> Result<Vec<Value>, RequestError> {
        let allowed_updates = self
            .allowed
            .lock()
            .expect("no panic holding the hint")
            .clone();
        let payload = GetUpdatesAsJson {
            offset: self.offset,
            timeout,
            allowed_updates,
        };
        JsonRequest::new(self.bot.clone(), payload).send().await
    }
}

/// Lets [`Originals`] see each update the webhook receives before teloxide
/// reads it: only one carrying the secret, so nobody else can plant a
/// message for the admin's next one.
async fn admit_webhook_update(
    State((originals, secret)): State<(Originals, Arc<str>)>,
    request: Request,
) -> Result<Request, axum::http::StatusCode> {
    let authentic = request
        .headers()
        .get(SECRET_HEADER)
        .is_some_and(|value| value.as_bytes() == secret.as_bytes());
    if !authentic {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_UPDATE_BYTES)
        .await
        .map_err(|_| axum::http::StatusCode::PAYLOAD_TOO_LARGE)?;
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(update) => Bytes::from(originals.admit(update).to_string()),
        Err(_) => bytes,
    };
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// One listener for every bot's webhook: each bot's requests go to the
/// router teloxide made for it, found by the request's path.
#[derive(Clone)]
pub struct Webhooks {
    listen: SocketAddr,
    routes: Arc<RwLock<HashMap<String, Router>>>,
}

impl Webhooks {
    /// Listens on `listen` until `shutdown`; the task ends with the server.
    pub async fn bind(
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Webhooks, JoinHandle<std::io::Result<()>>)> {
        // Bound first, so a taken port is an error rather than teloxide's panic.
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on BOT_WEBHOOK_LISTEN {listen}"))?;
        let webhooks = Webhooks {
            listen,
            routes: Arc::default(),
        };
        let routes = webhooks.routes.clone();
        let router = Router::new().fallback(move |request: Request| route(routes.clone(), request));
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        tracing::info!(%listen, "receiving updates by webhook");
        Ok((webhooks, server))
    }

    /// Routes `bot`'s path to it, sets its webhook, and dispatches what
    /// arrives until `stop`; then deletes the webhook. The route comes
    /// before setWebhook, so Telegram never posts to a path not served yet.
    pub async fn serve(
        &self,
        bot: Bot,
        dispatcher: BotDispatcher,
        originals: Originals,
        webhook: Webhook,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let path = webhook.url.path().to_owned();
        let options =
            Options::new(self.listen, webhook.url.clone()).secret_token(webhook.secret.clone());
        // Its stop flag is not needed: the webhook is deleted below.
        let (updates, _, router) = webhooks::axum_no_setup(options);
        let router = router.layer(axum::middleware::map_request_with_state(
            (originals, Arc::<str>::from(webhook.secret.clone())),
            admit_webhook_update,
        ));
        self.routes_mut().insert(path.clone(), router);
        // The update stream ends when the router (holding its sender) is
        // gone: dropped as soon as the bot is to stop.
        let unroute = tokio::spawn({
            let (webhooks, path, stop) = (self.clone(), path.clone(), stop.clone());
            async move {
                stop.cancelled().await;
                webhooks.routes_mut().remove(&path);
            }
        });
        let set = bot
            .set_webhook(webhook.url)
            .secret_token(webhook.secret)
            .drop_pending_updates(false)
            .await
            .context("setting the webhook at BOT_WEBHOOK_URL");
        let dispatched = match set {
            Ok(_) => dispatch(dispatcher, updates, stop).await,
            Err(error) => Err(error),
        };
        unroute.abort();
        self.routes_mut().remove(&path);
        if let Err(error) = bot.delete_webhook().await {
            tracing::warn!(%error, "deleting the webhook when stopping");
        }
        dispatched
    }

    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Router>> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands a request to the bot whose webhook path it names; Telegram is
/// told 404 for any other path.
async fn route(routes: Arc<RwLock<HashMap<String, Router>>>, request: Request) -> Response {
    let router = routes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(request.uri().path())
        .cloned();
    match router {
        Some(router) => router.oneshot(request).await.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
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
