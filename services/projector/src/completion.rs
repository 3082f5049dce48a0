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
use tokio_postgres::Client;
use uuid::Uuid;

/// True when a campaign in `status` with `audience_size` recipients of
/// which `finished` have an outcome should now complete.
pub fn is_complete(status: CampaignStatus, audience_size: Option<i32>, finished: i64) -> bool {
    status == CampaignStatus::Sending
        && audience_size.is_some_and(|size| i64::from(size) == finished)
}

/// Publishes `CampaignCompleted` for `campaign` if it is complete.
pub async fn complete_if_done(
    client: &Client,
    publisher: &EventPublisher,
    campaign: Uuid,
) -> anyhow::Result<()> {
    let Some(row) = client
        .query_opt(
            "SELECT status, audience_size, (delivered + not_alive + failed + cancelled)::BIGINT, last_event_seq
             FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await?
    else {
        return Ok(());
    };
    let status: CampaignStatus = row.get::<_, &str>(0).parse()?;
    if !is_complete(status, row.get(1), row.get(2)) {
        return Ok(());
    }
    let last_event_seq: i64 = row.get(3);
    let event = Event::with_id(
        format!("{campaign}.completed"),
        Payload::CampaignCompleted(CampaignCompleted {
            campaign_id: campaign.to_string(),
        }),
    );
    match publisher
        .publish_unless_changed(&event, last_event_seq as u64)
        .await?
    {
        true => tracing::info!(%campaign, "campaign completed"),
        false => tracing::debug!(%campaign, "not completing: the campaign has newer events"),
    }
    Ok(())
}

/// Completes every sending campaign that is done: one whose last outcome
/// a projector committed but whose completion it never published (it
/// stopped in between, or NATS refused the publish). Run when a projector
/// takes over, before it applies anything new.
pub async fn complete_all_done(client: &Client, publisher: &EventPublisher) -> anyhow::Result<()> {
    let sending = client
        .query(
            "SELECT campaign_id FROM campaigns WHERE status = 'sending'",
            &[],
        )
        .await?;
    for row in sending {
        complete_if_done(client, publisher, row.get(0)).await?;
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
