//! What tests do with campaigns and users: register users through
//! events, start campaigns the way the bot does, and read the results from
//! the read model.

use async_nats::jetstream::message::PublishMessage;
use courier_core::commands::{Begin, CampaignCommands, NewCampaign};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Audience, CampaignOptions, Content, ContentKind, DeliveryOutcome, Event, Language, UserBlocked,
    UserRegistered, delivery_outcome, event::Payload,
};
use courier_core::topology::DEFAULT_BOT;
use prost::Message as _;

/// Registers users of the default bot through events, as the bot or
/// `courierctl users import` would, and blocks those marked not alive.
pub async fn register_users(publisher: &EventPublisher, users: &[(i64, Language, bool)]) {
    register_users_of(publisher, DEFAULT_BOT, users).await
}

/// The same for bot `bot_id`'s users.
pub async fn register_users_of(
    publisher: &EventPublisher,
    bot_id: i64,
    users: &[(i64, Language, bool)],
) {
    // Users are independent aggregates: publish a window of them at once.
    // Each user's own events stay in order (registered, then blocked).
    for chunk in users.chunks(256) {
        let publishes = chunk.iter().map(|&(user_id, language, alive)| async move {
            let registered = Event::new(Payload::UserRegistered(UserRegistered {
                user_id,
                chat_id: user_id,
                language: language.into(),
                language_chosen: true,
                bot_id,
                ..Default::default()
            }));
            publisher
                .publish(&registered)
                .await
                .expect("publishing UserRegistered");
            if !alive {
                let blocked = Event::new(Payload::UserBlocked(UserBlocked {
                    user_id,
                    reason: "blocked the bot".into(),
                    bot_id,
                }));
                publisher
                    .publish(&blocked)
                    .await
                    .expect("publishing UserBlocked");
            }
        });
        futures::future::join_all(publishes).await;
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
    crate::wait_until(&format!("campaign {status}"), deadline, || async {
        campaign_row(client, campaign)
            .await
            .filter(|row| row.status == status)
    })
    .await
}

/// Publishes a text campaign to one of the seed's audiences (ru, en, all),
/// as the bot's one-tap Start does.
pub async fn start_text_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    text: &str,
) -> uuid::Uuid {
    begin_text_campaign(commands, audience, text, Begin::Now).await
}

pub async fn start_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    content: Content,
) -> uuid::Uuid {
    begin_campaign(commands, audience, content, Begin::Now).await
}

/// A text campaign to begin now or at a set time.
pub async fn begin_text_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    text: &str,
    begin: Begin,
) -> uuid::Uuid {
    begin_campaign(commands, audience, text_content(text), begin).await
}

fn text_content(text: &str) -> Content {
    Content {
        kind: ContentKind::Text.into(),
        text: text.into(),
        ..Default::default()
    }
}

async fn begin_campaign(
    commands: &CampaignCommands,
    audience: Audience,
    content: Content,
    begin: Begin,
) -> uuid::Uuid {
    begin_campaign_of(
        commands,
        courier_core::topology::DEFAULT_BOT,
        audience,
        content,
        begin,
    )
    .await
}

/// A text campaign of bot `bot_id` (one added to the bots bucket), begun now.
pub async fn start_text_campaign_of(
    commands: &CampaignCommands,
    bot_id: i64,
    audience: Audience,
    text: &str,
) -> uuid::Uuid {
    begin_campaign_of(commands, bot_id, audience, text_content(text), Begin::Now).await
}

async fn begin_campaign_of(
    commands: &CampaignCommands,
    bot_id: i64,
    audience: Audience,
    content: Content,
    begin: Begin,
) -> uuid::Uuid {
    commands
        .create_and_begin(
            NewCampaign {
                bot_id,
                id: uuid::Uuid::now_v7(),
                created_by: 1,
                audience: courier_core::audience::from_legacy(audience),
                content,
                variants: Vec::new(),
                options: CampaignOptions::default(),
                title: String::new(),
            },
            begin,
        )
        .await
        .expect("starting the campaign")
}

/// Waits until the projector has applied `count` users.
pub async fn wait_for_users(
    client: &tokio_postgres::Client,
    count: i64,
    deadline: std::time::Duration,
) {
    crate::wait_until("users projected", deadline, || async {
        let row = client
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .ok()?;
        (row.get::<_, i64>(0) == count).then_some(())
    })
    .await
}

/// Publishes `user_id`'s outcome of `campaign` as a sender does (without
/// trace context), at `occurred_at_ms`.
pub async fn publish_outcome(
    js: &async_nats::jetstream::Context,
    topology: &courier_core::topology::Topology,
    campaign: uuid::Uuid,
    user_id: i64,
    occurred_at_ms: i64,
    result: delivery_outcome::Result,
) {
    let campaign = campaign.to_string();
    let outcome = DeliveryOutcome {
        campaign_id: campaign.clone(),
        user_id,
        chat_id: user_id,
        occurred_at_ms,
        attempts: 1,
        amend: None,
        result: Some(result),
    };
    js.send_publish(
        topology.outcome_subject(&campaign, user_id),
        PublishMessage::build()
            .message_id(format!("{campaign}.{user_id}"))
            .payload(outcome.encode_to_vec().into()),
    )
    .await
    .expect("publishing an outcome")
    .await
    .expect("the outcome stored");
}
