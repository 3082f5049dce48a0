//! The loader: watches campaign events and turns each started campaign into
//! one SendMessage work item per recipient; when a paused campaign resumes
//! or is cancelled it releases or drops the items senders set aside.
//!
//! A message's way through the modules:
//! - [`run`]: loaders share one durable pull consumer on the campaign
//!   events and take one event at a time.
//! - [`job`]: the event is decoded and becomes a [`job::Job`] by what it
//!   is (started, resumed, cancelled; any other is acked), and one
//!   dispatch runs it in a span continuing the event's trace.
//! - [`fanout`]: a start enqueues its recipients (fixed by the projector)
//!   in batches, resumably; [`held`]: a resume moves the set-aside items
//!   back, a cancel purges them.
//! - The job's result is the event's acknowledgement: acked when done,
//!   NAKed with a delay to try again (the projector has not applied the
//!   start yet, a step failed, a second sweep after a resume).
//!
//! Beside that path, [`scheduler`] starts scheduled campaigns when the
//! timers NATS holds for them fire, and [`amend`] turns edits and recalls
//! into work items for the messages delivered.

pub mod amend;
pub mod fanout;
pub mod held;
pub mod job;
pub mod scheduler;

use async_nats::jetstream::consumer::pull;
use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::startup;
use courier_core::topology::{LOADER_CONSUMER, PULL_EXPIRES};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::fanout::Loader;
use crate::held::Held;
use crate::job::Job;

#[derive(Debug, Clone, clap::Args)]
pub struct LoaderConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Recipients read and published per batch; the resume cursor is saved
    /// after each batch.
    #[arg(
        long = "loader-batch-size",
        env = "LOADER_BATCH_SIZE",
        value_name = "LOADER_BATCH_SIZE",
        default_value_t = 1000,
        value_parser = clap::value_parser!(i64).range(1..=100_000)
    )]
    pub batch_size: i64,
}

pub async fn run(config: LoaderConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(nats) = startup::nats(&config.nats, "courier-loader", &shutdown).await? else {
        return Ok(());
    };
    let Some(pool) = startup::postgres(&config.database, &shutdown).await? else {
        return Ok(());
    };
    let consumer = nats
        .js
        .get_stream(nats.topology.events_stream())
        .await?
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(LOADER_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // One campaign at a time per loader: fetching more would let the next
    // events age towards their ack deadline while this one fans out.
    let messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .expires(PULL_EXPIRES)
        .messages()
        .await?;
    let loader = Loader {
        js: nats.js.clone(),
        topology: nats.topology.clone(),
        pool,
        batch_size: config.batch_size,
    };
    let held = Held {
        js: nats.js.clone(),
        topology: nats.topology.clone(),
    };
    tokio::spawn(courier_core::backlog::watch_senders_backlog(
        nats.js.clone(),
        nats.topology.clone(),
        shutdown.clone(),
    ));
    courier_core::health::started();
    tracing::info!("loader ready");
    tokio::try_join!(
        scheduler::run(nats.clone(), loader.pool.clone(), shutdown.clone()),
        amend::run(nats.clone(), &loader, shutdown.clone()),
        load(messages, &loader, &held, &shutdown),
    )?;
    Ok(())
}

/// Runs the campaign events' jobs, one at a time, until `shutdown`.
async fn load(
    mut messages: pull::Stream,
    loader: &Loader,
    held: &Held,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(message) => message.map_err(anyhow::Error::msg)?,
                None => return Ok(()),
            },
        };
        let Some(job) = Job::from_event(&message.payload) else {
            message.ack().await.map_err(anyhow::Error::msg)?;
            continue;
        };
        let span = courier_core::consumer_span!(
            "loader",
            message,
            campaign_id = %job.campaign(),
            event = job.event(),
            recipients = tracing::field::Empty
        );
        let ack = job
            .run(loader, held, &message, || !shutdown.is_cancelled())
            .instrument(span)
            .await;
        message.ack_with(ack).await.map_err(anyhow::Error::msg)?;
    }
}
