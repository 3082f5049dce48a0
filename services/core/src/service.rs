//! What every service binary does in `main`: parse its configuration with
//! the shared telemetry and operations settings, install telemetry, name
//! the process in its metrics, serve /metrics, /healthz and /readyz, and
//! run until SIGINT or SIGTERM. It also sets the allocator they all use.

use std::future::Future;

use clap::{CommandFactory, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::health::{self, HealthConfig};
use crate::telemetry::{self, TelemetryConfig};

/// The allocator of every binary that links this crate. A sender makes
/// many small, short-lived allocations per send (requests, answers, NATS
/// messages): glibc's malloc and free took about 12% of a paced sender's
/// CPU, much of it merging and unlinking free chunks, which mimalloc's
/// per-page free lists avoid (docs/decisions/0020).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A service's own configuration plus what every service shares.
#[derive(clap::Parser)]
#[command(version)]
pub struct ServiceCli<C: clap::Args> {
    #[command(flatten)]
    pub service: C,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    #[command(flatten)]
    pub health: HealthConfig,
}

/// Runs service `name` (described by `about` in `--help`): `run` gets its
/// configuration and the shutdown token.
pub async fn main<C, F, Fut>(name: &'static str, about: &'static str, run: F) -> anyhow::Result<()>
where
    C: clap::Args,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let matches = ServiceCli::<C>::command()
        .name(name)
        .about(about)
        .get_matches();
    let cli = ServiceCli::<C>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (telemetry, shutdown) = start(name, &cli.telemetry, &cli.health).await?;
    let result = run(cli.service, shutdown).await;
    flush(telemetry).await;
    result
}

/// Drops the guard, which flushes the last spans, off the runtime: the
/// flush waits for the exporter, and the exporter needs this runtime (the
/// sender's has a single thread, which the wait would block).
pub async fn flush(telemetry: telemetry::TelemetryGuard) {
    let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
}

/// Telemetry, the operations endpoints and the shutdown token, for a
/// service whose `main` parses its own configuration (the bot). Keep the
/// guard alive until the service stops: dropping it flushes traces.
pub async fn start(
    name: &'static str,
    telemetry: &TelemetryConfig,
    health: &HealthConfig,
) -> anyhow::Result<(telemetry::TelemetryGuard, CancellationToken)> {
    let guard = telemetry::init(telemetry, name)?;
    let identity = telemetry.identity(name);
    crate::metrics::process(&identity.service_name, &identity.instance_id);
    let shutdown = crate::shutdown::on_signal();
    health::start(health, shutdown.clone()).await?;
    Ok((guard, shutdown))
}
