//! Which added bots have work, so that a sender pulls only their
//! consumers. An idle bot's pull request, renewed every `PULL_EXPIRES`,
//! costs NATS and the sender as much as a busy one's: 10,000 added bots
//! pulled idle would be 2,000 requests a second per sender doing nothing.
//!
//! A bot has work while the campaign view says one of its campaigns is
//! sending (known as the start event is applied), or while the work stream
//! holds items on its subjects: edits and recalls of sent campaigns, items
//! handed back or deferred. The stream is asked every [`CHECK_EVERY`], one
//! request listing every bot's subjects that hold items (a work queue keeps
//! an item until it is acked), so no item waits longer than that for its
//! bot to be pulled. A bot stays pulled [`IDLE_AFTER`] past its last work,
//! so back-to-back campaigns do not stop and start its pull.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use courier_core::topology::{DEFAULT_BOT, Topology};
use futures::TryStreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::campaigns::Campaigns;

/// How often the work stream is asked which bots hold items.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a bot stays pulled after its last work.
pub const IDLE_AFTER: Duration = Duration::from_secs(5);

/// When each bot last had work. Pure.
#[derive(Debug, Default)]
struct LastWork {
    seen: HashMap<i64, Instant>,
}

impl LastWork {
    /// `bots` have work at `now`.
    fn saw(&mut self, bots: impl IntoIterator<Item = i64>, now: Instant) {
        for bot in bots {
            self.seen.insert(bot, now);
        }
    }

    /// The bots that had work less than [`IDLE_AFTER`] before `now`;
    /// the others are forgotten.
    fn with_work(&mut self, now: Instant) -> BTreeSet<i64> {
        self.seen
            .retain(|_, last| now.saturating_duration_since(*last) < IDLE_AFTER);
        self.seen.keys().copied().collect()
    }
}

/// The added bots with work, as this sender last found them.
pub struct BotsWithWork {
    bots: watch::Sender<BTreeSet<i64>>,
}

impl BotsWithWork {
    pub fn new() -> Arc<BotsWithWork> {
        Arc::new(BotsWithWork {
            bots: watch::Sender::new(BTreeSet::new()),
        })
    }

    /// Keeps the set current from the campaign view and the work stream
    /// until `shutdown`. The stream is asked on its own, so a slow answer
    /// never delays waking a bot whose campaign the view saw start.
    pub async fn follow(
        self: Arc<Self>,
        campaigns: Arc<Campaigns>,
        js: jetstream::Context,
        topology: Topology,
        shutdown: CancellationToken,
    ) {
        // The bots the stream last said hold items; after a failed ask,
        // still the last answer (unknown: every bot pulled stays pulled).
        let (found, mut with_items_now) = watch::channel(Vec::new());
        let ask_the_stream = async {
            let mut check = tokio::time::interval(CHECK_EVERY);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                check.tick().await;
                match with_items(&js, &topology).await {
                    Ok(bots) => {
                        found.send_replace(bots);
                    }
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "asking which bots have work");
                    }
                }
            }
        };
        let decide = async {
            let mut last = LastWork::default();
            // Wakes the loop at least as often as a bot can fall idle.
            let mut expire = tokio::time::interval(CHECK_EVERY);
            let changed = campaigns.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            loop {
                tokio::select! {
                    _ = expire.tick() => {}
                    _ = with_items_now.changed() => {}
                    () = &mut changed => {
                        changed.set(campaigns.changed());
                        changed.as_mut().enable();
                    }
                }
                let now = Instant::now();
                last.saw(with_items_now.borrow().iter().copied(), now);
                // The default bot is always pulled: it is not an added bot.
                let sending = campaigns.sending_bots().into_iter();
                last.saw(sending.filter(|&bot| bot != DEFAULT_BOT), now);
                let bots = last.with_work(now);
                courier_core::metrics::sender()
                    .bots_with_work
                    .set(bots.len() as f64);
                self.bots.send_if_modified(|current| {
                    let modified = *current != bots;
                    *current = bots;
                    modified
                });
            }
        };
        shutdown
            .run_until_cancelled(async { tokio::join!(ask_the_stream, decide) })
            .await;
    }

    /// Waits until bot `bot` has work: `false` if `stop` came first.
    pub async fn wait_for_work(&self, bot: i64, stop: &CancellationToken) -> bool {
        let mut bots = self.bots.subscribe();
        let work = bots.wait_for(|bots| bots.contains(&bot));
        matches!(stop.run_until_cancelled(work).await, Some(Ok(_)))
    }

    /// Resolves once bot `bot` has no work.
    pub async fn idle(&self, bot: i64) {
        let mut bots = self.bots.subscribe();
        let _ = bots.wait_for(|bots| !bots.contains(&bot)).await;
    }
}

/// The added bots whose subjects hold items in the work stream.
async fn with_items(js: &jetstream::Context, topology: &Topology) -> anyhow::Result<Vec<i64>> {
    let stream = js.get_stream_no_info(topology.work_stream()).await?;
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(topology.added_bots_work())
        .await?
        .try_collect()
        .await?;
    Ok(subjects
        .iter()
        .filter_map(|(subject, _)| topology.bot_of_work_subject(subject))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bot_stays_with_work_until_idle_for_the_whole_wait() {
        let t0 = Instant::now();
        let mut last = LastWork::default();
        last.saw([7, 8], t0);
        last.saw([8], t0 + Duration::from_secs(3));
        assert_eq!(
            last.with_work(t0 + IDLE_AFTER - Duration::from_millis(1)),
            BTreeSet::from([7, 8])
        );
        assert_eq!(last.with_work(t0 + IDLE_AFTER), BTreeSet::from([8]));
        assert_eq!(last.seen.len(), 1, "bot 7 is forgotten");
        last.saw([7], t0 + IDLE_AFTER);
        assert_eq!(
            last.with_work(t0 + Duration::from_secs(3) + IDLE_AFTER),
            BTreeSet::from([7])
        );
    }
}
