use clap::Parser;
use courier_bot::BotConfig;
use courier_core::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = BotConfig::parse();
    let _telemetry = telemetry::init(&config.telemetry, "courier-bot")?;
    courier_bot::run(config, courier_core::shutdown::on_signal()).await
}
