use clap::Parser;
use courier_core::health::{self, HealthConfig};
use courier_core::telemetry::{self, TelemetryConfig};
use courier_projector::ProjectorConfig;

/// courier-projector: applies courier's event and outcome streams to the
/// Postgres read model. Run one or more; one applies, the others stand by.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    projector: ProjectorConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
    #[command(flatten)]
    health: HealthConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.telemetry, "courier-projector")?;
    let shutdown = courier_core::shutdown::on_signal();
    health::start(&cli.health, shutdown.clone()).await?;
    courier_projector::run(cli.projector, shutdown).await
}
