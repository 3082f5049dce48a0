//! `courier_projector_lag{stream}`: how many messages of each stream the
//! read model has yet to apply, the stream's last sequence minus its
//! checkpoint. Measured on a timer of its own, whatever the batches do, so
//! a projector stuck mid-batch shows its lag rising.
//!
//! The checkpoint is the read model's, not the process's: every replica
//! reports the same lag, standbys included. While Postgres does not answer,
//! the last checkpoints read stand in.

use std::collections::HashMap;
use std::time::Duration;

use courier_core::startup::Nats;
use tokio_util::sync::CancellationToken;

pub const EVERY: Duration = Duration::from_secs(2);

/// A checkpoint read that takes longer is given up for this round.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn watch(nats: Nats, pool: deadpool_postgres::Pool, shutdown: CancellationToken) {
    let streams = [
        ("events", nats.topology.events_stream()),
        ("outcomes", nats.topology.outcomes_stream()),
    ];
    let mut applied = HashMap::new();
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match tokio::time::timeout(READ_TIMEOUT, checkpoints(&pool)).await {
            Ok(Ok(read)) => applied = read,
            Ok(Err(error)) => tracing::debug!(
                error = format!("{error:#}"),
                "checkpoints not read; the last ones stand in"
            ),
            Err(_) => tracing::debug!("checkpoints not read in time; the last ones stand in"),
        }
        for (label, stream) in &streams {
            let Some(&checkpoint) = applied.get(stream) else {
                continue;
            };
            match nats.js.get_stream(stream).await {
                Ok(stream) => {
                    let last = stream.cached_info().state.last_sequence;
                    courier_core::metrics::projector()
                        .lag
                        .get([*label])
                        .set(last.saturating_sub(checkpoint) as f64);
                }
                Err(error) => tracing::debug!(%error, stream, "projector lag not measured"),
            }
        }
    }
}

async fn checkpoints(pool: &deadpool_postgres::Pool) -> anyhow::Result<HashMap<String, u64>> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT stream, last_seq FROM projector_checkpoints", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
        .collect())
}
