//! Events on the wire: building them, routing them to their subject,
//! encoding and publishing with the headers every event carries
//! (`Nats-Msg-Id` for dedup, `Courier-Event-Type`, `traceparent`).

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use prost::Message as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::proto::v1::{Event, event::Payload};
use crate::topology::Topology;
use crate::trace_context;

/// Header naming the payload type, so consumers can skip events they do not
/// handle without decoding them and operators can read it in `nats` tools.
pub const EVENT_TYPE_HEADER: &str = "Courier-Event-Type";

impl Event {
    /// A new fact happening now, with a fresh time-ordered id.
    pub fn new(payload: Payload) -> Event {
        Event {
            event_id: uuid::Uuid::now_v7().to_string(),
            occurred_at_ms: chrono::Utc::now().timestamp_millis(),
            payload: Some(payload),
        }
    }

    /// An event whose id is derived from what it is about, so that two
    /// processes stating the same fact publish one event (JetStream drops
    /// the second inside the dedup window).
    pub fn with_id(event_id: String, payload: Payload) -> Event {
        Event {
            event_id,
            ..Event::new(payload)
        }
    }
}

impl Payload {
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::CampaignCreated(_) => "CampaignCreated",
            Payload::CampaignStarted(_) => "CampaignStarted",
            Payload::CampaignPaused(_) => "CampaignPaused",
            Payload::CampaignResumed(_) => "CampaignResumed",
            Payload::CampaignCancelled(_) => "CampaignCancelled",
            Payload::CampaignCompleted(_) => "CampaignCompleted",
            Payload::CampaignScheduled(_) => "CampaignScheduled",
            Payload::CampaignApprovalRequested(_) => "CampaignApprovalRequested",
            Payload::CampaignEdited(_) => "CampaignEdited",
            Payload::CampaignRecalled(_) => "CampaignRecalled",
            Payload::UserRegistered(_) => "UserRegistered",
            Payload::UserLanguageChanged(_) => "UserLanguageChanged",
            Payload::UserBlocked(_) => "UserBlocked",
            Payload::UserUnblocked(_) => "UserUnblocked",
            Payload::AdminGranted(_) => "AdminGranted",
            Payload::AdminRevoked(_) => "AdminRevoked",
            Payload::UserTagged(_) => "UserTagged",
            Payload::UserUntagged(_) => "UserUntagged",
            Payload::UserActive(_) => "UserActive",
            Payload::UserOptedOut(_) => "UserOptedOut",
            Payload::UserOptedIn(_) => "UserOptedIn",
            Payload::BotAdded(_) => "BotAdded",
            Payload::BotRemoved(_) => "BotRemoved",
            Payload::BotOwnersSet(_) => "BotOwnersSet",
            Payload::BotLanguagesSet(_) => "BotLanguagesSet",
        }
    }

    /// The same fact about bot `bot_id`'s user or admin; any other fact
    /// unchanged (a campaign names its bot when it is created, a bot event
    /// is about the bot itself).
    pub fn of_bot(mut self, bot_id: i64) -> Payload {
        match &mut self {
            Payload::UserRegistered(e) => e.bot_id = bot_id,
            Payload::UserLanguageChanged(e) => e.bot_id = bot_id,
            Payload::UserBlocked(e) => e.bot_id = bot_id,
            Payload::UserUnblocked(e) => e.bot_id = bot_id,
            Payload::AdminGranted(e) => e.bot_id = bot_id,
            Payload::AdminRevoked(e) => e.bot_id = bot_id,
            Payload::UserTagged(e) => e.bot_id = bot_id,
            Payload::UserUntagged(e) => e.bot_id = bot_id,
            Payload::UserActive(e) => e.bot_id = bot_id,
            Payload::UserOptedOut(e) => e.bot_id = bot_id,
            Payload::UserOptedIn(e) => e.bot_id = bot_id,
            Payload::CampaignCreated(_)
            | Payload::CampaignStarted(_)
            | Payload::CampaignPaused(_)
            | Payload::CampaignResumed(_)
            | Payload::CampaignCancelled(_)
            | Payload::CampaignCompleted(_)
            | Payload::CampaignScheduled(_)
            | Payload::CampaignApprovalRequested(_)
            | Payload::CampaignEdited(_)
            | Payload::CampaignRecalled(_)
            | Payload::BotAdded(_)
            | Payload::BotRemoved(_)
            | Payload::BotOwnersSet(_)
            | Payload::BotLanguagesSet(_) => {}
        }
        self
    }

    /// The aggregate an event belongs to decides its subject.
    pub fn subject(&self, topology: &Topology) -> String {
        match self {
            Payload::CampaignCreated(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignStarted(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignPaused(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignResumed(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignCancelled(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignCompleted(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignScheduled(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignApprovalRequested(e) => topology.campaign_subject(&e.campaign_id),
            Payload::CampaignEdited(e) => topology.amend_subject(&e.campaign_id),
            Payload::CampaignRecalled(e) => topology.amend_subject(&e.campaign_id),
            Payload::UserRegistered(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserLanguageChanged(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserBlocked(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserUnblocked(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::AdminGranted(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::AdminRevoked(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserTagged(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserUntagged(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserActive(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserOptedOut(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::UserOptedIn(e) => topology.user_subject(e.bot_id, e.user_id),
            Payload::BotAdded(e) => topology.bot_subject(e.bot_id),
            Payload::BotRemoved(e) => topology.bot_subject(e.bot_id),
            Payload::BotOwnersSet(e) => topology.bot_subject(e.bot_id),
            Payload::BotLanguagesSet(e) => topology.bot_subject(e.bot_id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Optimistic concurrency: someone else appended to the aggregate first.
    #[error("the aggregate changed since it was read")]
    Conflict,
    #[error("publishing to JetStream failed: {0}")]
    JetStream(#[from] async_nats::Error),
}

/// Publishes events to the events stream.
#[derive(Clone)]
pub struct EventPublisher {
    js: jetstream::Context,
    topology: Topology,
    /// Set for a publisher acting as one bot: see [`Self::for_bot`].
    bot_id: Option<i64>,
}

impl EventPublisher {
    pub fn new(js: jetstream::Context, topology: Topology) -> Self {
        EventPublisher {
            js,
            topology,
            bot_id: None,
        }
    }

    /// A publisher acting as bot `bot_id`: every fact about a user or an
    /// admin it publishes is that bot's ([`Payload::of_bot`]), so the bot
    /// service's handlers, which serve one bot each, need not say which.
    pub fn for_bot(&self, bot_id: i64) -> EventPublisher {
        EventPublisher {
            bot_id: Some(bot_id),
            ..self.clone()
        }
    }

    /// Publishes and waits for JetStream's ack; returns the stream sequence.
    pub async fn publish(&self, event: &Event) -> Result<u64, PublishError> {
        self.send(event, None).await
    }

    /// Publishes only if the last event on the aggregate's subject is still
    /// the one at `expected_last_seq` (0: the aggregate has no events yet).
    pub async fn publish_expecting(
        &self,
        event: &Event,
        expected_last_seq: u64,
    ) -> Result<u64, PublishError> {
        self.send(event, Some(expected_last_seq)).await
    }

    /// [`Self::publish_expecting`] for a fact decided from a read model:
    /// `false` when newer events came first (a pause, a cancel, or this
    /// very fact published by an earlier run), which makes it moot.
    pub async fn publish_unless_changed(
        &self,
        event: &Event,
        expected_last_seq: u64,
    ) -> Result<bool, PublishError> {
        match self.publish_expecting(event, expected_last_seq).await {
            Ok(_) => Ok(true),
            Err(PublishError::Conflict) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn send(
        &self,
        event: &Event,
        expected_last_seq: Option<u64>,
    ) -> Result<u64, PublishError> {
        let of_bot;
        let event = match self.bot_id {
            Some(bot_id) => {
                of_bot = Event {
                    payload: event.payload.clone().map(|p| p.of_bot(bot_id)),
                    ..event.clone()
                };
                &of_bot
            }
            None => event,
        };
        let payload = event
            .payload
            .as_ref()
            .expect("an event to publish has a payload");
        let subject = payload.subject(&self.topology);
        let span = trace_context::producer_span(&subject);
        span.set_attribute("event", payload.type_name());
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, payload.type_name());
        span.in_scope(|| trace_context::inject(&mut headers));
        let mut message = PublishMessage::build()
            .headers(headers)
            .message_id(&event.event_id)
            .payload(event.encode_to_vec().into());
        if let Some(seq) = expected_last_seq {
            message = message.expected_last_subject_sequence(seq);
        }
        let published = async {
            self.js
                .send_publish(subject, message)
                .await
                .map_err(|e| PublishError::JetStream(e.into()))?
                .await
                .map_err(|e| match e.kind() {
                    PublishErrorKind::WrongLastSequence => PublishError::Conflict,
                    _ => PublishError::JetStream(e.into()),
                })
        }
        .instrument(span.clone())
        .await;
        match published {
            Ok(ack) => Ok(ack.sequence),
            Err(error) => {
                // A conflict is optimistic concurrency doing its job.
                if let PublishError::JetStream(cause) = &error {
                    crate::telemetry::mark_error(&span, cause.to_string());
                }
                Err(error)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a courier.v1.Event: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// Written by a newer courier: a payload this version does not know.
    #[error("event {0} has a payload this version does not know")]
    UnknownPayload(String),
}

/// Decodes an event, refusing one whose payload this version cannot read.
pub fn decode(bytes: &[u8]) -> Result<(String, i64, Payload), DecodeError> {
    let event = Event::decode(bytes)?;
    match event.payload {
        Some(payload) => Ok((event.event_id, event.occurred_at_ms, payload)),
        None => Err(DecodeError::UnknownPayload(event.event_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{CampaignStarted, UserBlocked};

    #[test]
    fn events_round_trip() {
        let event = Event::new(Payload::UserBlocked(UserBlocked {
            user_id: 7,
            reason: "blocked".into(),
            ..Default::default()
        }));
        let (id, at, payload) = decode(&event.encode_to_vec()).unwrap();
        assert_eq!(id, event.event_id);
        assert_eq!(at, event.occurred_at_ms);
        assert_eq!(Some(payload), event.payload);
    }

    #[test]
    fn unknown_payloads_and_garbage_are_refused() {
        let from_the_future = Event {
            event_id: "e1".into(),
            occurred_at_ms: 1,
            payload: None,
        };
        assert!(matches!(
            decode(&from_the_future.encode_to_vec()),
            Err(DecodeError::UnknownPayload(id)) if id == "e1"
        ));
        assert!(matches!(
            decode(b"\xff\xff\xff"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn events_go_to_their_aggregate_subject() {
        let topology = Topology::new("courier".parse().unwrap(), 1);
        let started = Payload::CampaignStarted(CampaignStarted {
            campaign_id: "c9".into(),
            started_by: 1,
        });
        assert_eq!(started.subject(&topology), "courier.events.campaign.c9");
        let blocked = Payload::UserBlocked(UserBlocked {
            user_id: 5,
            ..UserBlocked::default()
        });
        assert_eq!(blocked.subject(&topology), "courier.events.user.5");
        let blocked_by_another_bot = Payload::UserBlocked(UserBlocked {
            user_id: 5,
            bot_id: 7,
            ..UserBlocked::default()
        });
        assert_eq!(
            blocked_by_another_bot.subject(&topology),
            "courier.events.bot.7.user.5"
        );
        assert_eq!(
            Payload::UserBlocked(UserBlocked {
                user_id: 5,
                ..UserBlocked::default()
            })
            .of_bot(7),
            blocked_by_another_bot
        );
        assert_eq!(started.clone().of_bot(7), started);
    }
}
