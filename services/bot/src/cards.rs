//! Progress cards: messages in admins' chats that follow a campaign. A card
//! is registered in `bot_cards` when it is sent; each interval one query
//! finds the bots that have live cards ([`rounds`]), and each such bot's
//! task edits its live cards whose text changed, at most once per interval
//! (Telegram rate-limits edits too), and sends the final report once (with
//! its picture, for a completed campaign).
//!
//! With several bot replicas each runs the task; `FOR UPDATE SKIP LOCKED`
//! hands each card to one of them per round, so no card is edited twice or
//! reported twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use courier_core::campaign::CampaignStatus;
use courier_core::send_limits::{self, PublishedLimits};
use deadpool_postgres::Pool;
use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, MessageId};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::progress::{self, Snapshot};
use crate::report;
use crate::storage::{self, SNAPSHOT_COLUMNS, Store, StoreError};
use crate::telegram_stars;

/// A rate measured over less than this is noise.
const MIN_SAMPLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("telegram: {0}")]
    Telegram(#[from] RequestError),
}

#[derive(Clone)]
pub struct Cards {
    store: Store,
    bot: Bot,
    limits: PublishedLimits,
}

impl Cards {
    pub fn new(store: Store, bot: Bot, limits: PublishedLimits) -> Cards {
        Cards { store, bot, limits }
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    /// Sends a card for `campaign` to `chat`; it is kept up to date from
    /// then on.
    pub async fn show(&self, chat: ChatId, campaign: Uuid) -> Result<(), CardError> {
        let snapshot = self.store.campaign(campaign).await?;
        let zone = self.zone_for(chat, snapshot.as_ref()).await;
        let (text, keyboard, done, finished) = match &snapshot {
            Some(snapshot) => (
                progress::card(snapshot, None, zone),
                progress::card_keyboard(snapshot),
                snapshot.done(),
                // A campaign that ended before its card was asked for has
                // nothing left to follow or report, but an amendment's
                // progress.
                snapshot.status.is_final() && !snapshot.amending,
            ),
            // Just started: the projector has not applied it yet.
            None => (
                format!("⏳ Campaign {campaign}\nStarting…"),
                progress::card_keyboard(&Snapshot::starting(campaign)),
                0,
                false,
            ),
        };
        let message = self
            .bot
            .send_message(chat, &text)
            .reply_markup(keyboard)
            .await?;
        self.pool()
            .get()
            .await?
            .execute(
                "INSERT INTO bot_cards (bot_id, chat_id, message_id, campaign_id, shown,
                                        sampled_done, finished)
                 VALUES ($7, $1, $2, $3, $4, $5, $6)",
                &[
                    &chat.0,
                    &message.id.0,
                    &campaign,
                    &text,
                    &done,
                    &finished,
                    &self.store.bot_id(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Edits this bot's live cards (of `only` this campaign, or all) whose
    /// text changed and that were not edited in the last `min_gap`, and sends
    /// the reports that are due.
    pub async fn refresh(&self, only: Option<Uuid>, min_gap: Duration) -> Result<(), CardError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Locked until commit: a card is handled by one replica at a time,
        // and a replica busy with it is skipped, not waited for.
        let rows = tx
            .query(
                &format!(
                    "SELECT k.chat_id, k.message_id, k.shown, k.sampled_done, k.sampled_at,
                            k.reported, k.rate, now(), {SNAPSHOT_COLUMNS}
                     FROM bot_cards k JOIN campaigns c ON c.campaign_id = k.campaign_id
                     WHERE k.bot_id = $3 AND NOT k.finished
                       AND ($1::uuid IS NULL OR k.campaign_id = $1)
                       AND (k.edited_at IS NULL OR k.edited_at <= now() - make_interval(secs => $2))
                     FOR UPDATE OF k SKIP LOCKED"
                ),
                &[&only, &min_gap.as_secs_f64(), &self.store.bot_id()],
            )
            .await?;
        for row in rows {
            let card = Card {
                chat: ChatId(row.get(0)),
                message: MessageId(row.get(1)),
                shown: row.get(2),
                reported: row.get(5),
                sample: Sample {
                    done: row.get(3),
                    at: row.get(4),
                    rate: row.get(6),
                },
                now: row.get(7),
            };
            let mut snapshot = storage::snapshot(&row, 8)?;
            storage::read_amendments(&*tx, &mut snapshot).await?;
            self.read_stars_out(&mut snapshot).await;
            if snapshot.paid && snapshot.status.is_final() && card.reported.is_none() {
                snapshot.stars_billed = self.stars_billed(&snapshot).await;
            }
            let update = self.refresh_card(&card, &snapshot).await;
            tx.execute(
                "UPDATE bot_cards SET shown = $3, sampled_done = $4, sampled_at = $5, rate = $6,
                        reported = $7, finished = $8,
                        edited_at = CASE WHEN $9 THEN now() ELSE edited_at END
                 WHERE bot_id = $10 AND chat_id = $1 AND message_id = $2",
                &[
                    &card.chat.0,
                    &card.message.0,
                    &update.shown,
                    &update.sample.done,
                    &update.sample.at,
                    &update.sample.rate,
                    &update.reported,
                    &update.finished,
                    &update.edited,
                    &self.store.bot_id(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether a paid campaign sending now is on the free lane because the
    /// bot's Stars ran out (the senders' mark, [`send_limits`]).
    async fn read_stars_out(&self, snapshot: &mut Snapshot) {
        if !(snapshot.paid && snapshot.status == CampaignStatus::Sending) {
            return;
        }
        let out = self.limits.stars_out().await;
        if !send_limits::paid_lane_open(out, Utc::now().timestamp_millis()) {
            snapshot.stars_out = out.and_then(DateTime::from_timestamp_millis);
        }
    }

    /// What Telegram billed for paid sends while the campaign ran, for its
    /// report (a second either side: Telegram dates by the second).
    async fn stars_billed(&self, snapshot: &Snapshot) -> Option<i64> {
        let from = snapshot.started_at? - chrono::Duration::seconds(1);
        let to = snapshot.finished_at? + chrono::Duration::seconds(1);
        telegram_stars::billed_between(&self.bot, from, to).await
    }

    /// One card: edited if its text changed, reported if a report is due.
    /// Telegram failures are logged and retried next round.
    async fn refresh_card(&self, card: &Card, snapshot: &Snapshot) -> CardUpdate {
        let mut update = CardUpdate {
            shown: card.shown.clone(),
            sample: card.sample.next(snapshot.done(), card.now),
            reported: card.reported.clone(),
            finished: false,
            edited: false,
        };
        let zone = self.zone_for(card.chat, Some(snapshot)).await;
        let text = progress::card(snapshot, update.sample.rate, zone);
        if text != card.shown {
            let edited = self
                .bot
                .edit_message_text(card.chat, card.message, &text)
                .reply_markup(progress::card_keyboard(snapshot))
                .await;
            match edited {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => {
                    update.shown = text;
                    update.edited = true;
                }
                // The admin deleted the card: nothing left to edit.
                Err(RequestError::Api(ApiError::MessageToEditNotFound)) => {
                    update.finished = true;
                    return update;
                }
                Err(error) => {
                    tracing::warn!(%error, campaign = %snapshot.id, "editing a progress card failed");
                }
            }
        }
        let report = progress::report(snapshot);
        match &report {
            Some(report) if card.reported.as_deref() != Some(report.key.as_str()) => {
                match self.bot.send_message(card.chat, &report.text).await {
                    Ok(_) => {
                        update.reported = Some(report.key.clone());
                        if snapshot.status == CampaignStatus::Completed {
                            report::send_picture(&self.bot, &self.store, card.chat, snapshot).await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, campaign = %snapshot.id, "sending a report failed");
                    }
                }
            }
            Some(_) => {}
            // Resumed: a later pause by courier is worth reporting again.
            None => update.reported = None,
        }
        update.finished =
            snapshot.status.is_final() && update.reported.is_some() && !snapshot.amending;
        update
    }

    /// The time zone the admin of `chat` reads a card's start time in;
    /// looked up only for a card that shows one.
    async fn zone_for(&self, chat: ChatId, snapshot: Option<&Snapshot>) -> Tz {
        let shows_a_time = snapshot.is_some_and(|snapshot| {
            snapshot.scheduled_at.is_some()
                && matches!(
                    snapshot.status,
                    CampaignStatus::Scheduled | CampaignStatus::AwaitingApproval
                )
        });
        match shows_a_time {
            true => self
                .store
                .time_zone(chat.0)
                .await
                .ok()
                .flatten()
                .unwrap_or(Tz::UTC),
            false => Tz::UTC,
        }
    }

    /// Refreshes this bot's cards at each of the [`rounds`] that finds it
    /// has live ones, until `shutdown`; `interval` is the rounds' spacing.
    pub async fn run(
        self,
        mut rounds: watch::Receiver<LiveCards>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        // Another replica's round may have edited a card a moment ago; a
        // little slack keeps this round's ticks from just missing it.
        let min_gap = interval.mul_f64(0.9);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rounds.changed() => if changed.is_err() { return },
            }
            let has_cards = rounds.borrow_and_update().contains(&self.store.bot_id());
            if has_cards && let Err(error) = self.refresh(None, min_gap).await {
                tracing::error!(%error, "refreshing progress cards failed");
            }
        }
    }
}

/// The bots with live cards, as of the last round.
pub type LiveCards = Arc<HashSet<i64>>;

/// Every `interval`, one query says which bots have live cards, and each
/// bot's [`Cards::run`] refreshes its own only if it has some: a
/// deployment of many bots polls Postgres once a round, not once per bot.
pub async fn rounds(
    pool: Pool,
    interval: Duration,
    live: watch::Sender<LiveCards>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown.run_until_cancelled(ticks.tick()).await.is_some() {
        match bots_with_live_cards(&pool).await {
            Ok(bots) => {
                live.send_replace(Arc::new(bots));
            }
            Err(error) => tracing::error!(%error, "looking up live progress cards failed"),
        }
    }
}

/// The bots that have progress cards still to refresh.
async fn bots_with_live_cards(pool: &Pool) -> Result<HashSet<i64>, StoreError> {
    let rows = pool
        .get()
        .await?
        .query(
            "SELECT DISTINCT bot_id FROM bot_cards WHERE NOT finished",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A card's row, as locked for a refresh.
struct Card {
    chat: ChatId,
    message: MessageId,
    shown: String,
    sample: Sample,
    reported: Option<String>,
    /// The database's clock, the one samples are taken by.
    now: DateTime<Utc>,
}

/// What a refresh writes back.
struct CardUpdate {
    shown: String,
    sample: Sample,
    reported: Option<String>,
    finished: bool,
    /// The card was edited (its edit time moves on).
    edited: bool,
}

/// Recipients done at a moment, and the rate measured up to it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    done: i32,
    at: DateTime<Utc>,
    rate: Option<f64>,
}

impl Sample {
    /// The sample at `now` with `done` recipients done: a new rate once
    /// [`MIN_SAMPLE`] has passed, else this one kept (a card refreshed a
    /// moment after the last, e.g. on a button press, still shows a rate).
    fn next(self, done: i32, now: DateTime<Utc>) -> Sample {
        let elapsed = (now - self.at).to_std().unwrap_or_default();
        if elapsed < MIN_SAMPLE {
            return self;
        }
        Sample {
            done,
            at: now,
            rate: Some(f64::from(done - self.done) / elapsed.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_a_moment_after_the_last_keeps_its_rate() {
        let t0 = Utc::now();
        let first = Sample {
            done: 0,
            at: t0,
            rate: None,
        };
        let second = first.next(50, t0 + chrono::Duration::seconds(2));
        assert_eq!(second.rate, Some(25.0));
        assert_eq!(second.done, 50);
        let soon = second.next(55, t0 + chrono::Duration::milliseconds(2200));
        assert_eq!(soon, second, "too soon to measure: the last rate stands");
        let later = soon.next(80, t0 + chrono::Duration::seconds(4));
        assert_eq!(later.rate, Some(15.0));
    }
}
