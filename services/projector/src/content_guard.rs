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
use tokio_postgres::Client;
use uuid::Uuid;

/// Content refusals (since the start or the last resume) that pause a
/// campaign.
pub const REFUSALS_BEFORE_PAUSE: i32 = 3;

/// True when a campaign in `status` with `refusals` content refusals
/// should pause.
pub fn should_pause(status: CampaignStatus, refusals: i32) -> bool {
    status == CampaignStatus::Sending && refusals >= REFUSALS_BEFORE_PAUSE
}

/// Publishes `CampaignPaused` for `campaign` if its content is refused.
pub async fn pause_if_refused(
    client: &Client,
    publisher: &EventPublisher,
    campaign: Uuid,
) -> anyhow::Result<()> {
    let Some(row) = client
        .query_opt(
            "SELECT status, content_refusals, content_refusal, last_event_seq
             FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await?
    else {
        return Ok(());
    };
    let status: CampaignStatus = row.get::<_, &str>(0).parse()?;
    if !should_pause(status, row.get(1)) {
        return Ok(());
    }
    let refusal: Option<String> = row.get(2);
    let reason = format!(
        "Telegram refuses the content: {}",
        refusal.unwrap_or_default()
    );
    let last_event_seq: i64 = row.get(3);
    // One id per state it pauses: a repeated publish is deduplicated.
    let event = Event::with_id(
        format!("{campaign}.refused.{last_event_seq}"),
        Payload::CampaignPaused(CampaignPaused {
            campaign_id: campaign.to_string(),
            // Courier itself.
            paused_by: 0,
            reason: reason.clone(),
        }),
    );
    // Paused, resumed or cancelled since: that stands.
    if publisher
        .publish_unless_changed(&event, last_event_seq as u64)
        .await?
    {
        tracing::warn!(%campaign, reason, "paused a campaign whose content Telegram refuses");
    }
    Ok(())
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
