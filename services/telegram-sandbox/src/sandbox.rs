//! The handle tests hold: starts the server in a tokio task, steers it, reads what it saw, and
//! stops it when dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::chats::ChatState;
use crate::config::SandboxConfig;
use crate::faults::Failure;
use crate::record::{Amendment, CallbackAnswer, Delivery, Stats};
use crate::server;
use crate::state::Shared;

/// A running fake Bot API server. Point a client at [`Sandbox::url`], e.g.
/// `teloxide::Bot::new(token).set_api_url(sandbox.url().parse()?)`.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds `config.addr` and serves on it until [`Sandbox::shutdown`] or drop.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(SandboxConfig { addr, ..config }));
        let counting = Arc::clone(&shared);
        let listener = listener.tap_io(move |tcp| {
            // Telegram's front ends write answers at once (nginx's
            // `tcp_nodelay`). With Nagle's algorithm on, an answer written
            // while an earlier one is unacknowledged waits for the client's
            // delayed ACK, up to 40 ms: a delay Telegram does not have.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "setting TCP_NODELAY on a sandbox connection");
            }
            counting.world().record.count_connection()
        });
        let stopped = shared.shutdown.clone();
        let app = server::router(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let serving =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(error) = serving.await {
                tracing::error!(%error, "sandbox server failed");
            }
        });
        Ok(Self {
            shared,
            addr,
            server: Some(server),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the requests under way to be answered (long polls end at once).
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(server) = self.server.take() {
            // A panicked server task has nothing left to stop.
            let _ = server.await;
        }
    }

    pub fn config(&self) -> SandboxConfig {
        self.shared.config()
    }

    /// Changes the configuration of the running sandbox, e.g. `|c| c.rate_limit = 5`; the address
    /// cannot change.
    pub fn configure(&self, change: impl FnOnce(&mut SandboxConfig)) {
        self.shared.configure(change);
    }

    /// The user's state with every bot (a deleted account, say).
    pub fn set_chat_state(&self, chat_id: i64, state: ChatState) {
        self.shared.set_chat_state(chat_id, state);
    }

    /// The user's state with bot `bot_id` alone (blocked it, say).
    pub fn set_bot_chat_state(&self, bot_id: i64, chat_id: i64, state: ChatState) {
        self.shared.set_bot_chat_state(bot_id, chat_id, state);
    }

    /// The next send gets 429 and puts its token in a penalty of `retry_after_secs` seconds.
    pub fn inject_429(&self, retry_after_secs: u64) {
        self.shared.inject_429(retry_after_secs);
    }

    /// The next `count` sends fail with `failure`.
    pub fn fail_next(&self, count: usize, failure: Failure) {
        self.shared.fail_next(count, failure);
    }

    /// Sends of `file_id` get "wrong file identifier/HTTP URL specified" from now on.
    pub fn break_file(&self, file_id: impl Into<String>) {
        self.shared.break_file(file_id.into());
    }

    /// Queues an update for bot `bot_id`'s `getUpdates` (the part of its token before the
    /// colon) and answers the `update_id` it was given; each bot has its own queue.
    ///
    /// # Panics
    /// If `update` is not a JSON object: that is a bug in the test.
    pub fn push_update(&self, bot_id: i64, update: Value) -> i64 {
        match update {
            Value::Object(update) => self.shared.push_update(bot_id, update),
            other => panic!("an update must be a JSON object, got {other}"),
        }
    }

    /// Every accepted send, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries()
    }

    /// The ids of the chat's pinned messages, oldest pin first.
    pub fn pinned(&self, chat_id: i64) -> Vec<i32> {
        self.shared.pinned(chat_id)
    }

    /// Every accepted edit and deletion, oldest first.
    pub fn amendments(&self) -> Vec<Amendment> {
        self.shared.amendments()
    }

    /// Makes every message sent so far look sent `by` earlier, as if that much time passed:
    /// Telegram refuses to delete a message older than 48 hours.
    pub fn age_messages(&self, by: std::time::Duration) {
        self.shared
            .age_messages(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
    }

    /// The bytes of a file uploaded with an accepted send (a photo, a document), by the
    /// file_id its message shows.
    pub fn upload(&self, file_id: &str) -> Option<bytes::Bytes> {
        self.shared.upload(file_id)
    }

    /// Every `answerCallbackQuery` the bot made, oldest first.
    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.shared.callback_answers()
    }

    /// The messages every bot sent to user `chat_id`, bot by bot, as they stand (edits applied,
    /// deletions gone), rendered as the Bot API's `Message` objects. Each bot numbers its own.
    pub fn messages_to(&self, chat_id: i64) -> Vec<Value> {
        self.shared.messages_to(chat_id)
    }

    /// [`Sandbox::messages_to`] of bot `bot_id` alone.
    pub fn messages_of(&self, bot_id: i64, chat_id: i64) -> Vec<Value> {
        self.shared.messages_of(bot_id, chat_id)
    }

    /// What bot `token` spent on paid messages above the free rate, in nanostars (0.1 Star,
    /// 100,000,000, each).
    pub fn stars_spent(&self, token: &str) -> i64 {
        self.shared.world().stars.spent(token)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Forgets everything but the configuration, as if freshly started.
    pub fn reset(&self) {
        self.shared.reset();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}
