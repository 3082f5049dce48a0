//! A campaign's standing in the read model, read in one query after each
//! batch: what the projector decides the campaign's next fact from (a
//! pause for refused content, a completion), and the trace that fact
//! continues.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use courier_core::campaign::CampaignStatus;
use courier_core::trace_context;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::projection::TRACE_PARENT;

const COLUMNS: &str = "campaign_id, status, audience_size,
    (delivered + not_alive + failed + cancelled)::BIGINT,
    content_refusals, content_refusal, last_event_seq, trace_parent,
    started_at, paid_broadcast, paused_ms";

#[derive(Debug)]
pub struct Standing {
    pub id: Uuid,
    pub status: CampaignStatus,
    pub audience_size: Option<i32>,
    /// Recipients with an outcome (cancelled ones included).
    pub finished: i64,
    /// Content refusals since the start or the last resume, and the last
    /// one's reason.
    pub content_refusals: i32,
    pub content_refusal: Option<String>,
    /// The campaign's last applied event: a fact decided from this standing
    /// is published expecting it.
    pub last_event_seq: u64,
    /// The trace of the campaign's start, if it carried one.
    pub trace_parent: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// On the paid broadcast lane.
    pub paid: bool,
    /// How long it was paused, all pauses that ended added up.
    pub paused_for: Duration,
}

impl Standing {
    pub async fn read(client: &Client, campaign: Uuid) -> anyhow::Result<Option<Standing>> {
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM campaigns WHERE campaign_id = $1"),
                &[&campaign],
            )
            .await?;
        row.map(|row| Standing::from_row(&row)).transpose()
    }

    /// Every campaign the read model shows sending.
    pub async fn sending(client: &Client) -> anyhow::Result<Vec<Standing>> {
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM campaigns WHERE status = 'sending'"),
                &[],
            )
            .await?;
        rows.iter().map(Standing::from_row).collect()
    }

    fn from_row(row: &Row) -> anyhow::Result<Standing> {
        Ok(Standing {
            id: row.get(0),
            status: row
                .get::<_, &str>(1)
                .parse()
                .with_context(|| format!("campaign {} in the read model", row.get::<_, Uuid>(0)))?,
            audience_size: row.get(2),
            finished: row.get(3),
            content_refusals: row.get(4),
            content_refusal: row.get(5),
            last_event_seq: row.get::<_, i64>(6) as u64,
            trace_parent: row.get(7),
            started_at: row.get(8),
            paid: row.get(9),
            paused_for: Duration::from_millis(u64::try_from(row.get::<_, i64>(10)).unwrap_or(0)),
        })
    }

    /// Makes `span` (not entered yet) part of the campaign's trace, so the
    /// event published in it ends the trace its start began.
    pub fn continue_trace(&self, span: &tracing::Span) {
        if let Some(trace_parent) = &self.trace_parent {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(TRACE_PARENT, trace_parent.as_str());
            trace_context::adopt(span, Some(&headers));
        }
    }
}
