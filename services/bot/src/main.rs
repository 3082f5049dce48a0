use clap::Parser;
use courier_bot::BotConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = BotConfig::parse();
    let (telemetry, shutdown) =
        courier_core::service::start("courier-bot", &config.telemetry, &config.health).await?;
    let result = courier_bot::run(config, shutdown).await;
    courier_core::service::flush(telemetry).await;
    result
}
