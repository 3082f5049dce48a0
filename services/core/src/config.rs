//! Configuration shared by the services, read from environment variables
//! (or the matching flags). Each service flattens the groups it needs into
//! its own clap parser, so `--help` lists every variable with its default and
//! a missing or malformed value exits non-zero naming the variable.

use std::fmt;
use std::str::FromStr;

use clap::builder::TypedValueParser;

/// Where NATS is and which part of it belongs to this deployment.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsConfig {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        value_name = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true,
        value_parser = Quiet { variable: "NATS_URL", parse: parse_nats_urls }
    )]
    pub nats_url: String,

    /// NATS credentials file (for deployments with per-service users).
    #[arg(long = "nats-creds", env = "NATS_CREDS", value_name = "NATS_CREDS")]
    pub nats_creds: Option<std::path::PathBuf>,

    /// Prefix of every subject and stream name, so several deployments (or
    /// test runs) can share one NATS server.
    #[arg(
        long = "nats-prefix",
        env = "COURIER_NATS_PREFIX",
        value_name = "COURIER_NATS_PREFIX",
        default_value = "courier"
    )]
    pub prefix: Prefix,

    /// Replicas of each stream (3 in a NATS cluster).
    #[arg(long = "stream-replicas", env = "COURIER_STREAM_REPLICAS", value_name = "COURIER_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
}

impl NatsConfig {
    /// The servers of `NATS_URL`, one per comma-separated entry (async-nats
    /// reads a single string as one URL).
    pub fn servers(&self) -> Vec<&str> {
        self.nats_url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The user and password of the first server URL
    /// (`nats://user:password@host:4222`), if it has them.
    pub fn url_credentials(&self) -> Option<(String, String)> {
        let first = self.nats_url.split(',').next()?.trim();
        let url = url::Url::parse(first).ok()?;
        let user = url.username();
        if user.is_empty() {
            return None;
        }
        Some((
            user.to_owned(),
            url.password().unwrap_or_default().to_owned(),
        ))
    }
}

/// Where the Postgres read model is.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// Postgres connection URL.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/courier",
        hide_env_values = true,
        value_parser = Quiet::<tokio_postgres::Config>::parsed("DATABASE_URL")
    )]
    pub database_url: tokio_postgres::Config,

    /// Connections in the pool.
    #[arg(long = "database-pool-size", env = "DATABASE_POOL_SIZE", value_name = "DATABASE_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool_size: u16,
}

/// How to reach the Telegram Bot API.
#[derive(Clone, clap::Args)]
pub struct TelegramConfig {
    /// The bot token from @BotFather (never logged).
    #[arg(
        long = "telegram-bot-token",
        env = "TELEGRAM_BOT_TOKEN", value_name = "TELEGRAM_BOT_TOKEN",
        hide_env_values = true,
        value_parser = Quiet::<BotToken>::parsed("TELEGRAM_BOT_TOKEN")
    )]
    pub bot_token: BotToken,

    #[command(flatten)]
    pub api: TelegramApiConfig,
}

/// Where the Bot API is: with the services' own token above, or alone for
/// `courierctl bots`, which brings the tokens.
#[derive(Clone, clap::Args)]
pub struct TelegramApiConfig {
    /// Bot API base URL; point it at telegram-sandbox for tests and demos.
    #[arg(
        long = "telegram-api-url",
        env = "TELEGRAM_API_URL",
        value_name = "TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub api_url: url::Url,
}

impl fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_token", &self.bot_token)
            .field("api_url", &self.api)
            .finish()
    }
}

impl fmt::Debug for TelegramApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_url.as_str())
    }
}

/// The key the tokens of bots added with `courierctl bots add` are sealed
/// with ([`crate::bot_tokens`]).
#[derive(Debug, Clone, clap::Args)]
pub struct TokenKeyConfig {
    /// 32 random bytes in base64, from a secret (make one with
    /// `head -c 32 /dev/urandom | base64`); never logged. Unset: a sender
    /// serves only TELEGRAM_BOT_TOKEN's bot.
    #[arg(
        long = "token-key",
        env = "COURIER_TOKEN_KEY",
        value_name = "COURIER_TOKEN_KEY",
        hide_env_values = true,
        value_parser = Quiet::<crate::bot_tokens::TokenKey>::parsed("COURIER_TOKEN_KEY")
    )]
    pub token_key: Option<crate::bot_tokens::TokenKey>,
    /// The key before COURIER_TOKEN_KEY, while the key is rotated: tokens
    /// sealed with it still open (none is sealed with it). Set it, run
    /// `courierctl bots rekey`, then unset it.
    #[arg(
        long = "previous-token-key",
        env = "COURIER_TOKEN_KEY_PREVIOUS",
        value_name = "COURIER_TOKEN_KEY_PREVIOUS",
        hide_env_values = true,
        requires = "token_key",
        value_parser = Quiet::<crate::bot_tokens::TokenKey>::parsed("COURIER_TOKEN_KEY_PREVIOUS")
    )]
    pub previous_token_key: Option<crate::bot_tokens::TokenKey>,
}

impl TokenKeyConfig {
    /// Only `key`, no previous one.
    pub fn of(key: Option<crate::bot_tokens::TokenKey>) -> TokenKeyConfig {
        TokenKeyConfig {
            token_key: key,
            previous_token_key: None,
        }
    }

    /// The key, opening what the previous one sealed too; `None` unset.
    pub fn key(&self) -> Option<crate::bot_tokens::TokenKey> {
        let key = self.token_key.clone()?;
        Some(match &self.previous_token_key {
            Some(previous) => key.with_previous(previous),
            None => key,
        })
    }

    /// The key, for what cannot do without it.
    pub fn required(&self) -> Result<crate::bot_tokens::TokenKey, String> {
        self.key().ok_or_else(|| {
            "COURIER_TOKEN_KEY is not set: bot tokens are sealed with it \
             (make one with: head -c 32 /dev/urandom | base64)"
                .to_owned()
        })
    }
}

/// A subject/stream prefix: lowercase letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= 32
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid {
            Ok(Prefix(s.to_owned()))
        } else {
            Err("expected 1 to 32 lowercase letters, digits, '-' or '_'".into())
        }
    }
}

/// The bot token. Its `Debug` and `Display` never show the secret part, so it
/// can sit in any struct that gets logged.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl BotToken {
    /// The whole token, for the one place that talks to Telegram.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The bot's numeric id (the part before the colon), safe to log.
    pub fn bot_id(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotToken({}:***)", self.bot_id())
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***", self.bot_id())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected <bot id>:<secret> as issued by @BotFather")]
pub struct MalformedToken;

impl FromStr for BotToken {
    type Err = MalformedToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, secret) = s.split_once(':').ok_or(MalformedToken)?;
        let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
        let secret_ok = secret.len() >= 10
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if id_ok && secret_ok {
            Ok(BotToken(s.to_owned()))
        } else {
            Err(MalformedToken)
        }
    }
}

/// Each comma-separated entry of `NATS_URL` must be a server address
/// (`nats://host:port`, `tls://...`, or `host:port`).
fn parse_nats_urls(urls: &str) -> Result<String, String> {
    let mut servers = urls.split(',').map(str::trim).filter(|s| !s.is_empty());
    let mut any = false;
    for (i, server) in servers.by_ref().enumerate() {
        any = true;
        server
            .parse::<async_nats::ServerAddr>()
            .map_err(|_| format!("entry {} is not a NATS server address", i + 1))?;
    }
    if any {
        Ok(urls.to_owned())
    } else {
        Err("no server address".into())
    }
}

/// Parses a value that may hold a secret (a token, a password in a URL)
/// without echoing it: clap's own parsers quote the bad value in their
/// error, which would print the secret.
#[derive(Clone)]
struct Quiet<T> {
    variable: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T: FromStr> Quiet<T>
where
    T::Err: fmt::Display,
{
    fn parsed(variable: &'static str) -> Quiet<T> {
        Quiet {
            variable,
            parse: |s| s.parse::<T>().map_err(|e| e.to_string()),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Quiet<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let parsed = value
            .to_str()
            .ok_or_else(|| "not UTF-8".to_owned())
            .and_then(self.parse);
        parsed.map_err(|reason| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{} is malformed: {reason}\n", self.variable),
            )
            .with_cmd(cmd)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        telegram: TelegramConfig,
        #[command(flatten)]
        nats: NatsConfig,
        #[cfg(feature = "postgres")]
        #[command(flatten)]
        database: DatabaseConfig,
    }

    const TOKEN: &str = "123456:AAE-secret_part_0123456789";

    #[test]
    fn a_previous_token_key_opens_what_it_sealed_and_needs_a_current_one() {
        #[derive(Debug, Parser)]
        struct Keys {
            #[command(flatten)]
            keys: TokenKeyConfig,
        }
        let (old, new) = (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        );
        let token: BotToken = TOKEN.parse().unwrap();
        let sealed = old
            .parse::<crate::bot_tokens::TokenKey>()
            .unwrap()
            .seal(&token);
        let both =
            Keys::try_parse_from(["svc", "--token-key", new, "--previous-token-key", old]).unwrap();
        let key = both.keys.key().unwrap();
        assert_eq!(key.open(123456, &sealed), Ok(token));
        assert!(key.reseal(123456, &sealed).unwrap().is_some());
        let alone = Keys::try_parse_from(["svc", "--previous-token-key", old]).unwrap_err();
        assert!(alone.to_string().contains("--token-key"), "{alone}");
        assert!(Keys::try_parse_from(["svc"]).unwrap().keys.key().is_none());
    }

    #[test]
    fn tokens_never_show_their_secret() {
        let token: BotToken = TOKEN.parse().unwrap();
        assert_eq!(format!("{token:?}"), "BotToken(123456:***)");
        assert_eq!(token.to_string(), "123456:***");
        assert_eq!(token.expose(), TOKEN);
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let error = Cli::try_parse_from(["svc", "--telegram-bot-token", "oops-secret-value"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("TELEGRAM_BOT_TOKEN is malformed"), "{error}");
        assert!(!error.contains("oops-secret-value"), "{error}");
    }

    #[test]
    fn malformed_urls_name_the_variable_without_echoing_them() {
        let urls = [
            ("--nats-url", "NATS_URL"),
            ("--database-url", "DATABASE_URL"),
        ];
        let known =
            |(flag, _): &(&str, &str)| cfg!(feature = "postgres") || *flag != "--database-url";
        for (flag, variable) in urls.into_iter().filter(known) {
            let error = Cli::try_parse_from([
                "svc",
                "--telegram-bot-token",
                TOKEN,
                flag,
                "nats://user:s3cret@host:port-oops",
            ])
            .unwrap_err()
            .to_string();
            assert!(
                error.contains(&format!("{variable} is malformed")),
                "{error}"
            );
            assert!(!error.contains("s3cret"), "{error}");
        }
        let cli = Cli::try_parse_from([
            "svc",
            "--telegram-bot-token",
            TOKEN,
            "--nats-url",
            "nats://a:4222, tls://b:4222,c:4222",
        ])
        .unwrap();
        assert_eq!(
            cli.nats.servers(),
            ["nats://a:4222", "tls://b:4222", "c:4222"]
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn an_empty_pool_names_the_variable() {
        let error = Cli::try_parse_from([
            "svc",
            "--telegram-bot-token",
            TOKEN,
            "--database-pool-size",
            "0",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("DATABASE_POOL_SIZE"), "{error}");
    }

    #[test]
    fn a_missing_token_names_the_variable() {
        let error = Cli::try_parse_from(["svc"]).unwrap_err().to_string();
        assert!(error.contains("TELEGRAM_BOT_TOKEN"), "{error}");
    }

    #[test]
    fn a_bad_prefix_names_the_variable() {
        let error =
            Cli::try_parse_from(["svc", "--telegram-bot-token", TOKEN, "--nats-prefix", "A.B"])
                .unwrap_err()
                .to_string();
        assert!(error.contains("COURIER_NATS_PREFIX"), "{error}");
    }

    #[test]
    fn credentials_come_from_the_first_url() {
        let nats = |url: &str| NatsConfig {
            nats_url: url.into(),
            nats_creds: None,
            prefix: "courier".parse().unwrap(),
            stream_replicas: 1,
        };
        assert_eq!(
            nats("nats://sender:s3cret@n1:4222,nats://sender:s3cret@n2:4222").url_credentials(),
            Some(("sender".into(), "s3cret".into()))
        );
        assert_eq!(nats("nats://127.0.0.1:4222").url_credentials(), None);
    }

    #[test]
    fn prefixes_are_subject_and_stream_safe() {
        assert!("courier".parse::<Prefix>().is_ok());
        assert!("t-0a1_b".parse::<Prefix>().is_ok());
        for bad in ["", "a.b", "a*", "a>", "A", "a b"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad:?}");
        }
    }
}
