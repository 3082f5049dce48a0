//! Starts scheduled campaigns when their timers fire. NATS holds the
//! timers ([`courier_core::schedule`]) and puts a campaign's id on its due
//! subject when the time comes; loaders share one durable consumer on those
//! subjects, so each firing reaches one loader, and comes again if that one
//! dies before acking. The start itself is a command with optimistic
//! concurrency ([`CampaignCommands::start_due`]): a firing that comes twice,
//! or after a cancel or a reschedule, starts nothing.
//!
//! The start is an ordinary `CampaignStarted`: the projector fixes the
//! audience and the loader's other consumer fans it out, as for a campaign
//! started by hand.
//!
//! A backstop covers a timer that was never set (the bot died between the
//! campaign's `CampaignScheduled` and its timer) or was lost: every
//! [`SWEEP_EVERY`] each loader asks the read model for campaigns still
//! scheduled [`OVERDUE`] after their time and starts them the same way.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use courier_core::commands::CampaignCommands;
use courier_core::startup::Nats;
use courier_core::topology::{PULL_EXPIRES, SCHEDULER_CONSUMER};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

/// A firing whose start could not be published comes back after this.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the backstop looks for overdue campaigns, and how late one
/// must be: well past any firing's normal delay.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);
pub const OVERDUE: Duration = Duration::from_secs(10);

pub async fn run(
    nats: Nats,
    pool: deadpool_postgres::Pool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let commands = CampaignCommands::new(nats.js.clone(), nats.topology.clone()).await?;
    tokio::spawn(sweep(commands.clone(), pool, shutdown.clone()));
    let consumer = nats
        .js
        .get_stream(nats.topology.schedules_stream())
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>(SCHEDULER_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut firings = consumer.stream().expires(PULL_EXPIRES).messages().await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = firings.next() => match next {
                Some(message) => message.map_err(anyhow::Error::msg)?,
                None => return Ok(()),
            },
        };
        let span =
            courier_core::consumer_span!("scheduler", message, campaign_id = tracing::field::Empty);
        let ack = fire(&commands, &message).instrument(span).await;
        message.ack_with(ack).await.map_err(anyhow::Error::msg)?;
    }
}

/// The backstop: starts the campaigns still scheduled [`OVERDUE`] after
/// their time, every [`SWEEP_EVERY`].
async fn sweep(
    commands: CampaignCommands,
    pool: deadpool_postgres::Pool,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(error) = start_overdue(&commands, &pool).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "looking for overdue scheduled campaigns failed"
            );
        }
    }
}

async fn start_overdue(
    commands: &CampaignCommands,
    pool: &deadpool_postgres::Pool,
) -> anyhow::Result<()> {
    let overdue = pool
        .get()
        .await?
        .query(
            "SELECT campaign_id FROM campaigns
             WHERE status = 'scheduled' AND scheduled_at < now() - make_interval(secs => $1)",
            &[&OVERDUE.as_secs_f64()],
        )
        .await?;
    for row in overdue {
        let campaign: Uuid = row.get(0);
        if commands.start_due(campaign).await? {
            tracing::warn!(%campaign, "started an overdue scheduled campaign whose timer did not fire");
        }
    }
    Ok(())
}

/// What a firing's acknowledgement is: acked once handled (started, or
/// nothing to start), sent back while the start cannot be published.
async fn fire(commands: &CampaignCommands, message: &jetstream::Message) -> AckKind {
    let Some(campaign) = std::str::from_utf8(&message.payload)
        .ok()
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        tracing::error!(subject = %message.subject, "dropped a timer that names no campaign");
        return AckKind::Term;
    };
    tracing::Span::current().record("campaign_id", tracing::field::display(campaign));
    match commands.start_due(campaign).await {
        Ok(true) => {
            tracing::info!(%campaign, "started a scheduled campaign");
            AckKind::Ack
        }
        Ok(false) => {
            tracing::info!(%campaign, "timer fired for a campaign not waiting to start");
            AckKind::Ack
        }
        Err(error) => {
            tracing::warn!(%campaign, %error, "starting a scheduled campaign failed; trying again");
            AckKind::Nak(Some(RETRY_AFTER))
        }
    }
}
