//! Items of a paused campaign. Senders set them aside on the campaign's
//! held subject (keeping their attempt counts) instead of NAKing them over
//! and over; on resume the loader moves them back to the send subject, and
//! on cancel it drops them.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage};
use courier_core::proto::v1::SendMessage;
use courier_core::topology::{DEFAULT_BOT, Topology};
use futures::StreamExt;
use prost::Message as _;
use uuid::Uuid;

pub struct Held {
    pub js: jetstream::Context,
    pub topology: Topology,
}

impl Held {
    /// Moves every held item of `campaign` back to be sent; returns how
    /// many. Each is republished (deduplicated by its held sequence) before
    /// it is acked, so a crash in between loses nothing.
    pub async fn release(&self, campaign: Uuid) -> anyhow::Result<u64> {
        let campaign = campaign.to_string();
        let stream = self.js.get_stream(self.topology.work_stream()).await?;
        let name = format!("release-{campaign}");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                name: Some(name.clone()),
                filter_subject: self.topology.held_subject(&campaign),
                ack_policy: consumer::AckPolicy::Explicit,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await?;
        let mut moved = 0;
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(500)
                .expires(Duration::from_millis(500))
                .messages()
                .await?;
            let before = moved;
            while let Some(message) = batch.next().await {
                let message = message.map_err(anyhow::Error::msg)?;
                let held_seq = message.info().map_err(anyhow::Error::msg)?.stream_sequence;
                // Back to its bot's work (an item senders could not read
                // goes to the default bot's, whose sender drops it).
                let bot_id = SendMessage::decode(message.payload.as_ref())
                    .map_or(DEFAULT_BOT, |item| item.bot_id);
                // Headers first: `headers()` replaces the whole map, and the
                // held copy's Nats-Msg-Id would make JetStream drop this one.
                let back = PublishMessage::build()
                    .headers(message.headers.clone().unwrap_or_default())
                    .message_id(format!("{campaign}.released.{held_seq}"))
                    .payload(message.payload.clone());
                self.js
                    .send_publish(self.topology.work_subject(bot_id, &campaign), back)
                    .await?
                    .await?;
                message.double_ack().await.map_err(anyhow::Error::msg)?;
                moved += 1;
            }
            if moved == before {
                break;
            }
        }
        stream.delete_consumer(&name).await?;
        Ok(moved)
    }

    /// Drops every held item of a cancelled campaign; returns how many.
    pub async fn drop_all(&self, campaign: Uuid) -> anyhow::Result<u64> {
        let stream = self.js.get_stream(self.topology.work_stream()).await?;
        let purged = stream
            .purge()
            .filter(self.topology.held_subject(&campaign.to_string()))
            .await?;
        Ok(purged.purged)
    }
}
