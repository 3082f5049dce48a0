//! Handling one SendMessage work item, in four stages read top to bottom
//! in `Worker::work`:
//! - **gate**: may this item be sent at all? Dropped if its campaign is
//!   cancelled, set aside if paused, skipped if the recipient already has
//!   an outcome, failed if the content cannot be sent.
//! - **pace**: when? A slot of the token's shared schedule, then the chat's
//!   spacing and, around a NATS restart, a claim on the recipient.
//! - **call**: Telegram, with the answer classified.
//! - **record**: what the answer means ([`crate::policy`]): an outcome
//!   stored then acked, or a NAK with a delay.
//!
//! Retries happen only through JetStream redelivery (a NAK with a delay),
//! never by sleeping and trying again here.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind, stream::DirectGetErrorKind};
use courier_core::campaign::CampaignStatus;
use courier_core::commands::CommandError;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    AmendKind, DeliveryOutcome, Event, SendMessage, UserBlocked, delivery_outcome, event::Payload,
};
use courier_core::send_limits::Lane;
use courier_core::topology::{ATTEMPTS_HEADER, MAYBE_DUPLICATE_HEADER, SENDER_ACK_WAIT, Topology};
use courier_core::{retry, telemetry, trace_context};
use courier_telegram::bot_api::Sent;
use courier_telegram::classify::{self, Verdict};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::bot::Bot;
use crate::budget::Budget;
use crate::campaigns::{Campaign, Campaigns, Overlap};
use crate::kv_number::now_us;
use crate::policy::{self, Action, Handled, retry_delay};
use crate::restart_guard::{
    BeforeCall, Claim, ClaimedElsewhere, Receipt, RestartGuard, Ticket, claimed_elsewhere,
};
use crate::tick;

/// An item of a campaign not started yet comes back after this long.
const NOT_STARTED_RECHECK: Duration = Duration::from_secs(1);
/// After a refused token, the item comes back after this long (to a sender
/// restarted with the right token, or given the bot's new one).
const UNAUTHORIZED_RECHECK: Duration = Duration::from_secs(30);
/// While an item waits for its rate slot (a 429 pause), JetStream is told
/// this often that it is still being worked on.
const PROGRESS_EVERY: Duration = Duration::from_millis(SENDER_ACK_WAIT.as_millis() as u64 / 3);
/// How long storing an outcome is tried again before the item is given up
/// to redelivery: well inside the ack wait, so the item is not handed to
/// another sender (and sent again) meanwhile.
const RECORD_FOR: Duration = Duration::from_millis(SENDER_ACK_WAIT.as_millis() as u64 * 2 / 3);
/// The longest pause between two tries of storing an outcome.
const RECORD_BACKOFF_CAP: Duration = Duration::from_secs(2);
/// Why an item was not worked to the end.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(
        "Telegram refused TELEGRAM_BOT_TOKEN (401/404): sending stopped; fix the token and restart"
    )]
    Unauthorized,
    /// NATS failed midway; the item was sent back to be tried again.
    #[error(transparent)]
    Unfinished(#[from] anyhow::Error),
}

/// A stage's result: go on to the next stage with `T`, or the item is done.
type Stage<T> = Result<ControlFlow<Handled, T>, WorkError>;

/// What working an item needs whichever bot it is for; the bot's own side
/// is its [`Bot`].
pub struct Worker {
    pub js: jetstream::Context,
    pub topology: Topology,
    pub outcomes: jetstream::stream::Stream,
    pub events: EventPublisher,
    pub campaigns: Arc<Campaigns>,
    pub restart_guard: Arc<RestartGuard>,
}

/// An item whose turn came: the restart guard's ticket, if the send took
/// one, and whether its chat's record is still to be published (a send
/// that claimed its chat has it already).
struct Paced<'g> {
    /// The rate slot the send took (Unix µs).
    slot: u64,
    ticket: Option<Ticket<'g>>,
    record_chat: bool,
}

/// An item that passed the gate.
struct Ready {
    item: SendMessage,
    campaign_id: Uuid,
    campaign: Arc<Campaign>,
    /// The budget it draws on, and whether it goes as a paid broadcast.
    lane: Lane,
    /// Send attempts so far, this one included.
    attempt: u64,
    /// The item's sequence in the work stream.
    seq: u64,
    /// When this copy was enqueued (Unix nanoseconds).
    enqueued_ns: i128,
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

/// A stage's end: the item is done, as `handled`.
fn done<T>(handled: anyhow::Result<Handled>) -> Stage<T> {
    Ok(ControlFlow::Break(handled?))
}

impl Worker {
    /// Works bot `bot`'s item. If NATS fails midway, the item is sent back
    /// with the retry delay rather than left to come back after the whole
    /// ack wait; if `stop` comes while it waits for its slot (shutdown, or
    /// the bot's token refused, replaced or removed), it is sent back at
    /// once for whoever serves the bot next.
    pub async fn handle(
        &self,
        bot: &Bot,
        message: &jetstream::Message,
        receipt: Receipt,
        stop: &CancellationToken,
    ) -> Result<Handled, WorkError> {
        let worked = self.work(bot, message, receipt, stop).await;
        if let Err(WorkError::Unfinished(_)) = &worked {
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

    async fn work(
        &self,
        bot: &Bot,
        message: &jetstream::Message,
        receipt: Receipt,
        stop: &CancellationToken,
    ) -> Result<Handled, WorkError> {
        let ready = match self.gate(bot, message).await? {
            ControlFlow::Continue(ready) => ready,
            ControlFlow::Break(handled) => return Ok(handled),
        };
        let Paced {
            slot,
            ticket,
            record_chat,
        } = match self.pace(bot, message, &ready, receipt, stop).await? {
            ControlFlow::Continue(paced) => paced,
            ControlFlow::Break(handled) => return Ok(handled),
        };
        // The chat's record goes out beside the call, not before it: a
        // NATS hiccup must not make the send leave late for its slot. It
        // too waits for the next tick, to share a write with the records
        // of other sends (well inside the PROPAGATION allowed for them).
        let record = async {
            if !record_chat {
                return;
            }
            tokio::time::sleep(tick::until_next(now_us())).await;
            if let Err(error) = bot.chat_spacing.record(ready.item.chat_id).await {
                tracing::warn!(error = format!("{error:#}"), "recording a send to a chat");
            }
        };
        let (sent, ()) = tokio::join!(self.call(bot, message, &ready, slot), record);
        let action = match &ready.item.amend {
            None => policy::after_send(sent, ready.attempt, ready.campaign.revision),
            Some(amend) => policy::after_amend(sent, ready.attempt, amend),
        };
        // A send to be tried again gives its recipient back.
        if action.sends_again()
            && let Some(ticket) = &ticket
        {
            self.restart_guard.release(ticket);
        }
        self.record(bot, message, &ready, action).await
    }

    /// Gate: whether the item may be sent at all. Finishes it unsent if
    /// not.
    async fn gate(&self, bot: &Bot, message: &jetstream::Message) -> Stage<Ready> {
        let info = message.info().map_err(anyhow::Error::msg)?;
        let (delivered, seq) = (info.delivered, info.stream_sequence);
        let enqueued_ns = info.published.unix_timestamp_nanos();
        let attempt = attempts(message, delivered);
        let item = match SendMessage::decode(message.payload.as_ref()) {
            Ok(item) => item,
            Err(error) => {
                // Nothing to deliver and nobody to record it for.
                tracing::error!(subject = %message.subject, %error, "dropped an undecodable work item");
                return done(self.ack(message, AckKind::Term, Handled::Dropped).await);
            }
        };
        tracing::Span::current().record("campaign_id", &item.campaign_id);
        let Ok(campaign_id) = Uuid::parse_str(&item.campaign_id) else {
            tracing::error!(
                campaign = item.campaign_id,
                "dropped a work item with a malformed campaign id"
            );
            return done(self.ack(message, AckKind::Term, Handled::Dropped).await);
        };
        // An amendment goes on whatever the campaign's status: it is about
        // messages delivered already.
        if item.amend.is_none()
            && let ControlFlow::Break(handled) = self
                .unless_sending(message, &item, campaign_id, attempt, seq)
                .await?
        {
            return Ok(ControlFlow::Break(handled));
        }
        let maybe_done =
            item.amend.is_some() || may_have_outcome(message.headers.as_ref(), delivered);
        if maybe_done && self.has_outcome(&item).await? {
            return done(self.ack(message, AckKind::Ack, Handled::Duplicate).await);
        }
        let campaign = match self.campaigns.content(campaign_id).await? {
            Ok(campaign) => campaign,
            Err(reason) => {
                let failed = policy::failed(format!("unsendable content: {reason}"));
                return done(
                    self.finish(message, &item, attempt, failed, Handled::Failed)
                        .await,
                );
            }
        };
        match current(&item, &campaign) {
            Current::Yes => {}
            Current::Superseded(why) => {
                tracing::debug!(why, "dropped a work item");
                return done(self.ack(message, AckKind::Ack, Handled::Dropped).await);
            }
            Current::NotSeenYet => {
                return done(
                    self.nak(message, NOT_STARTED_RECHECK, "edit not seen yet")
                        .await,
                );
            }
        }
        // Amendments take no `allow_paid_broadcast`; a paid campaign goes
        // free while the bot's Stars cannot pay.
        let lane = match item.amend {
            Some(_) => Lane::Free,
            None => Lane::of_paid(campaign.paid && bot.stars_out.paid_lane_open()),
        };
        Ok(ControlFlow::Continue(Ready {
            item,
            campaign_id,
            campaign,
            lane,
            attempt,
            seq,
            enqueued_ns,
        }))
    }

    /// Pace: waits for the item's turn. Its rate slot first; then, since
    /// the wait may have been long, a pause or cancel since wins; then the
    /// chat's spacing and, around a NATS restart, the recipient's claim.
    /// Goes on with what the call needs ([`Paced`]).
    async fn pace<'g>(
        &'g self,
        bot: &Bot,
        message: &jetstream::Message,
        ready: &Ready,
        receipt: Receipt,
        stop: &CancellationToken,
    ) -> Stage<Paced<'g>> {
        if let Overlap::JustStarted(wait) = self.campaigns.overlap(ready.campaign_id, bot.id) {
            return done(self.nak(message, wait, "campaign just started").await);
        }
        let messages = ready.campaign.messages(&ready.item);
        let slot = self.wait_for_slot(message, bot.lane(ready.lane), messages);
        let Some(slot) = stop.run_until_cancelled(slot).await.transpose()? else {
            return done(
                self.nak(message, Duration::ZERO, "stopped serving the bot")
                    .await,
            );
        };
        if ready.item.amend.is_none()
            && let ControlFlow::Break(handled) = self
                .unless_sending(
                    message,
                    &ready.item,
                    ready.campaign_id,
                    ready.attempt,
                    ready.seq,
                )
                .await?
        {
            return Ok(ControlFlow::Break(handled));
        }
        // Whether this send must claim its chat: the view is only looked
        // at here, never waited for (a wait would make the send late). An
        // amendment always does: its campaign is not among those sending.
        let overlapping =
            ready.item.amend.is_some() || !self.campaigns.still_alone(ready.campaign_id, bot.id);
        if overlapping
            && let Err(wait) = bot
                .chat_spacing
                .claim(ready.item.chat_id)
                .await
                .map_err(anyhow::Error::from)?
        {
            // The chat got a message a moment ago (another campaign's):
            // this slot goes unused rather than earn the token a 429.
            return done(self.nak(message, wait, "chat spacing").await);
        }
        let paced = |ticket| {
            Ok(ControlFlow::Continue(Paced {
                slot,
                ticket,
                record_chat: !overlapping,
            }))
        };
        let (ticket, before) = self.restart_guard.enter(item_key(&ready.item), receipt);
        match (before, &ticket) {
            (BeforeCall::Settle(wait), _) => done(
                self.nak(message, wait, "settling after a NATS reconnect")
                    .await,
            ),
            (BeforeCall::Claim, Some(claiming)) => {
                match self.claim_recipient(message, ready, claiming).await? {
                    ControlFlow::Break(handled) => Ok(ControlFlow::Break(handled)),
                    ControlFlow::Continue(()) => paced(ticket),
                }
            }
            _ => paced(ticket),
        }
    }

    /// Call: the Bot API request in its rate slot `slot`, its answer
    /// timed for the rate budget and classified (a failure counted and
    /// traced).
    async fn call(
        &self,
        bot: &Bot,
        message: &jetstream::Message,
        ready: &Ready,
        slot: u64,
    ) -> Result<Sent, Verdict> {
        let asked = std::time::Instant::now();
        let call = ready.campaign.call(&ready.item, ready.lane);
        let sent = bot.api.send(&call).await;
        if ready.lane == Lane::Paid {
            bot.stars_out.paid_sent();
        }
        if classify::answered(&sent) {
            let took = asked.elapsed();
            // The item keeps its place past the answer, until the next
            // tick stores its record: the in-flight limit counts that too,
            // or a fast Bot API would keep it at its floor of 64 items.
            bot.answered_after(took + tick::RECORD_TICK);
            courier_core::metrics::sender()
                .telegram_request_duration
                .observe([call.method, ready.lane.as_str()], took);
            if let Err(error) = bot.lane(ready.lane).answered(slot).await {
                tracing::warn!(error = format!("{error:#}"), "moving the rate schedule on");
            }
        }
        sent.map_err(|failure| {
            observe_failure(
                classify::classify(&failure),
                message,
                ready.campaign_id,
                ready.attempt,
            )
        })
    }

    /// Record: carries out what the answer means for the item.
    async fn record(
        &self,
        bot: &Bot,
        message: &jetstream::Message,
        ready: &Ready,
        action: Action,
    ) -> Result<Handled, WorkError> {
        let (item, attempt) = (&ready.item, ready.attempt);
        match action {
            Action::Record { outcome, handled } => {
                let handled = self
                    .finish(message, item, attempt, outcome, handled)
                    .await?;
                observe_wait(ready);
                Ok(handled)
            }
            Action::RecordNotAlive { reason } => {
                // Users are per bot: only this bot's user is marked.
                let blocked = Event::new(Payload::UserBlocked(UserBlocked {
                    user_id: item.user_id,
                    reason: reason.clone(),
                    bot_id: bot.id,
                }));
                self.events
                    .publish(&blocked)
                    .await
                    .map_err(anyhow::Error::from)?;
                let outcome = policy::not_alive(reason);
                let handled = self
                    .finish(message, item, attempt, outcome, Handled::NotAlive)
                    .await?;
                observe_wait(ready);
                Ok(handled)
            }
            Action::Retry { after } => {
                tracing::warn!(campaign = %ready.campaign_id, attempt, "transient failure; will retry");
                Ok(self.nak(message, after, "transient failure").await?)
            }
            Action::PauseToken { retry_after } => {
                courier_core::metrics::sender().telegram_429.inc();
                tracing::warn!(
                    retry_after_s = retry_after.as_secs(),
                    "429 from Telegram: pausing the token"
                );
                bot.lane(ready.lane)
                    .pause_for(retry_after)
                    .await
                    .map_err(anyhow::Error::from)?;
                Ok(self.nak(message, retry_after, "429").await?)
            }
            Action::FreeLane => {
                bot.stars_out.mark().await.map_err(anyhow::Error::from)?;
                Ok(self
                    .nak(message, Duration::ZERO, "the bot's Stars ran out")
                    .await?)
            }
            Action::StopSending => {
                message
                    .ack_with(AckKind::Nak(Some(UNAUTHORIZED_RECHECK)))
                    .await
                    .map_err(anyhow::Error::msg)?;
                Err(WorkError::Unauthorized)
            }
        }
    }

    /// A suspect send claims its recipient (see [`crate::restart_guard`]),
    /// unless it has an outcome already. Goes on if it holds the
    /// recipient.
    async fn claim_recipient(
        &self,
        message: &jetstream::Message,
        ready: &Ready,
        ticket: &Ticket<'_>,
    ) -> anyhow::Result<ControlFlow<Handled>> {
        let handled = if self.has_outcome(&ready.item).await? {
            self.ack(message, AckKind::Ack, Handled::Duplicate).await?
        } else {
            match self.restart_guard.claim(ticket).await? {
                Claim::Won => return Ok(ControlFlow::Continue(())),
                Claim::Lost { age } => match claimed_elsewhere(age) {
                    ClaimedElsewhere::Recheck(wait) => {
                        self.nak(message, wait, "recipient claimed by another copy")
                            .await?
                    }
                    ClaimedElsewhere::Uncertain => {
                        let reason = "uncertain: claimed by another copy around a NATS \
                                      restart, which recorded no outcome";
                        tracing::warn!(
                            key = ticket.key(),
                            ?age,
                            reason,
                            "recorded the recipient failed"
                        );
                        let failed = policy::failed(reason.to_owned());
                        self.finish(message, &ready.item, ready.attempt, failed, Handled::Failed)
                            .await?
                    }
                },
            }
        };
        Ok(ControlFlow::Break(handled))
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
    ) -> anyhow::Result<ControlFlow<Handled>> {
        let status = self.campaigns.status(campaign).await;
        let handled = match status {
            Ok(CampaignStatus::Sending | CampaignStatus::Completed) => {
                return Ok(ControlFlow::Continue(()));
            }
            Ok(CampaignStatus::Cancelled) => {
                self.ack(message, AckKind::Ack, Handled::Dropped).await?
            }
            Ok(CampaignStatus::Paused) => self.hold(message, item, attempt - 1, seq).await?,
            Ok(
                CampaignStatus::Pending
                | CampaignStatus::Scheduled
                | CampaignStatus::AwaitingApproval,
            ) => {
                self.nak(message, NOT_STARTED_RECHECK, "campaign not started")
                    .await?
            }
            Err(CommandError::NotFound(_)) => {
                tracing::error!(%campaign, "dropped a work item of a campaign that does not exist");
                self.ack(message, AckKind::Term, Handled::Dropped).await?
            }
            Err(error) => return Err(error.into()),
        };
        Ok(ControlFlow::Break(handled))
    }

    /// Acks without waiting for the server's confirmation: whatever the
    /// ack concludes (an outcome, a held copy) is stored first, so an ack
    /// that gets lost only brings back an item the next sender skips.
    async fn ack(
        &self,
        message: &jetstream::Message,
        kind: AckKind,
        handled: Handled,
    ) -> anyhow::Result<Handled> {
        message.ack_with(kind).await.map_err(anyhow::Error::msg)?;
        Ok(handled)
    }

    /// Sends the item back, to come again after `delay`.
    async fn nak(
        &self,
        message: &jetstream::Message,
        delay: Duration,
        why: &'static str,
    ) -> anyhow::Result<Handled> {
        tracing::debug!(?delay, why, "deferred a work item");
        self.ack(message, AckKind::Nak(Some(delay)), Handled::Deferred)
            .await
    }

    /// Sets an item of a paused campaign aside on the held subject, keeping
    /// its attempt count; the loader moves it back on resume.
    async fn hold(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempts_so_far: u64,
        seq: u64,
    ) -> anyhow::Result<Handled> {
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
        messages: u32,
    ) -> anyhow::Result<u64> {
        let acquire = lane.acquire_many(messages);
        tokio::pin!(acquire);
        let mut progress = tokio::time::interval(PROGRESS_EVERY);
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
        match self
            .outcomes
            .direct_get_last_for_subject(self.outcome_subject(item))
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Records the outcome, then acks the item. A crash between the two
    /// leaves an item whose redelivery finds the outcome and is skipped.
    /// The message went out already, so a NATS blip must not lose its
    /// record: the publish is repeated (same message id, so at most one
    /// lands) for [`RECORD_FOR`], rather than letting the item be
    /// redelivered and sent twice.
    async fn finish(
        &self,
        message: &jetstream::Message,
        item: &SendMessage,
        attempt: u64,
        result: delivery_outcome::Result,
        handled: Handled,
    ) -> anyhow::Result<Handled> {
        let outcome = DeliveryOutcome {
            campaign_id: item.campaign_id.clone(),
            user_id: item.user_id,
            chat_id: item.chat_id,
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            attempts: attempt as u32,
            amend: item.amend.clone(),
            result: Some(result),
        };
        let subject = self.outcome_subject(item);
        let span = trace_context::producer_span(&subject);
        let mut headers = HeaderMap::new();
        span.in_scope(|| trace_context::inject(&mut headers));
        let publish = PublishMessage::build()
            .headers(headers)
            .message_id(item_key(item))
            .payload(outcome.encode_to_vec().into());
        tokio::time::sleep(tick::until_next(now_us())).await;
        let deadline = tokio::time::Instant::now() + RECORD_FOR;
        let mut tries = 0;
        loop {
            let stored = async {
                self.js
                    .send_publish(subject.clone(), publish.clone())
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            };
            match stored.instrument(span.clone()).await {
                Ok(_) => break,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, "recording an outcome failed; trying again");
                    tokio::time::sleep(retry::backoff(tries, RECORD_BACKOFF_CAP)).await;
                    tries += 1;
                }
                Err(error) => return Err(error),
            }
        }
        self.ack(message, AckKind::Ack, handled).await
    }
}

impl Worker {
    /// Where the item's outcome is recorded.
    fn outcome_subject(&self, item: &SendMessage) -> String {
        match &item.amend {
            None => self
                .topology
                .outcome_subject(&item.campaign_id, item.user_id),
            Some(amend) => {
                self.topology
                    .amend_outcome_subject(&item.campaign_id, item.user_id, amend)
            }
        }
    }
}

/// What an item is about, as its outcome's message id and its claim name
/// it: the recipient, and for an amendment what is done to its message.
fn item_key(item: &SendMessage) -> String {
    let recipient = format!("{}.{}", item.campaign_id, item.user_id);
    match &item.amend {
        None => recipient,
        Some(amend) if amend.kind() == AmendKind::Edit => {
            format!("{recipient}.edit.{}", amend.revision)
        }
        Some(_) => format!("{recipient}.delete"),
    }
}

/// Whether an item still fits its campaign's content.
#[derive(Debug, PartialEq, Eq)]
enum Current {
    Yes,
    /// A recall, or a later edit, makes it pointless.
    Superseded(&'static str),
    /// An edit to a revision this replica has not read yet.
    NotSeenYet,
}

fn current(item: &SendMessage, campaign: &Campaign) -> Current {
    match &item.amend {
        Some(amend) if amend.kind() == AmendKind::Delete => Current::Yes,
        _ if campaign.recalled => Current::Superseded("campaign recalled"),
        None => Current::Yes,
        Some(amend) if amend.revision < campaign.revision => {
            Current::Superseded("a later edit covers it")
        }
        Some(amend) if amend.revision > campaign.revision => Current::NotSeenYet,
        Some(_) => Current::Yes,
    }
}

/// Times a recipient's wait, from its work item's enqueueing (this copy's:
/// a paused campaign's items are enqueued again on resume) to its outcome.
fn observe_wait(ready: &Ready) {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let waited = i128::from(now) - ready.enqueued_ns;
    let waited = Duration::from_nanos(u64::try_from(waited).unwrap_or(0));
    courier_core::metrics::sender()
        .recipient_wait
        .observe([ready.lane.as_str()], waited);
}

/// Records a failed send: counted by class (`courier_send_failures_total`)
/// and a `send.failed` span, with ERROR status, under the campaign's trace.
/// Unlike `send` spans, which are sampled, these are always exported, so
/// every error and 429 can be found in Tempo.
fn observe_failure(
    verdict: Verdict,
    message: &jetstream::Message,
    campaign: Uuid,
    attempt: u64,
) -> Verdict {
    let retry_after = match &verdict {
        Verdict::RetryAfter(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        _ => 0,
    };
    let reason = match &verdict {
        Verdict::NotAlive(r)
        | Verdict::BrokenContent(r)
        | Verdict::Transient(r)
        | Verdict::Uncertain(r) => r.as_str(),
        Verdict::Unauthorized | Verdict::RetryAfter(_) | Verdict::StarsExhausted => "",
    };
    let span = tracing::warn_span!(
        parent: None,
        "send.failed",
        campaign_id = %campaign,
        class = verdict.class(),
        reason,
        retry_after_s = retry_after,
        attempt = i64::try_from(attempt).unwrap_or(i64::MAX),
    );
    trace_context::adopt(&span, message.headers.as_ref());
    let description = match reason {
        "" => verdict.class().to_owned(),
        reason => format!("{}: {reason}", verdict.class()),
    };
    telemetry::mark_error(&span, description);
    span.in_scope(|| {});
    courier_core::metrics::sender()
        .send_failures
        .get([verdict.class()])
        .inc();
    verdict
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

    fn item(amend: Option<(AmendKind, u32)>) -> SendMessage {
        SendMessage {
            campaign_id: "c".into(),
            user_id: 7,
            amend: amend.map(|(kind, revision)| courier_core::proto::v1::Amend {
                kind: kind.into(),
                message_id: 70,
                revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_item_has_its_own_key_for_its_outcome_and_claim() {
        assert_eq!(item_key(&item(None)), "c.7");
        assert_eq!(item_key(&item(Some((AmendKind::Edit, 2)))), "c.7.edit.2");
        assert_eq!(item_key(&item(Some((AmendKind::Delete, 0)))), "c.7.delete");
    }

    #[test]
    fn an_edit_is_carried_out_only_for_the_revision_the_campaign_has() {
        let decide = |amend, revision, recalled| {
            let campaign = Campaign::for_tests(revision, recalled);
            current(&item(amend), &campaign)
        };
        assert_eq!(decide(Some((AmendKind::Edit, 2)), 2, false), Current::Yes);
        assert_eq!(
            decide(Some((AmendKind::Edit, 1)), 2, false),
            Current::Superseded("a later edit covers it")
        );
        assert_eq!(
            decide(Some((AmendKind::Edit, 3)), 2, false),
            Current::NotSeenYet
        );
        assert_eq!(
            decide(Some((AmendKind::Edit, 2)), 2, true),
            Current::Superseded("campaign recalled")
        );
        assert_eq!(
            decide(None, 0, true),
            Current::Superseded("campaign recalled")
        );
        assert_eq!(decide(None, 4, false), Current::Yes);
        assert_eq!(decide(Some((AmendKind::Delete, 0)), 4, true), Current::Yes);
    }
}
