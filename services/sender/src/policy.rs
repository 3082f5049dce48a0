//! What Telegram's answer to a send means for the work item: record an
//! outcome and ack, try again later through redelivery, pause the token,
//! or stop sending. Pure, so the whole table is tested without NATS or
//! HTTP; the worker only carries the action out.

use std::time::Duration;

use courier_core::proto::v1::{Delivered, Failed, NotAlive, delivery_outcome};
use courier_core::topology::SENDER_MAX_ATTEMPTS;
use courier_telegram::classify::Verdict;

/// The first transient failure's retry delay; each further one doubles it.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// How a work item ended, for logs, traces and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Delivered,
    NotAlive,
    Failed,
    /// Already had an outcome (a redelivered or duplicated item).
    Duplicate,
    /// Campaign cancelled (or item unreadable): dropped unsent.
    Dropped,
    /// Campaign paused: set aside until it resumes.
    Held,
    /// Sent back for later (NAK with delay).
    Deferred,
}

impl Handled {
    /// The `outcome` label of `courier_sends_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Handled::Delivered => "delivered",
            Handled::NotAlive => "not_alive",
            Handled::Failed => "failed",
            Handled::Duplicate => "duplicate",
            Handled::Dropped => "dropped",
            Handled::Held => "held",
            Handled::Deferred => "deferred",
        }
    }
}

/// What to do with a work item once Telegram answered (or did not).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store this outcome, then ack.
    Record {
        outcome: delivery_outcome::Result,
        handled: Handled,
    },
    /// The user blocked the bot (or is gone): publish that, then store
    /// this outcome and ack.
    RecordNotAlive { reason: String },
    /// Send the item back to come again after this long.
    Retry { after: Duration },
    /// Telegram said 429: pause the whole token, and the item with it.
    PauseToken { retry_after: Duration },
    /// The token is refused: nothing this sender does can succeed.
    StopSending,
}

impl Action {
    /// Whether the item will be sent again (by this or another sender).
    pub fn sends_again(&self) -> bool {
        matches!(
            self,
            Action::Retry { .. } | Action::PauseToken { .. } | Action::StopSending
        )
    }
}

/// The action for a send's result on attempt `attempt` (1 for the first).
pub fn after_send(sent: Result<i64, Verdict>, attempt: u64) -> Action {
    let verdict = match sent {
        Ok(message_id) => {
            return Action::Record {
                outcome: delivery_outcome::Result::Delivered(Delivered { message_id }),
                handled: Handled::Delivered,
            };
        }
        Err(verdict) => verdict,
    };
    match verdict {
        Verdict::NotAlive(reason) => Action::RecordNotAlive { reason },
        // The projector pauses the campaign after a few of these.
        Verdict::BrokenContent(reason) => Action::Record {
            outcome: delivery_outcome::Result::Failed(Failed {
                reason,
                content_refused: true,
            }),
            handled: Handled::Failed,
        },
        Verdict::Uncertain(reason) => record_failed(format!("uncertain: {reason}")),
        Verdict::Transient(reason) if attempt >= SENDER_MAX_ATTEMPTS => {
            record_failed(format!("gave up after {attempt} attempts: {reason}"))
        }
        Verdict::Transient(_) => Action::Retry {
            after: retry_delay(attempt),
        },
        Verdict::RetryAfter(retry_after) => Action::PauseToken { retry_after },
        Verdict::Unauthorized => Action::StopSending,
    }
}

/// The outcome stored for a recipient with a `NotAlive` answer.
pub fn not_alive(reason: String) -> delivery_outcome::Result {
    delivery_outcome::Result::NotAlive(NotAlive { reason })
}

/// The outcome stored for a recipient that failed for `reason`.
pub fn failed(reason: String) -> delivery_outcome::Result {
    delivery_outcome::Result::Failed(Failed {
        reason,
        content_refused: false,
    })
}

fn record_failed(reason: String) -> Action {
    Action::Record {
        outcome: failed(reason),
        handled: Handled::Failed,
    }
}

/// Delay before a transient failure's next attempt: [`RETRY_FIRST`]
/// doubling with each attempt, at most [`RETRY_CAP`].
pub fn retry_delay(attempt: u64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(6) as u32;
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> String {
        "Bad Request: something".to_owned()
    }

    fn failed_with(reason: &str) -> Action {
        record_failed(reason.to_owned())
    }

    #[test]
    fn each_verdict_and_attempt_has_one_action() {
        let last = SENDER_MAX_ATTEMPTS;
        let table: Vec<(Result<i64, Verdict>, u64, Action)> = vec![
            (
                Ok(7),
                1,
                Action::Record {
                    outcome: delivery_outcome::Result::Delivered(Delivered { message_id: 7 }),
                    handled: Handled::Delivered,
                },
            ),
            (
                Err(Verdict::NotAlive(
                    "Forbidden: bot was blocked by the user".into(),
                )),
                3,
                Action::RecordNotAlive {
                    reason: "Forbidden: bot was blocked by the user".into(),
                },
            ),
            (
                Err(Verdict::BrokenContent(reason())),
                1,
                Action::Record {
                    outcome: delivery_outcome::Result::Failed(Failed {
                        reason: reason(),
                        content_refused: true,
                    }),
                    handled: Handled::Failed,
                },
            ),
            (
                Err(Verdict::Uncertain("timed out".into())),
                1,
                failed_with("uncertain: timed out"),
            ),
            (
                Err(Verdict::Transient("502".into())),
                1,
                Action::Retry {
                    after: Duration::from_secs(1),
                },
            ),
            (
                Err(Verdict::Transient("502".into())),
                last - 1,
                Action::Retry {
                    after: retry_delay(last - 1),
                },
            ),
            (
                Err(Verdict::Transient("502".into())),
                last,
                failed_with(&format!("gave up after {last} attempts: 502")),
            ),
            (
                Err(Verdict::RetryAfter(Duration::from_secs(5))),
                last,
                Action::PauseToken {
                    retry_after: Duration::from_secs(5),
                },
            ),
            (Err(Verdict::Unauthorized), 1, Action::StopSending),
        ];
        for (sent, attempt, action) in table {
            let case = format!("{sent:?} on attempt {attempt}");
            let decided = after_send(sent, attempt);
            let recorded = matches!(
                decided,
                Action::Record { .. } | Action::RecordNotAlive { .. }
            );
            assert_eq!(decided.sends_again(), !recorded, "{case}");
            assert_eq!(decided, action, "{case}");
        }
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(7), RETRY_CAP);
        assert_eq!(retry_delay(50), RETRY_CAP);
    }
}
