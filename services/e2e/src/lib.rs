//! End-to-end test support: the courier services started in-process on a
//! test's own NATS prefix and database, talking to the Telegram sandbox.
//! The tests themselves are in `tests/e2e/`.

use courier_core::commands::CampaignCommands;
use courier_core::config::{BotToken, TelegramApiConfig, TelegramConfig, TokenKeyConfig};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::Language;
use courier_testing::TestEnv;
use courier_testing::campaigns::{register_users, register_users_of};
use telegram_sandbox::{Sandbox, SandboxConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The token the tests' bot uses; the sandbox accepts any well-formed one.
pub const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
/// [`BOT_TOKEN`]'s bot: the part before the colon, the default bot's
/// Telegram id.
pub const BOT_ID: i64 = 123_456_789;

/// Running services; stopped (gracefully) on drop.
pub struct Stack {
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// How fast the senders may go.
pub struct SenderSettings {
    pub rate_limit: f64,
    pub replicas: usize,
}

impl Stack {
    pub fn start(env: &TestEnv, telegram_api_url: &str, senders: SenderSettings) -> Stack {
        Stack::start_without(env, telegram_api_url, senders, None)
    }

    /// Every service but `absent` ("courier-projector" or "courier-loader"),
    /// which the test runs as a process of its own to crash it.
    pub fn start_without(
        env: &TestEnv,
        telegram_api_url: &str,
        senders: SenderSettings,
        absent: Option<&str>,
    ) -> Stack {
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        if absent != Some("courier-projector") {
            tasks.push(tokio::spawn(courier_projector::run(
                courier_projector::ProjectorConfig {
                    nats: env.nats.clone(),
                    database: env.database.clone(),
                },
                shutdown.clone(),
            )));
        }
        if absent != Some("courier-loader") {
            tasks.push(tokio::spawn(courier_loader::run(
                courier_loader::LoaderConfig {
                    nats: env.nats.clone(),
                    database: env.database.clone(),
                    batch_size: 100,
                },
                shutdown.clone(),
            )));
        }
        // Serving bots added with `add_bot` too: none are, unless a test
        // adds one.
        for _ in 0..senders.replicas {
            tasks.push(tokio::spawn(courier_sender::run(
                sender_serving_added_bots(env, telegram_api_url, senders.rate_limit),
                shutdown.clone(),
            )));
        }
        Stack { shutdown, tasks }
    }

    /// Stops every service and reports the first one that failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn sender_config(
    env: &TestEnv,
    telegram_api_url: &str,
    rate_limit: f64,
) -> courier_sender::SenderConfig {
    courier_sender::SenderConfig {
        nats: env.nats.clone(),
        telegram: TelegramConfig {
            bot_token: BOT_TOKEN.parse::<BotToken>().expect("a well-formed token"),
            api: TelegramApiConfig {
                api_url: telegram_api_url.parse().expect("the sandbox URL"),
            },
        },
        token_key: TokenKeyConfig::of(None),
        rate_limit,
        paid_rate_limit: 1000.0,
        chat_rate_limit: 1.0,
        max_in_flight: courier_sender::DEFAULT_MAX_IN_FLIGHT,
    }
}

/// A test's world: its NATS and Postgres, a Telegram sandbox, and users
/// registered through events (the services are started by [`Stack`]).
pub struct Setup {
    pub env: TestEnv,
    pub sandbox: Sandbox,
    pub commands: CampaignCommands,
    pub pool: deadpool_postgres::Pool,
}

impl Setup {
    /// `users` live en users (ids 1 to `users`) on a test environment of
    /// its own.
    pub async fn new(users: i64, sandbox: SandboxConfig) -> Setup {
        Setup::on(TestEnv::new().await, &en_users(users), sandbox).await
    }

    /// `users` (id, language, alive) on `env`, e.g. one on a NATS server
    /// the test stops and restarts.
    pub async fn on(
        env: TestEnv,
        users: &[(i64, Language, bool)],
        sandbox: SandboxConfig,
    ) -> Setup {
        let sandbox = Sandbox::start(sandbox).await.expect("starting the sandbox");
        let js = env.jetstream().await;
        register_users(&EventPublisher::new(js.clone(), env.topology()), users).await;
        let commands = CampaignCommands::new(js, env.topology())
            .await
            .expect("campaign commands");
        let pool = env.pool().await;
        Setup {
            env,
            sandbox,
            commands,
            pool,
        }
    }

    /// `users` registered as bot `bot_id`'s too (users are per bot: an added
    /// bot's campaign reaches only its own).
    pub async fn register_users_of(&self, bot_id: i64, users: &[(i64, Language, bool)]) {
        let publisher = EventPublisher::new(self.env.jetstream().await, self.env.topology());
        register_users_of(&publisher, bot_id, users).await
    }

    /// Every service, in-process, against this setup's sandbox, with
    /// `replicas` senders at `rate_limit`.
    pub fn stack(&self, rate_limit: f64, replicas: usize) -> Stack {
        let senders = SenderSettings {
            rate_limit,
            replicas,
        };
        Stack::start(&self.env, &self.sandbox.url(), senders)
    }
}

/// The key the tests seal added bots' tokens with (`COURIER_TOKEN_KEY`).
pub const TOKEN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Adds the bot of `token` to `env`'s bots bucket, sealed with
/// [`TOKEN_KEY`], as `courierctl bots add` does.
pub async fn add_bot(env: &TestEnv, token: &str) {
    let token: BotToken = token.parse().expect("a well-formed token");
    let key: courier_core::bot_tokens::TokenKey = TOKEN_KEY.parse().expect("the tests' key");
    env.topology()
        .ensure_bots_bucket(&env.jetstream().await)
        .await
        .expect("the bots bucket")
        .put(token.bot_id(), key.seal(&token).into())
        .await
        .expect("sealing the token");
}

/// A sender that also serves the bots added with [`add_bot`].
pub fn sender_serving_added_bots(
    env: &TestEnv,
    telegram_api_url: &str,
    rate_limit: f64,
) -> courier_sender::SenderConfig {
    courier_sender::SenderConfig {
        token_key: TokenKeyConfig::of(Some(TOKEN_KEY.parse().expect("the tests' key"))),
        ..sender_config(env, telegram_api_url, rate_limit)
    }
}

/// Live en users with ids 1 to `count`.
pub fn en_users(count: i64) -> Vec<(i64, Language, bool)> {
    (1..=count).map(|id| (id, Language::En, true)).collect()
}

/// A sandbox without Telegram's rate limits, for tests about other things.
pub fn unlimited_sandbox() -> SandboxConfig {
    SandboxConfig {
        rate_limit: 0,
        chat_rate_limit: 0,
        ..SandboxConfig::default()
    }
}

/// How many messages each chat received, as the sandbox recorded them.
pub fn receipts(sandbox: &Sandbox) -> std::collections::HashMap<i64, usize> {
    let mut received = std::collections::HashMap::new();
    for delivery in sandbox.deliveries() {
        *received.entry(delivery.chat_id).or_default() += 1;
    }
    received
}
