//! The projector: applies the events and delivery-outcome streams to the
//! Postgres read model (users, admins, campaigns, deliveries, counters),
//! idempotently, and publishes what only it can see: `CampaignCompleted`
//! when a campaign's last recipient has an outcome, `CampaignPaused` when
//! Telegram keeps refusing a campaign's content.
//!
//! A message's way through the modules:
//! - [`runner`]: the active projector (one holds a Postgres advisory lock,
//!   others stand by) reads both streams from their checkpoints with
//!   ordered consumers and takes whatever has arrived as one batch.
//! - [`projection`]: the batch is one transaction ([`projection::Batch`]);
//!   an event is decoded and dispatched on its payload to its family
//!   (campaigns, users, admins), an outcome finishes its recipient; a
//!   message that cannot be applied is parked. The commit moves the
//!   stream's checkpoint with the changes.
//! - [`standing`]: after the commit, each campaign the batch touched is
//!   read once; [`content_guard`] pauses it or [`completion`] completes it,
//!   by publishing an event in the campaign's trace that the projector
//!   then applies like any other; [`delivery_slo`] counts the recipients
//!   the batch resolved, on time or late.
//!
//! Beside that path: [`progress`] tells `/readyz` whether batches move,
//! [`lag`] and [`gauges`] publish metrics on timers of their own, and
//! [`rebuild`] replays the streams into an emptied read model.

pub mod completion;
pub mod content_guard;
pub mod delivery_slo;
pub mod gauges;
pub mod lag;
pub mod progress;
pub mod projection;
pub mod rebuild;
pub mod runner;
pub mod standing;

use std::sync::Arc;
use std::time::Instant;

use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::{retry, startup};
use tokio_util::sync::CancellationToken;

use crate::progress::Progress;

/// What the projector needs to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectorConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Runs until `shutdown` fires. Losing NATS or Postgres restarts the loop
/// from the checkpoints after a backoff; nothing is skipped or applied twice.
pub async fn run(config: ProjectorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(nats) = startup::nats(&config.nats, "courier-projector", &shutdown).await? else {
        return Ok(());
    };
    let Some(pool) = startup::postgres(&config.database, &shutdown).await? else {
        return Ok(());
    };
    tokio::spawn(gauges::publish(pool.clone(), shutdown.clone()));
    tokio::spawn(lag::watch(nats.clone(), pool.clone(), shutdown.clone()));
    let progress = Arc::new(Progress::default());
    let watched = Arc::downgrade(&progress);
    courier_core::health::watched_check("projector", move || {
        watched.upgrade()?.not_ready(Instant::now())
    });
    courier_core::health::started();
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        let result = async {
            runner::Runner::new(nats.clone(), &pool, progress.clone())
                .await?
                .run(shutdown.clone())
                .await
        }
        .await;
        match result {
            Ok(()) => failures = 0,
            Err(error) => {
                progress.failed(&error);
                let delay = retry::backoff(failures, std::time::Duration::from_secs(10));
                tracing::error!(
                    error = format!("{error:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "projector stopped; restarting"
                );
                failures += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    Ok(())
}
