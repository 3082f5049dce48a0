//! Commands on campaigns, as the bot and courierctl issue them. Each one
//! becomes an event on the campaign's subject, published with optimistic
//! concurrency: the command is checked against the campaign's last event and
//! published only if no other event landed in between. Two admins pressing
//! conflicting buttons at once therefore end in one consistent state, and
//! the loser hears what the campaign became.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use chrono::{DateTime, Utc};
use prost::Message as _;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::campaign::{CampaignStatus, Transition, TransitionError};
use crate::event::{self, EventPublisher, PublishError};
use crate::proto::v1::{
    AudienceFilter, CampaignApprovalRequested, CampaignCancelled, CampaignCreated, CampaignOptions,
    CampaignPaused, CampaignResumed, CampaignScheduled, CampaignStarted, Content, Event, Variant,
    event::Payload,
};
use crate::schedule::Timers;
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
    /// What admins call it; empty: the first words of the message.
    pub title: String,
    /// The bot that sends it ([`crate::topology::DEFAULT_BOT`]: the
    /// services' own).
    pub bot_id: i64,
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
    #[error("setting the campaign's start timer: {0}")]
    Timer(async_nats::Error),
    #[error("you asked for this approval: another admin must give it")]
    OwnApproval,
    #[error(transparent)]
    Amend(#[from] crate::amend::AmendRefused),
}

/// When a new campaign begins sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Now,
    At(DateTime<Utc>),
}

/// The status a campaign has right after `payload`, the last event on its
/// subject. Every accepted event is a valid transition (commands check),
/// so the last one alone decides.
pub fn status_after(payload: &Payload) -> Option<CampaignStatus> {
    Some(match payload {
        Payload::CampaignCreated(_) => CampaignStatus::Pending,
        Payload::CampaignScheduled(_) => CampaignStatus::Scheduled,
        Payload::CampaignApprovalRequested(_) => CampaignStatus::AwaitingApproval,
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
    timers: Timers,
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
            publisher: EventPublisher::new(js.clone(), topology.clone()),
            events,
            timers: Timers::new(js, topology.clone()),
            topology,
        })
    }

    pub(crate) fn events(&self) -> &jetstream::stream::Stream {
        &self.events
    }

    pub(crate) fn topology(&self) -> &Topology {
        &self.topology
    }

    pub(crate) fn publisher(&self) -> &EventPublisher {
        &self.publisher
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
        self.create_and_begin(campaign, Begin::Now).await
    }

    /// Like [`Self::create_and_start`], to begin `now` or at a set time
    /// (`CampaignScheduled` and a timer, [`crate::schedule`]). A time that
    /// has passed begins now.
    pub async fn create_and_begin(
        &self,
        campaign: NewCampaign,
        begin: Begin,
    ) -> Result<Uuid, CommandError> {
        self.create(campaign, begin, false).await
    }

    /// Like [`Self::create_and_begin`], but the campaign waits for another
    /// admin's approval ([`Self::approve`]) before it begins.
    pub async fn create_for_approval(
        &self,
        campaign: NewCampaign,
        begin: Begin,
    ) -> Result<Uuid, CommandError> {
        self.create(campaign, begin, true).await
    }

    async fn create(
        &self,
        campaign: NewCampaign,
        begin: Begin,
        approval: bool,
    ) -> Result<Uuid, CommandError> {
        let span = tracing::info_span!(parent: None, "campaign.start", campaign_id = %campaign.id, audience = %crate::audience::to_text(&campaign.audience), ?begin, approval);
        telemetry::link_to_current(&span);
        self.publish_start(campaign, begin, approval)
            .instrument(span)
            .await
    }

    async fn publish_start(
        &self,
        campaign: NewCampaign,
        begin: Begin,
        approval: bool,
    ) -> Result<Uuid, CommandError> {
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
                        title: campaign.title,
                        bot_id: campaign.bot_id,
                    }),
                );
                // Expecting an empty subject: an id can never be reused.
                self.publisher
                    .publish_expecting(&created, 0)
                    .await
                    .map_err(CommandError::Publish)?
            }
            Ok((CampaignStatus::Pending, seq)) => seq,
            // Scheduled already: the first try may have failed to set the
            // timer (setting it again leaves one).
            Ok((CampaignStatus::Scheduled, _)) => {
                if let Begin::At(at) = begin {
                    self.timers.arm(id, at).await.map_err(CommandError::Timer)?;
                }
                return Ok(id);
            }
            // Started already (the first try got that far).
            Ok(_) => return Ok(id),
            Err(error) => return Err(error),
        };
        if approval {
            let requested = Event::with_id(
                format!("{id}.approval"),
                Payload::CampaignApprovalRequested(CampaignApprovalRequested {
                    campaign_id: id.to_string(),
                    requested_by: campaign.created_by,
                    start_at_ms: match begin {
                        Begin::At(at) => at.timestamp_millis(),
                        Begin::Now => 0,
                    },
                }),
            );
            self.publisher
                .publish_expecting(&requested, created_seq)
                .await
                .map_err(CommandError::Publish)?;
            return Ok(id);
        }
        self.begin(id, begin, campaign.created_by, created_seq)
            .await?;
        Ok(id)
    }

    /// Starts the campaign now, or schedules it for a time to come.
    async fn begin(
        &self,
        id: Uuid,
        begin: Begin,
        by: i64,
        last_seq: u64,
    ) -> Result<CampaignStatus, CommandError> {
        match begin {
            Begin::At(at) if at > Utc::now() => {
                self.publish_schedule(id, at, by, last_seq).await?;
                Ok(CampaignStatus::Scheduled)
            }
            _ => {
                self.publish_started(id, by, last_seq).await?;
                Ok(CampaignStatus::Sending)
            }
        }
    }

    /// A second admin approves a campaign awaiting approval: it begins as
    /// its creator asked (now, or at its time if that is still to come).
    /// Whoever asked for the approval cannot give it.
    pub async fn approve(&self, campaign: Uuid, by: i64) -> Result<CampaignStatus, CommandError> {
        let span =
            tracing::info_span!(parent: None, "campaign.approve", campaign_id = %campaign, by);
        telemetry::link_to_current(&span);
        async {
            // Awaiting approval means the request is the last event.
            let (last, status, last_seq) = self.last_event(campaign).await?;
            let Payload::CampaignApprovalRequested(requested) = last else {
                return Err(TransitionError {
                    from: status,
                    transition: Transition::Start,
                }
                .into());
            };
            if requested.requested_by == by {
                return Err(CommandError::OwnApproval);
            }
            let begin = match DateTime::from_timestamp_millis(requested.start_at_ms) {
                Some(at) if requested.start_at_ms > 0 => Begin::At(at),
                _ => Begin::Now,
            };
            match self.begin(campaign, begin, by, last_seq).await {
                Err(CommandError::Publish(PublishError::Conflict)) => {
                    Err(CommandError::Conflict(self.status(campaign).await?.0))
                }
                begun => begun,
            }
        }
        .instrument(span)
        .await
    }

    /// Publishes the start, expecting the campaign's last event at
    /// `last_seq`. One id per campaign: a start published twice is stored
    /// once.
    async fn publish_started(&self, id: Uuid, by: i64, last_seq: u64) -> Result<(), CommandError> {
        let started = Event::with_id(
            format!("{id}.started"),
            Payload::CampaignStarted(CampaignStarted {
                campaign_id: id.to_string(),
                started_by: by,
            }),
        );
        self.publisher
            .publish_expecting(&started, last_seq)
            .await
            .map_err(CommandError::Publish)?;
        Ok(())
    }

    /// Publishes `CampaignScheduled` for `at`, then sets the timer. The fact
    /// first: a timer without it would start a campaign the read model
    /// shows as pending, and if the timer is not set the command fails and
    /// is tried again (setting a timer twice leaves one).
    async fn publish_schedule(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        by: i64,
        last_seq: u64,
    ) -> Result<(), CommandError> {
        let scheduled = Event::with_id(
            format!("{id}.scheduled.{}", at.timestamp_millis()),
            Payload::CampaignScheduled(CampaignScheduled {
                campaign_id: id.to_string(),
                scheduled_by: by,
                start_at_ms: at.timestamp_millis(),
            }),
        );
        match self.publisher.publish_expecting(&scheduled, last_seq).await {
            Ok(_) => {}
            Err(PublishError::Conflict) => {
                return Err(CommandError::Conflict(self.status(id).await?.0));
            }
            Err(error) => return Err(CommandError::Publish(error)),
        }
        self.timers.arm(id, at).await.map_err(CommandError::Timer)
    }

    /// Moves a scheduled (or pending) campaign's start to `at`.
    pub async fn reschedule(
        &self,
        campaign: Uuid,
        at: DateTime<Utc>,
        by: i64,
    ) -> Result<CampaignStatus, CommandError> {
        let span = tracing::info_span!(parent: None, "campaign.reschedule", campaign_id = %campaign, %at, by);
        telemetry::link_to_current(&span);
        async {
            let (status, last_seq) = self.status(campaign).await?;
            let next = status.apply(Transition::Schedule)?;
            self.publish_schedule(campaign, at, by, last_seq).await?;
            Ok(next)
        }
        .instrument(span)
        .await
    }

    /// A campaign's timer fired: starts it if it still waits (scheduled, or
    /// pending if the schedule's fact was not published). Returns whether
    /// this call started it; a campaign started, cancelled or moved to a
    /// later time meanwhile is left as it is.
    pub async fn start_due(&self, campaign: Uuid) -> Result<bool, CommandError> {
        let span = tracing::info_span!(parent: None, "campaign.start", campaign_id = %campaign, begin = "scheduled");
        telemetry::link_to_current(&span);
        async {
            let (status, last_seq) = self.status(campaign).await?;
            // Not one awaiting approval: a timer is no approver.
            if !matches!(status, CampaignStatus::Scheduled | CampaignStatus::Pending) {
                return Ok(false);
            }
            match self.publish_started(campaign, 0, last_seq).await {
                Ok(()) => Ok(true),
                // A cancel or a new time landed first: it decides.
                Err(CommandError::Publish(PublishError::Conflict)) => Ok(false),
                Err(error) => Err(error),
            }
        }
        .instrument(span)
        .await
    }

    /// Every event of the campaign, its amendments' too, oldest first: who
    /// did what, and when.
    pub async fn history(&self, campaign: Uuid) -> Result<Vec<Event>, CommandError> {
        let id = campaign.to_string();
        let mut events = Vec::new();
        for subject in [
            self.topology.campaign_subject(&id),
            self.topology.amend_subject(&id),
        ] {
            let mut from = None;
            loop {
                match self
                    .events
                    .direct_get_next_for_subject(subject.as_str(), from)
                    .await
                {
                    Ok(message) => {
                        let event = Event::decode(message.payload.as_ref())
                            .map_err(|_| CommandError::Unreadable(campaign))?;
                        events.push((message.sequence, event));
                        from = Some(message.sequence + 1);
                    }
                    Err(error) if error.kind() == DirectGetErrorKind::NotFound => break,
                    Err(error) => return Err(CommandError::Read(error.into())),
                }
            }
        }
        events.sort_by_key(|(seq, _)| *seq);
        match events.is_empty() {
            true => Err(CommandError::NotFound(campaign)),
            false => Ok(events.into_iter().map(|(_, event)| event).collect()),
        }
    }

    /// The campaign's status and the sequence of its last event.
    pub async fn status(&self, campaign: Uuid) -> Result<(CampaignStatus, u64), CommandError> {
        let (_, status, seq) = self.last_event(campaign).await?;
        Ok((status, seq))
    }

    /// The campaign's last event, the status it leaves, and its sequence.
    async fn last_event(
        &self,
        campaign: Uuid,
    ) -> Result<(Payload, CampaignStatus, u64), CommandError> {
        let subject = self.topology.campaign_subject(&campaign.to_string());
        let last = match self.events.direct_get_last_for_subject(subject).await {
            Ok(message) => message,
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                return Err(CommandError::NotFound(campaign));
            }
            Err(error) => return Err(CommandError::Read(error.into())),
        };
        let (_, _, payload) =
            event::decode(&last.payload).map_err(|_| CommandError::Unreadable(campaign))?;
        let status = status_after(&payload).ok_or(CommandError::Unreadable(campaign))?;
        Ok((payload, status, last.sequence))
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
            Ok(_) if status == CampaignStatus::Scheduled => {
                // Cancelled: its timer would find it so and do nothing, but
                // need not fire at all.
                if let Err(error) = self.timers.disarm(campaign).await {
                    tracing::warn!(%error, %campaign, "removing a cancelled campaign's timer");
                }
                Ok(next)
            }
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
