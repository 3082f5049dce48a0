//! Fan-out of one started campaign: one SendMessage work item per
//! recipient, in recipient order, resumable.
//!
//! The recipients were fixed by the projector when it applied
//! `CampaignStarted` (the `deliveries` rows). The loader walks them in
//! batches by user id and records the last enqueued id after each batch's
//! publishes are acknowledged. A loader restarted mid-way starts after that
//! cursor; the batch in flight at the crash is published again with the
//! same `Nats-Msg-Id`s, which JetStream drops inside its dedup window.
//! Past that window (a loader down for minutes) both copies stay, so the
//! loader notes how far the batch it is publishing reaches before it
//! publishes, and marks the items it republishes up to there with
//! [`MAYBE_DUPLICATE_HEADER`]: a sender checks those for an outcome.

use std::future::IntoFuture;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use courier_core::proto::v1::{Names, SendMessage};
use courier_core::topology::{MAYBE_DUPLICATE_HEADER, Topology};
use courier_core::trace_context;
use futures::future::try_join_all;
use prost::Message as _;
use tracing::Instrument as _;
use uuid::Uuid;

/// The next batch of recipients: `user_id`, `chat_id`, `variant`.
const RECIPIENTS: &str = "SELECT user_id, chat_id, variant FROM deliveries
     WHERE campaign_id = $1 AND user_id > $2 AND status = 'pending'
     ORDER BY user_id LIMIT $3";

/// The same, then the names a greeting uses, as the campaign's bot's
/// registry has them now.
const RECIPIENTS_WITH_NAMES: &str =
    "SELECT d.user_id, d.chat_id, d.variant, u.first_name, u.last_name, u.username
     FROM deliveries d JOIN users u
         ON u.bot_id = (SELECT bot_id FROM campaigns WHERE campaign_id = $1)
        AND u.user_id = d.user_id
     WHERE d.campaign_id = $1 AND d.user_id > $2 AND d.status = 'pending'
     ORDER BY d.user_id LIMIT $3";

/// Where a fan-out ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FanOut {
    /// Every recipient is enqueued (or the campaign needs none).
    Done { enqueued: u64 },
    /// The projector has not applied the campaign's start yet.
    NotProjectedYet,
    /// Shutdown was requested between batches; the cursor is saved.
    Interrupted,
}

pub struct Loader {
    pub js: jetstream::Context,
    pub topology: Topology,
    pub pool: deadpool_postgres::Pool,
    pub batch_size: i64,
}

impl Loader {
    /// Enqueues the campaign's remaining recipients. `on_batch` runs after
    /// each batch (the caller extends its ack deadline there) and returns
    /// false to stop early.
    pub async fn fan_out<F, Fut>(&self, campaign: Uuid, mut on_batch: F) -> anyhow::Result<FanOut>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT status, audience_size, personal, bot_id FROM campaigns WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?
        else {
            return Ok(FanOut::NotProjectedYet);
        };
        // A campaign that greets by name carries each recipient's names.
        let recipients_query = match row.get::<_, bool>(2) {
            true => RECIPIENTS_WITH_NAMES,
            false => RECIPIENTS,
        };
        let Some(audience_size) = row.get::<_, Option<i32>>(1) else {
            return Ok(FanOut::NotProjectedYet);
        };
        let bot_id: i64 = row.get(3);
        client
            .execute(
                "INSERT INTO loader_cursors (campaign_id, last_user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&campaign, &i64::MIN],
            )
            .await?;
        let cursor = client
            .query_one(
                "SELECT last_user_id, finished, publishing_through FROM loader_cursors
                 WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?;
        let (mut last_user_id, finished): (i64, bool) = (cursor.get(0), cursor.get(1));
        // Items up to here may be in the stream already (a crash mid-batch).
        let maybe_enqueued_through: i64 = cursor.get::<_, Option<i64>>(2).unwrap_or(i64::MIN);
        if finished {
            return Ok(FanOut::Done { enqueued: 0 });
        }
        tracing::info!(%campaign, audience_size, resume_after = last_user_id, "fanning out");
        let subject = self.topology.work_subject(bot_id, &campaign.to_string());
        let mut enqueued = 0u64;
        let metrics = courier_core::metrics::loader();
        loop {
            let batch_began = std::time::Instant::now();
            let recipients = client
                .query(
                    recipients_query,
                    &[&campaign, &last_user_id, &self.batch_size],
                )
                .await?;
            let Some(last) = recipients.last() else { break };
            let batch_last_user_id: i64 = last.get(0);
            if batch_last_user_id > maybe_enqueued_through {
                client
                    .execute(
                        "UPDATE loader_cursors SET publishing_through = $2 WHERE campaign_id = $1",
                        &[&campaign, &batch_last_user_id],
                    )
                    .await?;
            }
            let items = recipients.iter().map(|row| {
                let item = SendMessage {
                    campaign_id: campaign.to_string(),
                    user_id: row.get(0),
                    chat_id: row.get(1),
                    names: (row.len() > 3).then(|| Names {
                        first_name: row.get(3),
                        last_name: row.get(4),
                        username: row.get(5),
                    }),
                    variant: row.get(2),
                    amend: None,
                    bot_id,
                };
                let maybe_duplicate = item.user_id <= maybe_enqueued_through;
                (
                    format!("{campaign}.{}", item.user_id),
                    item,
                    maybe_duplicate,
                )
            });
            self.publish_batch(&subject, items.collect()).await?;
            client
                .execute(
                    "UPDATE loader_cursors SET last_user_id = $2 WHERE campaign_id = $1",
                    &[&campaign, &batch_last_user_id],
                )
                .await?;
            enqueued += recipients.len() as u64;
            metrics.enqueued.inc_by(recipients.len() as u64);
            metrics.batch_duration.observe([], batch_began.elapsed());
            last_user_id = batch_last_user_id;
            if !on_batch().await {
                return Ok(FanOut::Interrupted);
            }
        }
        client
            .execute(
                "UPDATE loader_cursors SET finished = TRUE WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?;
        tracing::info!(%campaign, enqueued, "fan-out finished");
        Ok(FanOut::Done { enqueued })
    }

    /// Publishes one batch of work items (each with its message id, and
    /// whether an earlier run may have published it already) and waits
    /// until JetStream has stored them all. One PRODUCER span per batch
    /// (OpenTelemetry's batch publish): its items' sends descend from it.
    pub(crate) async fn publish_batch(
        &self,
        subject: &str,
        items: Vec<(String, SendMessage, bool)>,
    ) -> anyhow::Result<()> {
        let publish = trace_context::producer_span(subject);
        publish.record(
            "messaging.batch.message_count",
            i64::try_from(items.len()).unwrap_or(i64::MAX),
        );
        let mut headers = HeaderMap::new();
        publish.in_scope(|| trace_context::inject(&mut headers));
        let mut maybe_duplicate_headers = headers.clone();
        maybe_duplicate_headers.insert(MAYBE_DUPLICATE_HEADER, "1");
        let mut acks = Vec::with_capacity(items.len());
        for (id, item, maybe_duplicate) in items {
            let headers = match maybe_duplicate {
                true => &maybe_duplicate_headers,
                false => &headers,
            };
            let message = PublishMessage::build()
                .headers(headers.clone())
                .message_id(id)
                .payload(item.encode_to_vec().into());
            acks.push(self.js.send_publish(subject.to_owned(), message).await?);
        }
        try_join_all(acks.into_iter().map(IntoFuture::into_future))
            .instrument(publish)
            .await?;
        Ok(())
    }
}
