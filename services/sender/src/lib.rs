//! The sender: any number of replicas pull SendMessage items from one
//! JetStream consumer per bot and deliver them through the Bot API at the
//! bot's rate budget, recording one outcome per recipient.
//!
//! A work item's way through the modules:
//! - [`serve`] pulls a bot's items from its consumer (`senders` for the
//!   default bot, whose token is `TELEGRAM_BOT_TOKEN`; one per bot added
//!   with `courierctl bots add`, served by [`added_bots`] while it has
//!   work, [`bots_with_work`]), as many at once
//!   as that bot's [`in_flight`] limit allows (it follows Telegram's
//!   measured answer time), and hands each to the [`worker`] with the
//!   bot's own state ([`bot`]: client, budgets, chat spacing, Stars).
//! - [`worker`] works it in four stages. *Gate*: the campaign's status and
//!   content from the [`campaigns`] view (fed by the event stream), and an
//!   outcome the recipient may already have. *Pace*: a slot from the
//!   token's shared schedule ([`budget`], paced by [`rate`], both over NATS
//!   KV numbers in [`kv_number`]), the chat's spacing ([`chat_spacing`])
//!   and, around a NATS restart, a claim on the recipient
//!   ([`restart_guard`]). *Call*: `courier_telegram`'s Bot API client,
//!   its failure classified. *Record*: [`policy`] turns the answer into an
//!   action (store the outcome and ack, or NAK with a delay to be tried
//!   again by redelivery).
//!
//! [`limits`] checks and publishes the configured rates for the bot's
//! estimates.

pub mod added_bots;
pub mod bot;
pub mod bots_with_work;
pub mod budget;
pub mod campaigns;
pub mod chat_spacing;
pub mod in_flight;
pub mod kv_number;
pub mod limits;
pub mod policy;
pub mod rate;
pub mod restart_guard;
pub mod stars_out;
pub mod tick;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use courier_core::commands::CampaignCommands;
use courier_core::config::{NatsConfig, TelegramConfig, TokenKeyConfig};
use courier_core::event::EventPublisher;
use courier_core::send_limits::{self, Lane};
use courier_core::startup;
use courier_core::topology::{DEFAULT_BOT, PULL_EXPIRES, SEND_TIMEOUT, SENDERS_CONSUMER};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use courier_telegram::bot_api::BotApi;

use crate::bot::Bot;
use crate::worker::Worker;

#[derive(Debug, Clone, clap::Args)]
pub struct SenderConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub telegram: TelegramConfig,
    /// Set, the sender also serves every bot added with `courierctl bots
    /// add` ([`added_bots`]).
    #[command(flatten)]
    pub token_key: TokenKeyConfig,
    /// Messages per second for the bot token (Telegram's bulk limit is ~30).
    #[arg(
        long = "rate-limit",
        env = "SENDER_RATE_LIMIT",
        value_name = "SENDER_RATE_LIMIT",
        default_value_t = send_limits::DEFAULT_FREE_RATE
    )]
    pub rate_limit: f64,
    /// Messages per second for paid-broadcast campaigns (up to 1000).
    #[arg(
        long = "paid-rate-limit",
        env = "SENDER_PAID_RATE_LIMIT",
        value_name = "SENDER_PAID_RATE_LIMIT",
        default_value_t = send_limits::DEFAULT_PAID_RATE
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
    /// Most items this replica works on at once. Below it, it keeps about
    /// 2 × its sends/s × Telegram's measured answer time (at least 64);
    /// all replicas together hold at most 512, far below the ~1000 requests
    /// in flight at which the Bot API answers 429.
    #[arg(long = "max-in-flight", env = "SENDER_MAX_IN_FLIGHT", value_name = "SENDER_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT,
          value_parser = clap::value_parser!(u16).range(1..=500))]
    pub max_in_flight: u16,
}

/// `SENDER_MAX_IN_FLIGHT` unless configured: one replica keeps 1000/s
/// going while Telegram answers within about 300 ms.
pub const DEFAULT_MAX_IN_FLIGHT: u16 = 500;

/// Connections to the Bot API opened before the first send.
const WARM_CONNECTIONS: usize = 8;
/// When a sender stops serving a bot, how long it takes the items already
/// pulled for it, to hand them back: a deadline, since its pull goes on
/// bringing items (the bot's next ones, or those another sender is handing
/// back) as long as it is read. One that arrives later waits out its ack
/// wait.
const HAND_BACK_WAIT: Duration = Duration::from_millis(50);

pub async fn run(config: SenderConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    limits::check(&config).map_err(anyhow::Error::msg)?;
    let Some(nats) = startup::nats(&config.nats, "courier-sender", &shutdown).await? else {
        return Ok(());
    };
    let max_in_flight = usize::from(config.max_in_flight);
    let kit = bot::BotKit {
        rates: nats.js.get_key_value(nats.topology.rate_bucket()).await?,
        chats: nats.js.get_key_value(nats.topology.chat_bucket()).await?,
        chat_bucket: nats.topology.chat_bucket(),
        client: nats.client.clone(),
        config: config.clone(),
    };
    let api = BotApi::new(&config.telegram, SEND_TIMEOUT, max_in_flight)?;
    let token_bot_id = config.telegram.bot_token.bot_id();
    let default_bot = kit.bot(DEFAULT_BOT, token_bot_id, api).await;
    let commands = CampaignCommands::new(nats.js.clone(), nats.topology.clone()).await?;
    let campaigns = campaigns::Campaigns::new(
        &nats.js,
        nats.client.clone(),
        nats.topology.clone(),
        commands,
        default_bot.chat_spacing.interval(),
    )
    .await?;
    tokio::spawn(campaigns.clone().follow(shutdown.clone()));
    let worker = Arc::new(Worker {
        outcomes: nats.js.get_stream(nats.topology.outcomes_stream()).await?,
        events: EventPublisher::new(nats.js.clone(), nats.topology.clone()),
        campaigns: campaigns.clone(),
        restart_guard: restart_guard::RestartGuard::new(
            nats.js.get_key_value(nats.topology.claims_bucket()).await?,
            &nats.client,
        ),
        js: nats.js.clone(),
        topology: nats.topology.clone(),
    });
    tokio::spawn(
        worker
            .restart_guard
            .clone()
            .watch(nats.connected.clone(), shutdown.clone()),
    );
    tokio::spawn(default_bot.stars_out.clone().follow(shutdown.clone()));
    let connections = max_in_flight.min(WARM_CONNECTIONS);
    tracing::info!(bot = token_bot_id, connections, "connecting to the Bot API");
    match default_bot.warm_up(connections).await {
        Some(401 | 404) => anyhow::bail!(worker::WorkError::Unauthorized),
        Some(_) => {}
        None => tracing::warn!("Telegram did not answer getMe; sends will retry"),
    }
    let consumer = nats
        .js
        .get_stream(nats.topology.work_stream())
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>(SENDERS_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let metrics = courier_core::metrics::sender();
    metrics
        .rate_limit
        .get([Lane::Free.as_str()])
        .set(config.rate_limit);
    metrics
        .rate_limit
        .get([Lane::Paid.as_str()])
        .set(config.paid_rate_limit);
    tokio::spawn(courier_core::backlog::watch_senders_backlog(
        nats.js.clone(),
        nats.topology.clone(),
        shutdown.clone(),
    ));
    let stop_added = shutdown.child_token();
    let added_bots = config.token_key.key().map(|key| {
        let with_work = bots_with_work::BotsWithWork::new();
        tokio::spawn(with_work.clone().follow(
            campaigns.clone(),
            nats.js.clone(),
            nats.topology.clone(),
            stop_added.clone(),
        ));
        let added = added_bots::AddedBots {
            worker: worker.clone(),
            kit,
            api: default_bot.api.clone(),
            key,
            with_work,
            js: nats.js.clone(),
            topology: nats.topology.clone(),
        };
        tokio::spawn(added.follow(stop_added.clone()))
    });
    courier_core::health::started();
    tracing::info!(
        bot = token_bot_id,
        rate = config.rate_limit,
        max_in_flight,
        "sender ready"
    );
    let served = serve(&worker, &default_bot, consumer, &shutdown).await;
    // The added bots hand back what they hold before the sender exits.
    stop_added.cancel();
    if let Some(added_bots) = added_bots {
        added_bots
            .await
            .map_err(|_| anyhow::anyhow!("following the added bots panicked"))?;
    }
    match served {
        Served::Stopped => Ok(()),
        Served::TokenRefused => anyhow::bail!(worker::WorkError::Unauthorized),
    }
}

/// How serving a bot ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// Shutdown, or the sender was told to stop serving the bot.
    Stopped,
    /// Telegram refused the bot's token: its items wait for a new one.
    TokenRefused,
}

/// Works `bot`'s items from `consumer`, as many at once as its in-flight
/// limit allows, until `stop` or a refused token; then it hands back what
/// it pulled but has not sent, and finishes the sends on their way.
pub async fn serve(
    worker: &Worker,
    bot: &Bot,
    consumer: jetstream::consumer::PullConsumer,
    stop: &CancellationToken,
) -> Served {
    let refused = stop.child_token();
    // Pull in batches of the smallest in-flight limit: items buffered here
    // age towards their ack deadline.
    let messages = match consumer
        .stream()
        .max_messages_per_batch(bot.in_flight_limit())
        .expires(PULL_EXPIRES)
        .messages()
        .await
    {
        Ok(messages) => messages,
        Err(error) => {
            // The stream's own requests are retried; only a bad
            // configuration ends up here.
            tracing::error!(bot = bot.id, %error, "pulling work items");
            return Served::Stopped;
        }
    };
    let mut messages = std::pin::pin!(messages);
    // Items being worked on, as many as the in-flight limit allows; a new
    // one is pulled only when there is room, so none waits here for its
    // turn while its ack deadline runs.
    let mut working = futures::stream::FuturesUnordered::new();
    loop {
        let room = working.len() < bot.in_flight_limit();
        tokio::select! {
            () = refused.cancelled() => break,
            Some(()) = working.next(), if !working.is_empty() => {}
            message = messages.next(), if room => match message {
                Some(Ok(message)) => working.push(work_on(worker, bot, &refused, message)),
                Some(Err(error)) => tracing::warn!(%error, "pulling work items"),
                None => break,
            },
        }
    }
    // Stopping: what was pulled but not started goes back at once (not
    // after its ack wait); what was started finishes, or goes back if it
    // still waits for its slot.
    let hand_back = async {
        let deadline = tokio::time::Instant::now() + HAND_BACK_WAIT;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, messages.next()).await {
            let _ = message.ack_with(jetstream::AckKind::Nak(None)).await;
        }
    };
    tokio::join!(hand_back, async { while working.next().await.is_some() {} });
    match refused.is_cancelled() && !stop.is_cancelled() {
        true => Served::TokenRefused,
        false => Served::Stopped,
    }
}

/// Works one item in its own span, and counts how it ended.
async fn work_on(
    worker: &Worker,
    bot: &Bot,
    refused: &CancellationToken,
    message: jetstream::Message,
) {
    let span = courier_core::consumer_span!(
        courier_core::telemetry::SEND_SPAN,
        message,
        campaign_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let metrics = courier_core::metrics::sender();
    metrics.in_flight.inc();
    let receipt = worker.restart_guard.receipt();
    let handled = worker
        .handle(bot, &message, receipt, refused)
        .instrument(span.clone())
        .await;
    metrics.in_flight.dec();
    match handled {
        Ok(handled) => {
            span.record("outcome", handled.as_str());
            metrics.sends.get([handled.as_str()]).inc();
        }
        Err(worker::WorkError::Unauthorized) => {
            tracing::error!(bot = bot.id, "Telegram refused the bot's token (401/404)");
            refused.cancel();
        }
        Err(worker::WorkError::Unfinished(error)) => {
            // The worker sent it back to be tried again.
            tracing::warn!(error = format!("{error:#}"), "work item not finished");
        }
    }
}
