//! The loader: watches campaign events and turns each started campaign into
//! one SendMessage work item per recipient (see [`fanout`]).

pub mod fanout;

use std::time::Duration;

use async_nats::jetstream::AckKind;
use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::event::EVENT_TYPE_HEADER;
use courier_core::proto::v1::event::Payload;
use courier_core::topology::LOADER_CONSUMER;
use courier_core::{startup, trace_context};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::fanout::{FanOut, Loader};

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
        default_value_t = 1000
    )]
    pub batch_size: i64,
}

/// Delay before a started campaign is looked at again while the projector
/// has not applied it yet.
const NOT_PROJECTED_RETRY: Duration = Duration::from_millis(250);

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
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .messages()
        .await?;
    let loader = Loader {
        js: nats.js.clone(),
        topology: nats.topology.clone(),
        pool,
        batch_size: config.batch_size,
    };
    tracing::info!("loader ready");
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(message) => message.map_err(anyhow::Error::msg)?,
                None => return Ok(()),
            },
        };
        let is_start = message
            .headers
            .as_ref()
            .and_then(|h| h.get(EVENT_TYPE_HEADER))
            .is_some_and(|t| t.as_str() == "CampaignStarted");
        let campaign = if is_start {
            match courier_core::event::decode(&message.payload) {
                Ok((_, _, Payload::CampaignStarted(started))) => {
                    uuid::Uuid::parse_str(&started.campaign_id).ok()
                }
                _ => None,
            }
        } else {
            None
        };
        let Some(campaign) = campaign else {
            // Not ours (or unreadable: the projector parks those).
            message.ack().await.map_err(anyhow::Error::msg)?;
            continue;
        };
        let span = tracing::info_span!("fan_out", campaign = %campaign);
        trace_context::adopt(&span, message.headers.as_ref());
        let progress = || async {
            // Fan-out outlives the ack wait: tell JetStream we are on it.
            let _ = message.ack_with(AckKind::Progress).await;
            !shutdown.is_cancelled()
        };
        let result = loader.fan_out(campaign, progress).instrument(span).await;
        let ack = match result {
            Ok(FanOut::Done { .. }) => AckKind::Ack,
            Ok(FanOut::NotProjectedYet) => AckKind::Nak(Some(NOT_PROJECTED_RETRY)),
            Ok(FanOut::Interrupted) => AckKind::Nak(None),
            Err(error) => {
                tracing::error!(%campaign, error = format!("{error:#}"), "fan-out failed; will retry");
                AckKind::Nak(Some(Duration::from_secs(1)))
            }
        };
        message.ack_with(ack).await.map_err(anyhow::Error::msg)?;
    }
}
