//! The operator's read and repair commands: campaigns as the read model
//! shows them, and messages the projector parked. Repairs go through the
//! streams (a parked message is published again), never around them.

use std::fmt::Write as _;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use courier_core::audience::Recipients;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{AudienceFilter, DeliveryOutcome, Event};
use courier_core::report;
use courier_core::startup::Nats;
use courier_core::topology::DUPLICATE_WINDOW;
use courier_core::trace_context;
use deadpool_postgres::Pool;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

/// A campaign's report: a summary on stdout, or its CSV rows streamed to
/// stdout, and its picture written to `png`.
pub async fn report(
    pool: &Pool,
    campaign: Uuid,
    csv: bool,
    png: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let Some(report) = report::read(&client, campaign).await? else {
        anyhow::bail!("there is no campaign {campaign}");
    };
    if let Some(path) = png {
        let picture = report::chart::png(&report)?;
        std::fs::write(path, picture).with_context(|| format!("writing {}", path.display()))?;
    }
    if !csv {
        let mut out = format!(
            "campaign {campaign}: {}, {} recipients\n",
            report.status, report.recipients
        );
        for (outcome, count) in &report.outcomes {
            writeln!(out, "{count:>9}  {outcome}")?;
        }
        print!("{out}");
        return Ok(());
    }
    let mut rows = std::pin::pin!(report::csv(client, campaign).await?);
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = rows.next().await {
        stdout.write_all(&chunk?).await?;
    }
    stdout.flush().await?;
    Ok(())
}

/// One line per campaign, newest first.
/// Who `filter` reaches now, with the tags it names that nobody has.
pub struct AudienceReport {
    pub recipients: i64,
    pub opted_out: i64,
    pub unknown_tags: Vec<String>,
}

impl std::fmt::Display for AudienceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} recipients now", self.recipients)?;
        if self.opted_out > 0 {
            write!(f, " ({} more opted out)", self.opted_out)?;
        }
        if !self.unknown_tags.is_empty() {
            write!(
                f,
                "; warning: no user has the tag(s) {}",
                self.unknown_tags.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Who `filter` reaches among bot `bot`'s users now.
pub async fn audience(
    pool: &Pool,
    bot: i64,
    filter: &AudienceFilter,
) -> anyhow::Result<AudienceReport> {
    let client = pool.get().await?;
    let recipients = Recipients::new(bot, filter, chrono::Utc::now());
    let size = recipients.size(&client).await?;
    Ok(AudienceReport {
        recipients: size.recipients,
        opted_out: size.opted_out,
        unknown_tags: recipients.unknown_tags(&client).await?,
    })
}

pub async fn list_campaigns(pool: &Pool, limit: i64) -> anyhow::Result<String> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT campaign_id, status, audience, COALESCE(audience_size, 0), delivered, not_alive, failed,
                    cancelled, created_at, scheduled_at
             FROM campaigns ORDER BY created_at DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    let mut out = String::from(
        "campaign                              status     audience  size  delivered  not_alive  failed  cancelled  created              starts\n",
    );
    for row in rows {
        let created: chrono::DateTime<chrono::Utc> = row.get(8);
        let starts = row
            .get::<_, Option<chrono::DateTime<chrono::Utc>>>(9)
            .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{:<37} {:<10} {:<9} {:>5} {:>10} {:>10} {:>7} {:>10}  {}  {starts}",
            row.get::<_, Uuid>(0),
            row.get::<_, &str>(1),
            row.get::<_, &str>(2),
            row.get::<_, i32>(3),
            row.get::<_, i32>(4),
            row.get::<_, i32>(5),
            row.get::<_, i32>(6),
            row.get::<_, i32>(7),
            created.format("%Y-%m-%d %H:%M:%S"),
        )?;
    }
    Ok(out)
}

/// Everything the read model knows about one campaign.
pub async fn show_campaign(pool: &Pool, campaign: Uuid) -> anyhow::Result<String> {
    let client = pool.get().await?;
    let row = client
        .query_opt("SELECT row_to_json(c)::text FROM (SELECT campaign_id, created_by, audience, content_kind, status, status_reason, audience_size, variants, delivered, not_alive, failed, cancelled, disable_notification, protect_content, paid_broadcast, created_at, started_at, finished_at FROM campaigns WHERE campaign_id = $1) c", &[&campaign])
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no campaign {campaign} in the read model"))?;
    let failures = client
        .query(
            "SELECT reason, count(*) FROM deliveries WHERE campaign_id = $1 AND status IN ('failed', 'not_alive')
             GROUP BY reason ORDER BY count(*) DESC LIMIT 10",
            &[&campaign],
        )
        .await?;
    let versions = client
        .query(
            "SELECT CASE WHEN variant = '' THEN 'default' ELSE variant END,
                    count(*) FILTER (WHERE status = 'delivered'), count(*)
             FROM deliveries WHERE campaign_id = $1
               AND cardinality((SELECT variants FROM campaigns WHERE campaign_id = $1)) > 0
             GROUP BY variant ORDER BY variant = '', variant",
            &[&campaign],
        )
        .await?;
    let mut out = row.get::<_, String>(0);
    out.push('\n');
    for line in courier_core::amend_tally::Tally::read(&**client, campaign)
        .await?
        .lines()
    {
        writeln!(out, "{line}")?;
    }
    for version in versions {
        let (name, delivered, recipients): (String, i64, i64) =
            (version.get(0), version.get(1), version.get(2));
        writeln!(out, "version {name}: {delivered}/{recipients} delivered")?;
    }
    for failure in failures {
        writeln!(
            out,
            "{:>8}  {}",
            failure.get::<_, i64>(1),
            failure.get::<_, Option<String>>(0).unwrap_or_default()
        )?;
    }
    Ok(out)
}

/// Parked messages, oldest first.
pub async fn list_parked(pool: &Pool) -> anyhow::Result<String> {
    let client = pool.get().await?;
    let mut out = String::from("stream                 seq  subject  error\n");
    for row in client
        .query(
            "SELECT stream, seq, subject, error FROM parked_messages ORDER BY parked_at, seq",
            &[],
        )
        .await?
    {
        writeln!(
            out,
            "{:<20} {:>5}  {}  {}",
            row.get::<_, &str>(0),
            row.get::<_, i64>(1),
            row.get::<_, &str>(2),
            row.get::<_, &str>(3)
        )?;
    }
    Ok(out)
}

/// Publishes a parked message again (after courier was upgraded to read
/// it, say) the way it was first published, and removes it from the
/// parking lot; returns its new sequence. The projector applies the new
/// copy, or parks it again; the loader and senders see it like any other.
///
/// An event goes through [`EventPublisher`] (its type header, its id as
/// `Nats-Msg-Id`, this command's `traceparent`); an outcome keeps its
/// recipient's message id (`<campaign>.<user>`). So inside the stream's
/// duplicate window JetStream drops the copy as the very message it
/// parked: then the message stays parked and the error says when to try
/// again.
#[tracing::instrument(name = "parked.retry", skip(pool, nats))]
pub async fn retry_parked(pool: &Pool, nats: &Nats, stream: &str, seq: i64) -> anyhow::Result<u64> {
    let topology = &nats.topology;
    let is_events = stream == topology.events_stream();
    anyhow::ensure!(
        is_events || stream == topology.outcomes_stream(),
        "{stream} is not one of courier's streams ({} or {})",
        topology.events_stream(),
        topology.outcomes_stream()
    );
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "DELETE FROM parked_messages WHERE stream = $1 AND seq = $2 RETURNING payload",
            &[&stream, &seq],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no parked message {stream} #{seq}"))?;
    let payload: &[u8] = row.get(0);
    let cannot_read = |error: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{stream} #{seq} stays parked: this courierctl cannot read it either ({error}); \
             retry with a courierctl of the version that can"
        )
    };
    let last_before = nats
        .js
        .get_stream(stream)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    let republished = if is_events {
        let (event_id, occurred_at_ms, payload) =
            courier_core::event::decode(payload).map_err(|e| cannot_read(&e))?;
        let event = Event {
            event_id,
            occurred_at_ms,
            payload: Some(payload),
        };
        EventPublisher::new(nats.js.clone(), topology.clone())
            .publish(&event)
            .await?
    } else {
        let outcome = DeliveryOutcome::decode(payload).map_err(|e| cannot_read(&e))?;
        let mut headers = HeaderMap::new();
        trace_context::inject(&mut headers);
        let message = PublishMessage::build()
            .headers(headers)
            .message_id(format!("{}.{}", outcome.campaign_id, outcome.user_id))
            .payload(payload.to_vec().into());
        let subject = topology.outcome_subject(&outcome.campaign_id, outcome.user_id);
        nats.js
            .send_publish(subject, message)
            .await?
            .await?
            .sequence
    };
    // A duplicate is acknowledged with the sequence of the copy already
    // stored; a new message always lands after the stream's last.
    anyhow::ensure!(
        republished > last_before,
        "{stream} #{seq} stays parked: JetStream took the copy for a duplicate of #{republished} \
         (same message id within the last {} s); retry after that",
        DUPLICATE_WINDOW.as_secs()
    );
    tx.commit().await?;
    Ok(republished)
}
