//! End-to-end test support: the courier services started in-process on a
//! test's own NATS prefix and database, talking to the Telegram sandbox.
//! The tests themselves are in `tests/`.

use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::config::{BotToken, TelegramConfig};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Audience, CampaignOptions, Content, ContentKind, Event, Language, UserBlocked, UserRegistered,
    event::Payload,
};
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

/// Registers users through events, as the bot or `courierctl users import`
/// would, and blocks those marked not alive.
pub async fn register_users(publisher: &EventPublisher, users: &[(i64, Language, bool)]) {
    for &(user_id, language, alive) in users {
        let registered = Event::new(Payload::UserRegistered(UserRegistered {
            user_id,
            chat_id: user_id,
            language: language.into(),
        }));
        publisher
            .publish(&registered)
            .await
            .expect("publishing UserRegistered");
        if !alive {
            let blocked = Event::new(Payload::UserBlocked(UserBlocked {
                user_id,
                reason: "blocked the bot".into(),
            }));
            publisher
                .publish(&blocked)
                .await
                .expect("publishing UserBlocked");
        }
    }
}

/// A campaign's row in the read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    pub status: String,
    pub audience_size: Option<i32>,
    pub delivered: i32,
    pub not_alive: i32,
    pub failed: i32,
}

pub async fn campaign_row(
    client: &tokio_postgres::Client,
    campaign: uuid::Uuid,
) -> Option<CampaignRow> {
    let row = client
        .query_opt(
            "SELECT status, audience_size, delivered, not_alive, failed FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .ok()??;
    Some(CampaignRow {
        status: row.get(0),
        audience_size: row.get(1),
        delivered: row.get(2),
        not_alive: row.get(3),
        failed: row.get(4),
    })
}

/// Waits until the campaign reaches `status` and returns its row.
pub async fn wait_for_status(
    client: &tokio_postgres::Client,
    campaign: uuid::Uuid,
    status: &str,
    deadline: std::time::Duration,
) -> CampaignRow {
    courier_testing::wait_until(&format!("campaign {status}"), deadline, || async {
        campaign_row(client, campaign)
            .await
            .filter(|row| row.status == status)
    })
    .await
}

/// Publishes a text campaign to `audience`, as the bot's Start button does.
pub async fn start_text_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    text: &str,
) -> uuid::Uuid {
    start_campaign(
        commands,
        audience,
        Content {
            kind: ContentKind::Text.into(),
            text: text.into(),
            ..Default::default()
        },
    )
    .await
}

pub async fn start_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    content: Content,
) -> uuid::Uuid {
    commands
        .create_and_start(NewCampaign {
            created_by: 1,
            audience,
            content,
            options: CampaignOptions::default(),
        })
        .await
        .expect("starting the campaign")
}

/// Waits until the projector has applied `count` users.
pub async fn wait_for_users(
    client: &tokio_postgres::Client,
    count: i64,
    deadline: std::time::Duration,
) {
    courier_testing::wait_until("users projected", deadline, || async {
        let row = client
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .ok()?;
        (row.get::<_, i64>(0) == count).then_some(())
    })
    .await
}
