//! What a Bot API failure means for a broadcast. Pure: it reads the
//! `error_code` and the text after the colon of the description, never the
//! whole string (client libraries and Telegram itself vary the prefix, as
//! in "Forbidden: bot was blocked by the user").

use std::time::Duration;

/// A failed Bot API call, as it came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// Telegram answered with its error envelope.
    Api {
        code: u16,
        description: String,
        retry_after: Option<u64>,
    },
    /// The request never reached Telegram (connection refused or reset
    /// before sending, DNS, connect timeout): safe to retry.
    NotSent(String),
    /// The request went out but no answer came back (read timeout, reset
    /// mid-response): Telegram may have delivered it.
    NoAnswer(String),
    /// An answer that is not Telegram's envelope (a proxy's HTML 502, ...).
    BadAnswer { status: u16 },
}

/// Whether a call's result is an answer: only then does the call's time
/// say how long Telegram takes to answer (a timeout or a refused
/// connection says nothing about it).
pub fn answered<T>(result: &Result<T, ApiFailure>) -> bool {
    matches!(
        result,
        Ok(_) | Err(ApiFailure::Api { .. } | ApiFailure::BadAnswer { .. })
    )
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The user cannot receive messages: record not alive, never retry.
    NotAlive(String),
    /// The content itself is refused; it would fail for every recipient.
    BrokenContent(String),
    /// The token is wrong or revoked: stop sending altogether.
    Unauthorized,
    /// Slow down: the whole token pauses this long.
    RetryAfter(Duration),
    /// A paid broadcast the bot's Stars balance cannot pay for: the same
    /// message goes out on the free lane instead.
    StarsExhausted,
    /// Worth another try later (through redelivery).
    Transient(String),
    /// Maybe delivered, maybe not. Courier does not retry these: a
    /// duplicate in a broadcast is worse than one missed message, and
    /// Telegram offers no idempotency key to tell which happened.
    Uncertain(String),
}

impl Verdict {
    /// A short name for metrics and traces.
    pub fn class(&self) -> &'static str {
        match self {
            Verdict::NotAlive(_) => "not_alive",
            Verdict::BrokenContent(_) => "broken_content",
            Verdict::Unauthorized => "unauthorized",
            Verdict::RetryAfter(_) => "retry_after",
            Verdict::StarsExhausted => "stars_exhausted",
            Verdict::Transient(_) => "transient",
            Verdict::Uncertain(_) => "uncertain",
        }
    }
}

/// The part of a description after `Bad Request: `, `Forbidden: `, ...
fn detail(description: &str) -> &str {
    description
        .split_once(": ")
        .map_or(description, |(_, rest)| rest)
}

pub fn classify(failure: &ApiFailure) -> Verdict {
    match failure {
        ApiFailure::Api {
            code,
            description,
            retry_after,
        } => classify_api(*code, description, *retry_after),
        ApiFailure::NotSent(reason) => Verdict::Transient(reason.clone()),
        ApiFailure::NoAnswer(reason) => Verdict::Uncertain(reason.clone()),
        ApiFailure::BadAnswer { status } if *status >= 500 => {
            Verdict::Transient(format!("HTTP {status}"))
        }
        ApiFailure::BadAnswer { status } => {
            Verdict::Uncertain(format!("unreadable answer, HTTP {status}"))
        }
    }
}

fn classify_api(code: u16, description: &str, retry_after: Option<u64>) -> Verdict {
    let detail = detail(description);
    match code {
        429 => Verdict::RetryAfter(Duration::from_secs(retry_after.unwrap_or(1).max(1))),
        // 404 is what the Bot API answers for a malformed token or base URL:
        // like 401, a configuration problem no retry will fix.
        401 | 404 => Verdict::Unauthorized,
        // Every 403 in a private chat means this user cannot be reached:
        // blocked, deactivated, never started the bot, kicked.
        403 => Verdict::NotAlive(detail.to_owned()),
        400 if is_unreachable_chat(detail) => Verdict::NotAlive(detail.to_owned()),
        // The MTProto error's name, which the Bot API passes on; not about
        // the content, so it must not count as its refusal.
        400 if detail.eq_ignore_ascii_case("BALANCE_TOO_LOW") => Verdict::StarsExhausted,
        // Any other 400 is about the request, which is the same for every
        // recipient of the campaign.
        400 => Verdict::BrokenContent(detail.to_owned()),
        _ => Verdict::Transient(format!("{code} {detail}")),
    }
}

fn is_unreachable_chat(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    [
        "chat not found",
        "peer_id_invalid",
        "user not found",
        "have no rights to send a message",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, description: &str) -> ApiFailure {
        ApiFailure::Api {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    #[test]
    fn blocked_deactivated_and_never_started_users_are_not_alive() {
        for description in [
            "Forbidden: bot was blocked by the user",
            "Forbidden: user is deactivated",
            "Forbidden: bot can't initiate conversation with a user",
            "Forbidden: bot was kicked from the group chat",
        ] {
            assert!(
                matches!(classify(&api(403, description)), Verdict::NotAlive(_)),
                "{description}"
            );
        }
    }

    #[test]
    fn unknown_chats_are_not_alive() {
        assert_eq!(
            classify(&api(400, "Bad Request: chat not found")),
            Verdict::NotAlive("chat not found".into())
        );
        assert!(matches!(
            classify(&api(400, "Bad Request: PEER_ID_INVALID")),
            Verdict::NotAlive(_)
        ));
    }

    #[test]
    fn old_prefixes_do_not_change_the_verdict() {
        assert!(matches!(
            classify(&api(403, "Unauthorized: bot was blocked by the user")),
            Verdict::NotAlive(_)
        ));
    }

    #[test]
    fn content_errors_are_broken_content() {
        for description in [
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
            "Bad Request: message is too long",
            "Bad Request: message caption is too long",
            "Bad Request: BUTTON_URL_INVALID",
            "Bad Request: wrong file identifier/HTTP URL specified",
        ] {
            assert!(
                matches!(classify(&api(400, description)), Verdict::BrokenContent(_)),
                "{description}"
            );
        }
    }

    #[test]
    fn a_balance_too_low_for_a_paid_broadcast_is_not_the_contents_fault() {
        assert_eq!(
            classify(&api(400, "Bad Request: BALANCE_TOO_LOW")),
            Verdict::StarsExhausted
        );
        assert_eq!(Verdict::StarsExhausted.class(), "stars_exhausted");
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let failure = ApiFailure::Api {
            code: 429,
            description: "Too Many Requests: retry after 7".into(),
            retry_after: Some(7),
        };
        assert_eq!(
            classify(&failure),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
    }

    #[test]
    fn a_wrong_token_stops_everything() {
        assert_eq!(classify(&api(401, "Unauthorized")), Verdict::Unauthorized);
    }

    #[test]
    fn server_errors_and_unsent_requests_are_transient() {
        assert!(matches!(
            classify(&api(500, "Internal Server Error")),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(&api(502, "Bad Gateway")),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(&ApiFailure::BadAnswer { status: 502 }),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(&ApiFailure::NotSent("connection refused".into())),
            Verdict::Transient(_)
        ));
    }

    #[test]
    fn a_lost_answer_is_uncertain() {
        assert!(matches!(
            classify(&ApiFailure::NoAnswer("read timed out".into())),
            Verdict::Uncertain(_)
        ));
    }
}
