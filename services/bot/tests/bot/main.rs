//! The bot driven the way people use it: updates (messages, button
//! presses, membership changes) are pushed into the Telegram sandbox, the
//! bot long-polls them in-process, and the tests read what it sent back.
//! The rest of courier (projector, loader, a sender) runs in-process too,
//! on the test's own NATS prefix and database.

mod admins;
mod album;
mod amend;
mod approval;
mod bots;
mod broadcast;
mod control;
mod metrics;
mod report;
mod revise;
mod schedule;
mod segments;
mod stars;
mod users;
mod webhook;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use clap::Parser;
use courier_bot::BotConfig;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::Language;
use courier_e2e::{BOT_TOKEN, SenderSettings, Stack};
use courier_testing::campaigns::{register_users, wait_for_users};
use courier_testing::{TestEnv, wait_until};
use futures::TryStreamExt;
use serde_json::{Value, json};
use telegram_sandbox::{Sandbox, SandboxConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEADLINE: Duration = Duration::from_secs(30);
/// From OWNER_IDS.
pub const OWNER: i64 = 9_001;
/// Someone who never got any rights.
pub const STRANGER: i64 = 9_003;

pub struct Harness {
    pub env: TestEnv,
    pub sandbox: Sandbox,
    pub pool: deadpool_postgres::Pool,
    pub publisher: EventPublisher,
    stack: Stack,
    bot: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    /// Ids of the messages people send (the bot's own are the sandbox's).
    next_message_id: AtomicI64,
    /// The bot people write to and press buttons of: the default bot's
    /// unless a test says otherwise ([`Harness::talk_to`]).
    talking_to: AtomicI64,
}

impl Harness {
    /// The bot and courier, with senders allowed `sender_rate` messages per
    /// second.
    pub async fn start(sender_rate: f64) -> Harness {
        let env = TestEnv::new().await;
        // Admins' chats get a burst of messages (preview, summary, card):
        // Telegram tolerates short bursts, the sandbox's 1/s per chat not.
        // Nor its 30 a second per token, which counts the bot's edits (a
        // press on the segment builder, a card refreshed) with the sends:
        // these tests are about the dialog, the e2e tests about the limits.
        let sandbox = Sandbox::start(SandboxConfig {
            chat_rate_limit: 0,
            rate_limit: 0,
            ..SandboxConfig::default()
        })
        .await
        .expect("starting the sandbox");
        let pool = env.pool().await;
        let publisher = EventPublisher::new(env.jetstream().await, env.topology());
        let stack = Stack::start(
            &env,
            &sandbox.url(),
            SenderSettings {
                rate_limit: sender_rate,
                replicas: 1,
            },
        );
        let mut harness = Harness {
            env,
            sandbox,
            pool,
            publisher,
            stack,
            bot: None,
            next_message_id: AtomicI64::new(1),
            talking_to: AtomicI64::new(courier_e2e::BOT_ID),
        };
        harness.start_bot(harness.config());
        harness
    }

    /// The configuration the bot starts with: long polling, the sandbox as
    /// Telegram, [`OWNER`] as the owner, progress edited every second.
    pub fn config(&self) -> BotConfig {
        let mut config = BotConfig::try_parse_from([
            "courier-bot",
            "--telegram-bot-token",
            BOT_TOKEN,
            "--telegram-api-url",
            &self.sandbox.url(),
            "--owner-ids",
            &OWNER.to_string(),
            "--paid-broadcast-enabled",
            "true",
            "--progress-edit-interval-secs",
            "1",
        ])
        .expect("a valid configuration");
        config.nats = self.env.nats.clone();
        config.database = self.env.database.clone();
        config
    }

    /// From now on people write to bot `bot_id`.
    pub fn talk_to(&self, bot_id: i64) {
        self.talking_to.store(bot_id, Ordering::Relaxed);
    }

    fn update(&self, update: Value) {
        let bot = self.talking_to.load(Ordering::Relaxed);
        self.sandbox.push_update(bot, update);
    }

    pub fn start_bot(&mut self, config: BotConfig) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(courier_bot::run(config, shutdown.clone()));
        self.bot = Some((shutdown, task));
    }

    /// Stops the bot gracefully; it must stop without an error.
    pub async fn stop_bot(&mut self) {
        let (shutdown, task) = self.bot.take().expect("the bot is running");
        shutdown.cancel();
        task.await
            .expect("the bot task")
            .expect("the bot stops cleanly");
    }

    pub async fn stop(mut self) {
        self.stop_bot().await;
        self.stack.stop().await.expect("courier stops cleanly");
    }

    /// Registers users through events and waits until they are projected.
    pub async fn users(&self, users: &[(i64, Language, bool)]) {
        register_users(&self.publisher, users).await;
        wait_for_users(&**self.db().await, users.len() as i64, DEADLINE).await;
    }

    pub async fn db(&self) -> deadpool_postgres::Object {
        self.pool.get().await.expect("a database connection")
    }

    /// A message from `from` in their private chat with the bot; `fields`
    /// are its content (`text`, `photo`, ...).
    pub fn send(&self, from: i64, fields: Value) {
        let id = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({
            "message_id": id,
            "date": 1_700_000_000,
            "chat": { "id": from, "type": "private", "first_name": format!("User {from}") },
            "from": user(from),
        });
        message
            .as_object_mut()
            .expect("an object")
            .extend(fields.as_object().expect("fields are an object").clone());
        self.update(json!({ "message": message }));
    }

    pub fn say(&self, from: i64, text: &str) {
        self.send(from, json!({ "text": text }));
    }

    /// `from` presses the button whose label starts with `label` on
    /// `message` (as the sandbox shows it; `from` need not be its chat's
    /// owner, as with a forwarded message).
    /// Presses the button; returns the callback query's id, to find the
    /// bot's answer among `sandbox.callback_answers()`.
    pub fn press(&self, from: i64, message: &Value, label: &str) -> String {
        let data = button_data(message, label);
        let id = format!(
            "query-{}",
            self.next_message_id.fetch_add(1, Ordering::Relaxed)
        );
        self.update(json!({ "callback_query": {
            "id": id,
            "from": user(from),
            "chat_instance": "instance",
            "message": message,
            "data": data,
        }}));
        id
    }

    /// The bot's messages in `chat`, as they stand (edits applied).
    pub fn messages(&self, chat: i64) -> Vec<Value> {
        self.sandbox
            .messages_of(self.talking_to.load(Ordering::Relaxed), chat)
    }

    /// The highest id among the bot's messages in `chat` (0 for none), to
    /// wait for what comes after it.
    pub fn last_id(&self, chat: i64) -> i64 {
        self.messages(chat)
            .iter()
            .filter_map(|m| m["message_id"].as_i64())
            .max()
            .unwrap_or(0)
    }

    /// The texts of the bot's messages in `chat` newer than `after`.
    pub fn texts_after(&self, chat: i64, after: i64) -> Vec<String> {
        self.messages(chat)
            .iter()
            .filter(|m| m["message_id"].as_i64() > Some(after))
            .map(|m| text(m).to_owned())
            .collect()
    }

    /// Waits for a message of the bot in `chat`, newer than `after`, whose
    /// text or caption contains `needle` (as it stands now: edits count).
    pub async fn wait_for(&self, chat: i64, after: i64, needle: &str) -> Value {
        wait_until(&format!("{needle:?} in chat {chat}"), DEADLINE, || async {
            self.messages(chat)
                .into_iter()
                .filter(|m| m["message_id"].as_i64() > Some(after))
                .find(|m| text(m).contains(needle))
        })
        .await
    }

    /// Like [`Harness::wait_for`], for a message containing every needle:
    /// a campaign's card or report, found by its id and what it says.
    pub async fn wait_for_all(&self, chat: i64, after: i64, needles: &[&str]) -> Value {
        wait_until(&format!("{needles:?} in chat {chat}"), DEADLINE, || async {
            self.messages(chat)
                .into_iter()
                .filter(|m| m["message_id"].as_i64() > Some(after))
                .find(|m| needles.iter().all(|needle| text(m).contains(needle)))
        })
        .await
    }

    /// The command menu set for `scope` (`{"type":"default"}`, or a chat's),
    /// as getMyCommands answers it.
    pub async fn menu(&self, scope: Value) -> Vec<String> {
        let url = format!("{}/bot{BOT_TOKEN}/getMyCommands", self.sandbox.url());
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({ "scope": scope }))
            .send()
            .await
            .expect("getMyCommands")
            .json()
            .await
            .expect("its answer");
        answer["result"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["command"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// How many events were published about campaigns.
    pub async fn campaign_events(&self) -> usize {
        let js = self.env.jetstream().await;
        let stream = js
            .get_stream(self.env.topology().events_stream())
            .await
            .expect("the events stream");
        let subjects = format!("{}.events.campaign.>", self.env.topology().prefix());
        let counts: Vec<(String, usize)> = stream
            .info_with_subjects(subjects)
            .await
            .expect("subject counts")
            .try_collect()
            .await
            .expect("subject counts");
        counts.into_iter().map(|(_, count)| count).sum()
    }

    /// The step the dialog in `chat` is at, as stored.
    pub async fn dialog_step(&self, chat: i64) -> Option<String> {
        self.db()
            .await
            .query_opt(
                "SELECT state->>'step' FROM bot_dialogues WHERE chat_id = $1",
                &[&chat],
            )
            .await
            .expect("reading the dialog")
            .map(|row| row.get(0))
    }
}

pub fn user(id: i64) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("User {id}"), "language_code": "en" })
}

/// A message's text, or its caption.
pub fn text(message: &Value) -> &str {
    message["text"]
        .as_str()
        .or(message["caption"].as_str())
        .unwrap_or_default()
}

/// The labels of a message's inline buttons.
pub fn labels(message: &Value) -> Vec<String> {
    buttons(message)
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn buttons(message: &Value) -> impl Iterator<Item = &Value> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
}

fn button_data(message: &Value, label: &str) -> String {
    buttons(message)
        .find(|b| b["text"].as_str().is_some_and(|t| t.starts_with(label)))
        .and_then(|b| b["callback_data"].as_str())
        .unwrap_or_else(|| panic!("no button {label:?} on {message}"))
        .to_owned()
}
