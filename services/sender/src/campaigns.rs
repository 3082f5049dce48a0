//! What senders know about campaigns: the call template (content and
//! options) and the current status, read from the Postgres read model and
//! cached. The status is re-read after [`STATUS_TTL`], so a pause or
//! cancel reaches every sender within about a second of being projected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use courier_core::campaign::CampaignStatus;
use courier_core::proto::v1::{CampaignOptions, Content};
use prost::Message as _;
use tokio::sync::RwLock;
use tokio::time::Instant;
use uuid::Uuid;

use crate::payload::Template;

pub const STATUS_TTL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Campaign {
    pub template: Result<Template, String>,
    pub status: CampaignStatus,
    pub paid: bool,
    loaded_at: Instant,
}

pub struct Campaigns {
    pool: deadpool_postgres::Pool,
    cache: RwLock<HashMap<Uuid, Arc<Campaign>>>,
}

impl Campaigns {
    pub fn new(pool: deadpool_postgres::Pool) -> Campaigns {
        Campaigns {
            pool,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The campaign, or `None` while the read model does not have it.
    pub async fn get(&self, id: Uuid) -> anyhow::Result<Option<Arc<Campaign>>> {
        if let Some(campaign) = self.cache.read().await.get(&id)
            && (campaign.status.is_final() || campaign.loaded_at.elapsed() < STATUS_TTL)
        {
            return Ok(Some(campaign.clone()));
        }
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT status, content, disable_notification, protect_content, paid_broadcast
                 FROM campaigns WHERE campaign_id = $1",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let options = CampaignOptions {
            disable_notification: row.get(2),
            protect_content: row.get(3),
            paid_broadcast: row.get(4),
        };
        let template = Content::decode(row.get::<_, &[u8]>(1))
            .map_err(|e| e.to_string())
            .and_then(|content| Template::new(&content, &options).map_err(|e| e.to_string()));
        let campaign = Arc::new(Campaign {
            template,
            status: row.get::<_, &str>(0).parse()?,
            paid: options.paid_broadcast,
            loaded_at: Instant::now(),
        });
        self.cache.write().await.insert(id, campaign.clone());
        Ok(Some(campaign))
    }
}
