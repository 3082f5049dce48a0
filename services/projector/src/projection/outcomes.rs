//! Delivery outcomes: each finishes one recipient's `deliveries` row and
//! moves its campaign's counters. Outcomes arrive by the thousand per
//! second, so the counters are summed in memory and written once per batch
//! ([`Outcomes::write_counters`]), and the statement that finishes a
//! recipient is prepared once per batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use courier_core::proto::v1::{DeliveryOutcome, delivery_outcome};
use tokio_postgres::{Statement, Transaction};
use uuid::Uuid;

use super::{ApplyError, campaign_uuid, timestamp};

/// Records a recipient's outcome. An outcome may arrive after a cancel
/// marked the recipient cancelled (the send was in flight): what happened
/// wins over what was planned. Any other finished recipient keeps its first
/// outcome. Returns the status it had.
const FINISH_DELIVERY: &str = "WITH previous AS (
         SELECT status FROM deliveries
         WHERE campaign_id = $1 AND user_id = $2 AND status IN ('pending', 'cancelled')
         FOR UPDATE
     )
     UPDATE deliveries d
     SET status = $3, message_id = $4, reason = $5, attempts = $6, finished_at = $7
     FROM previous
     WHERE d.campaign_id = $1 AND d.user_id = $2
     RETURNING previous.status";

/// What one outcome did.
pub(super) enum Recorded {
    /// The recipient is finished now; its campaign's counters moved.
    Finished(Uuid),
    /// The recipient was finished before: the first outcome stands.
    AlreadyFinished,
    /// No campaign start put this recipient in the read model (yet).
    UnknownRecipient,
}

/// The outcomes of one batch.
#[derive(Default)]
pub(super) struct Outcomes {
    /// Prepared at the first outcome.
    finish_delivery: Option<Statement>,
    counters: HashMap<Uuid, Counters>,
    /// When each recipient finished in this batch got its outcome, by
    /// campaign (the delivery SLI's input).
    resolved: HashMap<Uuid, Vec<DateTime<Utc>>>,
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

impl Outcomes {
    pub(super) async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        outcome: DeliveryOutcome,
    ) -> Result<Recorded, ApplyError> {
        let (status, message_id, reason) = match &outcome.result {
            Some(delivery_outcome::Result::Delivered(d)) => ("delivered", Some(d.message_id), None),
            Some(delivery_outcome::Result::NotAlive(n)) => {
                ("not_alive", None, Some(n.reason.clone()))
            }
            Some(delivery_outcome::Result::Failed(f)) => ("failed", None, Some(f.reason.clone())),
            None => {
                return Err(ApplyError::Poison(
                    "outcome has a result this version does not know".into(),
                ));
            }
        };
        let campaign = campaign_uuid(&outcome.campaign_id)?;
        let occurred_at = timestamp(outcome.occurred_at_ms);
        let finish_delivery = match &self.finish_delivery {
            Some(statement) => statement.clone(),
            None => self
                .finish_delivery
                .insert(tx.prepare(FINISH_DELIVERY).await?)
                .clone(),
        };
        let previous = tx
            .query_opt(
                &finish_delivery,
                &[
                    &campaign,
                    &outcome.user_id,
                    &status,
                    &message_id,
                    &reason,
                    &(outcome.attempts as i32),
                    &occurred_at,
                ],
            )
            .await?;
        let Some(previous) = previous else {
            let known = tx
                .query_opt(
                    "SELECT 1 FROM deliveries WHERE campaign_id = $1 AND user_id = $2",
                    &[&campaign, &outcome.user_id],
                )
                .await?
                .is_some();
            return Ok(if known {
                Recorded::AlreadyFinished
            } else {
                Recorded::UnknownRecipient
            });
        };
        let counters = self.counters.entry(campaign).or_default();
        match status {
            "delivered" => counters.delivered += 1,
            "not_alive" => counters.not_alive += 1,
            _ => counters.failed += 1,
        }
        if let Some(delivery_outcome::Result::Failed(failed)) = outcome.result
            && failed.content_refused
        {
            counters.refused += 1;
            counters.refusal = Some(failed.reason);
        }
        counters.uncancelled += i32::from(previous.get::<_, &str>(0) == "cancelled");
        self.resolved.entry(campaign).or_default().push(occurred_at);
        Ok(Recorded::Finished(campaign))
    }

    /// When the recipients finished in this batch got their outcomes.
    pub(super) fn into_resolved(self) -> HashMap<Uuid, Vec<DateTime<Utc>>> {
        self.resolved
    }

    /// Adds the batch's counts to the campaigns' counters.
    pub(super) async fn write_counters(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
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
