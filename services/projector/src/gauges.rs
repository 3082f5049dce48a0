//! Campaign gauges for the dashboard, read from the read model every few
//! seconds: campaigns by status, and the recipients by state of each
//! campaign that is unfinished or finished within the hour (so its final
//! counts show; after that its series keeps them until the projector
//! restarts). Published by the projector because it owns the read model.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub const EVERY: Duration = Duration::from_secs(5);

pub async fn publish(pool: deadpool_postgres::Pool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(error) = read_and_set(&pool).await {
            tracing::debug!(error = format!("{error:#}"), "campaign gauges not updated");
        }
    }
}

async fn read_and_set(pool: &deadpool_postgres::Pool) -> anyhow::Result<()> {
    let client = pool.get().await?;
    for status in ["pending", "sending", "paused", "completed", "cancelled"] {
        metrics::gauge!("courier_campaigns", "status" => status).set(0.0);
    }
    for row in client
        .query(
            "SELECT status, count(*) FROM campaigns GROUP BY status",
            &[],
        )
        .await?
    {
        let status: String = row.get(0);
        metrics::gauge!("courier_campaigns", "status" => status).set(row.get::<_, i64>(1) as f64);
    }
    for row in client
        .query(
            "SELECT campaign_id::text, delivered, not_alive, failed,
                    COALESCE(audience_size, 0) - delivered - not_alive - failed - cancelled
             FROM campaigns
             WHERE status IN ('sending', 'paused') OR finished_at > now() - interval '1 hour'",
            &[],
        )
        .await?
    {
        let campaign: String = row.get(0);
        for (index, state) in [
            (1, "delivered"),
            (2, "not_alive"),
            (3, "failed"),
            (4, "remaining"),
        ] {
            let value = f64::from(row.get::<_, i32>(index));
            metrics::gauge!("courier_campaign_recipients", "campaign" => campaign.clone(), "state" => state)
                .set(value);
        }
    }
    Ok(())
}
