//! Campaign gauges for the dashboard, read from the read model every few
//! seconds: campaigns by status, and the recipients by state of each
//! campaign (and whether it is sending) that is unfinished or finished
//! within the hour (so its final
//! counts show; after that its series keeps them until the projector
//! restarts). Published by the projector because it owns the read model.

use std::time::Duration;

use courier_core::metrics::CAMPAIGN_STATUSES;
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
    let metrics = courier_core::metrics::projector();
    for status in CAMPAIGN_STATUSES {
        metrics.campaigns.get([status]).set(0.0);
    }
    for row in client
        .query(
            "SELECT status, count(*) FROM campaigns GROUP BY status",
            &[],
        )
        .await?
    {
        let status: String = row.get(0);
        metrics
            .campaigns
            .get([status])
            .set(row.get::<_, i64>(1) as f64);
    }
    for row in client
        .query(
            "SELECT campaign_id::text, delivered, not_alive, failed,
                    COALESCE(audience_size, 0) - delivered - not_alive - failed - cancelled,
                    status = 'sending'
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
            metrics
                .campaign_recipients
                .get([campaign.clone(), state.into()])
                .set(value);
        }
        let sending = f64::from(u8::from(row.get::<_, bool>(5)));
        metrics.campaign_sending.get([campaign]).set(sending);
    }
    Ok(())
}
