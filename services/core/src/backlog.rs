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

use crate::topology::{SENDERS_CONSUMER, Topology};

const EVERY: Duration = Duration::from_secs(5);

/// Work items of every bot: not yet delivered, delivered and not acked,
/// delivered more than once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub pending: u64,
    pub ack_pending: u64,
    pub redelivered: u64,
}

impl Backlog {
    /// Adds consumer `name`'s counts if senders pull from it (`senders`,
    /// `senders-<bot id>`); the work stream's other consumers are not
    /// the senders' backlog.
    fn add(&mut self, name: &str, pending: u64, ack_pending: usize, redelivered: usize) {
        let of_senders = name == SENDERS_CONSUMER
            || name
                .strip_prefix(SENDERS_CONSUMER)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|bot| bot.parse::<i64>().is_ok());
        if of_senders {
            self.pending += pending;
            self.ack_pending += ack_pending as u64;
            self.redelivered += redelivered as u64;
        }
    }

    fn of(infos: &[consumer::Info]) -> Backlog {
        let mut backlog = Backlog::default();
        for info in infos {
            backlog.add(
                &info.name,
                info.num_pending,
                info.num_ack_pending,
                info.num_redelivered,
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bots_senders_consumer_counts_and_no_other() {
        let mut backlog = Backlog::default();
        backlog.add("senders", 10, 2, 1);
        backlog.add("senders-7000001", 5, 1, 0);
        backlog.add("held", 100, 0, 0);
        backlog.add("senders-x", 100, 0, 0);
        assert_eq!(
            backlog,
            Backlog {
                pending: 15,
                ack_pending: 3,
                redelivered: 1
            }
        );
    }
}
