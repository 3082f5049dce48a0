//! Telegram Stars as paid broadcasts spend them: each bot's balance, the 0.1 Star charged for
//! every `allow_paid_broadcast` message above the free 30 of the last second (only once the
//! message is delivered), the refusal of such a send when the balance cannot pay for it, and
//! the charges as `getStarTransactions` lists them (one transaction per second of charges, its
//! partner `telegram_api` with the `request_count` billed).
//!
//! The balance is `SandboxConfig::stars_balance` minus what a bot spent, so changing the setting
//! while the sandbox runs tops a bot up (or drains it).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::envelope::ApiError;

const NANOSTARS_PER_STAR: i64 = 1_000_000_000;
/// The price of one paid message: 0.1 Star.
pub const NANOSTARS_PER_PAID_MESSAGE: i64 = NANOSTARS_PER_STAR / 10;
/// Messages a second a bot sends without charge.
pub const FREE_PER_SECOND: usize = 30;
/// What Telegram answers a paid send the balance cannot pay for. Not in the Bot API's
/// documentation: it is the name of the MTProto error for a Stars balance too low
/// (`BALANCE_TOO_LOW`), which the Bot API passes on after `Bad Request: `.
pub const BALANCE_TOO_LOW: &str = "BALANCE_TOO_LOW";

#[derive(Debug, Default)]
pub struct Stars {
    bots: HashMap<String, Spending>,
}

#[derive(Debug, Default)]
struct Spending {
    spent: i64,
    /// Chronological; one per Unix second in which something was charged.
    charges: Vec<Charge>,
}

#[derive(Debug, Clone, Copy)]
struct Charge {
    date: i64,
    requests: i64,
}

impl Stars {
    /// `token`'s balance in nanostars, given every bot's `stars_balance` setting.
    pub fn balance(&self, token: &str, stars_balance: u64) -> i64 {
        let granted = i64::try_from(stars_balance).unwrap_or(i64::MAX / NANOSTARS_PER_STAR);
        granted.saturating_mul(NANOSTARS_PER_STAR) - self.bots.get(token).map_or(0, |b| b.spent)
    }

    /// Refuses `messages` paid messages (an album's) the balance cannot pay for, as Telegram
    /// does.
    pub fn check(&self, token: &str, stars_balance: u64, messages: i64) -> Result<(), ApiError> {
        match self.balance(token, stars_balance) >= messages * NANOSTARS_PER_PAID_MESSAGE {
            true => Ok(()),
            false => Err(ApiError::bad_request(BALANCE_TOO_LOW)),
        }
    }

    /// Charges `token` for one paid message delivered at Unix second `date`.
    pub fn charge(&mut self, token: &str, date: i64) {
        let bot = self.bots.entry(token.to_owned()).or_default();
        bot.spent += NANOSTARS_PER_PAID_MESSAGE;
        match bot.charges.last_mut() {
            Some(last) if last.date == date => last.requests += 1,
            _ => bot.charges.push(Charge { date, requests: 1 }),
        }
    }

    /// What `token` spent, in nanostars.
    pub fn spent(&self, token: &str) -> i64 {
        self.bots.get(token).map_or(0, |b| b.spent)
    }

    /// `getStarTransactions`' `StarTransactions`: from the `offset`th, at most `limit`.
    pub fn transactions(&self, token: &str, offset: usize, limit: usize) -> Value {
        let charges = self.bots.get(token).map_or(&[][..], |b| &b.charges[..]);
        let listed: Vec<Value> = charges
            .iter()
            .enumerate()
            .skip(offset)
            .take(limit)
            .map(|(index, charge)| {
                let nanostars = charge.requests * NANOSTARS_PER_PAID_MESSAGE;
                json!({
                    "id": format!("paid-broadcast-{index}"),
                    "amount": nanostars / NANOSTARS_PER_STAR,
                    "nanostar_amount": nanostars % NANOSTARS_PER_STAR,
                    "date": charge.date,
                    "receiver": { "type": "telegram_api", "request_count": charge.requests },
                })
            })
            .collect();
        json!({ "transactions": listed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_come_off_the_balance_and_are_listed_per_second() {
        let mut stars = Stars::default();
        assert_eq!(stars.balance("t", 1), NANOSTARS_PER_STAR);
        for date in [100, 100, 100, 101] {
            stars.check("t", 1, 1).expect("paid for");
            stars.charge("t", date);
        }
        assert_eq!(stars.balance("t", 1), 6 * NANOSTARS_PER_PAID_MESSAGE);
        assert_eq!(stars.balance("other", 1), NANOSTARS_PER_STAR);
        let listed = stars.transactions("t", 0, 100);
        assert_eq!(listed["transactions"][0]["receiver"]["request_count"], 3);
        assert_eq!(listed["transactions"][0]["nanostar_amount"], 300_000_000);
        assert_eq!(listed["transactions"][1]["date"], 101);
        assert_eq!(
            stars.transactions("t", 1, 100)["transactions"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_balance_below_a_tenth_of_a_star_refuses_paid_messages() {
        let mut stars = Stars::default();
        for _ in 0..10 {
            stars.charge("t", 1);
        }
        let refusal = stars.check("t", 1, 1).expect_err("nothing left");
        assert_eq!(refusal.description, "Bad Request: BALANCE_TOO_LOW");
        // Topped up: the setting grows.
        assert!(stars.check("t", 2, 10).is_ok());
        assert!(stars.check("t", 2, 11).is_err());
    }
}
