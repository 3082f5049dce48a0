//! The bot's Postgres queries: what it reads from the read model the
//! projector maintains (admins, live users per language, campaigns and
//! their counts). Dialogues and progress
//! cards keep their own SQL next to their logic ([`crate::dialogue`],
//! [`crate::cards`]).

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::progress::Snapshot;

/// How long an answer waits for the projector to apply what the bot has
/// just published, before answering anyway.
const PROJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Polls `projected` until the read model shows the change (true), at most
/// [`PROJECTION_WAIT`]; false if it did not (yet), or could not be read.
pub async fn wait_for_projection<F, Fut>(mut projected: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + PROJECTION_WAIT;
    while tokio::time::Instant::now() < deadline {
        match projected().await {
            Ok(true) => return true,
            Ok(false) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(error) => {
                tracing::warn!(%error, "reading the read model back failed");
                return false;
            }
        }
    }
    false
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("campaign {0} has a status this version does not know")]
    UnknownStatus(Uuid),
}

/// Live users by the language they chose: what each audience reaches now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveUsers {
    pub ru: i64,
    pub en: i64,
}

impl LiveUsers {
    pub fn all(self) -> i64 {
        self.ru + self.en
    }
}

/// The columns [`snapshot`] reads, in its order.
pub const SNAPSHOT_COLUMNS: &str = "c.campaign_id, c.status, c.status_reason, c.audience, \
     c.content_kind, c.audience_size, c.delivered, c.not_alive, c.failed, c.cancelled, \
     c.created_at, c.started_at, c.finished_at";

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the read model knows the user (registered once, by /start,
    /// an import or a language choice).
    pub async fn is_registered(&self, user: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT 1 FROM users WHERE user_id = $1", &[&user])
            .await?;
        Ok(row.is_some())
    }

    pub async fn is_admin(&self, user: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT 1 FROM admins WHERE user_id = $1", &[&user])
            .await?;
        Ok(row.is_some())
    }

    pub async fn admins(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT user_id FROM admins ORDER BY granted_at", &[])
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn live_users(&self) -> Result<LiveUsers, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT language, count(*) FROM users WHERE is_alive GROUP BY language",
                &[],
            )
            .await?;
        let mut live = LiveUsers::default();
        for row in rows {
            match row.get::<_, &str>(0) {
                "ru" => live.ru = row.get(1),
                "en" => live.en = row.get(1),
                // The schema allows no other language.
                _ => {}
            }
        }
        Ok(live)
    }

    /// The most recent campaigns, newest first.
    pub async fn recent_campaigns(&self, limit: i64) -> Result<Vec<Snapshot>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM campaigns c ORDER BY c.created_at DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await?;
        rows.iter().map(|row| snapshot(row, 0)).collect()
    }

    /// The campaign, once the projector has applied its creation.
    pub async fn campaign(&self, id: Uuid) -> Result<Option<Snapshot>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {SNAPSHOT_COLUMNS} FROM campaigns c WHERE c.campaign_id = $1"),
                &[&id],
            )
            .await?;
        row.map(|row| snapshot(&row, 0)).transpose()
    }
}

/// Reads [`SNAPSHOT_COLUMNS`] from `row`, starting at column `first`.
pub fn snapshot(row: &Row, first: usize) -> Result<Snapshot, StoreError> {
    let id: Uuid = row.get(first);
    let status = row
        .get::<_, &str>(first + 1)
        .parse()
        .map_err(|_| StoreError::UnknownStatus(id))?;
    Ok(Snapshot {
        id,
        status,
        reason: row.get(first + 2),
        audience: row.get(first + 3),
        content_kind: row.get(first + 4),
        recipients: row.get(first + 5),
        delivered: row.get(first + 6),
        not_alive: row.get(first + 7),
        failed: row.get(first + 8),
        cancelled: row.get(first + 9),
        created_at: row.get::<_, DateTime<Utc>>(first + 10),
        started_at: row.get(first + 11),
        finished_at: row.get(first + 12),
    })
}
