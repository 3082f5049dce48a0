use clap::Parser;
use courier_core::health::{self, HealthConfig};
use courier_core::telemetry::{self, TelemetryConfig};
use courier_loader::LoaderConfig;

/// courier-loader: turns each started campaign into one SendMessage work
/// item per recipient. Run one or more; each campaign is fanned out by one.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    loader: LoaderConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
    #[command(flatten)]
    health: HealthConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.telemetry, "courier-loader")?;
    let shutdown = courier_core::shutdown::on_signal();
    health::start(&cli.health, shutdown.clone()).await?;
    courier_loader::run(cli.loader, shutdown).await
}
