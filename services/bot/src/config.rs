//! What the bot is configured with: the shared NATS, Telegram and telemetry
//! groups from courier-core, read from flags or environment variables so
//! `courier-bot --help` documents every variable and its default.

use clap::Parser;
use courier_core::config::{NatsConfig, TelegramConfig};
use courier_core::telemetry::TelemetryConfig;

/// courier-bot: the Telegram bot users talk to. Registers them on /start,
/// lets them choose their language and notices when they block the bot.
// `Debug` is safe to log: `TelegramConfig` never shows the token's secret.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct BotConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub telegram: TelegramConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const TOKEN: &str = "123456:AAE-secret_part_0123456789";

    #[test]
    fn help_lists_every_variable() {
        let help = BotConfig::command().render_long_help().to_string();
        for var in [
            "NATS_URL",
            "NATS_CREDS",
            "COURIER_NATS_PREFIX",
            "COURIER_STREAM_REPLICAS",
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_API_URL",
            "RUST_LOG",
            "LOG_FORMAT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_SERVICE_NAME",
        ] {
            assert!(
                help.contains(&format!("[env: {var}")),
                "{var} missing from:\n{help}"
            );
        }
    }

    #[test]
    fn the_parsed_config_never_shows_the_token() {
        let config =
            BotConfig::try_parse_from(["courier-bot", "--telegram-bot-token", TOKEN]).unwrap();
        assert_eq!(config.telegram.bot_token.expose(), TOKEN);
        let logged = format!("{config:?}");
        assert!(!logged.contains("secret_part"), "{logged}");
    }
}
