//! Commands on campaigns, as the bot and courierctl issue them. Each one
//! becomes an event on the campaign's subject, published with optimistic
//! concurrency: the command is checked against the campaign's last event and
//! published only if no other event landed in between. Two admins pressing
//! conflicting buttons at once therefore end in one consistent state, and
//! the loser hears what the campaign became.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::campaign::{CampaignStatus, Transition, TransitionError};
use crate::event::{self, EventPublisher, PublishError};
use crate::proto::v1::{
    AudienceFilter, CampaignCancelled, CampaignCreated, CampaignOptions, CampaignPaused,
    CampaignResumed, CampaignStarted, Content, Event, Variant, event::Payload,
};
use crate::telemetry;
use crate::topology::Topology;

/// A campaign as an admin confirmed it.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    /// Chosen by the caller, so a start that failed halfway can be tried
    /// again without creating a second campaign.
    pub id: Uuid,
    pub created_by: i64,
    pub audience: AudienceFilter,
    /// The default content; `variants` may give other languages their own.
    pub content: Content,
    pub variants: Vec<Variant>,
    pub options: CampaignOptions,
}

/// A change an admin or operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `reason` is empty for an admin's pause; courier sets it when it
    /// pauses a campaign itself.
    Pause {
        reason: String,
    },
    Resume,
    Cancel,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("there is no campaign {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Refused(#[from] TransitionError),
    #[error("the campaign changed at the same moment and is now {0}")]
    Conflict(CampaignStatus),
    #[error("campaign {0} has an event this version cannot read")]
    Unreadable(Uuid),
    #[error(transparent)]
    Publish(PublishError),
    #[error("reading the campaign's events: {0}")]
    Read(async_nats::Error),
}

/// The status a campaign has right after `payload`, the last event on its
/// subject. Every accepted event is a valid transition (commands check),
/// so the last one alone decides.
pub fn status_after(payload: &Payload) -> Option<CampaignStatus> {
    Some(match payload {
        Payload::CampaignCreated(_) => CampaignStatus::Pending,
        Payload::CampaignStarted(_) | Payload::CampaignResumed(_) => CampaignStatus::Sending,
        Payload::CampaignPaused(_) => CampaignStatus::Paused,
        Payload::CampaignCancelled(_) => CampaignStatus::Cancelled,
        Payload::CampaignCompleted(_) => CampaignStatus::Completed,
        _ => return None,
    })
}

#[derive(Clone)]
pub struct CampaignCommands {
    publisher: EventPublisher,
    events: jetstream::stream::Stream,
    topology: Topology,
}

impl CampaignCommands {
    pub async fn new(
        js: jetstream::Context,
        topology: Topology,
    ) -> Result<CampaignCommands, CommandError> {
        let events = js
            .get_stream(topology.events_stream())
            .await
            .map_err(|e| CommandError::Read(e.into()))?;
        Ok(CampaignCommands {
            publisher: EventPublisher::new(js, topology.clone()),
            events,
            topology,
        })
    }

    /// Publishes `CampaignCreated` then `CampaignStarted` for a new campaign
    /// and returns its id. Idempotent: called again for the same id (after
    /// a failure between the two), it publishes only what is missing.
    /// The root of the campaign's trace: every later span of the campaign
    /// (projection, fan-out, each send) descends from this one through the
    /// `traceparent` its events carry. It links to the caller's span (a bot
    /// update) instead of continuing it, so the campaign is traced whatever
    /// that update's sampling decided.
    pub async fn create_and_start(&self, campaign: NewCampaign) -> Result<Uuid, CommandError> {
        let span = tracing::info_span!(parent: None, "campaign.start", campaign_id = %campaign.id, audience = %crate::audience::to_text(&campaign.audience));
        telemetry::link_to_current(&span);
        self.publish_start(campaign).instrument(span).await
    }

    async fn publish_start(&self, campaign: NewCampaign) -> Result<Uuid, CommandError> {
        let id = campaign.id;
        let created_seq = match self.status(id).await {
            Err(CommandError::NotFound(_)) => {
                let created = Event::with_id(
                    format!("{id}.created"),
                    Payload::CampaignCreated(CampaignCreated {
                        campaign_id: id.to_string(),
                        created_by: campaign.created_by,
                        // Only versions before filters set it.
                        audience: 0,
                        filter: Some(campaign.audience),
                        variants: campaign.variants,
                        content: Some(campaign.content),
                        options: Some(campaign.options),
                    }),
                );
                // Expecting an empty subject: an id can never be reused.
                self.publisher
                    .publish_expecting(&created, 0)
                    .await
                    .map_err(CommandError::Publish)?
            }
            Ok((CampaignStatus::Pending, seq)) => seq,
            // Started already (the first try got that far).
            Ok(_) => return Ok(id),
            Err(error) => return Err(error),
        };
        let started = Event::with_id(
            format!("{id}.started"),
            Payload::CampaignStarted(CampaignStarted {
                campaign_id: id.to_string(),
                started_by: campaign.created_by,
            }),
        );
        self.publisher
            .publish_expecting(&started, created_seq)
            .await
            .map_err(CommandError::Publish)?;
        Ok(id)
    }

    /// The campaign's status and the sequence of its last event.
    pub async fn status(&self, campaign: Uuid) -> Result<(CampaignStatus, u64), CommandError> {
        let subject = self.topology.campaign_subject(&campaign.to_string());
        let last = match self.events.direct_get_last_for_subject(subject).await {
            Ok(message) => message,
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                return Err(CommandError::NotFound(campaign));
            }
            Err(error) => return Err(CommandError::Read(error.into())),
        };
        let status = event::decode(&last.payload)
            .ok()
            .and_then(|(_, _, payload)| status_after(&payload))
            .ok_or(CommandError::Unreadable(campaign))?;
        Ok((status, last.sequence))
    }

    /// Applies `change` to the campaign; returns its new status. Like a
    /// start, a trace of its own linked to the caller's.
    pub async fn change(
        &self,
        campaign: Uuid,
        change: Change,
        by: i64,
    ) -> Result<CampaignStatus, CommandError> {
        let span = tracing::info_span!(parent: None, "campaign.change", campaign_id = %campaign, ?change, by);
        telemetry::link_to_current(&span);
        self.publish_change(campaign, change, by)
            .instrument(span)
            .await
    }

    async fn publish_change(
        &self,
        campaign: Uuid,
        change: Change,
        by: i64,
    ) -> Result<CampaignStatus, CommandError> {
        let (status, last_seq) = self.status(campaign).await?;
        let (transition, payload) = match change {
            Change::Pause { reason } => (
                Transition::Pause,
                Payload::CampaignPaused(CampaignPaused {
                    campaign_id: campaign.to_string(),
                    paused_by: by,
                    reason,
                }),
            ),
            Change::Resume => (
                Transition::Resume,
                Payload::CampaignResumed(CampaignResumed {
                    campaign_id: campaign.to_string(),
                    resumed_by: by,
                }),
            ),
            Change::Cancel => (
                Transition::Cancel,
                Payload::CampaignCancelled(CampaignCancelled {
                    campaign_id: campaign.to_string(),
                    cancelled_by: by,
                }),
            ),
        };
        let next = status.apply(transition)?;
        match self
            .publisher
            .publish_expecting(&Event::new(payload), last_seq)
            .await
        {
            Ok(_) => Ok(next),
            Err(PublishError::Conflict) => {
                Err(CommandError::Conflict(self.status(campaign).await?.0))
            }
            Err(error) => Err(CommandError::Publish(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{CampaignCompleted, UserBlocked};

    #[test]
    fn the_last_event_decides_the_status() {
        let id = "c".to_string();
        assert_eq!(
            status_after(&Payload::CampaignPaused(CampaignPaused {
                campaign_id: id.clone(),
                ..Default::default()
            })),
            Some(CampaignStatus::Paused)
        );
        assert_eq!(
            status_after(&Payload::CampaignResumed(CampaignResumed {
                campaign_id: id.clone(),
                resumed_by: 1
            })),
            Some(CampaignStatus::Sending)
        );
        assert_eq!(
            status_after(&Payload::CampaignCompleted(CampaignCompleted {
                campaign_id: id
            })),
            Some(CampaignStatus::Completed)
        );
        assert_eq!(
            status_after(&Payload::UserBlocked(UserBlocked::default())),
            None
        );
    }
}
