//! Applying messages to the Postgres read model: one dispatch on the
//! event's payload (`apply`), with a module per family of events
//! (`campaigns`, `amendments`, `users`, `admins`), `outcomes` for the delivery outcomes
//! stream, and [`Batch`], the transaction they are applied in.
//!
//! Every handler decides whether its message can be applied at all (a
//! poison message: an id that is not one, a campaign never created)
//! before it writes anything, so a parked message leaves no trace in the
//! batch's transaction but its row in `parked_messages`.

mod admins;
mod amendments;
mod batch;
mod bots;
mod campaigns;
mod outcomes;
mod users;

pub use batch::{Applied, Batch, Committed, StreamMessage, checkpoints};
use users::UserWrites;

use chrono::{DateTime, Utc};
use courier_core::proto::v1::event::Payload;
use tokio_postgres::Transaction;
use uuid::Uuid;

/// An event being applied: the batch's transaction, the event's place in
/// its stream, and when it happened (the read model's times come from
/// events, never from the clock, so a replay rebuilds identical rows).
pub(crate) struct Applying<'a> {
    pub tx: &'a Transaction<'a>,
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The trace the event continues (its [`TRACE_PARENT`] header).
    pub trace_parent: Option<&'a str>,
}

/// The header W3C trace context travels in, as
/// [`courier_core::trace_context`] writes it.
pub(crate) const TRACE_PARENT: &str = "traceparent";

/// Why a message was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The message itself cannot be applied, now or on a retry: it is
    /// parked for an operator and the stream moves on.
    #[error("{0}")]
    Poison(String),
    /// The read model could not be written: the batch ends and is tried
    /// again from the checkpoint.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

/// Applies one event; returns the campaign it concerns, if any.
/// Registrations and tags wait in `users` to be written together; any
/// other event writes them first, so it sees the users as the stream has
/// them.
pub(crate) async fn apply(
    event: &Applying<'_>,
    payload: Payload,
    users: &mut UserWrites,
) -> Result<Option<Uuid>, ApplyError> {
    if !matches!(payload, Payload::UserRegistered(_) | Payload::UserTagged(_)) {
        users.write(event.tx).await?;
    }
    match payload {
        Payload::CampaignCreated(e) => campaigns::created(event, e).await.map(Some),
        Payload::CampaignScheduled(e) => campaigns::scheduled(event, e).await.map(Some),
        Payload::CampaignApprovalRequested(e) => {
            campaigns::approval_requested(event, e).await.map(Some)
        }
        Payload::CampaignStarted(e) => campaigns::started(event, e).await.map(Some),
        Payload::CampaignPaused(e) => campaigns::paused(event, e).await.map(Some),
        Payload::CampaignResumed(e) => campaigns::resumed(event, e).await.map(Some),
        Payload::CampaignCancelled(e) => campaigns::cancelled(event, e).await.map(Some),
        Payload::CampaignCompleted(e) => campaigns::completed(event, e).await.map(Some),
        Payload::CampaignEdited(e) => amendments::edited(event, e).await.map(Some),
        Payload::CampaignRecalled(e) => amendments::recalled(event, e).await.map(Some),
        Payload::UserRegistered(e) => users.register(event, e).await.map(|()| None),
        Payload::UserLanguageChanged(e) => users::language_changed(event, e).await.map(|()| None),
        Payload::UserBlocked(e) => users::blocked(event, e).await.map(|()| None),
        Payload::UserUnblocked(e) => users::unblocked(event, e).await.map(|()| None),
        Payload::UserTagged(e) => users.tag(event, e).await.map(|()| None),
        Payload::UserUntagged(e) => users::untagged(event, e).await.map(|()| None),
        Payload::UserActive(e) => users::active(event, e).await.map(|()| None),
        Payload::UserOptedOut(e) => users::opted(event, (e.bot_id, e.user_id), true)
            .await
            .map(|()| None),
        Payload::UserOptedIn(e) => users::opted(event, (e.bot_id, e.user_id), false)
            .await
            .map(|()| None),
        Payload::AdminGranted(e) => admins::granted(event, e).await.map(|()| None),
        Payload::AdminRevoked(e) => admins::revoked(event, e).await.map(|()| None),
        Payload::BotAdded(e) => bots::added(event, e).await.map(|()| None),
        Payload::BotRemoved(e) => bots::removed(event, e).await.map(|()| None),
        Payload::BotOwnersSet(e) => bots::owners_set(event, e).await.map(|()| None),
        Payload::BotLanguagesSet(e) => bots::languages_set(event, e).await.map(|()| None),
    }
}

fn timestamp(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn campaign_uuid(id: &str) -> Result<Uuid, ApplyError> {
    Uuid::parse_str(id).map_err(|_| ApplyError::Poison(format!("campaign id {id:?} is not a UUID")))
}
