//! The loader: watches campaign events and turns each started campaign into
//! one SendMessage work item per recipient (see [`fanout`]); when a paused
//! campaign resumes or is cancelled it releases or drops the items senders
//! set aside (see [`held`]).

pub mod fanout;
pub mod held;

use std::time::Duration;

use async_nats::jetstream::AckKind;
use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::event::EVENT_TYPE_HEADER;
use courier_core::proto::v1::event::Payload;
use courier_core::topology::{LOADER_CONSUMER, PULL_EXPIRES};
use courier_core::{startup, trace_context};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::fanout::{FanOut, Loader};
use crate::held::Held;

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

/// Delay before a started campaign is looked at again while the projector
/// has not applied it yet. It usually has within a fraction of a second,
/// and the admin is waiting: every 25 ms for the first second, then every
/// second.
fn not_projected_retry(delivered: i64) -> Duration {
    if delivered <= 40 {
        Duration::from_millis(25)
    } else {
        Duration::from_secs(1)
    }
}

/// When to look for held items again after a resume: longer than a
/// sender's status check can be stale.
const SECOND_SWEEP: Duration = Duration::from_secs(3);

fn retry_later(error: anyhow::Error) -> AckKind {
    tracing::error!(
        error = format!("{error:#}"),
        "loader step failed; will retry"
    );
    AckKind::Nak(Some(Duration::from_secs(1)))
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
    let mut messages = consumer
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
    tokio::spawn(courier_core::health::watch_senders_backlog(
        nats.js.clone(),
        nats.topology.clone(),
        shutdown.clone(),
    ));
    courier_core::health::started();
    tracing::info!("loader ready");
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(message) => message.map_err(anyhow::Error::msg)?,
                None => return Ok(()),
            },
        };
        let event_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get(EVENT_TYPE_HEADER))
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default();
        if !matches!(
            event_type.as_str(),
            "CampaignStarted" | "CampaignResumed" | "CampaignCancelled"
        ) {
            message.ack().await.map_err(anyhow::Error::msg)?;
            continue;
        }
        let campaign = match courier_core::event::decode(&message.payload) {
            Ok((_, _, Payload::CampaignStarted(e))) => uuid::Uuid::parse_str(&e.campaign_id).ok(),
            Ok((_, _, Payload::CampaignResumed(e))) => uuid::Uuid::parse_str(&e.campaign_id).ok(),
            Ok((_, _, Payload::CampaignCancelled(e))) => uuid::Uuid::parse_str(&e.campaign_id).ok(),
            // Unreadable: the projector parks it for an operator.
            _ => None,
        };
        let Some(campaign) = campaign else {
            message.ack().await.map_err(anyhow::Error::msg)?;
            continue;
        };
        let span = tracing::info_span!("loader", campaign_id = %campaign, event = event_type, recipients = tracing::field::Empty);
        trace_context::adopt(&span, message.headers.as_ref());
        let ack = async {
            match event_type.as_str() {
                "CampaignStarted" => {
                    let progress = || async {
                        // Fan-out outlives the ack wait: tell JetStream we are on it.
                        let _ = message.ack_with(AckKind::Progress).await;
                        !shutdown.is_cancelled()
                    };
                    match loader.fan_out(campaign, progress).await {
                        Ok(FanOut::Done { enqueued }) => {
                            tracing::Span::current().record("recipients", enqueued);
                            AckKind::Ack
                        }
                        Ok(FanOut::NotProjectedYet) => {
                            let delivered = message.info().map_or(1, |info| info.delivered);
                            AckKind::Nak(Some(not_projected_retry(delivered)))
                        }
                        Ok(FanOut::Interrupted) => AckKind::Nak(None),
                        Err(error) => retry_later(error),
                    }
                }
                "CampaignResumed" => match held.release(campaign).await {
                    Ok(moved) => {
                        tracing::info!(moved, "released held items");
                        // A sender may set an item aside a moment after the
                        // resume (its status read just before it): sweep
                        // once more after that window.
                        let first = message.info().map(|i| i.delivered <= 1).unwrap_or(false);
                        if first {
                            AckKind::Nak(Some(SECOND_SWEEP))
                        } else {
                            AckKind::Ack
                        }
                    }
                    Err(error) => retry_later(error),
                },
                _ => match held.drop_all(campaign).await {
                    Ok(dropped) => {
                        tracing::info!(dropped, "dropped held items of a cancelled campaign");
                        AckKind::Ack
                    }
                    Err(error) => retry_later(error),
                },
            }
        }
        .instrument(span)
        .await;
        message.ack_with(ack).await.map_err(anyhow::Error::msg)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_not_projected_yet_is_looked_at_soon_then_less_often() {
        assert_eq!(not_projected_retry(1), Duration::from_millis(25));
        assert_eq!(not_projected_retry(40), Duration::from_millis(25));
        assert_eq!(not_projected_retry(41), Duration::from_secs(1));
    }
}
