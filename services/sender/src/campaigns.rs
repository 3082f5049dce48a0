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

use crate::payload::Template;

pub const STATUS_TTL: Duration = Duration::from_millis(500);

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
}

impl Campaigns {
    pub fn new(pool: deadpool_postgres::Pool, commands: CampaignCommands) -> Campaigns {
        Campaigns {
            pool,
            commands,
            content: RwLock::new(HashMap::new()),
            statuses: RwLock::new(HashMap::new()),
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

    pub fn commands(&self) -> &CampaignCommands {
        &self.commands
    }
}
