//! Telegram's other limit: about one message a second to the same chat. A
//! campaign sends each chat one message, but two campaigns running at once
//! can reach one chat twice within a second, from any two replicas, and
//! Telegram's answer would be a 429 that pauses the whole token.
//!
//! Every send is recorded in the chat bucket (NATS KV, key `<bot id>.<chat>`,
//! the send's time). While its campaign is the only one sending, a send
//! just records itself, without waiting for the write to be confirmed (it
//! costs no round trip). While campaigns overlap, a send first claims its
//! chat with compare-and-set against that record, so replicas see each
//! other's sends; one that comes too soon is deferred (NAKed with the
//! remaining wait). A campaign that starts while another is sending waits
//! [`crate::campaigns::PROPAGATION`] before its first send, until every
//! replica knows to check its claims.

use std::time::Duration;

use async_nats::jetstream::kv;

use crate::kv_number::{self, now_us};

/// How late a send's request may leave after its record on a busy machine
/// (the record is taken before the call): the chat's next send waits this
/// much longer than the limit asks, so two sends never reach Telegram
/// within a second. It delays only a second campaign's message to a chat.
pub const DRIFT_ALLOWANCE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum SpacingError {
    #[error("recording a send to a chat in NATS KV")]
    Record(#[source] async_nats::PublishError),
    #[error("claiming a chat in NATS KV")]
    Claim(#[from] crate::kv_number::KvError),
}

pub struct ChatSpacing {
    kv: kv::Store,
    client: async_nats::Client,
    /// `$KV.<bucket>.`: where a record is published without confirmation.
    subject_prefix: String,
    bot_id: String,
    interval_us: u64,
}

/// How long a send to a chat last sent to at `last_us` must still wait at
/// `now_us` (all Unix µs), if at all.
pub fn wait_before(last_us: Option<u64>, now_us: u64, interval_us: u64) -> Option<Duration> {
    let next = last_us? + interval_us;
    (next > now_us).then(|| Duration::from_micros(next - now_us))
}

impl ChatSpacing {
    /// Spacing for `rate` messages per second to one chat of bot `bot_id`,
    /// with the same headroom as the token's budget, plus
    /// [`DRIFT_ALLOWANCE`] for sends that leave late.
    pub fn new(
        kv: kv::Store,
        client: async_nats::Client,
        bucket: &str,
        bot_id: &str,
        rate: f64,
    ) -> ChatSpacing {
        ChatSpacing {
            kv,
            client,
            subject_prefix: format!("$KV.{bucket}."),
            bot_id: bot_id.to_owned(),
            interval_us: crate::rate::interval_us(rate) + DRIFT_ALLOWANCE.as_micros() as u64,
        }
    }

    /// The least time between two sends to one chat.
    pub fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_us)
    }

    /// Records a send to `chat` now, without waiting for NATS to store
    /// it: while a campaign sends alone, only a campaign that starts later
    /// reads it (after [`crate::campaigns::PROPAGATION`]).
    pub async fn record(&self, chat: i64) -> Result<(), SpacingError> {
        let key = format!("{}.{chat}", self.bot_id);
        self.client
            .publish(
                format!("{}{key}", self.subject_prefix),
                now_us().to_string().into(),
            )
            .await
            .map_err(SpacingError::Record)
    }

    /// Claims `chat` for a send now, or returns how long it must wait:
    /// other campaigns of the bot may be sending to the same chats.
    pub async fn claim(&self, chat: i64) -> Result<Result<(), Duration>, SpacingError> {
        let key = format!("{}.{chat}", self.bot_id);
        let now = now_us();
        let read = kv_number::read(&self.kv, &key)
            .await
            .map_err(SpacingError::Claim)?;
        let last = read.as_ref().and_then(|r| r.number);
        if let Some(wait) = wait_before(last, now, self.interval_us) {
            return Ok(Err(wait));
        }
        let claimed = kv_number::write_if_unchanged(&self.kv, &key, now, read.as_ref())
            .await
            .map_err(SpacingError::Claim)?;
        // Lost the race: another replica sent to this chat just now.
        Ok(if claimed {
            Ok(())
        } else {
            Err(Duration::from_micros(self.interval_us))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_send_to_a_chat_waits_out_the_interval() {
        let interval = crate::rate::interval_us(1.0);
        assert!(interval > 1_000_000, "paced below the limit");
        assert_eq!(wait_before(None, 5_000_000, interval), None);
        assert_eq!(
            wait_before(Some(5_000_000), 5_300_000, interval),
            Some(Duration::from_micros(interval - 300_000))
        );
        assert_eq!(
            wait_before(Some(5_000_000), 5_000_000 + interval, interval),
            None
        );
    }
}
