//! A campaign's report, for the admin who ran it: how fast recipients got
//! their outcomes over time and how they ended ([`Report`], read from the
//! read model and drawn by [`chart`]), and one CSV row per recipient
//! ([`csv`], streamed from Postgres, never built in memory). The bot sends
//! both when a campaign completes; `courierctl campaign report` writes
//! them.

pub mod chart;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use tokio_postgres::Client;
use uuid::Uuid;

/// The timeline has about this many buckets, each a whole number of
/// seconds: a minute-long campaign by the second, a day-long one by the
/// ~12 minutes.
const BUCKETS: f64 = 120.0;
/// Failure reasons named one by one; the rest are "other".
const REASONS: i64 = 4;

/// The CSV's columns.
pub const CSV_HEADER: &str = "user_id,outcome,reason,message_id,time";

/// How a campaign went.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub campaign: Uuid,
    pub status: String,
    pub recipients: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The timeline's bucket width.
    pub bucket: Duration,
    /// Recipients resolved in each bucket since the start, in order.
    pub timeline: Vec<Resolved>,
    /// How recipients ended, largest first for failures: `delivered`,
    /// `not alive`, `failed: <reason>`..., `cancelled`.
    pub outcomes: Vec<(String, i64)>,
}

/// Recipients given an outcome within one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    pub delivered: i64,
    /// Not alive or failed.
    pub undelivered: i64,
}

impl Report {
    /// How long the sending took, start to last outcome.
    pub fn took(&self) -> Option<Duration> {
        (self.finished_at? - self.started_at?).to_std().ok()
    }

    pub fn count(&self, label: &str) -> i64 {
        self.outcomes
            .iter()
            .filter(|(l, _)| l == label || (label == "failed" && l.starts_with("failed")))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The bucket width for a campaign that took `took`: whole seconds.
pub fn bucket_for(took: Duration) -> Duration {
    Duration::from_secs((took.as_secs_f64() / BUCKETS).ceil().max(1.0) as u64)
}

/// The campaign's report, `None` if there is no such campaign.
pub async fn read(
    client: &Client,
    campaign: Uuid,
) -> Result<Option<Report>, tokio_postgres::Error> {
    let Some(row) = client
        .query_opt(
            "SELECT status, COALESCE(audience_size, 0), started_at, finished_at,
                    delivered, not_alive, failed, cancelled
             FROM campaigns WHERE campaign_id = $1",
            &[&campaign],
        )
        .await?
    else {
        return Ok(None);
    };
    let (started_at, finished_at): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        (row.get(2), row.get(3));
    let (delivered, not_alive, failed, cancelled): (i32, i32, i32, i32) =
        (row.get(4), row.get(5), row.get(6), row.get(7));
    let took = match (started_at, finished_at) {
        (Some(start), Some(end)) => (end - start).to_std().unwrap_or_default(),
        (Some(start), None) => (Utc::now() - start).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let bucket = bucket_for(took);
    let mut timeline = Vec::new();
    for row in client
        .query(
            "SELECT floor(extract(epoch FROM d.finished_at - c.started_at)::FLOAT8 / $2::FLOAT8)::BIGINT AS b,
                    count(*) FILTER (WHERE d.status = 'delivered'),
                    count(*) FILTER (WHERE d.status <> 'delivered')
             FROM deliveries d JOIN campaigns c USING (campaign_id)
             WHERE d.campaign_id = $1 AND d.status IN ('delivered', 'not_alive', 'failed')
               AND d.finished_at >= c.started_at
             GROUP BY b ORDER BY b",
            &[&campaign, &(bucket.as_secs_f64())],
        )
        .await?
    {
        let index = usize::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        if timeline.len() <= index {
            timeline.resize(index + 1, Resolved::default());
        }
        timeline[index] = Resolved {
            delivered: row.get(1),
            undelivered: row.get(2),
        };
    }
    let mut outcomes = vec![
        ("delivered".to_owned(), i64::from(delivered)),
        ("not alive".to_owned(), i64::from(not_alive)),
    ];
    let mut named = 0;
    for row in client
        .query(
            "SELECT COALESCE(reason, ''), count(*) FROM deliveries
             WHERE campaign_id = $1 AND status = 'failed'
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2",
            &[&campaign, &REASONS],
        )
        .await?
    {
        let count: i64 = row.get(1);
        named += count;
        outcomes.push((format!("failed: {}", row.get::<_, &str>(0)), count));
    }
    if i64::from(failed) > named {
        outcomes.push(("failed: other".to_owned(), i64::from(failed) - named));
    }
    outcomes.push(("cancelled".to_owned(), i64::from(cancelled)));
    Ok(Some(Report {
        campaign,
        status: row.get(0),
        recipients: i64::from(row.get::<_, i32>(1)),
        started_at,
        finished_at,
        bucket,
        timeline,
        outcomes,
    }))
}

/// One CSV row per recipient ([`CSV_HEADER`], ordered by user id, times in
/// UTC), streamed by Postgres' `COPY`: a million recipients never sit in
/// memory. The connection stays out of the pool until the stream ends.
pub async fn csv(
    client: deadpool_postgres::Object,
    campaign: Uuid,
) -> Result<
    impl Stream<Item = Result<Bytes, tokio_postgres::Error>> + Send + 'static,
    tokio_postgres::Error,
> {
    // COPY takes no parameters; a Uuid prints as hex and dashes only.
    let copy = format!(
        "COPY (SELECT user_id, status AS outcome, reason, message_id,
                      to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS time
               FROM deliveries WHERE campaign_id = '{campaign}' ORDER BY user_id)
         TO STDOUT (FORMAT csv, HEADER true)"
    );
    let rows = client.copy_out(copy.as_str()).await?;
    Ok(rows.map(move |chunk| {
        // Held until the last chunk: the COPY runs on this connection.
        let _connection = &client;
        chunk
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_has_about_120_whole_second_buckets() {
        assert_eq!(bucket_for(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(bucket_for(Duration::from_secs(100)), Duration::from_secs(1));
        assert_eq!(bucket_for(Duration::from_secs(121)), Duration::from_secs(2));
        assert_eq!(
            bucket_for(Duration::from_secs(86_400)),
            Duration::from_secs(720)
        );
    }
}
