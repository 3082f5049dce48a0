//! How the sandbox behaves: which tokens it accepts, its rate limits, latency and error rate.
//!
//! One struct serves three doors: code builds it (`SandboxConfig::default()` binds a random
//! port), the binary parses it from flags and environment variables, and `PATCH /_sandbox/config`
//! merges JSON into it at run time.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const DEFAULT_RATE_LIMIT: u32 = 30;
const DEFAULT_PAID_RATE_LIMIT: u32 = 1000;
const DEFAULT_CHAT_RATE_LIMIT: u32 = 1;
/// Past this many requests of one token in flight, Telegram answers 429 with retry_after 60.
const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
/// Enough for paid broadcasts (Telegram asks for a balance of at least 10,000 Stars).
const DEFAULT_STARS_BALANCE: u64 = 100_000;

/// The sandbox's settings; every field but `addr` can change while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct SandboxConfig {
    /// Address to listen on (only read at start).
    #[arg(long, env = "SANDBOX_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,

    /// Comma-separated bot tokens to accept; empty accepts any well-formed `<digits>:<secret>`.
    #[arg(
        long,
        env = "SANDBOX_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// Sends per second per token in any sliding second; 0 turns the limit off.
    #[arg(long, env = "SANDBOX_RATE_LIMIT", default_value_t = DEFAULT_RATE_LIMIT)]
    pub rate_limit: u32,

    /// Sends per second per token for `allow_paid_broadcast` sends; 0 turns the limit off.
    #[arg(long, env = "SANDBOX_PAID_RATE_LIMIT", default_value_t = DEFAULT_PAID_RATE_LIMIT)]
    pub paid_rate_limit: u32,

    /// Sends per second to one chat; 0 turns the limit off.
    #[arg(long, env = "SANDBOX_CHAT_RATE_LIMIT", default_value_t = DEFAULT_CHAT_RATE_LIMIT)]
    pub chat_rate_limit: u32,

    /// Delay added to every Bot API response, in milliseconds.
    #[arg(long, env = "SANDBOX_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Probability (0 to 1) that a send fails with 500 Internal Server Error.
    #[arg(long, env = "SANDBOX_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,

    /// Requests of one token in flight at once before 429 with retry_after 60; 0 turns the cap off.
    #[arg(long, env = "SANDBOX_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// The Telegram Stars balance getMyStarBalance answers, in whole Stars.
    #[arg(long, env = "SANDBOX_STARS_BALANCE", default_value_t = DEFAULT_STARS_BALANCE)]
    pub stars_balance: u64,
}

impl SandboxConfig {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Whether `token` may call; an empty list (or one left empty by `SANDBOX_TOKENS=`) lets
    /// every well-formed token in.
    pub fn accepts(&self, token: &str) -> bool {
        let mut listed = self.tokens.iter().filter(|t| !t.is_empty()).peekable();
        listed.peek().is_none() || listed.any(|t| t == token)
    }
}

impl Default for SandboxConfig {
    /// Telegram's limits, on a random local port: what in-process tests want.
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: Vec::new(),
            rate_limit: DEFAULT_RATE_LIMIT,
            paid_rate_limit: DEFAULT_PAID_RATE_LIMIT,
            chat_rate_limit: DEFAULT_CHAT_RATE_LIMIT,
            latency_ms: 0,
            error_rate: 0.0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            stars_balance: DEFAULT_STARS_BALANCE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_token_list_accepts_anything() {
        let mut config = SandboxConfig::default();
        assert!(config.accepts("1:a"));
        config.tokens = vec![String::new()];
        assert!(config.accepts("1:a"));
        config.tokens = vec!["1:a".into()];
        assert!(config.accepts("1:a"));
        assert!(!config.accepts("2:b"));
    }
}
