//! The transaction messages are applied in, and the checkpoint that makes
//! applying them idempotent.
//!
//! Messages of one stream are applied together in one [`Batch`], one
//! transaction that also advances the stream's checkpoint; a message at or
//! below the checkpoint was applied before, so replaying a stream, or
//! delivering a message twice, changes nothing. Outcomes arrive by the
//! thousand per second (and user events by the thousand on an import); a
//! transaction each would make Postgres the bottleneck. A crash before
//! commit loses the whole batch, which the checkpoint then replays.

use std::collections::{BTreeSet, HashMap};

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use courier_core::proto::v1::DeliveryOutcome;
use prost::Message as _;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::outcomes::{self, Outcomes, Recorded};
use super::users::UserWrites;
use super::{ApplyError, Applying, TRACE_PARENT, timestamp};

/// One message from a stream, as the projector sees it.
pub struct StreamMessage<'a> {
    pub stream: &'a str,
    pub seq: u64,
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied before (a replay or redelivery): nothing changed.
    AlreadyApplied,
    /// Applied; the campaign whose progress or status may have changed.
    Changed(Option<Uuid>),
    /// Cannot be applied (undecodable, from a newer version, a bad id, a
    /// campaign the read model cannot move): kept in `parked_messages` for
    /// an operator, and the stream moves on.
    Parked,
    /// An outcome for a recipient not in the read model yet: its campaign's
    /// start has not been applied. Nothing changed; try again later.
    UnknownRecipient,
}

/// What a committed batch moved.
pub struct Committed {
    /// Campaigns whose status or progress moved.
    pub changed: Vec<Uuid>,
    /// When each recipient the batch finished got its outcome, by campaign.
    pub resolved: HashMap<Uuid, Vec<DateTime<Utc>>>,
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

/// Messages of one stream applied in one transaction, with the checkpoint
/// and the campaigns' counters written once at commit.
pub struct Batch<'a> {
    tx: Transaction<'a>,
    stream: String,
    /// The last sequence applied: the checkpoint's, then this batch's.
    last_seq: i64,
    checkpoint_seq: i64,
    outcomes: Outcomes,
    /// Campaigns whose status or progress moved.
    changed: BTreeSet<Uuid>,
    /// Registrations and tags written together (see [`UserWrites`]).
    users: UserWrites,
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
            outcomes: Outcomes::default(),
            changed: BTreeSet::new(),
            users: UserWrites::default(),
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
        let applied = match courier_core::event::decode(message.payload) {
            Ok((_, occurred_at_ms, payload)) => {
                let event = Applying {
                    tx: &self.tx,
                    seq,
                    at: timestamp(occurred_at_ms),
                    trace_parent: message
                        .headers
                        .and_then(|headers| headers.get(TRACE_PARENT))
                        .map(|value| value.as_str()),
                };
                super::apply(&event, payload, &mut self.users).await
            }
            Err(error) => Err(ApplyError::Poison(error.to_string())),
        };
        match applied {
            Ok(campaign) => {
                self.changed.extend(campaign);
                Ok(Applied::Changed(campaign))
            }
            Err(error) => self.not_applied(message, error).await,
        }
    }

    /// Reads the rows of the recipients `payloads` are outcomes for, in one
    /// query: a batch of outcomes then applies without one each.
    pub async fn preload_outcomes(
        &mut self,
        payloads: &[&[u8]],
    ) -> Result<(), tokio_postgres::Error> {
        let recipients: Vec<_> = payloads
            .iter()
            .filter_map(|payload| outcomes::recipient_of(payload))
            .collect();
        self.outcomes.preload(&self.tx, recipients).await
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
        let recorded = match DeliveryOutcome::decode(message.payload) {
            Ok(outcome) => self.outcomes.apply(&self.tx, outcome).await,
            Err(error) => Err(ApplyError::Poison(format!(
                "not a courier.v1.DeliveryOutcome: {error}"
            ))),
        };
        let applied = match recorded {
            Ok(Recorded::Finished(campaign) | Recorded::Amended(campaign)) => {
                self.changed.insert(campaign);
                Applied::Changed(Some(campaign))
            }
            Ok(Recorded::AlreadyFinished) => Applied::Changed(None),
            Ok(Recorded::UnknownRecipient) if park_if_unknown => {
                let error = "outcome for a recipient of no started campaign";
                self.not_applied(message, ApplyError::Poison(error.into()))
                    .await?
            }
            Ok(Recorded::UnknownRecipient) => return Ok(Applied::UnknownRecipient),
            Err(error) => self.not_applied(message, error).await?,
        };
        self.last_seq = seq;
        Ok(applied)
    }

    /// Parks a poison message in `parked_messages`; a Postgres error ends
    /// the batch instead.
    async fn not_applied(
        &self,
        message: &StreamMessage<'_>,
        error: ApplyError,
    ) -> Result<Applied, tokio_postgres::Error> {
        let error = match error {
            ApplyError::Poison(error) => error,
            ApplyError::Postgres(error) => return Err(error),
        };
        tracing::error!(
            stream = message.stream,
            seq = message.seq,
            subject = message.subject,
            error,
            "parked a message"
        );
        self.tx
            .execute(
                "INSERT INTO parked_messages (stream, seq, subject, payload, error) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&message.stream, &(message.seq as i64), &message.subject, &message.payload, &error],
            )
            .await?;
        Ok(Applied::Parked)
    }

    /// Writes the counters and the checkpoint and commits.
    pub async fn commit(mut self) -> Result<Committed, tokio_postgres::Error> {
        self.users.write(&self.tx).await?;
        self.outcomes.write(&self.tx).await?;
        if self.last_seq > self.checkpoint_seq {
            self.tx
                .execute(
                    "UPDATE projector_checkpoints SET last_seq = $2 WHERE stream = $1",
                    &[&self.stream, &self.last_seq],
                )
                .await?;
        }
        self.tx.commit().await?;
        Ok(Committed {
            changed: self.changed.into_iter().collect(),
            resolved: self.outcomes.into_resolved(),
        })
    }
}
