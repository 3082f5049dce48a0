//! What senders know about campaigns. The content (call template and
//! options) never changes once created, so it is read from the Postgres read
//! model once. The status does change: it comes from the campaign's last
//! event in JetStream (no projector lag) and is re-read after
//! [`STATUS_TTL`], so a pause or cancel reaches every sender within a
//! second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use courier_core::campaign::CampaignStatus;
use courier_core::commands::{CampaignCommands, CommandError};
use courier_core::proto::v1::{CampaignOptions, Content};
use prost::Message as _;
use tokio::sync::RwLock;
use tokio::time::Instant;
use uuid::Uuid;

use courier_telegram::payload::Template;

pub const STATUS_TTL: Duration = Duration::from_millis(500);
/// How long the list of sending campaigns is trusted: a campaign that has
/// just started is missed by the others' sends for at most this long.
pub const SENDING_TTL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Campaign {
    /// The call to make, or why the stored content cannot be sent.
    pub template: Result<Template, String>,
    pub paid: bool,
}

pub struct Campaigns {
    pool: deadpool_postgres::Pool,
    commands: CampaignCommands,
    content: RwLock<HashMap<Uuid, Arc<Campaign>>>,
    statuses: RwLock<HashMap<Uuid, (CampaignStatus, Instant)>>,
    sending: RwLock<Sending>,
}

impl Campaigns {
    pub fn new(pool: deadpool_postgres::Pool, commands: CampaignCommands) -> Campaigns {
        Campaigns {
            pool,
            commands,
            content: RwLock::new(HashMap::new()),
            statuses: RwLock::new(HashMap::new()),
            sending: RwLock::new(Sending::default()),
        }
    }

    /// The campaign's status, at most [`STATUS_TTL`] old (final statuses
    /// never change, so they are kept).
    pub async fn status(&self, id: Uuid) -> Result<CampaignStatus, CommandError> {
        if let Some((status, read_at)) = self.statuses.read().await.get(&id)
            && (status.is_final() || read_at.elapsed() < STATUS_TTL)
        {
            return Ok(*status);
        }
        self.fresh_status(id).await
    }

    /// The campaign's status as of now, for decisions a stale one would
    /// get wrong.
    pub async fn fresh_status(&self, id: Uuid) -> Result<CampaignStatus, CommandError> {
        let (status, _) = self.commands.status(id).await?;
        self.statuses
            .write()
            .await
            .insert(id, (status, Instant::now()));
        Ok(status)
    }

    /// Whether other campaigns may reach campaign `id`'s chats now, as
    /// the read model said at most [`SENDING_TTL`] ago. A campaign not on
    /// the list yet (just started) has it re-read at once. Without the read
    /// model (Postgres down or slow) every campaign counts as overlapping
    /// for a while: sends claim their chats through NATS instead.
    pub async fn overlap(&self, id: Uuid) -> Overlap {
        {
            let sending = self.sending.read().await;
            if let Some(overlap) = sending.overlap(id, Instant::now()) {
                return overlap;
            }
        }
        let mut sending = self.sending.write().await;
        let now = Instant::now();
        if let Some(overlap) = sending.overlap(id, now) {
            return overlap;
        }
        match tokio::time::timeout(SENDING_TTL, self.sending_now()).await {
            Ok(Ok(ids)) => sending.read(ids, now),
            _ => {
                tracing::debug!("sending campaigns unknown; claiming chats through NATS");
                *sending = Sending {
                    first_seen: HashMap::new(),
                    valid_until: Some(now + Duration::from_secs(1)),
                    unknown: true,
                };
            }
        }
        sending.overlap(id, now).unwrap_or(Overlap::Others)
    }

    /// Whether campaign `id` was alone when the list was last read, if that
    /// was at most [`SENDING_TTL`] ago; a stale list says no (the send
    /// claims its chat) rather than be read again.
    pub async fn still_alone(&self, id: Uuid) -> bool {
        let sending = self.sending.read().await;
        sending.overlap(id, Instant::now()) == Some(Overlap::Alone)
    }

    async fn sending_now(&self) -> anyhow::Result<Vec<Uuid>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT campaign_id FROM campaigns WHERE status = 'sending'",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The campaign's content, or `None` while the read model lacks it.
    pub async fn content(&self, id: Uuid) -> anyhow::Result<Option<Arc<Campaign>>> {
        if let Some(campaign) = self.content.read().await.get(&id) {
            return Ok(Some(campaign.clone()));
        }
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT content, disable_notification, protect_content, paid_broadcast
                 FROM campaigns WHERE campaign_id = $1",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let options = CampaignOptions {
            disable_notification: row.get(1),
            protect_content: row.get(2),
            paid_broadcast: row.get(3),
        };
        let template = Content::decode(row.get::<_, &[u8]>(0))
            .map_err(|e| e.to_string())
            .and_then(|content| Template::new(&content, &options).map_err(|e| e.to_string()));
        let campaign = Arc::new(Campaign {
            template,
            paid: options.paid_broadcast,
        });
        self.content.write().await.insert(id, campaign.clone());
        Ok(Some(campaign))
    }
}

/// Who else may be sending to a campaign's chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Nobody: the campaign is the only one sending.
    Alone,
    /// Other campaigns are sending too.
    Others,
    /// Others are sending, and this campaign started so recently that some
    /// replica may not know yet, and would not check its claims: wait.
    JustStarted(Duration),
}

/// The campaigns the read model shows sending, each with when this sender
/// first saw it there, and until when the list holds.
#[derive(Debug, Default)]
struct Sending {
    first_seen: HashMap<Uuid, Instant>,
    valid_until: Option<Instant>,
    /// The read failed: assume others until it is tried again.
    unknown: bool,
}

impl Sending {
    /// The answer for campaign `id` at `now`, if the list can give it.
    fn overlap(&self, id: Uuid, now: Instant) -> Option<Overlap> {
        if self.valid_until.is_none_or(|until| now >= until) {
            return None;
        }
        if self.unknown {
            return Some(Overlap::Others);
        }
        // Not on the list: started since it was read, so read it again.
        let seen = self.first_seen.get(&id)?;
        if self.first_seen.len() == 1 {
            return Some(Overlap::Alone);
        }
        // Every replica's list is at most SENDING_TTL old: one read after
        // this sender first saw it knows it.
        let known_everywhere = *seen + SENDING_TTL;
        Some(match known_everywhere > now {
            true => Overlap::JustStarted(known_everywhere - now),
            false => Overlap::Others,
        })
    }

    /// A fresh read at `now`: `ids` are sending.
    fn read(&mut self, ids: Vec<Uuid>, now: Instant) {
        let first_seen = ids
            .into_iter()
            .map(|id| (id, self.first_seen.get(&id).copied().unwrap_or(now)))
            .collect();
        *self = Sending {
            first_seen,
            valid_until: Some(now + SENDING_TTL),
            unknown: false,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_sending_alone_skips_the_claims_and_a_new_one_waits_until_everyone_knows() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let t0 = Instant::now();
        let mut sending = Sending::default();
        assert_eq!(sending.overlap(a, t0), None, "nothing read yet");
        sending.read(vec![a], t0);
        assert_eq!(sending.overlap(a, t0), Some(Overlap::Alone));
        assert_eq!(sending.overlap(b, t0), None, "b is new: read again");
        let t1 = t0 + SENDING_TTL + Duration::from_millis(30);
        sending.read(vec![a, b], t1);
        assert_eq!(sending.overlap(a, t1), Some(Overlap::Others));
        assert_eq!(
            sending.overlap(b, t1 + Duration::from_millis(10)),
            Some(Overlap::JustStarted(
                SENDING_TTL - Duration::from_millis(10)
            ))
        );
        let t2 = t1 + SENDING_TTL;
        assert_eq!(sending.overlap(b, t2), None, "the list expired");
        sending.read(vec![a, b], t2);
        assert_eq!(
            sending.overlap(b, t2),
            Some(Overlap::Others),
            "first seen at t1"
        );
        sending.read(vec![b], t2);
        assert_eq!(sending.overlap(b, t2), Some(Overlap::Alone));
    }
}
