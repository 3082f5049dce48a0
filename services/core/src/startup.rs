//! Connecting a service to its infrastructure at start-up: NATS (and the
//! topology) and Postgres (and the schema). Both wait with backoff while the
//! dependency is down, logging what they wait for, so services can start in
//! any order.

use async_nats::jetstream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::NatsConfig;
use crate::topology::{Topology, TopologyError};
use crate::{health, retry};

/// A service's handle on NATS.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
    /// Marked changed at each connect of `client`: what must act on a NATS
    /// restart waits on it instead of polling the connection.
    pub connected: watch::Receiver<()>,
}

/// Connects to NATS and makes sure the streams and consumers exist.
/// `None` when shutdown was requested while waiting.
pub async fn nats(
    config: &NatsConfig,
    service: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Nats>> {
    let (connects, connected) = watch::channel(());
    let Some(client) = retry::until_ready("NATS at NATS_URL", shutdown, || async {
        let options = match (&config.nats_creds, config.url_credentials()) {
            (Some(path), _) => async_nats::ConnectOptions::with_credentials_file(path).await?,
            // async-nats ignores a user and password in the URL itself.
            (None, Some((user, password))) => {
                async_nats::ConnectOptions::with_user_and_password(user, password)
            }
            (None, None) => async_nats::ConnectOptions::new(),
        };
        let connects = connects.clone();
        options
            .name(service)
            .event_callback(move |event| {
                if let async_nats::Event::Connected = event {
                    connects.send_replace(());
                }
                async {}
            })
            .connect(config.servers())
            .await
            .map_err(anyhow::Error::from)
    })
    .await
    else {
        return Ok(None);
    };
    let js = jetstream::new(client.clone());
    let topology = Topology::new(config.prefix.clone(), config.stream_replicas);
    let ensured = retry::until_ready("JetStream", shutdown, || async {
        match topology.ensure(&js).await {
            // A conflicting configuration will not fix itself: fail now.
            Err(
                conflict @ (TopologyError::StreamConflict { .. }
                | TopologyError::SubjectsTaken { .. }
                | TopologyError::ConsumerConflict { .. }),
            ) => Ok(Err(conflict)),
            Err(other) => Err(other),
            Ok(()) => Ok(Ok(())),
        }
    })
    .await;
    match ensured {
        None => Ok(None),
        Some(Err(conflict)) => Err(conflict.into()),
        Some(Ok(())) => Ok(Some(Nats {
            client: health::watched_nats(client),
            js,
            topology,
            connected,
        })),
    }
}

/// A pool on the read model with migrations applied.
#[cfg(feature = "postgres")]
pub async fn postgres(
    config: &crate::config::DatabaseConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<deadpool_postgres::Pool>> {
    let pool = crate::db::pool(config)?;
    let migrated = retry::until_ready("Postgres at DATABASE_URL", shutdown, || {
        crate::db::migrate(&pool)
    })
    .await;
    Ok(migrated.map(|()| health::watched_postgres(pool)))
}
