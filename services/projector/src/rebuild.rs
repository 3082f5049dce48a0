//! Rebuilding the read model: empty it and replay both streams from the
//! start. Run with every projector stopped (it refuses while one holds the
//! projector lock); the replay is the projector's own code, so the result
//! is what a fresh projector would build, and its `CampaignCompleted`
//! publishes are refused by optimistic concurrency because the streams
//! already hold them.

use std::time::Duration;

use courier_core::startup::Nats;
use tokio_util::sync::CancellationToken;

use crate::runner::{PROJECTOR_LOCK, Runner};

/// What the replay applied.
#[derive(Debug, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub outcomes: u64,
}

/// The tables the projector owns, all derived from the streams and emptied
/// by a rebuild. Bot and loader state is not derived from the streams and
/// stays.
pub const READ_MODEL: [&str; 8] = [
    "bots",
    "users",
    "admins",
    "campaigns",
    "deliveries",
    "amendments",
    "projector_checkpoints",
    "parked_messages",
];

pub async fn rebuild(nats: Nats, pool: &deadpool_postgres::Pool) -> anyhow::Result<Rebuilt> {
    let client = pool.get().await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&PROJECTOR_LOCK])
        .await?
        .get(0);
    anyhow::ensure!(
        locked,
        "a projector is running (it holds the projector lock): stop every courier-projector, then rebuild"
    );
    client
        .batch_execute(&format!("TRUNCATE {}", READ_MODEL.join(", ")))
        .await?;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&PROJECTOR_LOCK])
        .await?;
    drop(client);

    let target = Rebuilt {
        events: last_sequence(&nats, &nats.topology.events_stream()).await?,
        outcomes: last_sequence(&nats, &nats.topology.outcomes_stream()).await?,
    };
    let stop = CancellationToken::new();
    let runner = Runner::new(nats.clone(), pool, Default::default()).await?;
    let replay = tokio::spawn(runner.run(stop.clone()));
    let streams = [
        nats.topology.events_stream(),
        nats.topology.outcomes_stream(),
    ];
    loop {
        if replay.is_finished() {
            replay.await??;
            anyhow::bail!("the replay stopped before catching up");
        }
        let client = pool.get().await?;
        let applied = crate::projection::checkpoints(&client, &[&streams[0], &streams[1]]).await?;
        if applied[0] >= target.events && applied[1] >= target.outcomes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    replay.await??;
    Ok(target)
}

async fn last_sequence(nats: &Nats, stream: &str) -> anyhow::Result<u64> {
    Ok(nats
        .js
        .get_stream(stream)
        .await?
        .info()
        .await?
        .state
        .last_sequence)
}
