//! The sender's rate settings: refused before it starts unless each is a
//! finite number above zero (NaN or infinity would pace nothing, or
//! everything at once), then published for the bot's estimates
//! ([`courier_core::send_limits`]).

use async_nats::jetstream::kv;
use courier_core::send_limits::{self, Lane};

use crate::SenderConfig;

/// The chat bucket remembers a send for a minute (`CHAT_RECORD_MAX_AGE`):
/// a chat's spacing must be shorter.
const MIN_CHAT_RATE_LIMIT: f64 = 0.02;

/// Why the configured rates are unusable, naming the variable.
pub fn check(config: &SenderConfig) -> Result<(), String> {
    for (variable, rate) in [
        ("SENDER_RATE_LIMIT", config.rate_limit),
        ("SENDER_PAID_RATE_LIMIT", config.paid_rate_limit),
    ] {
        if !send_limits::is_usable(rate) {
            return Err(format!(
                "{variable} must be a positive number of messages per second, not {rate}"
            ));
        }
    }
    let chat = config.chat_rate_limit;
    if !(send_limits::is_usable(chat) && chat >= MIN_CHAT_RATE_LIMIT) {
        return Err(format!(
            "SENDER_CHAT_RATE_LIMIT must be at least {MIN_CHAT_RATE_LIMIT} (a message in 50 s) \
             and finite, not {chat}"
        ));
    }
    Ok(())
}

/// Publishes both lanes' limits. A failure costs only the bot's estimates
/// (it falls back to the defaults), so it is a warning, not a stop.
pub async fn publish(rates: &kv::Store, bot_id: &str, config: &SenderConfig) {
    for (lane, rate) in [
        (Lane::Free, config.rate_limit),
        (Lane::Paid, config.paid_rate_limit),
    ] {
        if let Err(error) = send_limits::publish(rates, bot_id, lane, rate).await {
            tracing::warn!(%error, lane = lane.as_str(), "publishing the rate limit for the bot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sender: SenderConfig,
    }

    fn config(variable: &str, value: &str) -> SenderConfig {
        let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
        let flag = match variable {
            "SENDER_RATE_LIMIT" => "--rate-limit",
            "SENDER_PAID_RATE_LIMIT" => "--paid-rate-limit",
            _ => "--chat-rate-limit",
        };
        let arg = format!("{flag}={value}");
        Cli::try_parse_from(["courier-sender", "--telegram-bot-token", token, &arg])
            .expect("a parsable configuration")
            .sender
    }

    #[test]
    fn the_defaults_and_ordinary_rates_are_accepted() {
        assert_eq!(check(&config("SENDER_RATE_LIMIT", "30")), Ok(()));
        assert_eq!(check(&config("SENDER_PAID_RATE_LIMIT", "0.5")), Ok(()));
        assert_eq!(check(&config("SENDER_CHAT_RATE_LIMIT", "0.02")), Ok(()));
    }

    #[test]
    fn nan_infinity_zero_and_negatives_are_refused_by_name() {
        for variable in [
            "SENDER_RATE_LIMIT",
            "SENDER_PAID_RATE_LIMIT",
            "SENDER_CHAT_RATE_LIMIT",
        ] {
            for value in ["inf", "NaN", "-inf", "0", "-1"] {
                let error = check(&config(variable, value)).expect_err(value);
                assert!(error.starts_with(variable), "{variable}={value}: {error}");
            }
        }
    }

    #[test]
    fn a_chat_rate_the_chat_bucket_cannot_remember_is_refused() {
        let error = check(&config("SENDER_CHAT_RATE_LIMIT", "0.01")).expect_err("too slow");
        assert!(error.contains("at least 0.02"), "{error}");
    }
}
