//! Telegram's other limit: about one message a second to the same chat. A
//! campaign sends each chat one message, but two campaigns running at once
//! (or a campaign and a redelivery) can reach one chat twice within a
//! second, and Telegram's answer would be a 429 that pauses the whole token.
//! A sender therefore spaces its own sends to each chat; a send that comes
//! too soon is deferred (NAKed with the remaining wait).
//!
//! The spacing is per replica: two replicas may still send to one chat
//! within a second, which only concurrent campaigns make possible.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct ChatSpacing {
    interval: Duration,
    last_sent: HashMap<i64, Instant>,
    /// When entries older than `interval` were last dropped.
    pruned_at: Instant,
}

impl ChatSpacing {
    /// Spacing for `rate` messages per second to one chat, with the same
    /// headroom as the token's budget for sends that drift on the way.
    pub fn new(rate: f64, now: Instant) -> ChatSpacing {
        ChatSpacing {
            interval: Duration::from_micros(crate::rate::interval_us(rate)),
            last_sent: HashMap::new(),
            pruned_at: now,
        }
    }

    /// Records a send to `chat` at `now`, or returns how long to wait.
    pub fn try_send(&mut self, chat: i64, now: Instant) -> Result<(), Duration> {
        if let Some(last) = self.last_sent.get(&chat) {
            let next = *last + self.interval;
            if next > now {
                return Err(next - now);
            }
        }
        self.last_sent.insert(chat, now);
        // Entries past the interval decide nothing: drop them now and then,
        // so the map holds about rate × interval chats, not every chat.
        if now.duration_since(self.pruned_at) >= self.interval {
            let horizon = now.checked_sub(self.interval);
            self.last_sent
                .retain(|_, sent| horizon.is_none_or(|horizon| *sent > horizon));
            self.pruned_at = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_send_to_a_chat_waits_out_the_interval() {
        let t0 = Instant::now();
        let mut spacing = ChatSpacing::new(1.0, t0);
        let interval = Duration::from_micros(crate::rate::interval_us(1.0));
        assert!(interval > Duration::from_secs(1), "paced below the limit");
        assert_eq!(spacing.try_send(7, t0), Ok(()));
        let soon = t0 + Duration::from_millis(300);
        assert_eq!(spacing.try_send(7, soon), Err(t0 + interval - soon));
        assert_eq!(spacing.try_send(8, soon), Ok(()));
        assert_eq!(spacing.try_send(7, t0 + interval), Ok(()));
    }

    #[test]
    fn chats_past_the_interval_are_forgotten() {
        let t0 = Instant::now();
        let mut spacing = ChatSpacing::new(1.0, t0);
        for chat in 0..1000 {
            spacing.try_send(chat, t0).unwrap();
        }
        spacing.try_send(-1, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(spacing.last_sent.len(), 1);
    }
}
