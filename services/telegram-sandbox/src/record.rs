//! What the bot did, for tests to check: every accepted send, and counts of requests and errors.
//!
//! Real Telegram shows none of this, which is the point of a sandbox: a test can assert that a
//! campaign reached each user once, with the exact content, and never went over the rate limit.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// One message Telegram accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// The canonical method name, e.g. `sendPhoto`, whatever case the client used.
    pub method: String,
    /// The bot that sent it (its token's id).
    #[serde(default)]
    pub bot_id: i64,
    pub chat_id: i64,
    pub message_id: i32,
    /// The text, or the media's caption.
    pub text: Option<String>,
    /// `entities`, or `caption_entities` for media, as sent.
    pub entities: Vec<Value>,
    pub file_id: Option<String>,
    /// The `reply_markup` as sent, of any kind.
    pub reply_markup: Option<Value>,
    pub disable_notification: bool,
    pub protect_content: bool,
    pub allow_paid_broadcast: bool,
    #[serde(skip)]
    pub accepted_at: Instant,
    /// `accepted_at` in milliseconds since the sandbox started, for readers over HTTP.
    pub accepted_ms: u64,
}

/// A bot's `answerCallbackQuery`: what the user who pressed a button saw.
/// An edit or deletion of a message the bot sent, as accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Amendment {
    /// "edit" or "delete".
    pub action: &'static str,
    pub chat_id: i64,
    pub message_id: i32,
    #[serde(skip)]
    pub accepted_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    /// Shown as an alert the user must dismiss, not a passing notice.
    pub show_alert: bool,
}

/// Counts since the start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bot API requests, answered or not yet.
    pub requests: u64,
    pub accepted_sends: u64,
    pub too_many_requests: u64,
    pub errors_by_code: BTreeMap<u16, u64>,
    /// The most requests of one bot that were in flight at once.
    pub peak_in_flight: usize,
    /// TCP connections clients opened: a client that reuses its
    /// connections opens about as many as it has requests in flight.
    pub connections_opened: u64,
    /// When each accepted send was accepted, oldest first.
    #[serde(skip)]
    pub accepted_at: Vec<Instant>,
}

impl Stats {
    /// The most sends accepted within any span of `window` (a half-open `[t, t + window)`).
    pub fn max_sends_in_any_window(&self, window: Duration) -> usize {
        most_in_any_window(&self.accepted_at, window)
    }
}

/// The most of `times` (oldest first) within any span of `window` (half-open).
pub fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut first = 0;
    let mut most = 0;
    for (last, &at) in times.iter().enumerate() {
        while at.duration_since(times[first]) >= window {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

#[derive(Debug, Default)]
pub struct Record {
    deliveries: Vec<Delivery>,
    amendments: Vec<Amendment>,
    callback_answers: Vec<CallbackAnswer>,
    requests: u64,
    errors_by_code: BTreeMap<u16, u64>,
    connections_opened: u64,
    /// Files uploaded with accepted sends, by the file_id they were given.
    uploads: HashMap<String, Bytes>,
}

impl Record {
    pub fn count_request(&mut self) {
        self.requests += 1;
    }

    pub fn count_connection(&mut self) {
        self.connections_opened += 1;
    }

    pub fn count_error(&mut self, code: u16) {
        *self.errors_by_code.entry(code).or_default() += 1;
    }

    pub fn deliver(&mut self, delivery: Delivery) {
        self.deliveries.push(delivery);
    }

    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    pub fn amend(&mut self, amendment: Amendment) {
        self.amendments.push(amendment);
    }

    pub fn amendments(&self) -> &[Amendment] {
        &self.amendments
    }

    pub fn keep_upload(&mut self, file_id: &str, bytes: Bytes) {
        self.uploads.insert(file_id.to_owned(), bytes);
    }

    pub fn upload(&self, file_id: &str) -> Option<Bytes> {
        self.uploads.get(file_id).cloned()
    }

    pub fn answer_callback(&mut self, answer: CallbackAnswer) {
        self.callback_answers.push(answer);
    }

    pub fn callback_answers(&self) -> &[CallbackAnswer] {
        &self.callback_answers
    }

    /// The counts, with the in-flight peak the server measured.
    pub fn stats(&self, peak_in_flight: usize) -> Stats {
        Stats {
            peak_in_flight,
            connections_opened: self.connections_opened,
            requests: self.requests,
            accepted_sends: self.deliveries.len() as u64,
            too_many_requests: self.errors_by_code.get(&429).copied().unwrap_or_default(),
            errors_by_code: self.errors_by_code.clone(),
            accepted_at: self.deliveries.iter().map(|d| d.accepted_at).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_is_found() {
        let t0 = Instant::now();
        let at = |ms: &[u64]| Stats {
            accepted_at: ms.iter().map(|&m| t0 + Duration::from_millis(m)).collect(),
            ..Stats::default()
        };
        let second = Duration::from_secs(1);
        assert_eq!(at(&[]).max_sends_in_any_window(second), 0);
        assert_eq!(
            at(&[0, 999, 1000, 1001, 1500]).max_sends_in_any_window(second),
            4
        );
        assert_eq!(at(&[0, 1000, 2000]).max_sends_in_any_window(second), 1);
        assert_eq!(at(&[0, 0, 0]).max_sends_in_any_window(second), 3);
    }
}
