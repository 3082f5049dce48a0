//! Deciding that a campaign is complete and saying so with an event.
//!
//! A campaign completes when every recipient has an outcome, not when the
//! loader finishes enqueueing. The projector is the one place that sees
//! all outcomes, so it publishes `CampaignCompleted`, guarded by optimistic
//! concurrency on the campaign's subject: if any event was appended after
//! the last one the read model applied (a pause, a cancel, or a completion
//! already published during an earlier run or a replay), the publish is
//! refused and nothing is duplicated.

use courier_core::campaign::CampaignStatus;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{CampaignCompleted, Event, event::Payload};

use tracing::Instrument as _;

use crate::standing::Standing;

/// True when a campaign in `status` with `audience_size` recipients of
/// which `finished` have an outcome should now complete.
pub fn is_complete(status: CampaignStatus, audience_size: Option<i32>, finished: i64) -> bool {
    status == CampaignStatus::Sending
        && audience_size.is_some_and(|size| i64::from(size) == finished)
}

/// Publishes `CampaignCompleted` if the campaign is complete.
pub async fn complete_if_done(
    publisher: &EventPublisher,
    campaign: &Standing,
) -> anyhow::Result<()> {
    if !is_complete(campaign.status, campaign.audience_size, campaign.finished) {
        return Ok(());
    }
    let id = campaign.id;
    let event = Event::with_id(
        format!("{id}.completed"),
        Payload::CampaignCompleted(CampaignCompleted {
            campaign_id: id.to_string(),
        }),
    );
    let span = tracing::info_span!("campaign.complete", campaign_id = %id);
    campaign.continue_trace(&span);
    match publisher
        .publish_unless_changed(&event, campaign.last_event_seq)
        .instrument(span)
        .await?
    {
        true => tracing::info!(campaign = %id, "campaign completed"),
        false => tracing::debug!(campaign = %id, "not completing: the campaign has newer events"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus::*;

    #[test]
    fn completes_when_every_recipient_has_an_outcome() {
        assert!(is_complete(Sending, Some(3), 3));
        assert!(!is_complete(Sending, Some(3), 2));
    }

    #[test]
    fn an_empty_audience_completes_at_once() {
        assert!(is_complete(Sending, Some(0), 0));
    }

    #[test]
    fn only_sending_campaigns_with_a_fixed_audience_complete() {
        assert!(!is_complete(Paused, Some(3), 3));
        assert!(!is_complete(Completed, Some(3), 3));
        assert!(!is_complete(Cancelled, Some(3), 3));
        assert!(!is_complete(Pending, None, 0));
        assert!(!is_complete(Sending, None, 0));
    }
}
