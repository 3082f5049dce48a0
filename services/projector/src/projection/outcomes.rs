//! Delivery outcomes: each finishes one recipient's `deliveries` row and
//! moves its campaign's counters. Outcomes arrive by the thousand per
//! second, so a batch reads its recipients' rows in one query
//! ([`Outcomes::preload`]), decides each outcome in memory, and writes the
//! rows it finished and the counters once, at commit
//! ([`Outcomes::write`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use courier_core::proto::v1::{Amend, AmendKind, DeliveryOutcome, delivery_outcome};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::{ApplyError, campaign_uuid, timestamp};

/// The recipients' rows, locked for the batch: one query for many.
const READ_RECIPIENTS: &str = "SELECT d.campaign_id, d.user_id, d.status
     FROM deliveries d
     JOIN unnest($1::uuid[], $2::bigint[]) AS r(campaign_id, user_id) USING (campaign_id, user_id)
     FOR UPDATE OF d";

/// Finishes the batch's recipients, one statement for all (an album's
/// message ids as array literals, `{8,9,10}`: unnest cannot take an array
/// of arrays of different lengths).
const FINISH_DELIVERIES: &str = "UPDATE deliveries d
     SET status = o.status, message_id = o.message_id, reason = o.reason,
         attempts = o.attempts, finished_at = o.finished_at, revision = o.revision,
         album_message_ids = o.album::bigint[]
     FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::int[],
                 $7::timestamptz[], $8::int[], $9::text[])
         AS o(campaign_id, user_id, status, message_id, reason, attempts, finished_at, revision,
              album)
     WHERE d.campaign_id = o.campaign_id AND d.user_id = o.user_id";

/// Records the batch's amendments (edits, deletions); the first outcome of
/// each stands.
const RECORD_AMENDMENTS: &str = "INSERT INTO amendments
         (campaign_id, user_id, kind, revision, result, reason, finished_at)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[], $5::text[],
                          $6::text[], $7::timestamptz[])
     ON CONFLICT DO NOTHING";

/// What one outcome did.
pub(super) enum Recorded {
    /// The recipient is finished now; its campaign's counters moved.
    Finished(Uuid),
    /// The recipient was finished before: the first outcome stands.
    AlreadyFinished,
    /// An edit or deletion of the recipient's message is recorded.
    Amended(Uuid),
    /// No campaign start put this recipient in the read model (yet).
    UnknownRecipient,
}

type Recipient = (Uuid, i64);

/// The outcomes of one batch.
#[derive(Default)]
pub(super) struct Outcomes {
    /// Each recipient's status as the batch has left it so far; `None`:
    /// not in the read model.
    statuses: HashMap<Recipient, Option<String>>,
    /// The rows to finish at commit, in order.
    finished: Vec<Finish>,
    counters: HashMap<Uuid, Counters>,
    /// When each recipient finished in this batch got its outcome, by
    /// campaign (the delivery SLI's input).
    resolved: HashMap<Uuid, Vec<DateTime<Utc>>>,
    /// The batch's amendments, to record at commit.
    amended: Vec<AmendRow>,
}

/// An amendment's outcome, as `amendments` keeps it.
struct AmendRow {
    recipient: Recipient,
    kind: &'static str,
    revision: i32,
    result: &'static str,
    reason: Option<String>,
    at: DateTime<Utc>,
}

/// A row to finish.
struct Finish {
    recipient: Recipient,
    status: &'static str,
    message_id: Option<i64>,
    reason: Option<String>,
    attempts: i32,
    at: DateTime<Utc>,
    /// The content's revision a delivered recipient got.
    revision: i32,
    /// An album's message ids, as an array literal.
    album: Option<String>,
}

/// How a campaign's counters move in a batch.
#[derive(Default)]
struct Counters {
    delivered: i32,
    not_alive: i32,
    failed: i32,
    /// Recipients cancelled before, whose send turned out to be in flight.
    uncancelled: i32,
    /// Failed because Telegram refused the content, and the last reason.
    refused: i32,
    refusal: Option<String>,
}

/// The recipient an outcome is for, if its payload reads as one.
pub(super) fn recipient_of(payload: &[u8]) -> Option<Recipient> {
    use prost::Message as _;
    let outcome = DeliveryOutcome::decode(payload).ok()?;
    Some((Uuid::parse_str(&outcome.campaign_id).ok()?, outcome.user_id))
}

impl Outcomes {
    /// Keeps an amendment's outcome for commit: it finishes no recipient
    /// and moves no counter. Like a send's, it waits for its recipient's
    /// row (a replay may bring outcomes before the start).
    async fn amended(
        &mut self,
        tx: &Transaction<'_>,
        outcome: &DeliveryOutcome,
        amend: &Amend,
    ) -> Result<Recorded, ApplyError> {
        let (result, reason) = match &outcome.result {
            Some(delivery_outcome::Result::Delivered(_)) => ("done", None),
            Some(delivery_outcome::Result::Unchanged(u)) => ("unchanged", Some(u.reason.clone())),
            Some(delivery_outcome::Result::NotAlive(n)) => ("not_alive", Some(n.reason.clone())),
            Some(delivery_outcome::Result::Failed(f)) => ("failed", Some(f.reason.clone())),
            None => {
                return Err(ApplyError::Poison(
                    "outcome has a result this version does not know".into(),
                ));
            }
        };
        let (kind, revision) = match amend.kind() {
            AmendKind::Edit => ("edit", amend.revision as i32),
            AmendKind::Delete => ("delete", 0),
            AmendKind::Unspecified => {
                return Err(ApplyError::Poison(
                    "an amendment's outcome of a kind this version does not know".into(),
                ));
            }
        };
        let campaign = campaign_uuid(&outcome.campaign_id)?;
        let recipient = (campaign, outcome.user_id);
        self.preload(tx, [recipient]).await?;
        if !matches!(self.statuses.get(&recipient), Some(Some(_))) {
            return Ok(Recorded::UnknownRecipient);
        }
        self.amended.push(AmendRow {
            recipient,
            kind,
            revision,
            result,
            reason,
            at: timestamp(outcome.occurred_at_ms),
        });
        Ok(Recorded::Amended(campaign))
    }

    /// Reads (and locks) the rows of `recipients` in one query, so the
    /// outcomes for them need none.
    pub(super) async fn preload(
        &mut self,
        tx: &Transaction<'_>,
        recipients: impl IntoIterator<Item = Recipient>,
    ) -> Result<(), tokio_postgres::Error> {
        let (campaigns, users): (Vec<Uuid>, Vec<i64>) = recipients
            .into_iter()
            .filter(|recipient| !self.statuses.contains_key(recipient))
            .unzip();
        if campaigns.is_empty() {
            return Ok(());
        }
        for (campaign, user) in campaigns.iter().zip(&users) {
            self.statuses.insert((*campaign, *user), None);
        }
        for row in tx.query(READ_RECIPIENTS, &[&campaigns, &users]).await? {
            self.statuses
                .insert((row.get(0), row.get(1)), Some(row.get(2)));
        }
        Ok(())
    }

    pub(super) async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        outcome: DeliveryOutcome,
    ) -> Result<Recorded, ApplyError> {
        if let Some(amend) = &outcome.amend {
            return self.amended(tx, &outcome, amend).await;
        }
        let (status, message_id, reason) = match &outcome.result {
            Some(delivery_outcome::Result::Delivered(d)) => ("delivered", Some(d.message_id), None),
            Some(delivery_outcome::Result::NotAlive(n)) => {
                ("not_alive", None, Some(n.reason.clone()))
            }
            Some(delivery_outcome::Result::Failed(f)) => ("failed", None, Some(f.reason.clone())),
            Some(delivery_outcome::Result::Unchanged(_)) => {
                return Err(ApplyError::Poison(
                    "a send's outcome says unchanged, which only an edit can be".into(),
                ));
            }
            None => {
                return Err(ApplyError::Poison(
                    "outcome has a result this version does not know".into(),
                ));
            }
        };
        let campaign = campaign_uuid(&outcome.campaign_id)?;
        let recipient = (campaign, outcome.user_id);
        // An outcome the batch did not preload (applied alone) reads its row.
        self.preload(tx, [recipient]).await?;
        let previous = match self.statuses.get(&recipient) {
            Some(Some(previous)) => previous.clone(),
            _ => return Ok(Recorded::UnknownRecipient),
        };
        // What happened wins over what was planned (a cancel, with the send
        // in flight); any other finished recipient keeps its first outcome.
        if !matches!(previous.as_str(), "pending" | "cancelled") {
            return Ok(Recorded::AlreadyFinished);
        }
        self.statuses.insert(recipient, Some(status.to_owned()));
        let at = timestamp(outcome.occurred_at_ms);
        let counters = self.counters.entry(campaign).or_default();
        match status {
            "delivered" => counters.delivered += 1,
            "not_alive" => counters.not_alive += 1,
            _ => counters.failed += 1,
        }
        if let Some(delivery_outcome::Result::Failed(failed)) = &outcome.result
            && failed.content_refused
        {
            counters.refused += 1;
            counters.refusal = Some(failed.reason.clone());
        }
        counters.uncancelled += i32::from(previous == "cancelled");
        self.resolved.entry(campaign).or_default().push(at);
        self.finished.push(Finish {
            recipient,
            status,
            message_id,
            reason,
            attempts: outcome.attempts as i32,
            at,
            revision: match &outcome.result {
                Some(delivery_outcome::Result::Delivered(d)) => d.revision as i32,
                _ => 0,
            },
            album: match &outcome.result {
                Some(delivery_outcome::Result::Delivered(d)) if !d.album_message_ids.is_empty() => {
                    let ids: Vec<String> = d.album_message_ids.iter().map(i64::to_string).collect();
                    Some(format!("{{{}}}", ids.join(",")))
                }
                _ => None,
            },
        });
        Ok(Recorded::Finished(campaign))
    }

    /// When the recipients finished in this batch got their outcomes.
    pub(super) fn into_resolved(self) -> HashMap<Uuid, Vec<DateTime<Utc>>> {
        self.resolved
    }

    /// Finishes the batch's recipients and moves their campaigns'
    /// counters.
    pub(super) async fn write(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        if !self.finished.is_empty() {
            let campaigns: Vec<Uuid> = self.finished.iter().map(|f| f.recipient.0).collect();
            let users: Vec<i64> = self.finished.iter().map(|f| f.recipient.1).collect();
            let statuses: Vec<&str> = self.finished.iter().map(|f| f.status).collect();
            let message_ids: Vec<Option<i64>> =
                self.finished.iter().map(|f| f.message_id).collect();
            let reasons: Vec<Option<&str>> =
                self.finished.iter().map(|f| f.reason.as_deref()).collect();
            let attempts: Vec<i32> = self.finished.iter().map(|f| f.attempts).collect();
            let at: Vec<DateTime<Utc>> = self.finished.iter().map(|f| f.at).collect();
            let revisions: Vec<i32> = self.finished.iter().map(|f| f.revision).collect();
            let albums: Vec<Option<&str>> =
                self.finished.iter().map(|f| f.album.as_deref()).collect();
            tx.execute(
                FINISH_DELIVERIES,
                &[
                    &campaigns,
                    &users,
                    &statuses,
                    &message_ids,
                    &reasons,
                    &attempts,
                    &at,
                    &revisions,
                    &albums,
                ],
            )
            .await?;
        }
        self.write_amendments(tx).await?;
        self.write_counters(tx).await
    }

    async fn write_amendments(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        if self.amended.is_empty() {
            return Ok(());
        }
        let rows = &self.amended;
        let campaigns: Vec<Uuid> = rows.iter().map(|r| r.recipient.0).collect();
        let users: Vec<i64> = rows.iter().map(|r| r.recipient.1).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
        let revisions: Vec<i32> = rows.iter().map(|r| r.revision).collect();
        let results: Vec<&str> = rows.iter().map(|r| r.result).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason.as_deref()).collect();
        let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.at).collect();
        tx.execute(
            RECORD_AMENDMENTS,
            &[
                &campaigns, &users, &kinds, &revisions, &results, &reasons, &at,
            ],
        )
        .await?;
        Ok(())
    }

    /// Adds the batch's counts to the campaigns' counters.
    async fn write_counters(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        for (campaign, c) in &self.counters {
            tx.execute(
                "UPDATE campaigns SET delivered = delivered + $2, not_alive = not_alive + $3,
                     failed = failed + $4, cancelled = cancelled - $5,
                     content_refusals = content_refusals + $6,
                     content_refusal = COALESCE($7, content_refusal)
                 WHERE campaign_id = $1",
                &[
                    campaign,
                    &c.delivered,
                    &c.not_alive,
                    &c.failed,
                    &c.uncancelled,
                    &c.refused,
                    &c.refusal,
                ],
            )
            .await?;
        }
        Ok(())
    }
}
