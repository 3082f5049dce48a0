//! Telegram's flood control, as a pure state machine that is told the time.
//!
//! Per token, accepted sends in any sliding second may not exceed the limit (a separate, higher
//! one for `allow_paid_broadcast` sends), and one chat takes about one message a second. The send
//! that would go over gets 429 and puts the whole token in a penalty: every send until it ends
//! gets 429 with the time that remains. Nothing here reads the clock, so tests pass `Instant`s.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::SandboxConfig;

/// The span the per-second limits are counted over.
const WINDOW: Duration = Duration::from_secs(1);
/// Telegram's retry_after when a token has too many requests in flight.
const IN_FLIGHT_RETRY_AFTER: u64 = 60;

/// Sends allowed per [`WINDOW`]; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_token: u32,
    pub paid: u32,
    pub per_chat: u32,
}

impl From<&SandboxConfig> for Limits {
    fn from(config: &SandboxConfig) -> Self {
        Self {
            per_token: config.rate_limit,
            paid: config.paid_rate_limit,
            per_chat: config.chat_rate_limit,
        }
    }
}

/// One send the limiter is asked to admit.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub token: &'a str,
    pub chat_id: i64,
    /// `allow_paid_broadcast: true`: counts against the paid limit instead of the free one.
    pub paid: bool,
    /// Counts against the chat's limit: an album's items after the first do not (the chat
    /// gets one album).
    pub counts_for_chat: bool,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    bots: HashMap<String, BotBudget>,
    chats: HashMap<(String, i64), Window>,
}

#[derive(Debug, Default)]
struct BotBudget {
    free: Window,
    paid: Window,
    penalty_until: Option<Instant>,
}

/// Times of the sends accepted within the last [`WINDOW`].
#[derive(Debug, Default)]
struct Window(VecDeque<Instant>);

impl Window {
    /// How long until one more send fits under `limit`, or `None` if it fits now.
    fn wait(&mut self, limit: u32, now: Instant) -> Option<Duration> {
        if limit == 0 {
            return None;
        }
        self.count(now);
        // One more fits once this many of the oldest sends have left the window.
        let must_leave = (self.0.len() + 1).saturating_sub(limit as usize);
        if must_leave == 0 {
            return None;
        }
        let last_to_leave = self.0[must_leave - 1];
        Some((last_to_leave + WINDOW).saturating_duration_since(now))
    }

    fn record(&mut self, now: Instant) {
        self.0.push_back(now);
    }

    /// The sends within the last [`WINDOW`].
    fn count(&mut self, now: Instant) -> usize {
        while self
            .0
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            self.0.pop_front();
        }
        self.0.len()
    }
}

impl RateLimiter {
    /// Admits the send and counts it, or answers the retry_after (whole seconds, at least 1)
    /// of the 429 it gets.
    pub fn admit(&mut self, attempt: Attempt<'_>, limits: Limits, now: Instant) -> Result<(), u64> {
        let bot = self.bots.entry(attempt.token.to_owned()).or_default();
        if let Some(until) = bot.penalty_until.filter(|&until| until > now) {
            return Err(whole_seconds(until - now));
        }
        let (window, limit) = if attempt.paid {
            (&mut bot.paid, limits.paid)
        } else {
            (&mut bot.free, limits.per_token)
        };
        let chat = self
            .chats
            .entry((attempt.token.to_owned(), attempt.chat_id))
            .or_default();
        let chat_limit = if attempt.counts_for_chat {
            limits.per_chat
        } else {
            0
        };
        if let Some(wait) = window
            .wait(limit, now)
            .or_else(|| chat.wait(chat_limit, now))
        {
            // Any 429 pauses the whole token, as Telegram does in practice.
            let retry_after = whole_seconds(wait);
            bot.penalty_until = Some(now + Duration::from_secs(retry_after));
            return Err(retry_after);
        }
        window.record(now);
        if attempt.counts_for_chat {
            chat.record(now);
        }
        Ok(())
    }

    /// The sends of `token`, free and paid, accepted within the last second.
    pub fn sent_in_last_second(&mut self, token: &str, now: Instant) -> usize {
        self.bots
            .get_mut(token)
            .map_or(0, |bot| bot.free.count(now) + bot.paid.count(now))
    }

    /// Puts `token` in a penalty of `retry_after` seconds from `now` (an injected 429).
    pub fn penalize(&mut self, token: &str, retry_after: u64, now: Instant) {
        self.bots.entry(token.to_owned()).or_default().penalty_until =
            Some(now + Duration::from_secs(retry_after));
    }
}

/// Telegram's retry_after is whole seconds and never 0.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Requests of each token currently being answered, and the most there ever were at once.
#[derive(Debug, Default)]
pub struct InFlight {
    now: HashMap<String, usize>,
    peak: usize,
}

impl InFlight {
    /// Counts a request in, or answers the retry_after of the 429 when `max` are already in
    /// flight; a `max` of 0 turns the cap off.
    pub fn enter(&mut self, token: &str, max: usize) -> Result<(), u64> {
        let count = self.now.entry(token.to_owned()).or_default();
        if max > 0 && *count >= max {
            return Err(IN_FLIGHT_RETRY_AFTER);
        }
        *count += 1;
        self.peak = self.peak.max(*count);
        Ok(())
    }

    /// Counts a request that [`InFlight::enter`] let in back out.
    pub fn leave(&mut self, token: &str) {
        if let Some(count) = self.now.get_mut(token) {
            *count -= 1;
            if *count == 0 {
                self.now.remove(token);
            }
        }
    }

    /// The most requests of one token that were ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        per_token: 5,
        paid: 10,
        per_chat: 0,
    };

    fn send(chat_id: i64) -> Attempt<'static> {
        Attempt {
            token: "1:a",
            chat_id,
            paid: false,
            counts_for_chat: true,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn admits_up_to_the_limit_then_penalizes_the_token() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(
                limiter.admit(send(i), LIMITS, t0 + ms(i as u64 * 10)),
                Ok(())
            );
        }
        // The 6th within the second: the window frees at t0 + 1s, 960 ms away, so retry after 1.
        assert_eq!(limiter.admit(send(9), LIMITS, t0 + ms(40)), Err(1));
        // The penalty runs until t0 + 1040 ms even though the window frees at t0 + 1000 ms.
        assert_eq!(limiter.admit(send(9), LIMITS, t0 + ms(1020)), Err(1));
        assert_eq!(limiter.admit(send(9), LIMITS, t0 + ms(1040)), Ok(()));
    }

    #[test]
    fn the_window_slides() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(
                limiter.admit(send(i), LIMITS, t0 + ms(i as u64 * 200)),
                Ok(())
            );
        }
        // At t0 + 1000 ms the first send has left the window, the other four have not.
        assert_eq!(limiter.admit(send(5), LIMITS, t0 + ms(1000)), Ok(()));
        assert_eq!(limiter.admit(send(6), LIMITS, t0 + ms(1100)), Err(1));
    }

    #[test]
    fn paid_sends_count_against_the_paid_limit() {
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        for i in 0..5 {
            assert_eq!(limiter.admit(send(i), LIMITS, now), Ok(()));
        }
        for i in 0..10 {
            assert_eq!(
                limiter.admit(
                    Attempt {
                        paid: true,
                        ..send(100 + i)
                    },
                    LIMITS,
                    now
                ),
                Ok(())
            );
        }
        assert_eq!(
            limiter.admit(
                Attempt {
                    paid: true,
                    ..send(200)
                },
                LIMITS,
                now
            ),
            Err(1)
        );
    }

    #[test]
    fn one_chat_gets_one_message_a_second_and_its_429_pauses_the_token() {
        let limits = Limits {
            per_chat: 1,
            ..LIMITS
        };
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.admit(send(1), limits, t0), Ok(()));
        assert_eq!(limiter.admit(send(1), limits, t0 + ms(300)), Err(1));
        assert_eq!(limiter.admit(send(2), limits, t0 + ms(400)), Err(1));
        assert_eq!(limiter.admit(send(1), limits, t0 + ms(1300)), Ok(()));
    }

    #[test]
    fn tokens_are_limited_separately() {
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        for i in 0..5 {
            assert_eq!(limiter.admit(send(i), LIMITS, now), Ok(()));
        }
        assert_eq!(
            limiter.admit(
                Attempt {
                    token: "2:b",
                    ..send(1)
                },
                LIMITS,
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn zero_turns_limits_off() {
        let off = Limits {
            per_token: 0,
            paid: 0,
            per_chat: 0,
        };
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.admit(send(1), off, now), Ok(()));
        }
    }

    #[test]
    fn a_penalty_answers_the_time_that_remains() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        limiter.penalize("1:a", 7, t0);
        assert_eq!(limiter.admit(send(1), LIMITS, t0), Err(7));
        assert_eq!(limiter.admit(send(1), LIMITS, t0 + ms(2500)), Err(5));
        assert_eq!(limiter.admit(send(1), LIMITS, t0 + ms(6999)), Err(1));
        assert_eq!(limiter.admit(send(1), LIMITS, t0 + ms(7000)), Ok(()));
    }

    #[test]
    fn a_lowered_limit_waits_for_enough_sends_to_leave() {
        let t0 = Instant::now();
        let mut window = Window::default();
        for i in 0..5 {
            window.record(t0 + ms(i * 100));
        }
        // With room for 2, four of the five must leave first; the fourth leaves at t0 + 1300 ms.
        assert_eq!(window.wait(2, t0 + ms(500)), Some(ms(800)));
        assert_eq!(window.wait(5, t0 + ms(500)), Some(ms(500)));
        assert_eq!(window.wait(6, t0 + ms(500)), None);
    }

    #[test]
    fn in_flight_requests_are_capped_per_token() {
        let mut in_flight = InFlight::default();
        assert_eq!(in_flight.enter("1:a", 2), Ok(()));
        assert_eq!(in_flight.enter("1:a", 2), Ok(()));
        assert_eq!(in_flight.enter("1:a", 2), Err(60));
        assert_eq!(in_flight.enter("2:b", 2), Ok(()));
        in_flight.leave("1:a");
        assert_eq!(in_flight.enter("1:a", 2), Ok(()));
        assert_eq!(in_flight.enter("1:a", 0), Ok(()));
        assert_eq!(in_flight.peak(), 3);
    }
}
