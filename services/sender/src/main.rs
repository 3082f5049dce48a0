use clap::Parser;
use courier_core::health::{self, HealthConfig};
use courier_core::telemetry::{self, TelemetryConfig};
use courier_sender::SenderConfig;

/// courier-sender: delivers SendMessage work items through the Telegram Bot
/// API. Run as many replicas as you like; they share one consumer.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    sender: SenderConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
    #[command(flatten)]
    health: HealthConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.telemetry, "courier-sender")?;
    let shutdown = courier_core::shutdown::on_signal();
    health::start(&cli.health, shutdown.clone()).await?;
    courier_sender::run(cli.sender, shutdown).await
}
