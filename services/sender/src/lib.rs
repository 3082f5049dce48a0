//! The sender: any number of replicas pull SendMessage items from one
//! JetStream consumer and deliver them through the Bot API at the rate
//! budget, recording one outcome per recipient.

pub mod budget;
pub mod campaigns;
pub mod chat_spacing;
pub mod classify;
pub mod content_guard;
pub mod payload;
pub mod rate;
pub mod telegram;
pub mod worker;

use courier_core::commands::CampaignCommands;
use courier_core::config::{DatabaseConfig, NatsConfig, TelegramConfig};
use courier_core::event::EventPublisher;
use courier_core::topology::{PULL_EXPIRES, SEND_TIMEOUT, SENDERS_CONSUMER};
use courier_core::{startup, trace_context};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::worker::Worker;

#[derive(Debug, Clone, clap::Args)]
pub struct SenderConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub telegram: TelegramConfig,
    /// Messages per second for the bot token (Telegram's bulk limit is ~30).
    #[arg(
        long = "rate-limit",
        env = "SENDER_RATE_LIMIT",
        value_name = "SENDER_RATE_LIMIT",
        default_value_t = 30.0
    )]
    pub rate_limit: f64,
    /// Messages per second for paid-broadcast campaigns (up to 1000).
    #[arg(
        long = "paid-rate-limit",
        env = "SENDER_PAID_RATE_LIMIT",
        value_name = "SENDER_PAID_RATE_LIMIT",
        default_value_t = 1000.0
    )]
    pub paid_rate_limit: f64,
    /// Messages per second to one chat (Telegram allows about one).
    #[arg(
        long = "chat-rate-limit",
        env = "SENDER_CHAT_RATE_LIMIT",
        value_name = "SENDER_CHAT_RATE_LIMIT",
        default_value_t = 1.0
    )]
    pub chat_rate_limit: f64,
    /// Requests in flight at once; about rate × latency is enough.
    #[arg(long = "max-in-flight", env = "SENDER_MAX_IN_FLIGHT", value_name = "SENDER_MAX_IN_FLIGHT", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=500))]
    pub max_in_flight: u16,
}

/// Connections to the Bot API opened before the first send.
const WARM_CONNECTIONS: usize = 8;

pub async fn run(config: SenderConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.rate_limit > 0.0,
        "SENDER_RATE_LIMIT must be positive"
    );
    anyhow::ensure!(
        config.paid_rate_limit > 0.0,
        "SENDER_PAID_RATE_LIMIT must be positive"
    );
    anyhow::ensure!(
        config.chat_rate_limit > 0.0,
        "SENDER_CHAT_RATE_LIMIT must be positive"
    );
    let Some(nats) = startup::nats(&config.nats, "courier-sender", &shutdown).await? else {
        return Ok(());
    };
    let Some(pool) = startup::postgres(&config.database, &shutdown).await? else {
        return Ok(());
    };
    let max_in_flight = usize::from(config.max_in_flight);
    let rates = nats.js.get_key_value(nats.topology.rate_bucket()).await?;
    let bot_id = config.telegram.bot_token.bot_id();
    let commands = CampaignCommands::new(nats.js.clone(), nats.topology.clone()).await?;
    let worker = Worker {
        outcomes: nats.js.get_stream(nats.topology.outcomes_stream()).await?,
        events: EventPublisher::new(nats.js.clone(), nats.topology.clone()),
        api: telegram::BotApi::new(&config.telegram, SEND_TIMEOUT, max_in_flight)?,
        campaigns: campaigns::Campaigns::new(pool, commands),
        free_lane: budget::Budget::new(rates.clone(), bot_id, "free", config.rate_limit),
        paid_lane: budget::Budget::new(rates, bot_id, "paid", config.paid_rate_limit),
        content_guard: Default::default(),
        chat_spacing: std::sync::Mutex::new(chat_spacing::ChatSpacing::new(
            config.chat_rate_limit,
            std::time::Instant::now(),
        )),
        js: nats.js.clone(),
        topology: nats.topology.clone(),
    };
    let connections = max_in_flight.min(WARM_CONNECTIONS);
    tracing::info!(bot = bot_id, connections, "connecting to the Bot API");
    match worker.api.warm_up(connections).await {
        Some(401 | 404) => anyhow::bail!(worker::StopSending::Unauthorized),
        Some(_) => {}
        None => tracing::warn!("Telegram did not answer getMe; sends will retry"),
    }
    let consumer = nats
        .js
        .get_stream(nats.topology.work_stream())
        .await?
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(SENDERS_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Pull about as many as can be worked on: buffered items age towards
    // their ack deadline.
    let messages = consumer
        .stream()
        .max_messages_per_batch(max_in_flight)
        .expires(PULL_EXPIRES)
        .messages()
        .await?;
    metrics::gauge!("courier_send_rate_limit", "lane" => "free").set(config.rate_limit);
    metrics::gauge!("courier_send_rate_limit", "lane" => "paid").set(config.paid_rate_limit);
    tokio::spawn(watch_consumer(consumer.clone(), shutdown.clone()));
    courier_core::health::started();
    tracing::info!(
        bot = config.telegram.bot_token.bot_id(),
        rate = config.rate_limit,
        max_in_flight,
        "sender ready"
    );
    let stop = shutdown.child_token();
    messages
        .take_until(stop.clone().cancelled_owned())
        .for_each_concurrent(max_in_flight, |message| {
            let worker = &worker;
            let stop = &stop;
            async move {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "pulling work items");
                        return;
                    }
                };
                let span = tracing::info_span!(
                    courier_core::telemetry::SEND_SPAN,
                    subject = %message.subject,
                    campaign_id = tracing::field::Empty,
                    outcome = tracing::field::Empty,
                );
                trace_context::adopt(&span, message.headers.as_ref());
                metrics::gauge!("courier_sends_in_flight").increment(1.0);
                let handled = worker.handle(&message).instrument(span.clone()).await;
                metrics::gauge!("courier_sends_in_flight").decrement(1.0);
                match handled {
                    Ok(Ok(handled)) => {
                        span.record("outcome", handled.as_str());
                        metrics::counter!("courier_sends_total", "outcome" => handled.as_str())
                            .increment(1);
                    }
                    Ok(Err(stop_sending)) => {
                        tracing::error!("{stop_sending}");
                        stop.cancel();
                    }
                    Err(error) => {
                        // The worker sent it back to be tried again.
                        tracing::warn!(error = format!("{error:#}"), "work item not finished");
                    }
                }
            }
        })
        .await;
    if stop.is_cancelled() && !shutdown.is_cancelled() {
        anyhow::bail!(worker::StopSending::Unauthorized);
    }
    Ok(())
}

/// Publishes the shared consumer's backlog as metrics (what KEDA and the
/// dashboard scale and alert on).
async fn watch_consumer(
    mut consumer: async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Ok(info) = consumer.info().await {
            metrics::gauge!("courier_consumer_pending").set(info.num_pending as f64);
            metrics::gauge!("courier_consumer_ack_pending").set(info.num_ack_pending as f64);
            metrics::gauge!("courier_consumer_redelivered").set(info.num_redelivered as f64);
        }
    }
}
