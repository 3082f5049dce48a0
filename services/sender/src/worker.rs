//! Handling one SendMessage work item, start to finish: drop it if the
//! campaign is cancelled, set it aside if paused, skip it if the recipient
//! already has an outcome, wait for a rate slot, call Telegram, record the
//! outcome, ack. Retries happen only through JetStream redelivery (a NAK
//! with a delay), never by sleeping and trying again here.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, stream::DirectGetErrorKind};
use courier_core::campaign::CampaignStatus;
use courier_core::commands::CommandError;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Delivered, DeliveryOutcome, Event, Failed, NotAlive, SendMessage, UserBlocked,
    delivery_outcome, event::Payload,
};
use courier_core::topology::{
    ATTEMPTS_HEADER, MAYBE_DUPLICATE_HEADER, SENDER_ACK_WAIT, SENDER_MAX_ATTEMPTS, Topology,
};
use courier_core::{retry, trace_context};
use courier_telegram::bot_api::BotApi;
use courier_telegram::classify::{ApiFailure, Verdict, classify};
use prost::Message as _;
use uuid::Uuid;

use crate::budget::Budget;
use crate::campaigns::{Campaigns, Overlap};
use crate::chat_spacing::ChatSpacing;
use crate::in_flight::InFlightLimit;
use crate::restart_guard::{
    BeforeCall, Claim, ClaimedElsewhere, Receipt, RestartGuard, Ticket, claimed_elsewhere,
};

/// How a work item ended, for logs, traces and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Delivered,
    NotAlive,
    Failed,
    /// Already had an outcome (a redelivered or duplicated item).
    Duplicate,
    /// Campaign cancelled (or item unreadable): dropped unsent.
    Dropped,
    /// Campaign paused: set aside until it resumes.
    Held,
    /// Sent back for later (NAK with delay).
    Deferred,
}

impl Handled {
    /// The `outcome` label of `courier_sends_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Handled::Delivered => "delivered",
            Handled::NotAlive => "not_alive",
            Handled::Failed => "failed",
            Handled::Duplicate => "duplicate",
            Handled::Dropped => "dropped",
            Handled::Held => "held",
            Handled::Deferred => "deferred",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StopSending {
    #[error(
        "Telegram refused TELEGRAM_BOT_TOKEN (401/404): sending stopped; fix the token and restart"
    )]
    Unauthorized,
}

type Result<T> = anyhow::Result<std::result::Result<T, StopSending>>;

pub struct Worker {
    pub js: jetstream::Context,
    pub topology: Topology,
    pub outcomes: jetstream::stream::Stream,
    pub events: EventPublisher,
    pub api: BotApi,
    pub campaigns: Campaigns,
    pub free_lane: Budget,
    pub paid_lane: Budget,
    pub chat_spacing: ChatSpacing,
    pub in_flight: Mutex<InFlightLimit>,
    pub restart_guard: std::sync::Arc<RestartGuard>,
}

/// Delay before a transient failure's next attempt: 1 s doubling, ≤ 60 s.
pub fn retry_delay(attempt: u64) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Send attempts so far, this one included: those made before the item was
/// set aside (its header) plus JetStream's deliveries of this copy.
fn attempts(message: &jetstream::Message, delivered: i64) -> u64 {
    let before: u64 = message
        .headers
        .as_ref()
        .and_then(|h| h.get(ATTEMPTS_HEADER))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0);
    before + delivered.max(1) as u64
}

/// Whether Telegram answered: only an answer's time says how long requests
/// take (a timeout or a refused connection says nothing about it).
fn answered(sent: &std::result::Result<i64, ApiFailure>) -> bool {
    matches!(
        sent,
        Ok(_) | Err(ApiFailure::Api { .. } | ApiFailure::BadAnswer { .. })
    )
}

/// Whether the recipient may already have an outcome: this copy was
/// delivered before, set aside and back (a pause), or enqueued a second
/// time by a loader recovering from a crash. A first delivery of a first
/// copy skips the lookup, a NATS round trip (docs/decisions/0005); the one
/// exception, a batch handed out again by a restarted NATS, is the
/// restart guard's ([`crate::restart_guard`]).
fn may_have_outcome(headers: Option<&HeaderMap>, delivered: i64) -> bool {
    delivered > 1
        || headers.is_some_and(|h| {
            h.get(ATTEMPTS_HEADER).is_some() || h.get(MAYBE_DUPLICATE_HEADER).is_some()
        })
}

impl Worker {
    /// Works the item. If that fails midway (NATS or Postgres unreachable),
    /// the item is sent back with the retry delay rather than left to come
    /// back after the whole ack wait.
    pub async fn handle(&self, message: &jetstream::Message, receipt: Receipt) -> Result<Handled> {
        let worked = self.work(message, receipt).await;
        if worked.is_err() {
            let attempt = message
                .info()
                .map(|info| attempts(message, info.delivered))
                .unwrap_or(1);
            // Best effort: with NATS unreachable, the ack wait brings it back.
            let _ = message
                .ack_with(AckKind::Nak(Some(retry_delay(attempt))))
                .await;
        }
        worked
    }

    async fn work(&self, message: &jetstream::Message, receipt: Receipt) -> Result<Handled> {
        let info = message.info().map_err(anyhow::Error::msg)?;
        let (delivered, seq) = (info.delivered, info.stream_sequence);
        let attempt = attempts(message, delivered);
        let item = match SendMessage::decode(message.payload.as_ref()) {
            Ok(item) => item,
            Err(error) => {
                // Nothing to deliver and nobody to record it for.
                tracing::error!(subject = %message.subject, %error, "dropped an undecodable work item");
                return self.ack(message, AckKind::Term, Handled::Dropped).await;
            }
        };
        tracing::Span::current().record("campaign_id", &item.campaign_id);
        let Ok(campaign_id) = Uuid::parse_str(&item.campaign_id) else {
            tracing::error!(
                campaign = item.campaign_id,
                "dropped a work item with a malformed campaign id"
            );
            return self.ack(message, AckKind::Term, Handled::Dropped).await;
        };
        if let Some(handled) = self
            .unless_sending(message, &item, campaign_id, attempt, seq)
            .await?
        {
            return Ok(Ok(handled));
        }
        if may_have_outcome(message.headers.as_ref(), delivered) && self.has_outcome(&item).await? {
            return self.ack(message, AckKind::Ack, Handled::Duplicate).await;
        }
        let Some(campaign) = self.campaigns.content(campaign_id).await? else {
            // The projector has not stored the content yet.
            return self
                .defer(message, Duration::from_secs(1), "content not projected yet")
                .await;
        };
        let template = match &campaign.template {
            Ok(template) => template,
            Err(reason) => {
                let reason = format!("unsendable content: {reason}");
                return self
                    .finish(message, &item, attempt, failed(reason), Handled::Failed)
                    .await;
            }
        };
        let lane = if campaign.paid {
            &self.paid_lane
        } else {
            &self.free_lane
        };
        if let Overlap::JustStarted(wait) = self.campaigns.overlap(campaign_id).await {
            return self.defer(message, wait, "campaign just started").await;
        }
        self.wait_for_slot(message, lane).await?;
        // The wait may have been long: a pause or cancel since then wins.
        if let Some(handled) = self
            .unless_sending(message, &item, campaign_id, attempt, seq)
            .await?
        {
            return Ok(Ok(handled));
        }
        // Whether this send must claim its chat: after the rate slot, the
        // list of sending campaigns is only looked at, never read again (a
        // Postgres round trip there would make the send late).
        let overlapping = !self.campaigns.still_alone(campaign_id).await;
        if let Err(wait) = self
            .chat_spacing
            .try_send(item.chat_id, overlapping)
            .await?
        {
            // The chat got a message a moment ago (another campaign's):
            // this slot goes unused rather than earn the token a 429.
            return self.defer(message, wait, "chat spacing").await;
        }
        let recipient = format!("{}.{}", item.campaign_id, item.user_id);
        let (ticket, before) = self.restart_guard.enter(recipient, receipt);
        match (before, &ticket) {
            (BeforeCall::Settle(wait), _) => {
                return self
                    .defer(message, wait, "settling after a NATS reconnect")
                    .await;
            }
            (BeforeCall::Claim, Some(ticket)) => {
                if let Some(handled) = self
                    .claim_recipient(message, &item, attempt, ticket)
                    .await?
                {
                    return Ok(Ok(handled));
                }
            }
            _ => {}
        }
        let asked = std::time::Instant::now();
        let sent = self.api.send(&template.call(item.chat_id)).await;
        if answered(&sent) {
            self.answered_after(asked);
        }
        let sent = sent
            .map_err(|failure| observe_failure(classify(&failure), message, campaign_id, attempt));
        // A send to be tried again gives its recipient back.
        if let (
            Err(Verdict::Transient(_) | Verdict::RetryAfter(_) | Verdict::Unauthorized),
            Some(ticket),
        ) = (&sent, &ticket)
        {
            self.restart_guard.release(ticket).await;
        }
        let (result, handled) = match sent {
            Ok(message_id) => (
                delivery_outcome::Result::Delivered(Delivered { message_id }),
                Handled::Delivered,
            ),
            Err(verdict) => {
                match verdict {
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
                    Verdict::BrokenContent(reason) => (
                        // The projector pauses the campaign after a few.
                        delivery_outcome::Result::Failed(Failed {
                            reason,
                            content_refused: true,
                        }),
                        Handled::Failed,
                    ),
                    Verdict::Uncertain(reason) => {
                        (failed(format!("uncertain: {reason}")), Handled::Failed)
                    }
                    Verdict::Transient(reason) if attempt >= SENDER_MAX_ATTEMPTS => (
                        failed(format!("gave up after {attempt} attempts: {reason}")),
                        Handled::Failed,
                    ),
                    Verdict::Transient(reason) => {
                        tracing::warn!(campaign = %campaign_id, attempt, reason, "transient failure; will retry");
                        return self
                            .defer(message, retry_delay(attempt), "transient failure")
                            .await;
                    }
                    Verdict::RetryAfter(retry_after) => {
                        metrics::counter!("courier_telegram_429_total").increment(1);
                        tracing::warn!(
                            retry_after_s = retry_after.as_secs(),
                            "429 from Telegram: pausing the token"
                        );
                        lane.pause_for(retry_after).await?;
                        return self.defer(message, retry_after, "429").await;
                    }
                    Verdict::Unauthorized => {
                        message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(30))))
                            .await
                            .map_err(anyhow::Error::msg)?;
                        return Ok(Err(StopSending::Unauthorized));
                    }
                }
            }
        };
        self.finish(message, &item, attempt, result, handled).await
    }

    /// A suspect send claims its recipient (see [`crate::restart_guard`]),
    /// unless it has an outcome already. `None`: it holds the recipient and
    /// may send; otherwise how the item ended without a send.
    async fn claim_recipient(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempt: u64,
        ticket: &Ticket<'_>,
    ) -> anyhow::Result<Option<Handled>> {
        let done = if self.has_outcome(item).await? {
            self.ack(message, AckKind::Ack, Handled::Duplicate).await?
        } else {
            match self.restart_guard.claim(ticket).await? {
                Claim::Won => return Ok(None),
                Claim::Lost { age } => match claimed_elsewhere(age) {
                    ClaimedElsewhere::Recheck(wait) => {
                        self.defer(message, wait, "recipient claimed by another copy")
                            .await?
                    }
                    ClaimedElsewhere::Uncertain => {
                        let reason = "uncertain: claimed by another copy around a NATS \
                                      restart, which recorded no outcome"
                            .to_owned();
                        self.finish(message, item, attempt, failed(reason), Handled::Failed)
                            .await?
                    }
                },
            }
        };
        Ok(Some(done.expect("only sends stop sending")))
    }

    /// Lets the in-flight limit follow Telegram's answer time.
    fn answered_after(&self, asked: std::time::Instant) {
        let now = std::time::Instant::now();
        let mut in_flight = self.in_flight.lock().expect("in-flight limit lock");
        if let Some(limit) = in_flight.answered(now - asked, now) {
            metrics::gauge!("courier_sends_in_flight_limit").set(limit as f64);
        }
    }

    /// Items this sender may work on at once now.
    pub fn in_flight_limit(&self) -> usize {
        self.in_flight.lock().expect("in-flight limit lock").limit()
    }

    /// Finishes the item without sending when its campaign is not sending:
    /// dropped if cancelled, set aside if paused, deferred if not started.
    async fn unless_sending(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        campaign: Uuid,
        attempt: u64,
        seq: u64,
    ) -> anyhow::Result<Option<Handled>> {
        let mut status = self.campaigns.status(campaign).await;
        if let Ok(CampaignStatus::Paused) = status {
            // Confirmed against the campaign's latest event: a stale cache
            // must not hold an item of a campaign that has resumed.
            status = self.campaigns.fresh_status(campaign).await;
        }
        let done = match status {
            Ok(CampaignStatus::Sending | CampaignStatus::Completed) => return Ok(None),
            Ok(CampaignStatus::Cancelled) => {
                self.ack(message, AckKind::Ack, Handled::Dropped).await?
            }
            Ok(CampaignStatus::Paused) => self.hold(message, item, attempt - 1, seq).await?,
            Ok(CampaignStatus::Pending) => {
                self.defer(message, Duration::from_secs(1), "campaign not started")
                    .await?
            }
            Err(CommandError::NotFound(_)) => {
                tracing::error!(%campaign, "dropped a work item of a campaign that does not exist");
                self.ack(message, AckKind::Term, Handled::Dropped).await?
            }
            Err(error) => return Err(error.into()),
        };
        Ok(Some(done.expect("only sends stop sending")))
    }

    /// Acks without waiting for the server's confirmation: whatever the
    /// ack concludes (an outcome, a held copy) is stored first, so an ack
    /// that gets lost only brings back an item the next sender skips.
    async fn ack(
        &self,
        message: &jetstream::Message,
        kind: AckKind,
        handled: Handled,
    ) -> Result<Handled> {
        message.ack_with(kind).await.map_err(anyhow::Error::msg)?;
        Ok(Ok(handled))
    }

    async fn defer(
        &self,
        message: &jetstream::Message,
        delay: Duration,
        why: &'static str,
    ) -> Result<Handled> {
        tracing::debug!(?delay, why, "deferred a work item");
        message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(Ok(Handled::Deferred))
    }

    /// Sets an item of a paused campaign aside on the held subject, keeping
    /// its attempt count; the loader moves it back on resume.
    async fn hold(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempts_so_far: u64,
        seq: u64,
    ) -> Result<Handled> {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert(ATTEMPTS_HEADER, attempts_so_far.to_string().as_str());
        let held = PublishMessage::build()
            .headers(headers)
            .message_id(format!("{}.{}.held.{seq}", item.campaign_id, item.user_id))
            .payload(message.payload.clone());
        self.js
            .send_publish(self.topology.held_subject(&item.campaign_id), held)
            .await?
            .await?;
        self.ack(message, AckKind::Ack, Handled::Held).await
    }

    /// Waits for a rate slot, telling JetStream the item is still being
    /// worked on if the wait is long (a 429 pause), so it is not handed to
    /// another sender meanwhile.
    async fn wait_for_slot(
        &self,
        message: &jetstream::Message,
        lane: &Budget,
    ) -> anyhow::Result<()> {
        let acquire = lane.acquire();
        tokio::pin!(acquire);
        let mut progress = tokio::time::interval(SENDER_ACK_WAIT / 3);
        progress.tick().await;
        loop {
            tokio::select! {
                acquired = &mut acquire => return Ok(acquired?),
                _ = progress.tick() => {
                    message.ack_with(AckKind::Progress).await.map_err(anyhow::Error::msg)?;
                }
            }
        }
    }

    async fn has_outcome(&self, item: &SendMessage) -> anyhow::Result<bool> {
        let subject = self
            .topology
            .outcome_subject(&item.campaign_id, item.user_id);
        match self.outcomes.direct_get_last_for_subject(subject).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Records the outcome, then acks the item. A crash between the two
    /// leaves an item whose redelivery finds the outcome and is skipped.
    /// The message went out already, so a NATS blip must not lose its
    /// record: the publish is repeated (same message id, so at most one
    /// lands) for as long as the item's ack deadline leaves room, rather than
    /// letting the item be redelivered and sent twice.
    async fn finish(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempt: u64,
        result: delivery_outcome::Result,
        handled: Handled,
    ) -> Result<Handled> {
        let outcome = DeliveryOutcome {
            campaign_id: item.campaign_id.clone(),
            user_id: item.user_id,
            chat_id: item.chat_id,
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            attempts: attempt as u32,
            result: Some(result),
        };
        let mut headers = HeaderMap::new();
        trace_context::inject(&mut headers);
        let publish = PublishMessage::build()
            .headers(headers)
            .message_id(format!("{}.{}", item.campaign_id, item.user_id))
            .payload(outcome.encode_to_vec().into());
        let subject = self
            .topology
            .outcome_subject(&item.campaign_id, item.user_id);
        let deadline = tokio::time::Instant::now() + SENDER_ACK_WAIT * 2 / 3;
        let mut attempt = 0;
        loop {
            let stored = async {
                self.js
                    .send_publish(subject.clone(), publish.clone())
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            };
            match stored.await {
                Ok(_) => break,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, "recording an outcome failed; trying again");
                    tokio::time::sleep(retry::backoff(attempt, Duration::from_secs(2))).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
        self.ack(message, AckKind::Ack, handled).await
    }
}

/// Records a failed send: counted by class (`courier_send_failures_total`)
/// and a `send.failed` span under the campaign's trace. Unlike `send`
/// spans, which are sampled, these are always exported, so every error and
/// 429 can be found in Tempo.
fn observe_failure(
    verdict: Verdict,
    message: &jetstream::Message,
    campaign: Uuid,
    attempt: u64,
) -> Verdict {
    let retry_after = match &verdict {
        Verdict::RetryAfter(after) => after.as_secs(),
        _ => 0,
    };
    let reason = match &verdict {
        Verdict::NotAlive(r)
        | Verdict::BrokenContent(r)
        | Verdict::Transient(r)
        | Verdict::Uncertain(r) => r.as_str(),
        Verdict::Unauthorized | Verdict::RetryAfter(_) => "",
    };
    let span = tracing::warn_span!(
        parent: None,
        "send.failed",
        campaign_id = %campaign,
        class = verdict.class(),
        reason,
        retry_after_s = retry_after,
        attempt,
    );
    trace_context::adopt(&span, message.headers.as_ref());
    span.in_scope(|| {});
    metrics::counter!("courier_send_failures_total", "class" => verdict.class()).increment(1);
    verdict
}

fn failed(reason: String) -> delivery_outcome::Result {
    delivery_outcome::Result::Failed(Failed {
        reason,
        content_refused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_delivery_of_a_first_copy_skips_the_outcome_lookup() {
        assert!(!may_have_outcome(None, 1));
        assert!(!may_have_outcome(Some(&HeaderMap::new()), 1));
        assert!(may_have_outcome(None, 2));
        for header in [ATTEMPTS_HEADER, MAYBE_DUPLICATE_HEADER] {
            let mut headers = HeaderMap::new();
            headers.insert(header, "1");
            assert!(may_have_outcome(Some(&headers), 1), "{header}");
        }
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(50), Duration::from_secs(60));
    }
}
