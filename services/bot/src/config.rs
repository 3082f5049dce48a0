//! What the bot is configured with: the shared NATS, Postgres, Telegram and
//! telemetry groups from courier-core plus the bot's own settings (owners,
//! the paid lane, progress edits, webhook mode), read from flags or
//! environment variables so `courier-bot --help` documents every variable
//! and its default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use courier_core::bot_languages::BotLanguages;
use courier_core::config::{DatabaseConfig, NatsConfig, TelegramConfig, TokenKeyConfig};
use courier_core::health::HealthConfig;
use courier_core::telemetry::TelemetryConfig;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// courier-bot: the Telegram bot users and admins talk to. Registers users
/// on /start, lets them choose their language and notices when they block
/// the bot; lets admins broadcast and follow their campaigns.
// `Debug` is safe to log: `TelegramConfig` never shows the token's secret
// and the webhook secret is hidden by `WebhookConfig`'s own `Debug`.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct BotConfig {
    #[command(flatten)]
    pub nats: NatsConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub telegram: TelegramConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    #[command(flatten)]
    pub health: HealthConfig,
    #[command(flatten)]
    pub broadcast: BroadcastConfig,
    #[command(flatten)]
    pub webhook: WebhookConfig,
    /// With the key, the bot also serves every bot added with `courierctl
    /// bots add`.
    #[command(flatten)]
    pub token_key: TokenKeyConfig,
}

/// Who may broadcast and what the admins are shown.
#[derive(Debug, Clone, clap::Args)]
pub struct BroadcastConfig {
    /// Telegram user ids of the owners, comma-separated. Owners broadcast
    /// and grant or revoke admins with /admins.
    #[arg(
        long = "owner-ids",
        env = "OWNER_IDS",
        value_name = "OWNER_IDS",
        value_delimiter = ','
    )]
    pub owner_ids: Vec<i64>,

    /// The languages the default bot offers its users, comma-separated,
    /// in its order (an added bot's: `courierctl bots languages`). With
    /// one, users are not asked to choose and a broadcast asks for no
    /// other version; a new user whose app speaks another gets the first.
    #[arg(
        long = "languages",
        env = "BOT_LANGUAGES",
        value_name = "BOT_LANGUAGES",
        default_value = "ru,en"
    )]
    pub languages: BotLanguages,

    /// Offer the paid lane (`allow_paid_broadcast`, charged in Stars) in
    /// the /broadcast dialog.
    #[arg(
        long = "paid-broadcast-enabled",
        env = "PAID_BROADCAST_ENABLED",
        value_name = "PAID_BROADCAST_ENABLED",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub paid_enabled: bool,

    /// Seconds between edits of a progress card (edits are rate-limited by
    /// Telegram too).
    #[arg(
        long = "progress-edit-interval-secs",
        env = "PROGRESS_EDIT_INTERVAL_SECS",
        value_name = "PROGRESS_EDIT_INTERVAL_SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub progress_interval_secs: u64,

    /// Campaigns to at least this many recipients wait until another admin
    /// approves them (two-person rule); 0: none wait.
    #[arg(
        long = "approval-min-recipients",
        env = "APPROVAL_MIN_RECIPIENTS",
        value_name = "APPROVAL_MIN_RECIPIENTS",
        default_value_t = 0
    )]
    pub approval_min_recipients: i64,

    /// Campaigns on the paid lane wait until another admin approves them.
    #[arg(
        long = "approval-for-paid",
        env = "APPROVAL_FOR_PAID",
        value_name = "APPROVAL_FOR_PAID",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub approval_for_paid: bool,
}

impl BroadcastConfig {
    pub fn progress_interval(&self) -> Duration {
        Duration::from_secs(self.progress_interval_secs)
    }

    /// Whether a campaign (on the paid lane or not) may need approval at
    /// all: if not, its recipients need not be counted to know.
    pub fn approval_may_apply(&self, paid: bool) -> bool {
        self.approval_min_recipients > 0 || (paid && self.approval_for_paid)
    }

    /// Why a campaign to `recipients` (on the paid lane or not) needs a
    /// second admin's approval, if it does.
    pub fn approval_needed(&self, recipients: i64, paid: bool) -> Option<String> {
        let minimum = self.approval_min_recipients;
        if minimum > 0 && recipients >= minimum {
            return Some(format!("{recipients} recipients (approval from {minimum})"));
        }
        (paid && self.approval_for_paid).then(|| "the paid lane".to_owned())
    }
}

/// Webhook mode: set BOT_WEBHOOK_URL to receive updates over HTTPS instead
/// of long polling.
#[derive(Clone, clap::Args)]
pub struct WebhookConfig {
    /// Public HTTPS URL Telegram posts updates to; unset: long polling.
    #[arg(
        long = "bot-webhook-url",
        env = "BOT_WEBHOOK_URL",
        value_name = "BOT_WEBHOOK_URL",
        requires = "secret"
    )]
    pub url: Option<url::Url>,

    /// Local address the webhook server listens on.
    #[arg(
        long = "bot-webhook-listen",
        env = "BOT_WEBHOOK_LISTEN",
        value_name = "BOT_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub listen: SocketAddr,

    /// Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; webhook
    /// requests without it are refused. Required with BOT_WEBHOOK_URL;
    /// 1-256 of A-Z, a-z, 0-9, _ and -.
    #[arg(
        long = "bot-webhook-secret",
        env = "BOT_WEBHOOK_SECRET",
        value_name = "BOT_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
}

/// Where Telegram posts one bot's updates, and the secret it sends along.
#[derive(Clone)]
pub struct Webhook {
    pub url: url::Url,
    pub secret: String,
}

impl Webhook {
    /// An added bot's: a path of its own under the default bot's URL
    /// (`…/bots/<bot id>`), so one listener tells the bots apart, and a
    /// secret derived from BOT_WEBHOOK_SECRET (HMAC-SHA256 of the bot id,
    /// in hex), so one bot's secret opens no other bot's path and nothing
    /// more has to be kept.
    pub fn of_added_bot(&self, bot_id: i64) -> Webhook {
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["bots", &bot_id.to_string()]);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(bot_id.to_string().as_bytes());
        let secret = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Webhook { url, secret }
    }
}

impl WebhookConfig {
    /// The default bot's webhook when webhook mode is configured, or why
    /// the secret is unusable (without echoing it).
    pub fn enabled(&self) -> Result<Option<Webhook>, &'static str> {
        let (Some(url), Some(secret)) = (&self.url, &self.secret) else {
            return Ok(None);
        };
        let valid = (1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Some(Webhook {
                url: url.clone(),
                secret: secret.clone(),
            }))
        } else {
            Err("BOT_WEBHOOK_SECRET must be 1 to 256 of A-Z, a-z, 0-9, '_' and '-'")
        }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("secret", &"***")
            .finish()
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url.as_ref().map(url::Url::as_str))
            .field("listen", &self.listen)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const TOKEN: &str = "123456:AAE-secret_part_0123456789";

    #[test]
    fn an_added_bot_has_a_path_and_a_secret_of_its_own() {
        let default = Webhook {
            url: "https://bots.example.com/telegram/".parse().unwrap(),
            secret: "hook_secret".into(),
        };
        let first = default.of_added_bot(222);
        let second = default.of_added_bot(333);
        assert_eq!(
            first.url.as_str(),
            "https://bots.example.com/telegram/bots/222"
        );
        assert_eq!(
            second.url.as_str(),
            "https://bots.example.com/telegram/bots/333"
        );
        assert_eq!(first.secret.len(), 64);
        assert!(first.secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first.secret, second.secret);
        assert_ne!(first.secret, default.secret);
        assert_eq!(default.of_added_bot(222).secret, first.secret);
    }

    #[test]
    fn help_lists_every_variable() {
        let help = BotConfig::command().render_long_help().to_string();
        for var in [
            "NATS_URL",
            "NATS_CREDS",
            "COURIER_NATS_PREFIX",
            "COURIER_STREAM_REPLICAS",
            "DATABASE_URL",
            "DATABASE_POOL_SIZE",
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_API_URL",
            "RUST_LOG",
            "LOG_FORMAT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_SERVICE_NAME",
            "OWNER_IDS",
            "PAID_BROADCAST_ENABLED",
            "PROGRESS_EDIT_INTERVAL_SECS",
            "APPROVAL_MIN_RECIPIENTS",
            "APPROVAL_FOR_PAID",
            "BOT_WEBHOOK_URL",
            "BOT_LANGUAGES",
            "BOT_WEBHOOK_LISTEN",
            "BOT_WEBHOOK_SECRET",
            "COURIER_TOKEN_KEY",
        ] {
            assert!(
                help.contains(&format!("[env: {var}")),
                "{var} missing from:\n{help}"
            );
        }
    }

    #[test]
    fn the_parsed_config_never_shows_a_secret() {
        let config = BotConfig::try_parse_from([
            "courier-bot",
            "--telegram-bot-token",
            TOKEN,
            "--bot-webhook-url",
            "https://bot.example.com/hook",
            "--bot-webhook-secret",
            "hook_secret_value",
        ])
        .unwrap();
        assert_eq!(config.telegram.bot_token.expose(), TOKEN);
        assert_eq!(config.webhook.secret.as_deref(), Some("hook_secret_value"));
        let logged = format!("{config:?}");
        assert!(!logged.contains("secret_part"), "{logged}");
        assert!(!logged.contains("hook_secret_value"), "{logged}");
    }

    #[test]
    fn owners_and_defaults_parse() {
        let config = BotConfig::try_parse_from([
            "courier-bot",
            "--telegram-bot-token",
            TOKEN,
            "--owner-ids",
            "1,22,333",
        ])
        .unwrap();
        assert_eq!(config.broadcast.owner_ids, [1, 22, 333]);
        assert!(!config.broadcast.paid_enabled);
        assert_eq!(config.broadcast.progress_interval(), Duration::from_secs(5));
        assert!(config.webhook.url.is_none());
    }

    fn webhook(secret: Option<&str>) -> Result<BotConfig, clap::Error> {
        let mut args = vec![
            "courier-bot",
            "--telegram-bot-token",
            TOKEN,
            "--bot-webhook-url",
            "https://bot.example.com/hook",
        ];
        args.extend(
            secret
                .map(|secret| ["--bot-webhook-secret", secret])
                .into_iter()
                .flatten(),
        );
        BotConfig::try_parse_from(args)
    }

    #[test]
    fn webhook_mode_needs_a_valid_secret() {
        let error = webhook(None).unwrap_err().to_string();
        assert!(error.contains("BOT_WEBHOOK_SECRET"), "{error}");
        let refused = webhook(Some("not allowed!")).unwrap().webhook.enabled();
        let error = refused.unwrap_err();
        assert!(error.contains("BOT_WEBHOOK_SECRET") && !error.contains("allowed!"));
        let Webhook { url, secret } = webhook(Some("s3cret_-x"))
            .unwrap()
            .webhook
            .enabled()
            .unwrap()
            .unwrap();
        assert_eq!(
            (url.as_str(), secret.as_str()),
            ("https://bot.example.com/hook", "s3cret_-x")
        );
    }

    #[test]
    fn approval_is_needed_from_the_threshold_or_for_the_paid_lane() {
        let config = |min, paid| BroadcastConfig {
            owner_ids: Vec::new(),
            languages: BotLanguages::default(),
            paid_enabled: true,
            progress_interval_secs: 5,
            approval_min_recipients: min,
            approval_for_paid: paid,
        };
        let off = config(0, false);
        assert!(!off.approval_may_apply(true));
        assert_eq!(off.approval_needed(1_000_000, true), None);
        let large = config(1000, false);
        assert!(large.approval_may_apply(false));
        assert_eq!(large.approval_needed(999, false), None);
        assert_eq!(
            large.approval_needed(1000, false).as_deref(),
            Some("1000 recipients (approval from 1000)")
        );
        let paid = config(0, true);
        assert!(!paid.approval_may_apply(false));
        assert_eq!(
            paid.approval_needed(5, true).as_deref(),
            Some("the paid lane")
        );
    }
}
