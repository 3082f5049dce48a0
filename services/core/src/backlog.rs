//! The senders' backlog as metrics: how many work items wait, are in
//! flight and came back, read from the `senders` consumer every 5 s. What
//! KEDA and the dashboard scale and alert on. Senders and loaders both run
//! it, so the backlog shows even while no sender runs (the dashboard takes
//! the largest report).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::topology::{SENDERS_CONSUMER, Topology};

const EVERY: Duration = Duration::from_secs(5);

/// Reports the backlog until `shutdown`.
pub async fn watch_senders_backlog(
    js: async_nats::jetstream::Context,
    topology: Topology,
    shutdown: CancellationToken,
) {
    let metrics = crate::metrics::backlog();
    let mut every = tokio::time::interval(EVERY);
    while shutdown.run_until_cancelled(every.tick()).await.is_some() {
        let Ok(stream) = js.get_stream(topology.work_stream()).await else {
            continue;
        };
        if let Ok(info) = stream.consumer_info(SENDERS_CONSUMER).await {
            metrics.pending.set(info.num_pending as f64);
            metrics.ack_pending.set(info.num_ack_pending as f64);
            metrics.redelivered.set(info.num_redelivered as f64);
        }
    }
}
