//! The projector's main loop: two ordered consumers (events, outcomes)
//! starting after their checkpoints, applied on one dedicated connection
//! that holds the projector lock, in batches of whatever has arrived.
//!
//! Only one projector applies at a time (a Postgres advisory lock); others
//! wait as hot standbys. Outcomes never overtake the start of their
//! campaign: an outcome for a recipient the read model does not know yet is
//! held until more events are applied (this happens when a replay reads the
//! outcomes stream faster than the events stream).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig, OrderedError};
use async_nats::jetstream::{self, Message};
use chrono::{DateTime, Utc};
use courier_core::event::EventPublisher;
use courier_core::send_limits::Lane;
use courier_core::startup::Nats;
use courier_core::topology::PULL_EXPIRES;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery_slo::{self, Rates};
use crate::progress::Progress;
use crate::projection::{self, Applied, Batch, Committed, StreamMessage};
use crate::standing::Standing;
use crate::{completion, content_guard};

/// Arbitrary, fixed: the advisory lock held by the active projector.
pub(crate) const PROJECTOR_LOCK: i64 = 0x7072_6f6a_6563_746f; // "projecto"

/// Most messages applied in one transaction.
const BATCH: usize = 500;
/// How long a batch of outcomes waits for more after its first. During a
/// live campaign outcomes trickle in; applied one or two at a time, each
/// transaction's fixed cost made the projector spend ~380 µs of CPU per
/// outcome at 1000/s. 100 ms rather than 25 cut another fifth of that
/// (docs/performance-history.md, *Cost per message*) for a completion seen at most ~0.1 s
/// later. Events (rare, and a start holds up the loader) do not wait.
const OUTCOMES_LINGER: Duration = Duration::from_millis(100);

/// Which stream a batch comes from.
#[derive(Clone, Copy)]
enum Source {
    Events,
    /// `park_if_unknown`: every event is applied, so an outcome for an
    /// unknown recipient will never be explained and is parked.
    Outcomes {
        park_if_unknown: bool,
    },
}

impl Source {
    /// The `stream` label of the projector's metrics.
    fn label(self) -> &'static str {
        match self {
            Source::Events => "events",
            Source::Outcomes { .. } => "outcomes",
        }
    }
}

pub struct Runner {
    nats: Nats,
    publisher: EventPublisher,
    rates: Rates,
    /// Taken out of the pool: when the runner ends, the connection closes
    /// and the lock with it, instead of idling in the pool still locked.
    client: deadpool_postgres::ClientWrapper,
    progress: Arc<Progress>,
}

impl Runner {
    /// Takes the projector lock on a connection of its own.
    pub async fn new(
        nats: Nats,
        pool: &deadpool_postgres::Pool,
        progress: Arc<Progress>,
    ) -> anyhow::Result<Runner> {
        let client = deadpool_postgres::Object::take(pool.get().await?);
        progress.connected();
        tracing::info!("waiting for the projector lock (another projector may be active)");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&PROJECTOR_LOCK])
            .await?;
        // The checkpoint commits with each change, so a commit lost in a
        // crash is simply re-applied: durability per commit buys nothing.
        client
            .batch_execute("SET synchronous_commit TO off")
            .await?;
        tracing::info!("projector lock taken");
        let publisher = EventPublisher::new(nats.js.clone(), nats.topology.clone());
        let rates = Rates::new(nats.js.get_key_value(nats.topology.rate_bucket()).await?);
        Ok(Runner {
            nats,
            publisher,
            rates,
            client,
            progress,
        })
    }

    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let events_stream = self.nats.topology.events_stream();
        let outcomes_stream = self.nats.topology.outcomes_stream();
        let working = self.progress.working();
        let last =
            projection::checkpoints(&self.client, &[&events_stream, &outcomes_stream]).await?;
        let (mut events, events_pending) =
            ordered_from(&self.nats.js, &events_stream, last[0]).await?;
        let (mut outcomes, _) = ordered_from(&self.nats.js, &outcomes_stream, last[1]).await?;
        // A projector that stopped between committing a batch and
        // publishing what it decided (a completion, a pause) left it undone.
        for campaign in Standing::sending(&self.client).await? {
            self.settle(&campaign).await?;
        }
        drop(working);
        let mut events_caught_up = events_pending == 0;
        // Outcomes whose campaign start is not applied yet, in stream order.
        let mut waiting: Vec<Message> = Vec::new();
        tracing::info!(
            events_from = last[0] + 1,
            outcomes_from = last[1] + 1,
            "projecting"
        );
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                next = events.next() => {
                    let batch = drain(next, &mut events, "events", Duration::ZERO).await?;
                    let pending = batch.last().and_then(|m| m.info().ok()).map_or(0, |i| i.pending);
                    events_caught_up = pending == 0;
                    self.apply_batch(Source::Events, &events_stream, &batch).await?;
                    if !waiting.is_empty() {
                        waiting = self.apply_outcomes(&outcomes_stream, waiting, events_caught_up).await?;
                    }
                }
                next = outcomes.next(), if waiting.is_empty() => {
                    let batch = drain(next, &mut outcomes, "outcomes", OUTCOMES_LINGER).await?;
                    waiting = self.apply_outcomes(&outcomes_stream, batch, events_caught_up).await?;
                }
            }
        }
    }

    /// Applies outcomes in one transaction. Returns those that must wait
    /// for more events: the first whose recipient the read model does not
    /// know yet (possible only while the events stream is behind) and all
    /// after it.
    async fn apply_outcomes(
        &mut self,
        stream: &str,
        mut messages: Vec<Message>,
        events_caught_up: bool,
    ) -> anyhow::Result<Vec<Message>> {
        let source = Source::Outcomes {
            park_if_unknown: events_caught_up,
        };
        let done = self.apply_batch(source, stream, &messages).await?;
        Ok(messages.split_off(done))
    }

    /// Applies `messages` in one transaction, each in a `project` span that
    /// continues the trace it carries, up to the first that must wait;
    /// returns how many were taken.
    async fn apply_batch(
        &mut self,
        source: Source,
        stream: &str,
        messages: &[Message],
    ) -> anyhow::Result<usize> {
        let _working = self.progress.working();
        let began = std::time::Instant::now();
        let mut batch = Batch::begin(&mut self.client, stream).await?;
        if let Source::Outcomes { .. } = source {
            let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_ref()).collect();
            batch.preload_outcomes(&payloads).await?;
        }
        let (mut applied, mut parked) = (0, 0);
        let mut done = messages.len();
        // The batch's time is recorded in its last message's trace.
        let mut last_span = tracing::Span::none();
        for (i, message) in messages.iter().enumerate() {
            let span = project_span(stream, message);
            last_span = span.clone();
            let stream_message = stream_message(stream, message)?;
            let result = async {
                match source {
                    Source::Events => batch.apply_event(&stream_message).await,
                    Source::Outcomes { park_if_unknown } => {
                        batch.apply_outcome(&stream_message, park_if_unknown).await
                    }
                }
            }
            .instrument(span.clone())
            .await?;
            span.record("applied", tracing::field::debug(&result));
            match result {
                Applied::UnknownRecipient => {
                    done = i;
                    break;
                }
                Applied::AlreadyApplied => {}
                Applied::Parked => parked += 1,
                Applied::Changed(_) => applied += 1,
            }
        }
        let committed = batch.commit().await?;
        let metrics = courier_core::metrics::projector();
        metrics.parked.get([source.label()]).inc_by(parked);
        last_span.in_scope(|| {
            metrics
                .batch_duration
                .observe([source.label()], began.elapsed());
        });
        self.after_commit(source.label(), applied, committed)
            .await?;
        Ok(done)
    }

    /// Counts what a batch applied and how many recipients it resolved on
    /// time, completes the campaigns it finished and pauses those whose
    /// content Telegram refuses.
    async fn after_commit(
        &self,
        stream: &'static str,
        applied: u64,
        committed: Committed,
    ) -> anyhow::Result<()> {
        courier_core::metrics::projector()
            .applied
            .get([stream])
            .inc_by(applied);
        for campaign in committed.changed {
            if let Some(campaign) = Standing::read(&self.client, campaign).await? {
                if let Some(resolved) = committed.resolved.get(&campaign.id) {
                    self.count_resolved(&campaign, resolved).await;
                }
                self.settle(&campaign).await?;
            }
        }
        Ok(())
    }

    /// The delivery SLI: recipients resolved within their campaign's ideal
    /// time, or not. Outcomes long past are history, not counted again.
    async fn count_resolved(&self, campaign: &Standing, resolved_at: &[DateTime<Utc>]) {
        let (Some(started_at), Some(audience)) = (campaign.started_at, campaign.audience_size)
        else {
            return;
        };
        let rate = self.rates.of(Lane::of_paid(campaign.paid)).await;
        let ideal_end = delivery_slo::ideal_end(started_at, audience, rate, campaign.paused_for);
        let counted = delivery_slo::Resolved::count(resolved_at, ideal_end, Utc::now());
        let metrics = courier_core::metrics::projector();
        metrics
            .recipients_resolved
            .get(["true"])
            .inc_by(counted.on_time);
        metrics
            .recipients_resolved
            .get(["false"])
            .inc_by(counted.late);
    }

    /// Publishes the fact the campaign's standing calls for, if any. A
    /// pause first: when the refusals came in the batch that finished the
    /// campaign, the admin should hear why.
    async fn settle(&self, campaign: &Standing) -> anyhow::Result<()> {
        if !content_guard::pause_if_refused(&self.publisher, campaign).await? {
            completion::complete_if_done(&self.publisher, campaign).await?;
        }
        Ok(())
    }
}

/// The message just received and whatever else arrives within `linger`,
/// up to [`BATCH`]: they go into one transaction.
async fn drain(
    first: Option<Result<Message, OrderedError>>,
    stream: &mut Ordered,
    name: &str,
    linger: Duration,
) -> anyhow::Result<Vec<Message>> {
    let ended = || anyhow::anyhow!("{name} consumer ended");
    let mut batch = vec![first.ok_or_else(ended)??];
    let until = tokio::time::Instant::now() + linger;
    while batch.len() < BATCH {
        // The stream is polled before the deadline is looked at: with no
        // linger, this takes what has already arrived.
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(message)) => batch.push(message?),
            Ok(None) => return Err(ended()),
            Err(_) => break,
        }
    }
    Ok(batch)
}

fn project_span(stream: &str, message: &Message) -> tracing::Span {
    courier_core::consumer_span!("project", message, stream, applied = tracing::field::Empty)
}

fn stream_message<'a>(stream: &'a str, message: &'a Message) -> anyhow::Result<StreamMessage<'a>> {
    let info = message.info().map_err(anyhow::Error::msg)?;
    Ok(StreamMessage {
        stream,
        seq: info.stream_sequence,
        subject: &message.subject,
        headers: message.headers.as_ref(),
        payload: &message.payload,
    })
}

/// An ordered consumer on `stream` starting after `last_applied`, and how
/// many messages it has yet to deliver.
async fn ordered_from(
    js: &jetstream::Context,
    stream: &str,
    last_applied: u64,
) -> anyhow::Result<(jetstream::consumer::pull::Ordered, u64)> {
    let mut consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: last_applied + 1,
            },
            // The client's idle heartbeat follows the pull expiry (half of
            // it): a consumer lost with a NATS node is noticed and replaced
            // after two missed heartbeats, seconds instead of half a minute.
            max_expires: PULL_EXPIRES,
            ..Default::default()
        })
        .await?;
    let pending = consumer.info().await?.num_pending;
    let messages = consumer.messages().await?;
    Ok((messages, pending))
}
