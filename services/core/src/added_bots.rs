//! Following the bots added with `courierctl bots add`: every service that
//! acts as a bot (senders send as it, the bot service answers as it) reads
//! the bots bucket with `COURIER_TOKEN_KEY` and serves each bot whose sealed
//! token opens, from the bucket's first entry on. A bot added is served at
//! once; a replaced token stops the old serving and starts a new one; a
//! removed bot stops. Where tokens live and why: docs/decisions/0016.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bot_tokens::{TokenKey, fingerprint};
use crate::config::BotToken;
use crate::topology::Topology;

/// How often a follower looks again for a bucket not made yet (no bot was
/// ever added), or for a watch NATS ended.
pub const BUCKET_RECHECK: Duration = Duration::from_secs(5);

/// A bot being served: its token's fingerprint (a repeated entry with the
/// same token changes nothing) and what stops serving it.
struct Serving {
    fingerprint: String,
    stop: CancellationToken,
}

/// Runs `serve(bot id, token, stop)` on a task of its own for each bot of
/// the bucket, until shutdown; `stop` is cancelled when the bot is removed,
/// its token replaced, or at shutdown. Returns once every bot's serving has
/// ended, so a service that awaits it stops only after each bot finished
/// what it had in hand.
pub async fn follow<S, F>(
    js: &jetstream::Context,
    topology: &Topology,
    key: &TokenKey,
    serve: S,
    shutdown: CancellationToken,
) where
    S: Fn(i64, BotToken, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut serving: HashMap<i64, Serving> = HashMap::new();
    let bots = TaskTracker::new();
    loop {
        match js.get_key_value(topology.bots_bucket()).await {
            Ok(bucket) => follow_bucket(&bucket, key, &serve, &bots, &mut serving, &shutdown).await,
            // Made by the first `courierctl bots add`.
            Err(error) => tracing::debug!(%error, "no bots bucket yet"),
        }
        let pause = tokio::time::sleep(BUCKET_RECHECK);
        if shutdown.run_until_cancelled(pause).await.is_none() {
            break;
        }
    }
    bots.close();
    bots.wait().await;
}

/// Applies every entry of the bucket, then each change, until the watch
/// ends or shutdown.
async fn follow_bucket<S, F>(
    bucket: &kv::Store,
    key: &TokenKey,
    serve: &S,
    bots: &TaskTracker,
    serving: &mut HashMap<i64, Serving>,
    shutdown: &CancellationToken,
) where
    S: Fn(i64, BotToken, CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut watch = match bucket.watch_all_from_revision(1).await {
        Ok(watch) => watch,
        Err(error) => {
            tracing::warn!(%error, "watching the bots bucket");
            return;
        }
    };
    while let Some(Some(entry)) = shutdown.run_until_cancelled(watch.next()).await {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, "reading the bots bucket");
                continue;
            }
        };
        let Ok(bot_id) = entry.key.parse::<i64>() else {
            tracing::warn!(
                key = entry.key,
                "ignored a bots bucket key that is no bot id"
            );
            continue;
        };
        let token = match entry.operation {
            kv::Operation::Put => match key.open(bot_id, &entry.value) {
                Ok(token) => Some(token),
                Err(error) => {
                    tracing::error!(bot = bot_id, %error, "bot not served");
                    None
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        let unchanged = token
            .as_ref()
            .zip(serving.get(&bot_id))
            .is_some_and(|(token, now)| fingerprint(token) == now.fingerprint);
        if unchanged {
            continue;
        }
        if let Some(old) = serving.remove(&bot_id) {
            tracing::info!(
                bot = bot_id,
                "bot's token replaced or bot removed: no longer served with the old token"
            );
            old.stop.cancel();
        }
        if let Some(token) = token {
            let stop = shutdown.child_token();
            serving.insert(
                bot_id,
                Serving {
                    fingerprint: fingerprint(&token),
                    stop: stop.clone(),
                },
            );
            bots.spawn(serve(bot_id, token, stop));
        }
    }
}
