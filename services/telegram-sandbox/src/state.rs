//! Everything the sandbox knows, behind one lock, and the path every send takes through it.
//!
//! One mutex (never held across an await) keeps the order of events simple: a send is checked,
//! rate-limited, stored and recorded in one step, so tests see a consistent world. The control
//! operations here are shared by the Rust handle (`Sandbox`) and the HTTP control API.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bot::{Bot, BotSettings};
use crate::chats::{self, ChatState, Chats, Sent};
use crate::config::SandboxConfig;
use crate::content::Content;
use crate::envelope::ApiError;
use crate::faults::{Failure, Faults};
use crate::limits::{Attempt, InFlight, Limits, RateLimiter};
use crate::params::Params;
use crate::record::{Amendment, CallbackAnswer, Delivery, Record, Stats};
use crate::stars::{self, Stars};
use crate::updates::Updates;

/// State shared by the server's handlers and the `Sandbox` handle.
#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
    /// Wakes long-polling `getUpdates` calls.
    update_arrived: Notify,
    /// Cancelled when the sandbox stops; ends the server and any long poll.
    pub shutdown: CancellationToken,
}

#[derive(Debug)]
pub struct World {
    pub config: SandboxConfig,
    /// When the sandbox started; deliveries are timed from it for readers over HTTP.
    started: Instant,
    pub limiter: RateLimiter,
    pub in_flight: InFlight,
    pub chats: Chats,
    pub record: Record,
    /// Each bot's own updates and settings, by bot id: two bots' updates
    /// never mix, as on Telegram.
    pub updates: HashMap<i64, Updates>,
    pub faults: Faults,
    pub settings: HashMap<i64, BotSettings>,
    pub stars: Stars,
}

/// The per-send options every `send*` method takes.
#[derive(Debug, Clone, Copy)]
pub struct SendFlags {
    pub disable_notification: bool,
    pub protect_content: bool,
    pub allow_paid_broadcast: bool,
}

impl From<&Params> for SendFlags {
    fn from(params: &Params) -> Self {
        Self {
            disable_notification: params.flag("disable_notification"),
            protect_content: params.flag("protect_content"),
            allow_paid_broadcast: params.flag("allow_paid_broadcast"),
        }
    }
}

impl World {
    fn new(config: SandboxConfig, started: Instant) -> Self {
        Self {
            config,
            started,
            limiter: RateLimiter::default(),
            in_flight: InFlight::default(),
            chats: Chats::default(),
            record: Record::default(),
            updates: HashMap::new(),
            faults: Faults::default(),
            settings: HashMap::new(),
            stars: Stars::default(),
        }
    }

    pub fn updates_of(&mut self, bot_id: i64) -> &mut Updates {
        self.updates.entry(bot_id).or_default()
    }

    pub fn settings_of(&mut self, bot_id: i64) -> &mut BotSettings {
        self.settings.entry(bot_id).or_default()
    }

    /// Takes one send through what Telegram does after reading the request, in its order: find
    /// the chat, check the file, (maybe) fail in the backend, apply flood control, hand the
    /// message to the user. Answers the rendered `Message`.
    pub fn send(
        &mut self,
        bot: &Bot,
        method: &str,
        chat_id: i64,
        content: Content,
        flags: SendFlags,
    ) -> Result<Value, ApiError> {
        let mut sent = self.send_all(bot, method, chat_id, vec![content], flags)?;
        Ok(sent.remove(0))
    }

    /// [`World::send`] for the messages of one call: one, or an album's items. Each counts
    /// against the token's limit (and its Stars), the call once against the chat's.
    pub fn send_all(
        &mut self,
        bot: &Bot,
        method: &str,
        chat_id: i64,
        contents: Vec<Content>,
        flags: SendFlags,
    ) -> Result<Vec<Value>, ApiError> {
        let state = self.chats.state(bot.id, chat_id);
        state.resolve()?;
        for media in contents.iter().filter_map(|c| c.media.as_ref()) {
            self.faults.check_file(&media.file_id)?;
        }
        if let Some(error) = self.faults.server_error(self.config.error_rate) {
            return Err(error);
        }
        let now = Instant::now();
        if let Some(retry_after) = self.faults.take_injected_429() {
            self.limiter.penalize(&bot.token, retry_after, now);
        }
        let mut billed = 0;
        for index in 0..contents.len() {
            let attempt = Attempt {
                token: &bot.token,
                chat_id,
                paid: flags.allow_paid_broadcast,
                counts_for_chat: index == 0,
            };
            // A paid message above the free ones of the last second costs Stars.
            if flags.allow_paid_broadcast
                && self.limiter.sent_in_last_second(&bot.token, now) >= stars::FREE_PER_SECOND
            {
                self.stars
                    .check(&bot.token, self.config.stars_balance, billed + 1)?;
                billed += 1;
            }
            self.limiter
                .admit(attempt, Limits::from(&self.config), now)
                .map_err(ApiError::too_many_requests)?;
        }
        state.receive()?;
        for _ in 0..billed {
            self.stars.charge(&bot.token, chats::unix_now());
        }
        Ok(contents
            .into_iter()
            .map(|content| self.hand_over(bot, method, chat_id, content, flags, now))
            .collect())
    }

    /// Stores a message the chat received and records its delivery; answers it rendered.
    fn hand_over(
        &mut self,
        bot: &Bot,
        method: &str,
        chat_id: i64,
        content: Content,
        flags: SendFlags,
        now: Instant,
    ) -> Value {
        let sent = Sent {
            from: bot.user(),
            date: chats::unix_now(),
            edit_date: None,
            protected: flags.protect_content,
            content,
        };
        let message_id = self.chats.store(bot.id, chat_id, sent.clone());
        if let Some(media) = &sent.content.media
            && let Some(upload) = &media.upload
        {
            self.record
                .keep_upload(&media.file_id, upload.bytes.clone());
        }
        self.record.deliver(Delivery {
            method: method.to_owned(),
            bot_id: bot.id,
            chat_id,
            message_id,
            text: sent.content.text.clone(),
            entities: sent.content.entities.clone(),
            file_id: sent.content.media.as_ref().map(|m| m.file_id.clone()),
            reply_markup: sent.content.reply_markup.clone(),
            disable_notification: flags.disable_notification,
            protect_content: flags.protect_content,
            allow_paid_broadcast: flags.allow_paid_broadcast,
            accepted_at: now,
            accepted_ms: u64::try_from(now.duration_since(self.started).as_millis())
                .unwrap_or(u64::MAX),
        });
        chats::render(chat_id, message_id, &sent)
    }
}

impl World {
    /// Takes an edit or a deletion through flood control (it counts against the token's limit
    /// like a send, but not against the chat's one message a second, which is about new
    /// messages) and records it.
    pub fn amend(
        &mut self,
        bot: &Bot,
        action: &'static str,
        chat_id: i64,
        message_id: i32,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let attempt = Attempt {
            token: &bot.token,
            chat_id,
            paid: false,
            counts_for_chat: false,
        };
        self.limiter
            .admit(attempt, Limits::from(&self.config), now)
            .map_err(ApiError::too_many_requests)?;
        self.record.amend(Amendment {
            action,
            chat_id,
            message_id,
            accepted_at: now,
        });
        Ok(())
    }
}

impl Shared {
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            world: Mutex::new(World::new(config, Instant::now())),
            update_arrived: Notify::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Locks the world. A panic while it was held leaves it usable: every step keeps it whole.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once an update is pushed after this was called (and `enable`d).
    pub fn update_arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.update_arrived.notified()
    }

    pub fn config(&self) -> SandboxConfig {
        self.world().config.clone()
    }

    /// Changes the configuration; the address stays what it was bound to.
    pub fn configure(&self, change: impl FnOnce(&mut SandboxConfig)) {
        let mut world = self.world();
        let addr = world.config.addr;
        change(&mut world.config);
        world.config.addr = addr;
    }

    /// The user's state with every bot.
    pub fn set_chat_state(&self, chat_id: i64, state: ChatState) {
        self.world().chats.set_state(chat_id, state);
    }

    /// The user's state with bot `bot_id` alone (blocked it, say).
    pub fn set_bot_chat_state(&self, bot_id: i64, chat_id: i64, state: ChatState) {
        self.world().chats.set_state_of(bot_id, chat_id, state);
    }

    pub fn inject_429(&self, retry_after: u64) {
        self.world().faults.inject_429(retry_after);
    }

    pub fn fail_next(&self, count: usize, failure: Failure) {
        self.world().faults.fail_next(count, failure);
    }

    pub fn break_file(&self, file_id: String) {
        self.world().faults.break_file(file_id);
    }

    pub fn push_update(&self, bot_id: i64, update: Map<String, Value>) -> i64 {
        let update_id = self.world().updates_of(bot_id).push(update);
        self.update_arrived.notify_waiters();
        update_id
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.world().record.deliveries().to_vec()
    }

    pub fn amendments(&self) -> Vec<Amendment> {
        self.world().record.amendments().to_vec()
    }

    pub fn pinned(&self, chat_id: i64) -> Vec<i32> {
        self.world().chats.pinned(chat_id)
    }

    pub fn age_messages(&self, by_secs: i64) {
        self.world().chats.age(by_secs);
    }

    pub fn upload(&self, file_id: &str) -> Option<bytes::Bytes> {
        self.world().record.upload(file_id)
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.world().record.callback_answers().to_vec()
    }

    /// Every bot's messages to user `chat_id`, bot by bot.
    pub fn messages_to(&self, chat_id: i64) -> Vec<Value> {
        self.world().chats.rendered(chat_id)
    }

    /// Bot `bot_id`'s messages to user `chat_id`.
    pub fn messages_of(&self, bot_id: i64, chat_id: i64) -> Vec<Value> {
        self.world().chats.rendered_of(bot_id, chat_id)
    }

    pub fn stats(&self) -> Stats {
        let world = self.world();
        world.record.stats(world.in_flight.peak())
    }

    /// Forgets chats, messages, deliveries, counts, faults, updates and bot settings; keeps the
    /// configuration.
    pub fn reset(&self) {
        let mut world = self.world();
        *world = World::new(world.config.clone(), world.started);
    }
}
