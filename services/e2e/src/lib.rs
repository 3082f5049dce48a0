//! End-to-end test support: the courier services started in-process on a
//! test's own NATS prefix and database, talking to the Telegram sandbox.
//! The tests themselves are in `tests/`.

use courier_core::config::{BotToken, TelegramConfig};
use courier_testing::TestEnv;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The token the tests' bot uses; the sandbox accepts any well-formed one.
pub const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

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
        let shutdown = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(courier_projector::run(
                courier_projector::ProjectorConfig {
                    nats: env.nats.clone(),
                    database: env.database.clone(),
                },
                shutdown.clone(),
            )),
            tokio::spawn(courier_loader::run(
                courier_loader::LoaderConfig {
                    nats: env.nats.clone(),
                    database: env.database.clone(),
                    batch_size: 100,
                },
                shutdown.clone(),
            )),
        ];
        for _ in 0..senders.replicas {
            tasks.push(tokio::spawn(courier_sender::run(
                sender_config(env, telegram_api_url, senders.rate_limit),
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
        database: env.database.clone(),
        telegram: TelegramConfig {
            bot_token: BOT_TOKEN.parse::<BotToken>().expect("a well-formed token"),
            api_url: telegram_api_url.parse().expect("the sandbox URL"),
        },
        rate_limit,
        paid_rate_limit: 1000.0,
        max_in_flight: 64,
    }
}
