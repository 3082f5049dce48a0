//! Stopping a campaign whose content Telegram refuses. A 400 about the
//! message itself (bad entities, too long, wrong file id, bad button) will
//! fail for every recipient, so after a few such refusals the campaign
//! pauses itself with the reason, for the admin to see, instead of burning
//! through the whole audience.
//!
//! Senders mark those outcomes (`Failed.content_refused`); the projector,
//! which sees every outcome of every replica, counts them and publishes
//! `CampaignPaused`, guarded by optimistic concurrency like a completion. So
//! senders never publish campaign events.

use courier_core::campaign::CampaignStatus;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{CampaignPaused, Event, event::Payload};

use tracing::Instrument as _;

use crate::standing::Standing;

/// Content refusals (since the start or the last resume) that pause a
/// campaign.
pub const REFUSALS_BEFORE_PAUSE: i32 = 3;

/// True when a campaign in `status` with `refusals` content refusals
/// should pause.
pub fn should_pause(status: CampaignStatus, refusals: i32) -> bool {
    status == CampaignStatus::Sending && refusals >= REFUSALS_BEFORE_PAUSE
}

/// Publishes `CampaignPaused` if Telegram refuses the campaign's content;
/// true if it did.
pub async fn pause_if_refused(
    publisher: &EventPublisher,
    campaign: &Standing,
) -> anyhow::Result<bool> {
    if !should_pause(campaign.status, campaign.content_refusals) {
        return Ok(false);
    }
    let id = campaign.id;
    let reason = format!(
        "Telegram refuses the content: {}",
        campaign.content_refusal.as_deref().unwrap_or_default()
    );
    // One id per state it pauses: a repeated publish is deduplicated.
    let event = Event::with_id(
        format!("{id}.refused.{}", campaign.last_event_seq),
        Payload::CampaignPaused(CampaignPaused {
            campaign_id: id.to_string(),
            // Courier itself.
            paused_by: 0,
            reason: reason.clone(),
        }),
    );
    let span = tracing::info_span!("campaign.pause", campaign_id = %id, reason);
    campaign.continue_trace(&span);
    // Paused, resumed or cancelled since: that stands.
    let paused = publisher
        .publish_unless_changed(&event, campaign.last_event_seq)
        .instrument(span)
        .await?;
    if paused {
        tracing::warn!(campaign = %id, reason, "paused a campaign whose content Telegram refuses");
    }
    Ok(paused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus::*;

    #[test]
    fn a_sending_campaign_pauses_after_a_few_refusals() {
        assert!(!should_pause(Sending, REFUSALS_BEFORE_PAUSE - 1));
        assert!(should_pause(Sending, REFUSALS_BEFORE_PAUSE));
    }

    #[test]
    fn a_campaign_not_sending_is_left_alone() {
        for status in [Pending, Paused, Cancelled, Completed] {
            assert!(!should_pause(status, 10), "{status:?}");
        }
    }
}
