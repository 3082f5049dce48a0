//! What the loader does for one campaign event, decided from the decoded
//! event itself ([`Job::from_event`]) and carried out by one dispatch
//! ([`Job::run`]) into [`crate::fanout`] or [`crate::held`].
//!
//! The event is recognised by what it is, never by a header: a message
//! published without headers (a replay, an operator's tool) is handled
//! like any other.

use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use courier_core::proto::v1::event::Payload;
use uuid::Uuid;

use crate::fanout::{FanOut, Loader};
use crate::held::Held;

/// The work one event calls for, on one campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `CampaignStarted`: enqueue one work item per recipient.
    FanOut(Uuid),
    /// `CampaignResumed`: move the items senders set aside back.
    Release(Uuid),
    /// `CampaignCancelled`: drop the items senders set aside.
    DropHeld(Uuid),
}

/// Delay before a started campaign is looked at again while the projector
/// has not applied it yet. It usually has within a fraction of a second,
/// and the admin is waiting: every 25 ms for the first second, then every
/// second.
fn not_projected_retry(delivered: i64) -> Duration {
    if delivered <= 40 {
        Duration::from_millis(25)
    } else {
        Duration::from_secs(1)
    }
}

/// When to look for held items again after a resume: longer than a
/// sender's status check can be stale.
const SECOND_SWEEP: Duration = Duration::from_secs(3);

impl Job {
    /// The job for an encoded event; `None` for events the loader has
    /// nothing to do with, and for events it cannot read (the projector
    /// parks those for an operator, who publishes them again once courier
    /// reads them).
    pub fn from_event(bytes: &[u8]) -> Option<Job> {
        let payload = match courier_core::event::decode(bytes) {
            Ok((_, _, payload)) => payload,
            Err(error) => {
                tracing::warn!(%error, "ignored an event the loader cannot read");
                return None;
            }
        };
        let (job, campaign_id): (fn(Uuid) -> Job, _) = match &payload {
            Payload::CampaignStarted(e) => (Job::FanOut, &e.campaign_id),
            Payload::CampaignResumed(e) => (Job::Release, &e.campaign_id),
            Payload::CampaignCancelled(e) => (Job::DropHeld, &e.campaign_id),
            _ => return None,
        };
        match Uuid::parse_str(campaign_id) {
            Ok(campaign) => Some(job(campaign)),
            Err(_) => {
                tracing::warn!(
                    campaign_id,
                    "ignored an event whose campaign id is not a UUID"
                );
                None
            }
        }
    }

    pub fn campaign(self) -> Uuid {
        match self {
            Job::FanOut(campaign) | Job::Release(campaign) | Job::DropHeld(campaign) => campaign,
        }
    }

    /// The event that called for it, for spans and logs.
    pub fn event(self) -> &'static str {
        match self {
            Job::FanOut(_) => "CampaignStarted",
            Job::Release(_) => "CampaignResumed",
            Job::DropHeld(_) => "CampaignCancelled",
        }
    }

    /// Does the job for `message`; returns how to acknowledge it. Failures
    /// are retried through redelivery.
    pub async fn run(
        self,
        loader: &Loader,
        held: &Held,
        message: &Message,
        keep_going: impl Fn() -> bool,
    ) -> AckKind {
        let delivered = message.info().map_or(1, |info| info.delivered);
        match self {
            Job::FanOut(campaign) => {
                let progress = || async {
                    // Fan-out outlives the ack wait: tell JetStream we are on it.
                    let _ = message.ack_with(AckKind::Progress).await;
                    keep_going()
                };
                match loader.fan_out(campaign, progress).await {
                    Ok(FanOut::Done { enqueued }) => {
                        // A number, not text (an unsigned one would export as text).
                        tracing::Span::current()
                            .record("recipients", i64::try_from(enqueued).unwrap_or(i64::MAX));
                        AckKind::Ack
                    }
                    Ok(FanOut::NotProjectedYet) => {
                        AckKind::Nak(Some(not_projected_retry(delivered)))
                    }
                    Ok(FanOut::Interrupted) => AckKind::Nak(None),
                    Err(error) => retry_later(error),
                }
            }
            Job::Release(campaign) => match held.release(campaign).await {
                Ok(moved) => {
                    tracing::info!(moved, "released held items");
                    // A sender may set an item aside a moment after the
                    // resume (its status read just before it): sweep once
                    // more after that window.
                    if delivered <= 1 {
                        AckKind::Nak(Some(SECOND_SWEEP))
                    } else {
                        AckKind::Ack
                    }
                }
                Err(error) => retry_later(error),
            },
            Job::DropHeld(campaign) => match held.drop_all(campaign).await {
                Ok(dropped) => {
                    tracing::info!(dropped, "dropped held items of a cancelled campaign");
                    AckKind::Ack
                }
                Err(error) => retry_later(error),
            },
        }
    }
}

fn retry_later(error: anyhow::Error) -> AckKind {
    tracing::error!(
        error = format!("{error:#}"),
        "loader step failed; will retry"
    );
    AckKind::Nak(Some(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use courier_core::proto::v1::{
        CampaignCancelled, CampaignCreated, CampaignResumed, CampaignStarted, Event, UserBlocked,
    };
    use prost::Message as _;

    use super::*;

    fn encoded(payload: Payload) -> Vec<u8> {
        Event::new(payload).encode_to_vec()
    }

    #[test]
    fn each_campaign_event_the_loader_handles_is_one_job() {
        let campaign = Uuid::now_v7();
        let id = campaign.to_string();
        let started = Payload::CampaignStarted(CampaignStarted {
            campaign_id: id.clone(),
            started_by: 1,
        });
        let resumed = Payload::CampaignResumed(CampaignResumed {
            campaign_id: id.clone(),
            resumed_by: 1,
        });
        let cancelled = Payload::CampaignCancelled(CampaignCancelled {
            campaign_id: id,
            cancelled_by: 1,
        });
        assert_eq!(
            Job::from_event(&encoded(started)),
            Some(Job::FanOut(campaign))
        );
        assert_eq!(
            Job::from_event(&encoded(resumed)),
            Some(Job::Release(campaign))
        );
        assert_eq!(
            Job::from_event(&encoded(cancelled)),
            Some(Job::DropHeld(campaign))
        );
    }

    #[test]
    fn other_events_unreadable_ones_and_bad_ids_are_no_job() {
        let created = Payload::CampaignCreated(CampaignCreated {
            campaign_id: Uuid::now_v7().to_string(),
            ..Default::default()
        });
        assert_eq!(Job::from_event(&encoded(created)), None);
        let blocked = Payload::UserBlocked(UserBlocked::default());
        assert_eq!(Job::from_event(&encoded(blocked)), None);
        assert_eq!(Job::from_event(b"\xff\xff not an event"), None);
        let bad_id = Payload::CampaignStarted(CampaignStarted {
            campaign_id: "not-a-uuid".into(),
            started_by: 1,
        });
        assert_eq!(Job::from_event(&encoded(bad_id)), None);
    }

    #[test]
    fn a_start_not_projected_yet_is_looked_at_soon_then_less_often() {
        assert_eq!(not_projected_retry(1), Duration::from_millis(25));
        assert_eq!(not_projected_retry(40), Duration::from_millis(25));
        assert_eq!(not_projected_retry(41), Duration::from_secs(1));
    }
}
