//! The rate limits senders run with, published beside the rate schedules
//! in the rate bucket: each sender writes its limits as it starts, and the
//! bot reads them for its estimates. So each limit is one setting
//! (`SENDER_RATE_LIMIT`, `SENDER_PAID_RATE_LIMIT`), read where it is
//! needed, with no copy in the bot's configuration to disagree with it.
//!
//! Key `<bot id>.<lane>.limit`, value the messages per second as text.
//! Replicas configured differently overwrite each other: the last one to
//! start is what the bot shows.
//!
//! Beside them, key `<bot id>.paid.stars_out`: when (Unix milliseconds)
//! a sender last found the bot's Stars balance running low, or Telegram
//! refused a paid send for it. For [`STARS_RECHECK`] after, senders send paid
//! campaigns on the free lane instead of failing their recipients; then
//! one paid send tells whether the balance was topped up. The bot reads it
//! for the campaign's card.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt as _;

/// `SENDER_RATE_LIMIT` unless configured: Telegram's bulk limit for a bot.
pub const DEFAULT_FREE_RATE: f64 = 30.0;
/// `SENDER_PAID_RATE_LIMIT` unless configured: the paid broadcast lane's.
pub const DEFAULT_PAID_RATE: f64 = 1000.0;

/// How long after the bot's Stars ran out paid campaigns stay on the free
/// lane before a paid send is tried again.
pub const STARS_RECHECK: Duration = Duration::from_secs(600);

/// A reader waits this long for NATS before it settles for the default.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A bot token's two budgets: the free one, and paid broadcasts'
/// (`allow_paid_broadcast`, charged in Stars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Free,
    Paid,
}

impl Lane {
    /// The lane of a campaign on the paid broadcast lane, or not.
    pub fn of_paid(paid: bool) -> Lane {
        if paid { Lane::Paid } else { Lane::Free }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Free => "free",
            Lane::Paid => "paid",
        }
    }

    /// The senders' default limit on this lane.
    pub fn default_rate(self) -> f64 {
        match self {
            Lane::Free => DEFAULT_FREE_RATE,
            Lane::Paid => DEFAULT_PAID_RATE,
        }
    }

    fn key(self, bot_id: &str) -> String {
        format!("{bot_id}.{}.limit", self.as_str())
    }
}

/// Slots of a lane's schedule a send of `messages` messages at one instant
/// takes (an album: Telegram counts each item): `messages − 1` left empty
/// on each side of the one it goes in, so no one-second window around it
/// holds more than the slots it spans would have. Senders pace by it; the
/// bot estimates with it.
pub fn slots_per_send(messages: u32) -> u32 {
    (2 * messages.max(1)).saturating_sub(1)
}

/// A usable limit: a finite number of messages per second above zero.
/// NaN, infinity, zero and negatives are not.
pub fn is_usable(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0
}

/// A published value read back; `None` unless it is a usable limit.
fn parse(value: &[u8]) -> Option<f64> {
    std::str::from_utf8(value)
        .ok()?
        .parse()
        .ok()
        .filter(|rate| is_usable(*rate))
}

/// Publishes a sender's limit on `lane` of bot `bot_id`.
pub async fn publish(
    rates: &kv::Store,
    bot_id: &str,
    lane: Lane,
    rate: f64,
) -> Result<(), kv::PutError> {
    rates.put(lane.key(bot_id), rate.to_string().into()).await?;
    Ok(())
}

fn stars_out_key(bot_id: &str) -> String {
    format!("{bot_id}.paid.stars_out")
}

/// Whether paid sends go out as paid, `now_ms` (Unix milliseconds), when
/// the bot's Stars last ran out at `stars_out_ms`.
pub fn paid_lane_open(stars_out_ms: Option<i64>, now_ms: i64) -> bool {
    let recheck = i64::try_from(STARS_RECHECK.as_millis()).unwrap_or(i64::MAX);
    stars_out_ms.is_none_or(|out| now_ms.saturating_sub(out) >= recheck)
}

/// Records that bot `bot_id`'s Stars balance ran low, or Telegram refused
/// a paid send for it, at `at_ms`.
pub async fn mark_stars_out(
    rates: &kv::Store,
    bot_id: &str,
    at_ms: i64,
) -> Result<(), kv::PutError> {
    rates
        .put(stars_out_key(bot_id), at_ms.to_string().into())
        .await?;
    Ok(())
}

/// When bot `bot_id`'s Stars last ran out, if they did and NATS answers.
pub async fn stars_out(rates: &kv::Store, bot_id: &str) -> Option<i64> {
    match tokio::time::timeout(READ_TIMEOUT, rates.get(stars_out_key(bot_id))).await {
        Ok(Ok(value)) => value.and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "reading whether the bot's Stars ran out");
            None
        }
        Err(_) => None,
    }
}

/// The lowest limit any bot's senders published on `lane` (one bot per
/// deployment today, so that bot's), or the senders' default when none did
/// or NATS does not answer.
pub async fn lowest_published(rates: &kv::Store, lane: Lane) -> f64 {
    let suffix = lane.key("");
    let keys: Vec<String> = match tokio::time::timeout(READ_TIMEOUT, rates.keys()).await {
        Ok(Ok(keys)) => keys.filter_map(|key| async { key.ok() }).collect().await,
        Ok(Err(error)) => {
            tracing::warn!(%error, "listing the senders' rate limits");
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    let mut lowest: Option<f64> = None;
    for key in keys.iter().filter(|key| key.ends_with(&suffix)) {
        if let Ok(Ok(Some(value))) = tokio::time::timeout(READ_TIMEOUT, rates.get(key)).await
            && let Some(rate) = parse(&value)
        {
            lowest = Some(lowest.map_or(rate, |lowest| lowest.min(rate)));
        }
    }
    lowest.unwrap_or(lane.default_rate())
}

/// What the senders of one bot published, as the bot reads it.
#[derive(Clone)]
pub struct PublishedLimits {
    rates: kv::Store,
    bot_id: String,
}

impl PublishedLimits {
    pub fn new(rates: kv::Store, bot_id: &str) -> PublishedLimits {
        PublishedLimits {
            rates,
            bot_id: bot_id.to_owned(),
        }
    }

    /// The limit of `lane` the senders published; before any sender ran
    /// (or when NATS does not answer, or forbids the read), the senders'
    /// default, which is what a sender would run with.
    pub async fn rate(&self, lane: Lane) -> f64 {
        let read = tokio::time::timeout(READ_TIMEOUT, self.rates.get(lane.key(&self.bot_id))).await;
        let published = match read {
            Ok(Ok(Some(value))) => parse(&value),
            Ok(Ok(None)) => None,
            Ok(Err(error)) => {
                tracing::warn!(%error, lane = lane.as_str(), "reading the senders' rate limit");
                None
            }
            Err(_) => {
                tracing::warn!(
                    lane = lane.as_str(),
                    "reading the senders' rate limit: no answer within {READ_TIMEOUT:?}"
                );
                None
            }
        };
        published.unwrap_or(lane.default_rate())
    }

    /// When the bot's Stars last ran out (Unix milliseconds), if they did.
    pub async fn stars_out(&self) -> Option<i64> {
        stars_out(&self.rates, &self.bot_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_positive_rates_are_usable() {
        for rate in [0.02, 1.0, 30.0, 1000.0] {
            assert!(is_usable(rate), "{rate}");
        }
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!is_usable(rate), "{rate}");
        }
    }

    #[test]
    fn published_values_read_back_and_garbage_does_not() {
        assert_eq!(parse(30.0_f64.to_string().as_bytes()), Some(30.0));
        assert_eq!(parse(b"12.5"), Some(12.5));
        for garbage in [&b"inf"[..], b"NaN", b"-3", b"0", b"fast", b"\xff"] {
            assert_eq!(parse(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn paid_sends_wait_out_the_recheck_after_the_stars_ran_out() {
        let recheck = STARS_RECHECK.as_millis() as i64;
        assert!(paid_lane_open(None, 5));
        assert!(!paid_lane_open(Some(1_000), 1_000));
        assert!(!paid_lane_open(Some(1_000), 1_000 + recheck - 1));
        assert!(paid_lane_open(Some(1_000), 1_000 + recheck));
        assert_eq!(stars_out_key("123"), "123.paid.stars_out");
    }

    #[test]
    fn each_lane_has_its_key_beside_its_schedule_and_its_default() {
        assert_eq!(Lane::Free.key("123"), "123.free.limit");
        assert_eq!(Lane::Paid.key("123"), "123.paid.limit");
        assert_eq!(Lane::Free.default_rate(), 30.0);
        assert_eq!(Lane::Paid.default_rate(), 1000.0);
    }
}
