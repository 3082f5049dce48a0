//! Applying one event or one delivery outcome to the Postgres read model.
//!
//! Messages are applied in batches ([`Batch`]), each one transaction that
//! also advances its stream's checkpoint; a message at or below the
//! checkpoint was applied before, so replaying a stream, or delivering a
//! message twice, changes nothing. Times come from the events, so a replay
//! into an empty database rebuilds identical rows.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use courier_core::campaign::{CampaignStatus, Transition};
use courier_core::proto::v1::{DeliveryOutcome, delivery_outcome, event::Payload};
use prost::Message as _;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

/// One message from a stream, as the projector sees it.
pub struct StreamMessage<'a> {
    pub stream: &'a str,
    pub seq: u64,
    pub subject: &'a str,
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied before (a replay or redelivery): nothing changed.
    AlreadyApplied,
    /// Applied; the campaign whose progress or status may have changed.
    Changed(Option<Uuid>),
    /// Unreadable (undecodable, unknown version, bad id): kept in
    /// `parked_messages` for an operator, and the stream moves on.
    Parked,
    /// An outcome for a recipient not in the read model yet: its campaign's
    /// start has not been applied. Nothing changed; try again later.
    UnknownRecipient,
}

/// A message decoded and checked enough to apply, or why it cannot be.
enum Decoded<T> {
    Ok(T),
    Poison(String),
}

/// Creates the checkpoint rows; returns the last applied sequence per stream.
pub async fn checkpoints(
    client: &Client,
    streams: &[&str],
) -> Result<Vec<u64>, tokio_postgres::Error> {
    let mut sequences = Vec::with_capacity(streams.len());
    for stream in streams {
        client
            .execute(
                "INSERT INTO projector_checkpoints (stream, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[stream],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT last_seq FROM projector_checkpoints WHERE stream = $1",
                &[stream],
            )
            .await?;
        sequences.push(row.get::<_, i64>(0) as u64);
    }
    Ok(sequences)
}

async fn park(
    tx: &Transaction<'_>,
    message: &StreamMessage<'_>,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    tracing::error!(
        stream = message.stream,
        seq = message.seq,
        subject = message.subject,
        error,
        "parked a message"
    );
    tx.execute(
        "INSERT INTO parked_messages (stream, seq, subject, payload, error) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        &[&message.stream, &(message.seq as i64), &message.subject, &message.payload, &error],
    )
    .await?;
    Ok(())
}

fn timestamp(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn campaign_uuid(id: &str) -> Result<Uuid, String> {
    Uuid::parse_str(id).map_err(|_| format!("campaign id {id:?} is not a UUID"))
}

async fn apply_payload(
    tx: &Transaction<'_>,
    seq: i64,
    at: DateTime<Utc>,
    payload: Payload,
) -> Result<Decoded<Option<Uuid>>, tokio_postgres::Error> {
    let (campaign_id, transition) = match &payload {
        Payload::CampaignCreated(created) => {
            let id = match campaign_uuid(&created.campaign_id) {
                Ok(id) => id,
                Err(error) => return Ok(Decoded::Poison(error)),
            };
            let Some(audience) = created.audience().code() else {
                return Ok(Decoded::Poison(format!("campaign {id} has no audience")));
            };
            let content = created.content.clone().unwrap_or_default();
            let options = created.options.unwrap_or_default();
            tx.execute(
                "INSERT INTO campaigns (campaign_id, created_by, audience, content_kind, content,
                    disable_notification, protect_content, paid_broadcast, status, created_at, last_event_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
                 ON CONFLICT DO NOTHING",
                &[
                    &id,
                    &created.created_by,
                    &audience,
                    &content.kind().code(),
                    &content.encode_to_vec(),
                    &options.disable_notification,
                    &options.protect_content,
                    &options.paid_broadcast,
                    &at,
                    &seq,
                ],
            )
            .await?;
            return Ok(Decoded::Ok(Some(id)));
        }
        Payload::CampaignStarted(e) => (&e.campaign_id, Transition::Start),
        Payload::CampaignPaused(e) => (&e.campaign_id, Transition::Pause),
        Payload::CampaignResumed(e) => (&e.campaign_id, Transition::Resume),
        Payload::CampaignCancelled(e) => (&e.campaign_id, Transition::Cancel),
        Payload::CampaignCompleted(e) => (&e.campaign_id, Transition::Complete),
        user_event => {
            apply_user_event(tx, at, user_event).await?;
            return Ok(Decoded::Ok(None));
        }
    };
    let id = match campaign_uuid(campaign_id) {
        Ok(id) => id,
        Err(error) => return Ok(Decoded::Poison(error)),
    };
    let Some(row) = tx
        .query_opt(
            "SELECT status, audience FROM campaigns WHERE campaign_id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Ok(Decoded::Poison(format!("campaign {id} was never created")));
    };
    let status: CampaignStatus = row
        .get::<_, &str>(0)
        .parse()
        .unwrap_or(CampaignStatus::Pending);
    // Every event on the campaign's subject moves this on, applied or not,
    // so commands built from the read model carry the right expectation.
    tx.execute(
        "UPDATE campaigns SET last_event_seq = $2 WHERE campaign_id = $1",
        &[&id, &seq],
    )
    .await?;
    let next = match status.apply(transition) {
        Ok(next) => next,
        Err(refused) => {
            tracing::warn!(campaign = %id, %refused, "ignored an event outside the state machine");
            return Ok(Decoded::Ok(Some(id)));
        }
    };
    tx.execute(
        "UPDATE campaigns SET status = $2 WHERE campaign_id = $1",
        &[&id, &next.as_str()],
    )
    .await?;
    match payload {
        Payload::CampaignStarted(_) => {
            // The audience is fixed now: the live users of the campaign's
            // language as of this point of the stream, which a replay sees
            // identically because user events share the stream.
            let audience: &str = row.get(1);
            let size = tx
                .execute(
                    "INSERT INTO deliveries (campaign_id, user_id, chat_id, status)
                     SELECT $1, user_id, chat_id, 'pending' FROM users
                     WHERE is_alive AND ($2 = 'all' OR language = $2)",
                    &[&id, &audience],
                )
                .await?;
            tx.execute(
                "UPDATE campaigns SET started_at = $2, audience_size = $3 WHERE campaign_id = $1",
                &[&id, &at, &(size as i32)],
            )
            .await?;
        }
        Payload::CampaignPaused(paused) => {
            let reason = (!paused.reason.is_empty()).then_some(paused.reason);
            tx.execute(
                "UPDATE campaigns SET status_reason = $2 WHERE campaign_id = $1",
                &[&id, &reason],
            )
            .await?;
        }
        Payload::CampaignResumed(_) => {
            // Resumed by an admin who saw the refusals: count afresh.
            tx.execute(
                "UPDATE campaigns SET status_reason = NULL, content_refusals = 0
                 WHERE campaign_id = $1",
                &[&id],
            )
            .await?;
        }
        Payload::CampaignCancelled(_) => {
            let cancelled = tx
                .execute(
                    "UPDATE deliveries SET status = 'cancelled', finished_at = $2
                     WHERE campaign_id = $1 AND status = 'pending'",
                    &[&id, &at],
                )
                .await?;
            tx.execute(
                "UPDATE campaigns SET cancelled = cancelled + $2, finished_at = $3 WHERE campaign_id = $1",
                &[&id, &(cancelled as i32), &at],
            )
            .await?;
        }
        Payload::CampaignCompleted(_) => {
            tx.execute(
                "UPDATE campaigns SET finished_at = $2 WHERE campaign_id = $1",
                &[&id, &at],
            )
            .await?;
        }
        _ => {}
    }
    Ok(Decoded::Ok(Some(id)))
}

async fn apply_user_event(
    tx: &Transaction<'_>,
    at: DateTime<Utc>,
    payload: &Payload,
) -> Result<(), tokio_postgres::Error> {
    match payload {
        Payload::UserRegistered(e) => {
            // Registering again (/start after a block) revives the user. A
            // guessed language (the Telegram app's) never overrides one the
            // user chose.
            let language = e.language().code().unwrap_or("en");
            tx.execute(
                "INSERT INTO users (user_id, chat_id, language, language_chosen, is_alive, registered_at, updated_at)
                 VALUES ($1, $2, $3, $4, TRUE, $5, $5)
                 ON CONFLICT (user_id) DO UPDATE
                 SET chat_id = EXCLUDED.chat_id,
                     language = CASE WHEN users.language_chosen AND NOT EXCLUDED.language_chosen
                                     THEN users.language ELSE EXCLUDED.language END,
                     language_chosen = users.language_chosen OR EXCLUDED.language_chosen,
                     is_alive = TRUE, updated_at = EXCLUDED.updated_at",
                &[&e.user_id, &e.chat_id, &language, &e.language_chosen, &at],
            )
            .await?;
        }
        Payload::UserLanguageChanged(e) => {
            if let Some(language) = e.language().code() {
                tx.execute(
                    "UPDATE users SET language = $2, language_chosen = TRUE, updated_at = $3
                     WHERE user_id = $1",
                    &[&e.user_id, &language, &at],
                )
                .await?;
            }
        }
        Payload::UserBlocked(e) => {
            tx.execute(
                "UPDATE users SET is_alive = FALSE, updated_at = $2 WHERE user_id = $1",
                &[&e.user_id, &at],
            )
            .await?;
        }
        Payload::UserUnblocked(e) => {
            tx.execute(
                "UPDATE users SET is_alive = TRUE, updated_at = $2 WHERE user_id = $1",
                &[&e.user_id, &at],
            )
            .await?;
        }
        Payload::AdminGranted(e) => {
            tx.execute(
                "INSERT INTO admins (user_id, granted_by, granted_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&e.user_id, &e.granted_by, &at],
            )
            .await?;
        }
        Payload::AdminRevoked(e) => {
            tx.execute("DELETE FROM admins WHERE user_id = $1", &[&e.user_id])
                .await?;
        }
        _ => unreachable!("campaign events are applied by apply_payload"),
    }
    Ok(())
}

/// Messages of one stream applied together in one transaction, with the
/// checkpoint and the campaigns' counters written once at commit. Outcomes
/// arrive by the thousand per second (and user events by the thousand on an
/// import); a transaction each would make Postgres the bottleneck. A crash
/// before commit loses the whole batch, which the checkpoint then replays.
pub struct Batch<'a> {
    tx: Transaction<'a>,
    stream: String,
    /// The last sequence applied: the checkpoint's, then this batch's.
    last_seq: i64,
    checkpoint_seq: i64,
    /// Prepared at the first outcome: it runs once per outcome.
    finish_delivery: Option<tokio_postgres::Statement>,
    counters: HashMap<Uuid, Counters>,
    /// Campaigns whose status or progress moved.
    changed: BTreeSet<Uuid>,
}

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

impl<'a> Batch<'a> {
    pub async fn begin(
        client: &'a mut Client,
        stream: &str,
    ) -> Result<Batch<'a>, tokio_postgres::Error> {
        let tx = client.transaction().await?;
        let last_seq: i64 = tx
            .query_one(
                "SELECT last_seq FROM projector_checkpoints WHERE stream = $1 FOR UPDATE",
                &[&stream],
            )
            .await?
            .get(0);
        Ok(Batch {
            tx,
            stream: stream.to_owned(),
            last_seq,
            checkpoint_seq: last_seq,
            finish_delivery: None,
            counters: HashMap::new(),
            changed: BTreeSet::new(),
        })
    }

    /// Applies one message from the events stream.
    pub async fn apply_event(
        &mut self,
        message: &StreamMessage<'_>,
    ) -> Result<Applied, tokio_postgres::Error> {
        let seq = message.seq as i64;
        if seq <= self.last_seq {
            return Ok(Applied::AlreadyApplied);
        }
        self.last_seq = seq;
        let decoded = match courier_core::event::decode(message.payload) {
            Ok((_, occurred_at_ms, payload)) => {
                apply_payload(&self.tx, seq, timestamp(occurred_at_ms), payload).await?
            }
            Err(error) => Decoded::Poison(error.to_string()),
        };
        match decoded {
            Decoded::Ok(campaign) => {
                self.changed.extend(campaign);
                Ok(Applied::Changed(campaign))
            }
            Decoded::Poison(error) => {
                park(&self.tx, message, &error).await?;
                Ok(Applied::Parked)
            }
        }
    }

    /// Applies one message from the outcomes stream. An outcome for a
    /// recipient the read model does not know is parked when
    /// `park_if_unknown` (every event is applied, so no campaign start will
    /// ever explain it), else left unapplied ([`Applied::UnknownRecipient`]):
    /// the batch must stop there, so the checkpoint does not pass it.
    pub async fn apply_outcome(
        &mut self,
        message: &StreamMessage<'_>,
        park_if_unknown: bool,
    ) -> Result<Applied, tokio_postgres::Error> {
        let seq = message.seq as i64;
        if seq <= self.last_seq {
            return Ok(Applied::AlreadyApplied);
        }
        let applied = self.apply_new(message, park_if_unknown).await?;
        if applied != Applied::UnknownRecipient {
            self.last_seq = seq;
        }
        Ok(applied)
    }

    async fn apply_new(
        &mut self,
        message: &StreamMessage<'_>,
        park_if_unknown: bool,
    ) -> Result<Applied, tokio_postgres::Error> {
        let outcome = match DeliveryOutcome::decode(message.payload) {
            Ok(outcome) => outcome,
            Err(error) => {
                let error = format!("not a courier.v1.DeliveryOutcome: {error}");
                park(&self.tx, message, &error).await?;
                return Ok(Applied::Parked);
            }
        };
        let (status, message_id, reason) = match &outcome.result {
            Some(delivery_outcome::Result::Delivered(d)) => ("delivered", Some(d.message_id), None),
            Some(delivery_outcome::Result::NotAlive(n)) => {
                ("not_alive", None, Some(n.reason.clone()))
            }
            Some(delivery_outcome::Result::Failed(f)) => ("failed", None, Some(f.reason.clone())),
            None => {
                let error = "outcome has a result this version does not know";
                park(&self.tx, message, error).await?;
                return Ok(Applied::Parked);
            }
        };
        let campaign = match campaign_uuid(&outcome.campaign_id) {
            Ok(id) => id,
            Err(error) => {
                park(&self.tx, message, &error).await?;
                return Ok(Applied::Parked);
            }
        };
        let finish_delivery = match &self.finish_delivery {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.tx.prepare(FINISH_DELIVERY).await?;
                self.finish_delivery = Some(statement.clone());
                statement
            }
        };
        let previous = self
            .tx
            .query_opt(
                &finish_delivery,
                &[
                    &campaign,
                    &outcome.user_id,
                    &status,
                    &message_id,
                    &reason,
                    &(outcome.attempts as i32),
                    &timestamp(outcome.occurred_at_ms),
                ],
            )
            .await?;
        let Some(previous) = previous else {
            let known = self
                .tx
                .query_opt(
                    "SELECT 1 FROM deliveries WHERE campaign_id = $1 AND user_id = $2",
                    &[&campaign, &outcome.user_id],
                )
                .await?
                .is_some();
            if known {
                // A second outcome for a finished recipient: the first one stands.
                return Ok(Applied::Changed(None));
            }
            if park_if_unknown {
                let error = "outcome for a recipient of no started campaign";
                park(&self.tx, message, error).await?;
                return Ok(Applied::Parked);
            }
            return Ok(Applied::UnknownRecipient);
        };
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
        counters.uncancelled += i32::from(previous.get::<_, &str>(0) == "cancelled");
        self.changed.insert(campaign);
        Ok(Applied::Changed(Some(campaign)))
    }

    /// Writes the counters and the checkpoint and commits; returns the
    /// campaigns whose status or progress moved.
    pub async fn commit(self) -> Result<Vec<Uuid>, tokio_postgres::Error> {
        for (campaign, c) in &self.counters {
            self.tx
                .execute(
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
        if self.last_seq > self.checkpoint_seq {
            self.tx
                .execute(
                    "UPDATE projector_checkpoints SET last_seq = $2 WHERE stream = $1",
                    &[&self.stream, &self.last_seq],
                )
                .await?;
        }
        self.tx.commit().await?;
        Ok(self.changed.into_iter().collect())
    }
}
