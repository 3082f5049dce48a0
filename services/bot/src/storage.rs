//! The bot's Postgres queries: what it reads from the read model the
//! projector maintains (admins, audiences, campaigns and their counts), for
//! the one bot it serves: users, admins and campaigns are per bot.
//! Dialogues and progress cards keep their own SQL next to their logic
//! ([`crate::dialogue`], [`crate::cards`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use courier_core::amend::DELETABLE_FOR;
use courier_core::amend_tally::Tally;
use courier_core::audience::{AudienceSize, Recipients};
use courier_core::bot_languages::BotLanguages;
use courier_core::proto::v1::{AudienceFilter, Content};
use courier_core::topology::DEFAULT_BOT;
use deadpool_postgres::Pool;
use prost::Message as _;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::progress::{self, Snapshot, VersionCount, Who};

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

/// How many users carry a tag, or came from a source: what the audience
/// builder offers as buttons, most common first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popular {
    pub value: String,
    pub users: i64,
}

/// The most common tags and sources of live users, at most this many each.
const POPULAR: i64 = 8;

/// The columns [`snapshot`] reads, in its order.
/// Per-version counts group the campaign's deliveries, only for campaigns
/// with variants (a scan of their deliveries at each card refresh).
pub const SNAPSHOT_COLUMNS: &str = "c.campaign_id, c.status, c.status_reason, c.audience, \
     c.content_kind, c.audience_size, c.delivered, c.not_alive, c.failed, c.cancelled, \
     c.created_at, c.started_at, c.finished_at, \
     CASE WHEN cardinality(c.variants) = 0 THEN '{}'::text[] ELSE ARRAY( \
         SELECT d.variant || ' ' || count(*) FILTER (WHERE d.status = 'delivered') || ' ' || count(*) \
         FROM deliveries d WHERE d.campaign_id = c.campaign_id \
         GROUP BY d.variant ORDER BY d.variant = '', d.variant) END, \
     c.scheduled_at, c.revision, c.recalled_at IS NOT NULL, c.name, c.status_by, \
     (SELECT COALESCE(NULLIF('@' || COALESCE(u.username, ''), '@'), \
                      NULLIF(trim(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')), '')) \
      FROM users u WHERE u.bot_id = c.bot_id AND u.user_id = c.status_by), c.content, c.paid_broadcast";

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The bot whose users, admins and campaigns these are.
    bot_id: i64,
    /// `BOT_LANGUAGES`: the default bot's languages.
    configured_languages: BotLanguages,
}

impl Store {
    /// Bot `bot_id`'s store; the default bot offers every language until
    /// [`Store::offering`] says otherwise.
    pub fn new(pool: Pool, bot_id: i64) -> Store {
        Store {
            pool,
            bot_id,
            configured_languages: BotLanguages::default(),
        }
    }

    /// The default bot offers `languages` (`BOT_LANGUAGES`).
    pub fn offering(self, languages: BotLanguages) -> Store {
        Store {
            configured_languages: languages,
            ..self
        }
    }

    /// The languages the bot offers its users: `BOT_LANGUAGES` for the
    /// default bot, `courierctl bots languages` for an added one (read at
    /// each use, so a change needs no restart; when the store cannot say,
    /// every language).
    pub async fn languages(&self) -> BotLanguages {
        if self.bot_id == DEFAULT_BOT {
            return self.configured_languages.clone();
        }
        let stored = async {
            let row = self
                .pool
                .get()
                .await?
                .query_opt(
                    "SELECT languages FROM bots WHERE bot_id = $1",
                    &[&self.bot_id],
                )
                .await?;
            Ok::<Vec<String>, StoreError>(row.map(|row| row.get(0)).unwrap_or_default())
        };
        match stored.await {
            Ok(codes) => BotLanguages::parse(&codes).unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "looking up the bot's languages failed");
                BotLanguages::default()
            }
        }
    }

    pub fn bot_id(&self) -> i64 {
        self.bot_id
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the read model knows the user (registered once, by /start,
    /// an import or a language choice).
    pub async fn is_registered(&self, user: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM users WHERE bot_id = $1 AND user_id = $2",
                &[&self.bot_id, &user],
            )
            .await?;
        Ok(row.is_some())
    }

    pub async fn is_admin(&self, user: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM admins WHERE bot_id = $1 AND user_id = $2",
                &[&self.bot_id, &user],
            )
            .await?;
        Ok(row.is_some())
    }

    /// An added bot's owners (`courierctl bots owners`); none for a bot
    /// the read model does not know. A bot served is in the bots bucket
    /// whatever the read model says of its adding.
    pub async fn owners(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT owner_ids FROM bots WHERE bot_id = $1",
                &[&self.bot_id],
            )
            .await?;
        Ok(row.map(|row| row.get(0)).unwrap_or_default())
    }

    pub async fn admins(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT user_id FROM admins WHERE bot_id = $1 ORDER BY granted_at",
                &[&self.bot_id],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Whether `user`'s activity since `since` is recorded already.
    pub async fn active_since(&self, user: i64, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM users WHERE bot_id = $3 AND user_id = $1 AND last_active_at >= $2",
                &[&user, &since, &self.bot_id],
            )
            .await?;
        Ok(row.is_some())
    }

    /// The audience `filter` reaches now: the same condition that fixes
    /// it when the campaign starts.
    pub async fn audience(&self, filter: &AudienceFilter) -> Result<AudienceSize, StoreError> {
        let client = self.pool.get().await?;
        Ok(Recipients::new(self.bot_id, filter, Utc::now())
            .size(&client)
            .await?)
    }

    /// Tags `filter` names that no user has.
    pub async fn unknown_tags(&self, filter: &AudienceFilter) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await?;
        Ok(Recipients::new(self.bot_id, filter, Utc::now())
            .unknown_tags(&client)
            .await?)
    }

    /// The most common tags of live users.
    pub async fn popular_tags(&self) -> Result<Vec<Popular>, StoreError> {
        self.popular("SELECT tag, count(*) FROM users, unnest(tags) AS tag WHERE bot_id = $2 AND is_alive GROUP BY tag ORDER BY 2 DESC, 1 LIMIT $1")
            .await
    }

    /// The most common deep-link sources of live users.
    pub async fn popular_sources(&self) -> Result<Vec<Popular>, StoreError> {
        self.popular("SELECT source, count(*) FROM users WHERE bot_id = $2 AND is_alive AND source IS NOT NULL GROUP BY source ORDER BY 2 DESC, 1 LIMIT $1")
            .await
    }

    async fn popular(&self, query: &str) -> Result<Vec<Popular>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client.query(query, &[&POPULAR, &self.bot_id]).await?;
        Ok(rows
            .iter()
            .map(|row| Popular {
                value: row.get(0),
                users: row.get(1),
            })
            .collect())
    }

    /// The time zone `user` writes start times in, once they said it.
    pub async fn time_zone(&self, user: i64) -> Result<Option<Tz>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT time_zone FROM bot_time_zones WHERE user_id = $1",
                &[&user],
            )
            .await?;
        // A zone a newer tz database knew and this one does not: asked again.
        Ok(row.and_then(|row| row.get::<_, &str>(0).parse().ok()))
    }

    pub async fn set_time_zone(&self, user: i64, zone: Tz) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO bot_time_zones (user_id, time_zone) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET time_zone = EXCLUDED.time_zone",
                &[&user, &zone.name()],
            )
            .await?;
        Ok(())
    }

    /// Campaigns, newest first: `limit` of them, after the `offset` newest.
    pub async fn recent_campaigns(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM campaigns c WHERE c.bot_id = $3
                     ORDER BY c.created_at DESC, c.campaign_id LIMIT $1 OFFSET $2"
                ),
                &[&limit, &offset, &self.bot_id],
            )
            .await?;
        rows.iter().map(|row| snapshot(row, 0)).collect()
    }

    /// Whether the campaign is another bot's (one not projected yet is
    /// not known to be).
    pub async fn is_another_bots(&self, campaign: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM campaigns WHERE campaign_id = $1 AND bot_id <> $2",
                &[&campaign, &self.bot_id],
            )
            .await?;
        Ok(row.is_some())
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
        let Some(mut snapshot) = row.map(|row| snapshot(&row, 0)).transpose()? else {
            return Ok(None);
        };
        read_amendments(&**client, &mut snapshot).await?;
        Ok(Some(snapshot))
    }

    /// The campaign's delivered messages, and how many of them are older
    /// than Telegram lets a bot delete.
    pub async fn delivered_messages(&self, campaign: Uuid) -> Result<(i64, i64), StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE finished_at <= now() - make_interval(secs => $2))
                 FROM deliveries WHERE campaign_id = $1
                   AND status = 'delivered' AND message_id IS NOT NULL",
                &[&campaign, &DELETABLE_FOR.as_secs_f64()],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Every card of the campaign follows it again (an amendment began).
    pub async fn reopen_cards(&self, campaign: Uuid) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bot_cards SET finished = FALSE WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?;
        Ok(())
    }
}

/// Adds how the campaign's amendments went, if it has any.
pub async fn read_amendments(
    client: &impl tokio_postgres::GenericClient,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    if snapshot.revision > 0 || snapshot.recalled {
        let tally = Tally::read(client, snapshot.id).await?;
        snapshot.amending = tally.in_progress();
        snapshot.amendments = tally.lines();
    }
    Ok(())
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
        versions: row
            .get::<_, Vec<String>>(first + 13)
            .iter()
            .filter_map(|text| VersionCount::parse(text))
            .collect(),
        scheduled_at: row.get(first + 14),
        revision: row.get(first + 15),
        recalled: row.get(first + 16),
        name: row.get(first + 17),
        preview: Content::decode(row.get::<_, &[u8]>(first + 20))
            .map(|content| progress::preview(&content))
            .unwrap_or_default(),
        status_by: match row.get::<_, Option<i64>>(first + 18) {
            None | Some(0) => None,
            Some(id) => Some(Who {
                id,
                name: row.get(first + 19),
            }),
        },
        amendments: Vec::new(),
        amending: false,
        paid: row.get(first + 21),
        stars_out: None,
        stars_billed: None,
    })
}
