//! Handling one SendMessage work item, start to finish: skip it if the
//! recipient already has an outcome, wait for a rate slot, call Telegram,
//! record the outcome, ack. Retries happen only through JetStream
//! redelivery: a NAK with a delay, never a sleep-and-retry here.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, stream::DirectGetErrorKind};
use courier_core::campaign::CampaignStatus;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Delivered, DeliveryOutcome, Event, Failed, NotAlive, SendMessage, UserBlocked,
    delivery_outcome, event::Payload,
};
use courier_core::topology::{SENDER_MAX_DELIVER, Topology};
use prost::Message as _;
use uuid::Uuid;

use crate::campaigns::Campaigns;
use crate::classify::{Verdict, classify};
use crate::rate::Budget;
use crate::telegram::BotApi;

/// How a work item ended, for the caller's logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Delivered,
    NotAlive,
    Failed,
    /// Already had an outcome (a redelivered or duplicate item).
    Duplicate,
    /// Campaign cancelled: dropped unsent.
    Dropped,
    /// Sent back for later (NAK with delay).
    Deferred,
}

#[derive(Debug, thiserror::Error)]
pub enum StopSending {
    #[error(
        "Telegram refused TELEGRAM_BOT_TOKEN (401/404): sending stopped; fix the token and restart"
    )]
    Unauthorized,
}

pub struct Worker {
    pub js: jetstream::Context,
    pub topology: Topology,
    pub outcomes: jetstream::stream::Stream,
    pub events: EventPublisher,
    pub api: BotApi,
    pub campaigns: Campaigns,
    pub free_lane: Budget,
    pub paid_lane: Budget,
}

/// Delay before a transient failure's next attempt: 1 s doubling, ≤ 60 s.
pub fn retry_delay(attempt: u64) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

impl Worker {
    pub async fn handle(
        &self,
        message: &jetstream::Message,
    ) -> anyhow::Result<Result<Handled, StopSending>> {
        let attempt = message.info().map_err(anyhow::Error::msg)?.delivered as u64;
        let item = match SendMessage::decode(message.payload.as_ref()) {
            Ok(item) => item,
            Err(error) => {
                // Nothing to deliver and nobody to record it for.
                tracing::error!(subject = %message.subject, %error, "dropped an undecodable work item");
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(anyhow::Error::msg)?;
                return Ok(Ok(Handled::Dropped));
            }
        };
        let Ok(campaign_id) = Uuid::parse_str(&item.campaign_id) else {
            tracing::error!(
                campaign = item.campaign_id,
                "dropped a work item with a malformed campaign id"
            );
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(anyhow::Error::msg)?;
            return Ok(Ok(Handled::Dropped));
        };
        let Some(campaign) = self.campaigns.get(campaign_id).await? else {
            return self.defer(message, Duration::from_secs(1)).await;
        };
        match campaign.status {
            CampaignStatus::Cancelled => {
                message.double_ack().await.map_err(anyhow::Error::msg)?;
                return Ok(Ok(Handled::Dropped));
            }
            CampaignStatus::Paused | CampaignStatus::Pending => {
                return self.defer(message, Duration::from_secs(1)).await;
            }
            CampaignStatus::Sending | CampaignStatus::Completed => {}
        }
        let outcome_subject = self
            .topology
            .outcome_subject(&item.campaign_id, item.user_id);
        if self.has_outcome(&outcome_subject).await? {
            message.double_ack().await.map_err(anyhow::Error::msg)?;
            return Ok(Ok(Handled::Duplicate));
        }
        let template = match &campaign.template {
            Ok(template) => template,
            Err(reason) => {
                let result = delivery_outcome::Result::Failed(Failed {
                    reason: format!("unsendable content: {reason}"),
                });
                return self
                    .finish(message, &item, attempt, result, Handled::Failed)
                    .await;
            }
        };
        let lane = if campaign.paid {
            &self.paid_lane
        } else {
            &self.free_lane
        };
        lane.acquire().await;
        let sent = self.api.send(&template.call(item.chat_id)).await;
        let (result, handled) = match sent {
            Ok(message_id) => (
                delivery_outcome::Result::Delivered(Delivered { message_id }),
                Handled::Delivered,
            ),
            Err(failure) => match classify(&failure) {
                Verdict::NotAlive(reason) => {
                    let blocked = Event::new(Payload::UserBlocked(UserBlocked {
                        user_id: item.user_id,
                        reason: reason.clone(),
                    }));
                    self.events.publish(&blocked).await?;
                    (
                        delivery_outcome::Result::NotAlive(NotAlive { reason }),
                        Handled::NotAlive,
                    )
                }
                Verdict::BrokenContent(reason) | Verdict::Uncertain(reason) => (
                    delivery_outcome::Result::Failed(Failed { reason }),
                    Handled::Failed,
                ),
                Verdict::Transient(reason) if attempt >= SENDER_MAX_DELIVER as u64 => (
                    delivery_outcome::Result::Failed(Failed {
                        reason: format!("gave up after {attempt} attempts: {reason}"),
                    }),
                    Handled::Failed,
                ),
                Verdict::Transient(reason) => {
                    tracing::warn!(campaign = %campaign_id, attempt, reason, "transient failure; will retry");
                    return self.defer(message, retry_delay(attempt)).await;
                }
                Verdict::RetryAfter(retry_after) => {
                    tracing::warn!(
                        retry_after_s = retry_after.as_secs(),
                        "429 from Telegram: pausing the token"
                    );
                    lane.pause_for(retry_after).await;
                    return self.defer(message, retry_after).await;
                }
                Verdict::Unauthorized => {
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(30))))
                        .await
                        .map_err(anyhow::Error::msg)?;
                    return Ok(Err(StopSending::Unauthorized));
                }
            },
        };
        self.finish(message, &item, attempt, result, handled).await
    }

    async fn defer(
        &self,
        message: &jetstream::Message,
        delay: Duration,
    ) -> anyhow::Result<Result<Handled, StopSending>> {
        message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(Ok(Handled::Deferred))
    }

    async fn has_outcome(&self, subject: &str) -> anyhow::Result<bool> {
        match self.outcomes.direct_get_last_for_subject(subject).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Records the outcome, then acks the item: an outcome is never lost,
    /// and a crash between the two leaves an item whose redelivery finds the
    /// outcome and is skipped.
    async fn finish(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempt: u64,
        result: delivery_outcome::Result,
        handled: Handled,
    ) -> anyhow::Result<Result<Handled, StopSending>> {
        let outcome = DeliveryOutcome {
            campaign_id: item.campaign_id.clone(),
            user_id: item.user_id,
            chat_id: item.chat_id,
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            attempts: attempt as u32,
            result: Some(result),
        };
        let publish = PublishMessage::build()
            .message_id(format!("{}.{}", item.campaign_id, item.user_id))
            .payload(outcome.encode_to_vec().into());
        self.js
            .send_publish(
                self.topology
                    .outcome_subject(&item.campaign_id, item.user_id),
                publish,
            )
            .await?
            .await?;
        message.double_ack().await.map_err(anyhow::Error::msg)?;
        Ok(Ok(handled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(50), Duration::from_secs(60));
    }
}
