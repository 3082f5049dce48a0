//! Amendments: a campaign's edit or recall becomes one work item per
//! delivered message still to be edited or deleted, on the campaign's work
//! subject, where senders carry them out at the token's free budget.
//!
//! The loaders share a durable consumer on the amend subjects
//! ([`courier_core::topology::AMENDER_CONSUMER`]). A job waits until the
//! projector has applied its event, then pages through the deliveries
//! that still need it: those delivered with an earlier revision and not
//! edited to this one yet, or not deleted yet. Run again (a crash, a
//! redelivery), it skips what is done; an item published twice is
//! skipped by the sender, which finds its outcome.
//!
//! A message sent with the old content while the edit was being published
//! is delivered after the job read the deliveries: every [`SWEEP_EVERY`],
//! campaigns amended in the last hour whose work items are all done are
//! looked at again, and what still needs the amendment is enqueued.
//!
//! Telegram lets a bot delete a message in a private chat only within 48
//! hours: messages older than that at the recall are not tried (the
//! campaign's card counts them apart).

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, stream::LastRawMessageErrorKind};
use courier_core::amend::DELETABLE_FOR;
use courier_core::proto::v1::{Amend, AmendKind, Names, SendMessage, event::Payload};
use courier_core::startup::Nats;
use courier_core::topology::{AMENDER_CONSUMER, PULL_EXPIRES};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::fanout::Loader;

/// How often amended campaigns are looked at for messages still to amend.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How long after its last amendment a campaign is swept.
const SWEEP_FOR: Duration = Duration::from_secs(3600);
/// Before an amendment the projector has not applied yet is looked at again.
const NOT_PROJECTED_RETRY: Duration = Duration::from_millis(100);

/// What to do to a campaign's delivered messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amendment {
    /// Edit them to this revision of the content.
    Edit(u32),
    /// Delete them.
    Recall,
}

impl Amendment {
    /// The amendment an event asks for, on which campaign.
    pub fn from_event(bytes: &[u8]) -> Option<(Uuid, Amendment)> {
        let (_, _, payload) = courier_core::event::decode(bytes).ok()?;
        let (campaign, amendment) = match &payload {
            Payload::CampaignEdited(e) => (&e.campaign_id, Amendment::Edit(e.revision)),
            Payload::CampaignRecalled(e) => (&e.campaign_id, Amendment::Recall),
            _ => return None,
        };
        Some((Uuid::parse_str(campaign).ok()?, amendment))
    }

    /// The amendment of message `message_id` (an album's first, whose
    /// caption an edit changes; a recall deletes all of `album`).
    fn amend(self, message_id: i64, album: Vec<i64>) -> Amend {
        match self {
            Amendment::Edit(revision) => Amend {
                kind: AmendKind::Edit.into(),
                message_id,
                revision,
                album_message_ids: Vec::new(),
            },
            Amendment::Recall => Amend {
                kind: AmendKind::Delete.into(),
                message_id,
                revision: 0,
                album_message_ids: album,
            },
        }
    }

    /// The work item's message id: the sender's outcome id for it.
    fn item_id(self, campaign: Uuid, user_id: i64) -> String {
        match self {
            Amendment::Edit(revision) => format!("{campaign}.{user_id}.edit.{revision}"),
            Amendment::Recall => format!("{campaign}.{user_id}.delete"),
        }
    }
}

/// The delivered messages still to edit to revision `$4`: sent with an
/// earlier one, not edited to it (or later) and not deleted.
const TO_EDIT: &str = "SELECT d.user_id, d.chat_id, d.variant, d.message_id,
         u.first_name, u.last_name, u.username, d.album_message_ids
     FROM deliveries d LEFT JOIN users u
         ON u.bot_id = (SELECT bot_id FROM campaigns WHERE campaign_id = $1)
        AND u.user_id = d.user_id
     WHERE d.campaign_id = $1 AND d.user_id > $2 AND d.status = 'delivered'
       AND d.message_id IS NOT NULL AND d.revision < $4
       AND NOT EXISTS (SELECT 1 FROM amendments a
                       WHERE a.campaign_id = d.campaign_id AND a.user_id = d.user_id
                         AND (a.kind = 'delete' OR a.revision >= $4))
     ORDER BY d.user_id LIMIT $3";

/// The delivered messages still to delete: not deleted yet, and sent less
/// than `$4` seconds (48 hours) before the recall.
const TO_DELETE: &str = "SELECT d.user_id, d.chat_id, d.variant, d.message_id,
         u.first_name, u.last_name, u.username, d.album_message_ids
     FROM deliveries d LEFT JOIN users u
         ON u.bot_id = (SELECT bot_id FROM campaigns WHERE campaign_id = $1)
        AND u.user_id = d.user_id
     WHERE d.campaign_id = $1 AND d.user_id > $2 AND d.status = 'delivered'
       AND d.message_id IS NOT NULL
       AND d.finished_at > (SELECT recalled_at FROM campaigns c WHERE c.campaign_id = $1)
                           - make_interval(secs => $4)
       AND NOT EXISTS (SELECT 1 FROM amendments a
                       WHERE a.campaign_id = d.campaign_id AND a.user_id = d.user_id
                         AND a.kind = 'delete')
     ORDER BY d.user_id LIMIT $3";

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Amended {
    Done {
        enqueued: u64,
    },
    NotProjectedYet,
    /// A later amendment's job does it instead.
    Superseded,
}

impl Loader {
    /// Enqueues `amendment` for every delivered message of `campaign` that
    /// still needs it.
    pub async fn amend(&self, campaign: Uuid, amendment: Amendment) -> anyhow::Result<Amended> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT revision, recalled_at IS NOT NULL, bot_id FROM campaigns WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?
        else {
            return Ok(Amended::NotProjectedYet);
        };
        let (revision, recalled, bot_id): (i32, bool, i64) = (row.get(0), row.get(1), row.get(2));
        match amendment {
            Amendment::Edit(_) if recalled => return Ok(Amended::Superseded),
            Amendment::Edit(wanted) if revision < wanted as i32 => {
                return Ok(Amended::NotProjectedYet);
            }
            Amendment::Edit(wanted) if revision > wanted as i32 => {
                return Ok(Amended::Superseded);
            }
            Amendment::Recall if !recalled => return Ok(Amended::NotProjectedYet),
            _ => {}
        }
        let deletable_for = DELETABLE_FOR.as_secs_f64();
        let subject = self.topology.work_subject(bot_id, &campaign.to_string());
        let (mut after, mut enqueued) = (i64::MIN, 0u64);
        loop {
            let rows = match amendment {
                Amendment::Edit(_) => {
                    client
                        .query(TO_EDIT, &[&campaign, &after, &self.batch_size, &revision])
                        .await?
                }
                Amendment::Recall => {
                    client
                        .query(
                            TO_DELETE,
                            &[&campaign, &after, &self.batch_size, &deletable_for],
                        )
                        .await?
                }
            };
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            let items = rows.iter().map(|row| {
                let user_id: i64 = row.get(0);
                let names = Names {
                    first_name: row.get::<_, Option<String>>(4).unwrap_or_default(),
                    last_name: row.get::<_, Option<String>>(5).unwrap_or_default(),
                    username: row.get::<_, Option<String>>(6).unwrap_or_default(),
                };
                let item = SendMessage {
                    campaign_id: campaign.to_string(),
                    user_id,
                    chat_id: row.get(1),
                    names: Some(names),
                    variant: row.get(2),
                    amend: Some(amendment.amend(
                        row.get(3),
                        row.get::<_, Option<Vec<i64>>>(7).unwrap_or_default(),
                    )),
                    bot_id,
                };
                (amendment.item_id(campaign, user_id), item, false)
            });
            self.publish_batch(&subject, items.collect()).await?;
            enqueued += rows.len() as u64;
        }
        Ok(Amended::Done { enqueued })
    }

    /// Whether every work item of bot `bot_id`'s `campaign` is done (its
    /// work subject is empty: the work stream drops items as they are
    /// acked).
    async fn no_work_left(
        &self,
        work: &jetstream::stream::Stream,
        bot_id: i64,
        campaign: Uuid,
    ) -> anyhow::Result<bool> {
        let subject = self.topology.work_subject(bot_id, &campaign.to_string());
        match work.get_last_raw_message_by_subject(&subject).await {
            Ok(_) => Ok(false),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(true),
            Err(error) => Err(error.into()),
        }
    }

    /// Enqueues what amended campaigns still need, for those with no work
    /// left in the stream.
    async fn sweep_once(&self) -> anyhow::Result<()> {
        let amended = self
            .pool
            .get()
            .await?
            .query(
                "SELECT campaign_id, revision, recalled_at IS NOT NULL, bot_id FROM campaigns
                 WHERE GREATEST(edited_at, recalled_at) > now() - make_interval(secs => $1)",
                &[&SWEEP_FOR.as_secs_f64()],
            )
            .await?;
        if amended.is_empty() {
            return Ok(());
        }
        let work = self.js.get_stream(self.topology.work_stream()).await?;
        for row in amended {
            let campaign: Uuid = row.get(0);
            let amendment = match row.get::<_, bool>(2) {
                true => Amendment::Recall,
                false => Amendment::Edit(row.get::<_, i32>(1) as u32),
            };
            if self.no_work_left(&work, row.get(3), campaign).await?
                && let Amended::Done { enqueued } = self.amend(campaign, amendment).await?
                && enqueued > 0
            {
                tracing::info!(%campaign, ?amendment, enqueued, "enqueued amendments the first pass missed");
            }
        }
        Ok(())
    }
}

/// Runs amendment jobs from the amender consumer, and the sweep, until
/// `shutdown`.
pub async fn run(nats: Nats, loader: &Loader, shutdown: CancellationToken) -> anyhow::Result<()> {
    let consumer = nats
        .js
        .get_stream(nats.topology.events_stream())
        .await?
        .get_consumer::<jetstream::consumer::pull::Config>(AMENDER_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .expires(PULL_EXPIRES)
        .messages()
        .await?;
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = sweep.tick() => {
                if let Err(error) = loader.sweep_once().await {
                    tracing::warn!(error = format!("{error:#}"), "sweeping amended campaigns");
                }
                continue;
            }
            next = messages.next() => match next {
                Some(message) => message.map_err(anyhow::Error::msg)?,
                None => return Ok(()),
            },
        };
        let Some((campaign, amendment)) = Amendment::from_event(&message.payload) else {
            tracing::warn!(subject = %message.subject, "ignored an amendment the loader cannot read");
            message.ack().await.map_err(anyhow::Error::msg)?;
            continue;
        };
        let span = courier_core::consumer_span!(
            "amend",
            message,
            campaign_id = %campaign,
            amendment = ?amendment,
            recipients = tracing::field::Empty
        );
        let ack = async {
            match loader.amend(campaign, amendment).await {
                Ok(Amended::Done { enqueued }) => {
                    tracing::Span::current()
                        .record("recipients", i64::try_from(enqueued).unwrap_or(i64::MAX));
                    AckKind::Ack
                }
                Ok(Amended::Superseded) => AckKind::Ack,
                Ok(Amended::NotProjectedYet) => AckKind::Nak(Some(NOT_PROJECTED_RETRY)),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "amendment failed; will retry");
                    AckKind::Nak(Some(Duration::from_secs(1)))
                }
            }
        }
        .instrument(span)
        .await;
        message.ack_with(ack).await.map_err(anyhow::Error::msg)?;
    }
}

#[cfg(test)]
mod tests {
    use courier_core::proto::v1::{CampaignEdited, CampaignRecalled, Event};
    use prost::Message as _;

    use super::*;

    #[test]
    fn edits_and_recalls_are_the_amendments_and_name_their_items() {
        let campaign = Uuid::now_v7();
        let edited = Event::new(Payload::CampaignEdited(CampaignEdited {
            campaign_id: campaign.to_string(),
            revision: 3,
            ..Default::default()
        }));
        let recalled = Event::new(Payload::CampaignRecalled(CampaignRecalled {
            campaign_id: campaign.to_string(),
            recalled_by: 1,
        }));
        assert_eq!(
            Amendment::from_event(&edited.encode_to_vec()),
            Some((campaign, Amendment::Edit(3)))
        );
        assert_eq!(
            Amendment::from_event(&recalled.encode_to_vec()),
            Some((campaign, Amendment::Recall))
        );
        assert_eq!(Amendment::from_event(b"\xff not an event"), None);
        assert_eq!(
            Amendment::Edit(3).item_id(campaign, 7),
            format!("{campaign}.7.edit.3")
        );
        assert_eq!(
            Amendment::Recall.item_id(campaign, 7),
            format!("{campaign}.7.delete")
        );
    }
}
