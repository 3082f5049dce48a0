//! The senders' backlog as metrics: how many work items wait, are in
//! flight and came back, summed over every senders consumer (the default
//! bot's and each added bot's) every 5 s. What KEDA and the dashboard
//! scale and alert on. Senders and loaders both run it, so the backlog
//! shows even while no sender runs (the dashboard takes the largest
//! report).

use std::time::Duration;

use async_nats::jetstream::consumer;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::topology::Topology;

const EVERY: Duration = Duration::from_secs(5);

/// Work items of every bot: not yet delivered, delivered and not acked,
/// delivered more than once; the work stream's other consumers are not
/// the senders' backlog.
#[derive(Debug, Default, PartialEq, Eq)]
struct Backlog {
    pending: u64,
    ack_pending: u64,
    redelivered: u64,
}

impl Backlog {
    fn of(infos: &[consumer::Info]) -> Backlog {
        let mut backlog = Backlog::default();
        for info in infos
            .iter()
            .filter(|info| Topology::bot_of_senders_consumer(&info.name).is_some())
        {
            backlog.pending += info.num_pending;
            backlog.ack_pending += info.num_ack_pending as u64;
            backlog.redelivered += info.num_redelivered as u64;
        }
        backlog
    }
}

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
        if let Ok(infos) = stream.consumers().try_collect::<Vec<_>>().await {
            let backlog = Backlog::of(&infos);
            metrics.pending.set(backlog.pending as f64);
            metrics.ack_pending.set(backlog.ack_pending as f64);
            metrics.redelivered.set(backlog.redelivered as f64);
        }
    }
}
