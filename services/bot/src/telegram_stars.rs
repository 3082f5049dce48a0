//! The bot's Telegram Stars, which the paid lane spends: its balance
//! (getMyStarBalance, Bot API 9.0) before a paid campaign starts, and what
//! Telegram billed while one ran (getStarTransactions: its payments to
//! `telegram_api`, each with the `request_count` of messages above the
//! free rate). teloxide-core 0.13 predates both, so the requests are
//! declared here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use teloxide::Bot;
use teloxide::requests::{JsonRequest, Payload, Request as _};

use courier_telegram::bot_api::StarAmount;

/// The most transactions getStarTransactions answers at once.
const PAGE: u32 = 100;

#[derive(Debug, Clone, Serialize)]
struct GetMyStarBalance {}

impl Payload for GetMyStarBalance {
    type Output = StarAmount;
    const NAME: &'static str = "getMyStarBalance";
}

#[derive(Debug, Clone, Serialize)]
struct GetStarTransactions {
    offset: u32,
    limit: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct StarTransactions {
    transactions: Vec<StarTransaction>,
}

#[derive(Debug, Clone, Deserialize)]
struct StarTransaction {
    date: i64,
    /// Set for the bot's payments; `source` for what it received.
    receiver: Option<TransactionPartner>,
}

#[derive(Debug, Clone, Deserialize)]
struct TransactionPartner {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    request_count: i64,
}

impl Payload for GetStarTransactions {
    type Output = StarTransactions;
    const NAME: &'static str = "getStarTransactions";
}

/// The balance in nanostars, or `None` when Telegram did not say.
pub async fn balance(bot: &Bot) -> Option<i64> {
    match JsonRequest::new(bot.clone(), GetMyStarBalance {})
        .send()
        .await
    {
        Ok(balance) => Some(balance.nanostars()),
        Err(error) => {
            tracing::warn!(%error, "asking for the bot's Stars balance failed");
            None
        }
    }
}

/// The messages Telegram billed as paid broadcasts from `from` to `to`
/// (whole seconds, both included), or `None` when it did not say.
pub async fn billed_between(bot: &Bot, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<i64> {
    let (from, to) = (from.timestamp(), to.timestamp());
    let mut billed = 0;
    for page in 0.. {
        let asked = GetStarTransactions {
            offset: page * PAGE,
            limit: PAGE,
        };
        let listed = match JsonRequest::new(bot.clone(), asked).send().await {
            Ok(listed) => listed.transactions,
            Err(error) => {
                tracing::warn!(%error, "asking for the bot's Stars transactions failed");
                return None;
            }
        };
        billed += listed
            .iter()
            .filter(|t| (from..=to).contains(&t.date))
            .filter_map(|t| t.receiver.as_ref())
            .filter(|partner| partner.kind == "telegram_api")
            .map(|partner| partner.request_count)
            .sum::<i64>();
        // Chronological: a page past the campaign's end is the last needed.
        let past_the_end = listed.last().is_some_and(|t| t.date > to);
        if past_the_end || listed.len() < PAGE as usize {
            break;
        }
    }
    Some(billed)
}
