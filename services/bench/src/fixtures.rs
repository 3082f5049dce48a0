//! Setting the stage for a measurement quickly, and waiting on conditions.
//!
//! The measurements time one service at a time, so what the other services
//! would have produced is written directly: `deliveries` and `users` rows
//! with `generate_series` (a million rows in seconds, where a million
//! `UserRegistered` events through the projector would take minutes), a
//! campaign row as the projector writes it, and work items or outcomes
//! published as the loader and senders publish them (same subject, same
//! `Nats-Msg-Id`, same protobuf).
//!
//! Waiting is always on a condition with a deadline ([`wait_for`]), polled
//! every [`POLL`]; never a sleep standing in for "long enough".

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::proto::v1::{
    AudienceFilter, CampaignOptions, Content, ContentKind, Delivered, DeliveryOutcome, SendMessage,
    delivery_outcome,
};
use courier_core::topology::{DEFAULT_BOT, SENDERS_CONSUMER, Topology};
use courier_testing::TestEnv;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use uuid::Uuid;

use crate::process::{Launcher, Service, ensure_running};

/// The bot token the senders use; the sandbox accepts any well-formed one.
pub const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

/// How often conditions are polled. Small against every interval measured
/// (seconds), and cheap for the servers (one small request each time).
pub const POLL: Duration = Duration::from_millis(10);

/// `env`'s database as a `DATABASE_URL` for a service process.
pub fn database_url(env: &TestEnv) -> String {
    let config = &env.database.database_url;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "127.0.0.1".to_owned(),
    };
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!(
        "postgres://{user}{password}@{host}:{}/{}",
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("postgres"),
    )
}

/// Polls `condition` until it yields a value; an error after `deadline`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut condition: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = condition()
            .await
            .with_context(|| format!("waiting for {what}"))?
        {
            return Ok(value);
        }
        if start.elapsed() >= deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Messages currently in `stream`.
pub async fn stream_messages(js: &jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    let info = js
        .get_stream(stream)
        .await
        .with_context(|| format!("stream {stream}"))?
        .get_info()
        .await
        .with_context(|| format!("info of stream {stream}"))?;
    Ok(info.state.messages)
}

/// Pull requests waiting on a durable consumer: a service that has one out
/// is connected, set up and ready for work.
pub async fn pull_requests(
    js: &jetstream::Context,
    stream: &str,
    consumer: &str,
) -> anyhow::Result<usize> {
    let info = js
        .get_stream(stream)
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>(consumer)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("consumer {consumer} of stream {stream}"))?
        .get_info()
        .await?;
    Ok(info.num_waiting)
}

/// Publishes `count` messages, built by `message(i)` for `i` in
/// `0..count`, keeping at most `window` acknowledgements outstanding;
/// returns the time from the first publish to the last acknowledgement.
pub async fn publish_windowed<F>(
    js: &jetstream::Context,
    count: u64,
    window: usize,
    mut message: F,
) -> anyhow::Result<Duration>
where
    F: FnMut(u64) -> (String, PublishMessage),
{
    let start = Instant::now();
    let mut acks: FuturesUnordered<<PublishAckFuture as IntoFuture>::IntoFuture> =
        FuturesUnordered::new();
    for i in 0..count {
        if acks.len() >= window.max(1)
            && let Some(ack) = acks.next().await
        {
            ack.context("a JetStream publish acknowledgement")?;
        }
        let (subject, publish) = message(i);
        let ack = js.send_publish(subject, publish).await?;
        acks.push(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.context("a JetStream publish acknowledgement")?;
    }
    Ok(start.elapsed())
}

/// One work item of the default bot as the loader publishes it (see
/// `courier_loader::fanout`).
pub fn work_item(topology: &Topology, campaign: Uuid, user_id: i64) -> (String, PublishMessage) {
    work_item_of(topology, DEFAULT_BOT, campaign, user_id)
}

/// The same for bot `bot_id`.
pub fn work_item_of(
    topology: &Topology,
    bot_id: i64,
    campaign: Uuid,
    user_id: i64,
) -> (String, PublishMessage) {
    let item = SendMessage {
        campaign_id: campaign.to_string(),
        user_id,
        chat_id: user_id,
        bot_id,
        ..Default::default()
    };
    let publish = PublishMessage::build()
        .message_id(format!("{campaign}.{user_id}"))
        .payload(item.encode_to_vec().into());
    (
        topology.work_subject(item.bot_id, &item.campaign_id),
        publish,
    )
}

/// One delivered outcome as a sender publishes it (see `courier_sender::worker`).
pub fn delivered_outcome(
    topology: &Topology,
    campaign: Uuid,
    user_id: i64,
) -> (String, PublishMessage) {
    let outcome = DeliveryOutcome {
        campaign_id: campaign.to_string(),
        user_id,
        chat_id: user_id,
        occurred_at_ms: chrono::Utc::now().timestamp_millis(),
        attempts: 1,
        amend: None,
        result: Some(delivery_outcome::Result::Delivered(Delivered {
            message_id: user_id,
            revision: 0,
            ..Default::default()
        })),
    };
    let publish = PublishMessage::build()
        .message_id(format!("{campaign}.{user_id}"))
        .payload(outcome.encode_to_vec().into());
    (
        topology.outcome_subject(&outcome.campaign_id, user_id),
        publish,
    )
}

/// The content every benchmark campaign sends: a short text.
pub fn text_content() -> Content {
    Content {
        kind: ContentKind::Text.into(),
        text: "courier benchmark".into(),
        ..Default::default()
    }
}

pub fn options(paid: bool) -> CampaignOptions {
    CampaignOptions {
        paid_broadcast: paid,
        ..Default::default()
    }
}

/// A campaign row as the projector writes it once the campaign started.
pub async fn insert_campaign(
    client: &tokio_postgres::Client,
    campaign: Uuid,
    paid: bool,
    audience_size: Option<i32>,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO campaigns (campaign_id, created_by, audience, content_kind, content,
                disable_notification, protect_content, paid_broadcast, status, created_at,
                started_at, audience_size, last_event_seq)
             VALUES ($1, 1, 'all', 'text', $2, FALSE, FALSE, $3, 'sending', now(), now(), $4, 0)",
            &[
                &campaign,
                &text_content().encode_to_vec(),
                &paid,
                &audience_size,
            ],
        )
        .await
        .context("inserting the campaign row")?;
    Ok(())
}

/// A sending campaign senders can work on without a projector: its events
/// on the campaign subject (senders read the status there) and its row in
/// Postgres (senders read the content there).
pub async fn sending_campaign(
    env: &TestEnv,
    js: &jetstream::Context,
    client: &tokio_postgres::Client,
    bot_id: i64,
    paid: bool,
) -> anyhow::Result<Uuid> {
    let commands = CampaignCommands::new(js.clone(), env.topology()).await?;
    let campaign = commands
        .create_and_start(NewCampaign {
            bot_id,
            id: uuid::Uuid::now_v7(),
            created_by: 1,
            audience: AudienceFilter::default(),
            content: text_content(),
            variants: Vec::new(),
            options: options(paid),
            title: String::new(),
        })
        .await?;
    insert_campaign(client, campaign, paid, None).await?;
    Ok(campaign)
}

/// `count` pending recipients (users `1..=count`) of `campaign`, as the
/// projector creates them when the campaign starts.
pub async fn insert_deliveries(
    client: &tokio_postgres::Client,
    campaign: Uuid,
    count: u64,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO deliveries (campaign_id, user_id, chat_id, status)
             SELECT $1, g, g, 'pending' FROM generate_series(1::BIGINT, $2::BIGINT) g",
            &[&campaign, &(count as i64)],
        )
        .await
        .context("inserting deliveries")?;
    // Planner statistics, as autovacuum would have them shortly after.
    client.batch_execute("ANALYZE deliveries").await?;
    Ok(())
}

/// `count` live English-speaking users `1..=count`.
pub async fn insert_users(client: &tokio_postgres::Client, count: u64) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO users (user_id, chat_id, language, is_alive, registered_at, updated_at)
             SELECT g, g, 'en', TRUE, now(), now() FROM generate_series(1::BIGINT, $1::BIGINT) g",
            &[&(count as i64)],
        )
        .await
        .context("inserting users")?;
    client.batch_execute("ANALYZE users").await?;
    Ok(())
}

/// The environment of a sender process talking to the sandbox.
pub fn sender_vars(
    sandbox_url: &str,
    rate_limit: f64,
    paid_rate_limit: f64,
    max_in_flight: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN.to_owned()),
        ("TELEGRAM_API_URL", sandbox_url.to_owned()),
        ("SENDER_RATE_LIMIT", rate_limit.to_string()),
        ("SENDER_PAID_RATE_LIMIT", paid_rate_limit.to_string()),
        ("SENDER_MAX_IN_FLIGHT", max_in_flight.to_string()),
    ]
}

/// Starts `count` sender processes named `<label>-sender<i>` and waits
/// until each is pulling from the work stream, so a measurement starts
/// with every sender ready.
pub async fn start_senders(
    launcher: &Launcher,
    env: &TestEnv,
    js: &jetstream::Context,
    vars: &[(&'static str, String)],
    count: usize,
    label: &str,
) -> anyhow::Result<Vec<Service>> {
    let services: Vec<Service> = (1..=count)
        .map(|i| launcher.spawn("courier-sender", &format!("{label}-sender{i}"), env, vars))
        .collect::<anyhow::Result<_>>()?;
    let work = env.topology().work_stream();
    wait_for(
        "every sender to wait for work",
        Duration::from_secs(60),
        || async {
            ensure_running(&services)?;
            let waiting = pull_requests(js, &work, SENDERS_CONSUMER).await?;
            Ok((waiting >= count).then_some(()))
        },
    )
    .await?;
    Ok(services)
}

/// A run's own world: a fresh NATS prefix and database, a client on the
/// database, JetStream and the topology.
pub struct RunEnv {
    pub env: TestEnv,
    pub client: deadpool_postgres::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
}

impl RunEnv {
    pub async fn new() -> anyhow::Result<RunEnv> {
        let env = TestEnv::new().await;
        let client = env.pool().await.get().await?;
        let js = env.jetstream().await;
        let topology = env.topology();
        Ok(RunEnv {
            env,
            client,
            js,
            topology,
        })
    }
}
