//! What Telegram's answer to a send means for the work item: record an
//! outcome and ack, try again later through redelivery, pause the token,
//! or stop sending. Pure, so the whole table is tested without NATS or
//! HTTP; the worker only carries the action out.

use std::time::Duration;

use courier_core::proto::v1::{Amend, Delivered, Failed, NotAlive, Unchanged, delivery_outcome};
use courier_core::topology::SENDER_MAX_ATTEMPTS;
use courier_telegram::bot_api::Sent;
use courier_telegram::classify::Verdict;

/// The first transient failure's retry delay; each further one doubles it.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// How a work item ended, for logs, traces and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Delivered,
    /// An edit or deletion of a message delivered earlier, done.
    Amended,
    NotAlive,
    Failed,
    /// An edit that changed nothing (the message already read so).
    Unchanged,
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
            Handled::Amended => "amended",
            Handled::NotAlive => "not_alive",
            Handled::Failed => "failed",
            Handled::Unchanged => "unchanged",
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
    /// The bot's Stars cannot pay for a paid broadcast: every replica sends
    /// the bot's paid campaigns on the free lane for a while, this item
    /// first (it comes again at once).
    FreeLane,
    /// The token is refused: nothing this sender does can succeed.
    StopSending,
}

impl Action {
    /// Whether the item will be sent again (by this or another sender).
    pub fn sends_again(&self) -> bool {
        matches!(
            self,
            Action::Retry { .. }
                | Action::PauseToken { .. }
                | Action::FreeLane
                | Action::StopSending
        )
    }
}

/// Telegram's answer to an edit that changes nothing.
const NOT_MODIFIED: &str = "message is not modified";

/// The action for a send's result on attempt `attempt` (1 for the first),
/// of the campaign's content revision `revision`.
pub fn after_send(sent: Result<Sent, Verdict>, attempt: u64, revision: u32) -> Action {
    let verdict = match sent {
        Ok(sent) => {
            return Action::Record {
                outcome: delivery_outcome::Result::Delivered(Delivered {
                    message_id: sent.message_id,
                    revision,
                    album_message_ids: sent.album,
                }),
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
        // Not an attempt that failed: the same message, unpaid, is fine.
        Verdict::StarsExhausted => Action::FreeLane,
        Verdict::Unauthorized => Action::StopSending,
    }
}

/// The action for an amendment's result (an edit or a deletion). Like a
/// send's, except that a refusal is about this one message (edited
/// already, deleted by the user, older than Telegram allows), not the
/// campaign's content: it is recorded as failed for that message (or
/// unchanged) and never pauses the campaign.
pub fn after_amend(done: Result<Sent, Verdict>, attempt: u64, amend: &Amend) -> Action {
    match done {
        // A deletion answers `true`: the message is the one amended.
        Ok(_) => Action::Record {
            outcome: delivery_outcome::Result::Delivered(Delivered {
                message_id: amend.message_id,
                revision: amend.revision,
                album_message_ids: amend.album_message_ids.clone(),
            }),
            handled: Handled::Amended,
        },
        Err(Verdict::BrokenContent(reason)) if reason.contains(NOT_MODIFIED) => Action::Record {
            outcome: delivery_outcome::Result::Unchanged(Unchanged { reason }),
            handled: Handled::Unchanged,
        },
        Err(Verdict::BrokenContent(reason)) => record_failed(reason),
        done => after_send(done, attempt, 0),
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
        let sent = |message_id, album: &[i64]| Sent {
            message_id,
            album: album.to_vec(),
        };
        let table: Vec<(Result<Sent, Verdict>, u64, Action)> = vec![
            (
                Ok(sent(7, &[])),
                1,
                Action::Record {
                    outcome: delivery_outcome::Result::Delivered(Delivered {
                        message_id: 7,
                        revision: 0,
                        album_message_ids: vec![],
                    }),
                    handled: Handled::Delivered,
                },
            ),
            // An album: every item's message, for a recall.
            (
                Ok(sent(8, &[8, 9, 10])),
                1,
                Action::Record {
                    outcome: delivery_outcome::Result::Delivered(Delivered {
                        message_id: 8,
                        revision: 0,
                        album_message_ids: vec![8, 9, 10],
                    }),
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
            (Err(Verdict::StarsExhausted), last, Action::FreeLane),
            (Err(Verdict::Unauthorized), 1, Action::StopSending),
        ];
        for (sent, attempt, action) in table {
            let case = format!("{sent:?} on attempt {attempt}");
            let decided = after_send(sent, attempt, 0);
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

    #[test]
    fn an_amendment_refused_for_its_message_fails_alone_and_never_pauses_the_campaign() {
        let amend = Amend {
            kind: courier_core::proto::v1::AmendKind::Edit.into(),
            message_id: 70,
            revision: 2,
            ..Default::default()
        };
        let edited = Sent {
            message_id: 70,
            album: vec![],
        };
        assert_eq!(
            after_amend(Ok(edited), 1, &amend),
            Action::Record {
                outcome: delivery_outcome::Result::Delivered(Delivered {
                    message_id: 70,
                    revision: 2,
                    album_message_ids: vec![],
                }),
                handled: Handled::Amended,
            }
        );
        let not_modified = "Bad Request: message is not modified: specified new message content";
        assert_eq!(
            after_amend(Err(Verdict::BrokenContent(not_modified.into())), 1, &amend),
            Action::Record {
                outcome: delivery_outcome::Result::Unchanged(Unchanged {
                    reason: not_modified.into(),
                }),
                handled: Handled::Unchanged,
            }
        );
        let too_old = "Bad Request: message can't be deleted for everyone";
        assert_eq!(
            after_amend(Err(Verdict::BrokenContent(too_old.into())), 1, &amend),
            failed_with(too_old)
        );
        assert_eq!(
            after_amend(Err(Verdict::RetryAfter(Duration::from_secs(3))), 1, &amend),
            Action::PauseToken {
                retry_after: Duration::from_secs(3)
            }
        );
    }
}
