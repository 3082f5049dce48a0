//! The operations endpoints every service serves on `METRICS_ADDR`:
//! `/metrics` (OpenMetrics or Prometheus text, [`crate::metrics`]), `/healthz` (the process runs) and
//! `/readyz` (connected to NATS and Postgres, topology in place, and any
//! check of the service's own passing).
//!
//! Readiness is a property of the process, so the dependencies register
//! themselves here as [`crate::startup`] brings them up; a service's `main`
//! only calls [`start`]. Metrics are declared in [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct HealthConfig {
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(
        long = "metrics-addr",
        env = "METRICS_ADDR",
        value_name = "METRICS_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_addr: SocketAddr,
}

/// A readiness check of a service's own: `Some(reason)` while not ready.
type Check = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// What the process depends on, registered as each comes up.
#[derive(Default)]
struct Dependencies {
    nats: Vec<async_nats::Client>,
    #[cfg(feature = "postgres")]
    postgres: Vec<deadpool_postgres::Pool>,
    checks: Vec<(&'static str, Check)>,
    started: bool,
}

static DEPENDENCIES: Mutex<Dependencies> = Mutex::new(Dependencies {
    nats: Vec::new(),
    #[cfg(feature = "postgres")]
    postgres: Vec::new(),
    checks: Vec::new(),
    started: false,
});

/// Makes readiness depend on this NATS connection; hands it back.
pub fn watched_nats(client: async_nats::Client) -> async_nats::Client {
    DEPENDENCIES
        .lock()
        .expect("health lock")
        .nats
        .push(client.clone());
    client
}

/// Makes readiness depend on this Postgres pool; hands it back.
#[cfg(feature = "postgres")]
pub fn watched_postgres(pool: deadpool_postgres::Pool) -> deadpool_postgres::Pool {
    DEPENDENCIES
        .lock()
        .expect("health lock")
        .postgres
        .push(pool.clone());
    pool
}

/// Makes readiness depend on `check`, a service's own judgement of itself
/// (the projector: is it making progress); `name` prefixes its reason.
pub fn watched_check(
    name: &'static str,
    check: impl Fn() -> Option<String> + Send + Sync + 'static,
) {
    DEPENDENCIES
        .lock()
        .expect("health lock")
        .checks
        .push((name, Arc::new(check)));
}

/// The service finished starting (topology in place, migrations applied).
pub fn started() {
    DEPENDENCIES.lock().expect("health lock").started = true;
}

/// Why the process is not ready, if it is not.
async fn not_ready() -> Option<String> {
    let (nats, checks, started) = {
        let dependencies = DEPENDENCIES.lock().expect("health lock");
        (
            dependencies.nats.clone(),
            dependencies.checks.clone(),
            dependencies.started,
        )
    };
    if !started {
        return Some("starting".into());
    }
    if nats
        .iter()
        .any(|client| client.connection_state() != async_nats::connection::State::Connected)
    {
        return Some("NATS disconnected".into());
    }
    #[cfg(feature = "postgres")]
    {
        let postgres = DEPENDENCIES.lock().expect("health lock").postgres.clone();
        for pool in postgres {
            match tokio::time::timeout(std::time::Duration::from_secs(1), pool.get()).await {
                Ok(Ok(_)) => {}
                _ => return Some("Postgres unreachable".into()),
            }
        }
    }
    checks
        .iter()
        .find_map(|(name, check)| check().map(|reason| format!("{name}: {reason}")))
}

/// Binds `METRICS_ADDR` and serves the endpoints in the background until
/// `shutdown`. A port that cannot be bound is an error at start-up.
pub async fn start(config: &HealthConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app =
        Router::new()
            .route(
                "/metrics",
                get(|headers: axum::http::HeaderMap| async move {
                    crate::metrics::exposition(&headers)
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(|| async {
                    match not_ready().await {
                        None => (StatusCode::OK, "ready".to_owned()),
                        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
                    }
                }),
            );
    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|e| anyhow::anyhow!("METRICS_ADDR {}: {e}", config.metrics_addr))?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
