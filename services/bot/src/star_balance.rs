//! The bot's Telegram Stars balance, which the paid lane spends: asked
//! with getMyStarBalance (Bot API 9.0), which teloxide-core 0.13 predates,
//! so the request is declared here.

use serde::{Deserialize, Serialize};
use teloxide::Bot;
use teloxide::requests::{JsonRequest, Payload, Request as _};

use courier_core::stars::NANOSTARS_PER_STAR;

#[derive(Debug, Clone, Serialize)]
struct GetMyStarBalance {}

/// Telegram's `StarAmount`.
#[derive(Debug, Clone, Deserialize)]
pub struct StarAmount {
    amount: i64,
    #[serde(default)]
    nanostar_amount: i64,
}

impl Payload for GetMyStarBalance {
    type Output = StarAmount;
    const NAME: &'static str = "getMyStarBalance";
}

/// The balance in nanostars, or `None` when Telegram did not say.
pub async fn ask(bot: &Bot) -> Option<i64> {
    match JsonRequest::new(bot.clone(), GetMyStarBalance {})
        .send()
        .await
    {
        Ok(StarAmount {
            amount,
            nanostar_amount,
        }) => Some(amount * NANOSTARS_PER_STAR + nanostar_amount),
        Err(error) => {
            tracing::warn!(%error, "asking for the bot's Stars balance failed");
            None
        }
    }
}
