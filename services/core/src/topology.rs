//! The JetStream topology: every subject, stream and consumer courier uses,
//! named and configured in this one place.
//!
//! Subjects (all under a configurable prefix `p`):
//! - `p.events.campaign.<campaign id>`: every event of one campaign on one
//!   subject, so `Nats-Expected-Last-Subject-Sequence` gives optimistic
//!   concurrency over the whole campaign;
//! - `p.events.amend.<campaign id>`: edits and the recall of its delivered
//!   messages, apart so the campaign subject's last event is its status;
//! - `p.events.user.<user id>`: every event of one user of the default bot;
//!   `p.events.bot.<bot id>.user.<user id>` of another bot's user (users
//!   are per bot);
//! - `p.events.bot.<bot id>`: a bot added to or removed from the deployment;
//! - `p.work.send.<campaign id>`: SendMessage items (work queue) of the
//!   default bot: sends, and the edits and deletions of delivered messages;
//! - `p.work.bot.<bot id>.<campaign id>`: the same for every other bot,
//!   each bot with a consumer of its own, so one bot's million items wait
//!   in the stream, not in front of another bot's hundred;
//! - `p.work.held.<campaign id>`: items of a paused campaign, set aside
//!   without spending delivery attempts until the campaign resumes;
//! - `p.outcomes.<campaign id>.<user id>`: one delivery outcome per
//!   recipient; a direct get on it tells a sender the recipient is done;
//!   `….edit.<revision>` and `….delete` the same for an amendment.
//!
//! A key-value bucket `P_RATE` holds each bot token's shared rate schedule
//! and the limits senders run with ([`crate::send_limits`]); `P_CHATS` the
//! last send to each chat, `P_CLAIMS` recipients claimed around a NATS
//! restart, `P_BOTS` each bot's token, sealed ([`crate::bot_tokens`]).
//!
//! [`Topology::ensure`] creates them idempotently at start-up. A second
//! service doing the same is a no-op; an existing stream or consumer with a
//! different configuration is an error naming what differs.

use std::time::Duration;

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::stream::ConsumerCreateStrictErrorKind;
use async_nats::jetstream::{self, ErrorCode, consumer, kv, stream};

use crate::config::Prefix;
use crate::proto::v1::{Amend, AmendKind};

/// The durable pull consumer all senders share for the default bot's work.
pub const SENDERS_CONSUMER: &str = "senders";
/// The default bot's id in events and work items: the bot of the services'
/// own `TELEGRAM_BOT_TOKEN`, which everything before bots were added
/// belongs to. Other bots go by their Telegram id.
pub const DEFAULT_BOT: i64 = 0;
/// How long a bot's consumer outlives its last pull: the bot's senders stop
/// pulling when it is removed. Its unsent items stay in the stream (a work
/// queue keeps what nobody acked) for a consumer made again.
pub const BOT_CONSUMER_IDLE: Duration = Duration::from_secs(3600);
/// The durable consumer the loaders share to see started campaigns.
pub const LOADER_CONSUMER: &str = "loader";
/// The durable consumer loaders start scheduled campaigns from.
pub const SCHEDULER_CONSUMER: &str = "scheduler";
/// The loaders' durable consumer of amendments (edits, recalls).
pub const AMENDER_CONSUMER: &str = "amender";

/// How long a sender may hold a work item before JetStream hands it to
/// another sender. Must exceed the slowest Telegram call (see
/// [`crate::topology::SEND_TIMEOUT`]) or items in flight get sent twice.
pub const SENDER_ACK_WAIT: Duration = Duration::from_secs(30);
/// Upper bound of one Bot API request, comfortably below [`SENDER_ACK_WAIT`].
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);
const _: () = assert!(
    SEND_TIMEOUT.as_millis() < SENDER_ACK_WAIT.as_millis(),
    "a Bot API request must end before its item is handed to another sender"
);
/// Send attempts (deliveries of one work item) after which a transient
/// failure is final and the recipient is recorded as failed. JetStream's
/// own `max_deliver` stays unlimited: an item that reached it would sit in
/// the work queue with nobody left to record its recipient, and the
/// campaign would never complete.
pub const SENDER_MAX_ATTEMPTS: u64 = 10;
/// Items in flight across all sender replicas. Far below the ~1000
/// requests in flight at which the Bot API server itself answers 429.
pub const SENDER_MAX_ACK_PENDING: i64 = 512;

/// How long a pull request waits on the server. A request lost with a NATS
/// node (or connection) is only replaced once it expires, so a consumer
/// stalls for up to this long (plus the client's 5 s grace) after a failover.
pub const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// How long the last send to a chat is remembered: longer than the spacing
/// of any per-chat rate senders accept (`SENDER_CHAT_RATE_LIMIT` ≥ 1/60).
pub const CHAT_RECORD_MAX_AGE: Duration = Duration::from_secs(60);

/// How long a recipient's claim is kept ([`Topology::claims_bucket`]):
/// well past the time a suspect copy may look at it after a NATS restart.
pub const CLAIM_MAX_AGE: Duration = Duration::from_secs(600);

/// Header on a work item moved aside and back (a paused campaign): the
/// send attempts it had before, so a pause spends none of them.
pub const ATTEMPTS_HEADER: &str = "Courier-Attempts";

/// Header on a work item the loader may have enqueued once already (it
/// republishes the batch a crash interrupted, and the publish dedup window
/// may have passed). A sender checks such an item, like a redelivered
/// one, for an outcome before sending; a first delivery of any other item
/// cannot have one, and skips that lookup.
pub const MAYBE_DUPLICATE_HEADER: &str = "Courier-Maybe-Duplicate";

/// Publish dedup window of the events and outcomes streams.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Topology {
    prefix: Prefix,
    replicas: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error(
        "stream {stream} exists with {field} = {existing}, but courier needs {wanted}; migrate or delete it"
    )]
    StreamConflict {
        stream: String,
        field: &'static str,
        existing: String,
        wanted: String,
    },
    #[error(
        "consumer {consumer} on stream {stream} exists with a different configuration: {source}"
    )]
    ConsumerConflict {
        stream: String,
        consumer: String,
        source: async_nats::Error,
    },
    #[error(
        "stream {stream} cannot be created: another stream already takes its subjects {subjects:?}; rename or delete that stream, or set COURIER_NATS_PREFIX"
    )]
    SubjectsTaken {
        stream: String,
        subjects: Vec<String>,
    },
    #[error("JetStream request for {what} failed: {source}")]
    JetStream {
        what: String,
        source: async_nats::Error,
    },
}

impl Topology {
    pub fn new(prefix: Prefix, replicas: u8) -> Self {
        Topology {
            prefix,
            replicas: replicas.into(),
        }
    }

    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    fn stream_name(&self, kind: &str) -> String {
        format!("{}_{kind}", self.prefix.as_str().replace('-', "_")).to_uppercase()
    }

    /// Whether JetStream stream `name` is one of this prefix's: its
    /// streams, or a KV bucket's (`KV_<bucket>`).
    pub fn owns_stream(&self, name: &str) -> bool {
        name.strip_prefix("KV_")
            .unwrap_or(name)
            .starts_with(&self.stream_name(""))
    }

    pub fn events_stream(&self) -> String {
        self.stream_name("events")
    }

    pub fn work_stream(&self) -> String {
        self.stream_name("work")
    }

    pub fn outcomes_stream(&self) -> String {
        self.stream_name("outcomes")
    }

    /// Timers of scheduled campaigns ([`crate::schedule`]).
    pub fn schedules_stream(&self) -> String {
        self.stream_name("schedules")
    }

    /// A campaign's start timer: one message, replaced when rescheduled.
    pub fn schedule_subject(&self, campaign_id: &str) -> String {
        format!("{}.schedules.timer.{campaign_id}", self.prefix)
    }

    /// Where NATS puts a campaign's timer when it fires.
    pub fn due_subject(&self, campaign_id: &str) -> String {
        format!("{}.schedules.due.{campaign_id}", self.prefix)
    }

    pub fn campaign_subject(&self, campaign_id: &str) -> String {
        format!("{}.events.campaign.{campaign_id}", self.prefix)
    }

    pub fn campaign_events(&self) -> String {
        format!("{}.events.campaign.*", self.prefix)
    }

    /// Amendments of a campaign's delivered messages (`CampaignEdited`,
    /// `CampaignRecalled`): a subject of their own, so the campaign
    /// subject's last event still decides its status.
    pub fn amend_subject(&self, campaign_id: &str) -> String {
        format!("{}.events.amend.{campaign_id}", self.prefix)
    }

    pub fn amend_events(&self) -> String {
        format!("{}.events.amend.*", self.prefix)
    }

    pub fn bot_subject(&self, bot_id: i64) -> String {
        format!("{}.events.bot.{bot_id}", self.prefix)
    }

    /// The subject of one user's events. The default bot's users keep the
    /// subject they had before there were other bots.
    pub fn user_subject(&self, bot_id: i64, user_id: i64) -> String {
        match bot_id {
            DEFAULT_BOT => format!("{}.events.user.{user_id}", self.prefix),
            bot => format!("{}.events.bot.{bot}.user.{user_id}", self.prefix),
        }
    }

    /// Where the work items of bot `bot_id`'s campaign go. The default
    /// bot's keep the subject they had before there were other bots, so
    /// items enqueued by an older loader are still sent.
    pub fn work_subject(&self, bot_id: i64, campaign_id: &str) -> String {
        match bot_id {
            DEFAULT_BOT => format!("{}.work.send.{campaign_id}", self.prefix),
            bot => format!("{}.work.bot.{bot}.{campaign_id}", self.prefix),
        }
    }

    /// The subjects of every added bot's work items (not the default
    /// bot's).
    pub fn added_bots_work(&self) -> String {
        format!("{}.work.bot.>", self.prefix)
    }

    /// The added bot whose work item subject `subject` is
    /// ([`Topology::work_subject`] read back).
    pub fn bot_of_work_subject(&self, subject: &str) -> Option<i64> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".work.bot.")?;
        rest.split_once('.')?.0.parse().ok()
    }

    /// The consumer senders pull bot `bot_id`'s work items from.
    pub fn senders_consumer_of(&self, bot_id: i64) -> String {
        match bot_id {
            DEFAULT_BOT => SENDERS_CONSUMER.to_owned(),
            bot => format!("{SENDERS_CONSUMER}-{bot}"),
        }
    }

    /// The bot whose work items consumer `name` gives senders, if it is a
    /// senders consumer ([`Topology::senders_consumer_of`] read back).
    pub fn bot_of_senders_consumer(name: &str) -> Option<i64> {
        match name.strip_prefix(SENDERS_CONSUMER)? {
            "" => Some(DEFAULT_BOT),
            rest => rest.strip_prefix('-')?.parse().ok(),
        }
    }

    pub fn held_subject(&self, campaign_id: &str) -> String {
        format!("{}.work.held.{campaign_id}", self.prefix)
    }

    /// The bucket of shared rate schedules, one key per bot token and lane,
    /// and of the limits senders publish ([`crate::send_limits`]).
    pub fn rate_bucket(&self) -> String {
        self.stream_name("rate")
    }

    /// The bucket of recent sends to each chat, one key per bot token and
    /// chat, for the per-chat limit across replicas.
    pub fn chat_bucket(&self) -> String {
        self.stream_name("chats")
    }

    /// The bucket of recipients claimed by sends around a NATS restart, one
    /// key per campaign and user: create-only, so one copy of a work item
    /// handed out twice wins.
    pub fn claims_bucket(&self) -> String {
        self.stream_name("claims")
    }

    /// The bucket of bot tokens, one key per bot id, each sealed with the
    /// deployment's token key ([`crate::bot_tokens`]).
    pub fn bots_bucket(&self) -> String {
        self.stream_name("bots")
    }

    pub fn outcome_subject(&self, campaign_id: &str, user_id: i64) -> String {
        format!("{}.outcomes.{campaign_id}.{user_id}", self.prefix)
    }

    /// The outcome of an amendment of one recipient's message: an edit to a
    /// revision, or its deletion.
    pub fn amend_outcome_subject(&self, campaign_id: &str, user_id: i64, amend: &Amend) -> String {
        let base = self.outcome_subject(campaign_id, user_id);
        match amend.kind() {
            AmendKind::Edit => format!("{base}.edit.{}", amend.revision),
            AmendKind::Delete | AmendKind::Unspecified => format!("{base}.delete"),
        }
    }

    fn streams(&self) -> [stream::Config; 4] {
        let base = stream::Config {
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        [
            stream::Config {
                name: self.events_stream(),
                subjects: vec![format!("{}.events.>", self.prefix)],
                retention: stream::RetentionPolicy::Limits,
                allow_direct: true,
                description: Some("courier events: the source of truth".into()),
                ..base.clone()
            },
            stream::Config {
                name: self.work_stream(),
                subjects: vec![format!("{}.work.>", self.prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                description: Some("courier SendMessage work items".into()),
                ..base.clone()
            },
            stream::Config {
                name: self.outcomes_stream(),
                subjects: vec![format!("{}.outcomes.>", self.prefix)],
                retention: stream::RetentionPolicy::Limits,
                allow_direct: true,
                description: Some("courier delivery outcomes, one per recipient".into()),
                ..base.clone()
            },
            stream::Config {
                name: self.schedules_stream(),
                subjects: vec![format!("{}.schedules.>", self.prefix)],
                retention: stream::RetentionPolicy::Limits,
                // NATS fires the timers (message schedules, nats-server 2.12+).
                allow_message_schedules: true,
                description: Some("courier timers of scheduled campaigns".into()),
                ..base
            },
        ]
    }

    /// The consumer of bot `bot_id`'s work items, shared by all senders.
    /// Held items of paused campaigns are not for senders.
    fn senders_consumer(&self, bot_id: i64) -> consumer::pull::Config {
        let config = consumer::pull::Config {
            durable_name: Some(self.senders_consumer_of(bot_id)),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: SENDER_ACK_WAIT,
            max_deliver: -1,
            max_ack_pending: SENDER_MAX_ACK_PENDING,
            ..Default::default()
        };
        match bot_id {
            DEFAULT_BOT => consumer::pull::Config {
                description: Some("all sender replicas".into()),
                filter_subject: format!("{}.work.send.>", self.prefix),
                ..config
            },
            bot => consumer::pull::Config {
                description: Some(format!("all sender replicas, bot {bot}")),
                filter_subject: format!("{}.work.bot.{bot}.*", self.prefix),
                inactive_threshold: BOT_CONSUMER_IDLE,
                ..config
            },
        }
    }

    /// Creates the consumer of an added bot's work items (senders do, when
    /// they begin to serve the bot), or checks the existing one matches.
    pub async fn ensure_bot_consumer(
        &self,
        js: &jetstream::Context,
        bot_id: i64,
    ) -> Result<(), TopologyError> {
        ensure_consumer(js, &self.work_stream(), self.senders_consumer(bot_id)).await
    }

    fn loader_consumer(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(LOADER_CONSUMER.into()),
            description: Some("loaders: fan started campaigns out".into()),
            filter_subject: self.campaign_events(),
            ack_policy: consumer::AckPolicy::Explicit,
            // A fan-out reports progress after every batch, so this only
            // bounds how long a crashed loader's campaign waits for another.
            ack_wait: Duration::from_secs(15),
            // The loader NAKs while the projector catches up; that must never
            // exhaust a limit and drop a campaign.
            max_deliver: -1,
            ..Default::default()
        }
    }

    fn scheduler_consumer(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(SCHEDULER_CONSUMER.into()),
            description: Some("loaders: start scheduled campaigns when due".into()),
            filter_subject: format!("{}.schedules.due.>", self.prefix),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(15),
            max_deliver: -1,
            ..Default::default()
        }
    }

    fn amender_consumer(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(AMENDER_CONSUMER.into()),
            description: Some("loaders: edit or delete delivered messages".into()),
            filter_subject: self.amend_events(),
            ack_policy: consumer::AckPolicy::Explicit,
            // Like the loader's: an amendment reports progress per batch.
            ack_wait: Duration::from_secs(15),
            max_deliver: -1,
            ..Default::default()
        }
    }

    /// A key-value bucket on file, like the streams: a memory bucket
    /// vanishes when NATS restarts.
    fn bucket(&self, name: String, description: &str) -> kv::Config {
        kv::Config {
            bucket: name,
            description: description.into(),
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// The buckets every service ensures at start.
    fn buckets(&self) -> [kv::Config; 3] {
        [
            // A stale schedule is harmless (slots are never in the past).
            self.bucket(
                self.rate_bucket(),
                "courier rate schedules, one per bot token and lane",
            ),
            kv::Config {
                // A record older than any chat interval decides nothing.
                max_age: CHAT_RECORD_MAX_AGE,
                ..self.bucket(
                    self.chat_bucket(),
                    "courier's last send to each chat, per bot token",
                )
            },
            kv::Config {
                // A claim must outlive the next restart, not much longer.
                max_age: CLAIM_MAX_AGE,
                ..self.bucket(
                    self.claims_bucket(),
                    "courier recipients claimed by sends around a NATS restart",
                )
            },
        ]
    }

    /// The bots bucket: ensured only by what reads or writes tokens (today
    /// `courierctl bots`), so NATS permissions can keep every other
    /// service away from it.
    pub async fn ensure_bots_bucket(
        &self,
        js: &jetstream::Context,
    ) -> Result<kv::Store, TopologyError> {
        js.create_or_update_key_value(self.bucket(
            self.bots_bucket(),
            "courier bot tokens, sealed, one per bot id",
        ))
        .await
        .map_err(|e| TopologyError::JetStream {
            what: format!("key-value bucket {}", self.bots_bucket()),
            source: e.into(),
        })
    }

    /// Creates every stream, bucket and consumer, or checks the existing
    /// ones match.
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<(), TopologyError> {
        for wanted in self.streams() {
            let mut stream = js
                .get_or_create_stream(wanted.clone())
                .await
                .map_err(|e| match e.kind() {
                    CreateStreamErrorKind::JetStream(e)
                        if e.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP =>
                    {
                        TopologyError::SubjectsTaken {
                            stream: wanted.name.clone(),
                            subjects: wanted.subjects.clone(),
                        }
                    }
                    _ => TopologyError::JetStream {
                        what: format!("stream {}", wanted.name),
                        source: e.into(),
                    },
                })?;
            let existing = stream
                .info()
                .await
                .map_err(|e| TopologyError::JetStream {
                    what: format!("stream {} info", wanted.name),
                    source: e.into(),
                })?
                .config
                .clone();
            check_stream(&existing, &wanted)?;
        }
        for bucket in self.buckets() {
            let what = format!("key-value bucket {}", bucket.bucket);
            js.create_or_update_key_value(bucket)
                .await
                .map_err(|e| TopologyError::JetStream {
                    what,
                    source: e.into(),
                })?;
        }
        ensure_consumer(js, &self.work_stream(), self.senders_consumer(DEFAULT_BOT)).await?;
        ensure_consumer(js, &self.events_stream(), self.loader_consumer()).await?;
        ensure_consumer(js, &self.schedules_stream(), self.scheduler_consumer()).await?;
        ensure_consumer(js, &self.events_stream(), self.amender_consumer()).await?;
        Ok(())
    }
}

async fn ensure_consumer(
    js: &jetstream::Context,
    stream: &str,
    config: consumer::pull::Config,
) -> Result<(), TopologyError> {
    let name = config.durable_name.clone().unwrap_or_default();
    js.create_consumer_strict_on_stream(config, stream)
        .await
        .map_err(|e| {
            // Only "exists, differently" is a conflict; a timeout is not.
            let conflict = match e.kind() {
                ConsumerCreateStrictErrorKind::AlreadyExists => true,
                ConsumerCreateStrictErrorKind::JetStream(e) => [
                    ErrorCode::CONSUMER_ALREADY_EXISTS,
                    ErrorCode::CONSUMER_NAME_EXIST,
                ]
                .contains(&e.error_code()),
                _ => false,
            };
            match conflict {
                true => TopologyError::ConsumerConflict {
                    stream: stream.to_owned(),
                    consumer: name,
                    source: e.into(),
                },
                false => TopologyError::JetStream {
                    what: format!("consumer {name} on stream {stream}"),
                    source: e.into(),
                },
            }
        })?;
    Ok(())
}

/// Compares what courier sets; fields it leaves to the server are not checked.
fn check_stream(existing: &stream::Config, wanted: &stream::Config) -> Result<(), TopologyError> {
    let fields = [
        (
            "subjects",
            format!("{:?}", existing.subjects),
            format!("{:?}", wanted.subjects),
        ),
        (
            "retention",
            format!("{:?}", existing.retention),
            format!("{:?}", wanted.retention),
        ),
        (
            "storage",
            format!("{:?}", existing.storage),
            format!("{:?}", wanted.storage),
        ),
        (
            "allow_direct",
            existing.allow_direct.to_string(),
            wanted.allow_direct.to_string(),
        ),
        (
            "num_replicas",
            existing.num_replicas.to_string(),
            wanted.num_replicas.to_string(),
        ),
        // False on a server older than 2.12, which cannot fire timers.
        (
            "allow_msg_schedules (nats-server 2.12+)",
            existing.allow_message_schedules.to_string(),
            wanted.allow_message_schedules.to_string(),
        ),
    ];
    match fields.into_iter().find(|(_, has, needs)| has != needs) {
        Some((field, has, needs)) => Err(TopologyError::StreamConflict {
            stream: wanted.name.clone(),
            field,
            existing: has,
            wanted: needs,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::new("t-1".parse().unwrap(), 1)
    }

    #[test]
    fn names_carry_the_prefix() {
        let t = topology();
        assert_eq!(t.events_stream(), "T_1_EVENTS");
        assert_eq!(t.work_stream(), "T_1_WORK");
        assert_eq!(t.outcomes_stream(), "T_1_OUTCOMES");
        assert_eq!(t.campaign_subject("c1"), "t-1.events.campaign.c1");
        assert_eq!(t.user_subject(DEFAULT_BOT, 42), "t-1.events.user.42");
        assert_eq!(t.user_subject(7, 42), "t-1.events.bot.7.user.42");
        assert_eq!(t.work_subject(DEFAULT_BOT, "c1"), "t-1.work.send.c1");
        assert_eq!(t.work_subject(7, "c1"), "t-1.work.bot.7.c1");
        assert!(subject_matches(
            &t.added_bots_work(),
            &t.work_subject(7, "c1")
        ));
        assert_eq!(t.bot_of_work_subject(&t.work_subject(7, "c1")), Some(7));
        for other in [
            t.work_subject(DEFAULT_BOT, "c1"),
            t.held_subject("c1"),
            "t-1.work.bot.x.c1".to_owned(),
            "t-2.work.bot.7.c1".to_owned(),
        ] {
            assert_eq!(t.bot_of_work_subject(&other), None, "{other}");
        }
        assert_eq!(t.senders_consumer_of(DEFAULT_BOT), "senders");
        assert_eq!(t.senders_consumer_of(7), "senders-7");
        for bot in [DEFAULT_BOT, 7] {
            let name = t.senders_consumer_of(bot);
            assert_eq!(Topology::bot_of_senders_consumer(&name), Some(bot));
        }
        for other in ["held", "senders-x", "sendersx", "loader"] {
            assert_eq!(Topology::bot_of_senders_consumer(other), None, "{other}");
        }
        assert_eq!(t.held_subject("c1"), "t-1.work.held.c1");
        assert_eq!(t.rate_bucket(), "T_1_RATE");
        assert_eq!(t.outcome_subject("c1", 42), "t-1.outcomes.c1.42");
        assert_eq!(t.schedules_stream(), "T_1_SCHEDULES");
        assert_eq!(t.schedule_subject("c1"), "t-1.schedules.timer.c1");
        assert_eq!(t.due_subject("c1"), "t-1.schedules.due.c1");
    }

    #[test]
    fn a_prefix_owns_its_streams_and_buckets_only() {
        let topology = Topology::new("t1a2b".parse().unwrap(), 1);
        let other = Topology::new("t1a2bc".parse().unwrap(), 1);
        for name in [
            topology.events_stream(),
            topology.schedules_stream(),
            format!("KV_{}", topology.chat_bucket()),
            format!("KV_{}", topology.claims_bucket()),
            format!("KV_{}", topology.bots_bucket()),
        ] {
            assert!(topology.owns_stream(&name), "{name}");
            assert!(!other.owns_stream(&name), "{name}");
        }
    }

    #[test]
    fn every_subject_falls_in_exactly_one_stream() {
        let t = topology();
        let streams = t.streams();
        let owner = |subject: &str| {
            streams
                .iter()
                .filter(|s| s.subjects.iter().any(|f| subject_matches(f, subject)))
                .count()
        };
        for subject in [
            t.campaign_subject("c"),
            t.user_subject(DEFAULT_BOT, 1),
            t.user_subject(7, 1),
            t.bot_subject(1),
            t.work_subject(DEFAULT_BOT, "c"),
            t.work_subject(7, "c"),
            t.held_subject("c"),
            t.outcome_subject("c", 1),
            t.schedule_subject("c"),
            t.due_subject("c"),
        ] {
            assert_eq!(owner(&subject), 1, "{subject}");
        }
    }

    /// A work queue refuses consumers whose filters overlap, and an item
    /// no consumer takes is never sent.
    #[test]
    fn each_bots_work_is_pulled_by_its_own_consumer_only() {
        let t = topology();
        let bots = [DEFAULT_BOT, 7, 8, 70];
        for bot in bots {
            let item = t.work_subject(bot, "c");
            let pulled_by: Vec<i64> = bots
                .into_iter()
                .filter(|&other| subject_matches(&t.senders_consumer(other).filter_subject, &item))
                .collect();
            assert_eq!(pulled_by, [bot], "{item}");
        }
        assert!(!subject_matches(
            &t.senders_consumer(7).filter_subject,
            &t.held_subject("c")
        ));
    }

    #[test]
    fn a_server_too_old_for_timers_is_named_in_the_conflict() {
        let wanted = topology().streams()[3].clone();
        let existing = stream::Config {
            allow_message_schedules: false,
            ..wanted.clone()
        };
        let error = check_stream(&existing, &wanted).unwrap_err().to_string();
        assert!(error.contains("T_1_SCHEDULES"), "{error}");
        assert!(error.contains("nats-server 2.12+"), "{error}");
    }

    #[test]
    fn a_differing_stream_is_a_conflict_naming_the_field() {
        let wanted = topology().streams()[1].clone();
        let existing = stream::Config {
            retention: stream::RetentionPolicy::Limits,
            ..wanted.clone()
        };
        let error = check_stream(&existing, &wanted).unwrap_err().to_string();
        assert!(error.contains("T_1_WORK"), "{error}");
        assert!(error.contains("retention"), "{error}");
        assert!(check_stream(&wanted, &wanted).is_ok());
    }

    /// NATS subject matching with `*` and `>` wildcards.
    fn subject_matches(filter: &str, subject: &str) -> bool {
        let mut f = filter.split('.');
        let mut s = subject.split('.');
        loop {
            match (f.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}
