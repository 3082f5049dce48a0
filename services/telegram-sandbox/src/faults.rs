//! Misbehaviour on demand: scheduled 5xx answers, injected 429s, random 5xx, broken file ids.
//!
//! Delivery code has to survive Telegram's bad moments; a test makes one happen exactly when it
//! wants it instead of waiting for the real thing.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::envelope::ApiError;

/// A transient server failure a send can be made to get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// 500 Internal Server Error.
    InternalServerError,
    /// 502 Bad Gateway, what Telegram's front end answers while the backend restarts.
    BadGateway,
}

impl Failure {
    fn error(self) -> ApiError {
        match self {
            Self::InternalServerError => ApiError::server(500, "Internal Server Error"),
            Self::BadGateway => ApiError::server(502, "Bad Gateway"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    scheduled: VecDeque<Failure>,
    injected_429: Option<u64>,
    broken_files: HashSet<String>,
}

impl Faults {
    /// The next `count` sends fail with `failure` (after any failures already scheduled).
    pub fn fail_next(&mut self, count: usize, failure: Failure) {
        self.scheduled.extend(std::iter::repeat_n(failure, count));
    }

    /// The next send gets 429 and starts a penalty of `retry_after` seconds.
    pub fn inject_429(&mut self, retry_after: u64) {
        self.injected_429 = Some(retry_after);
    }

    pub fn take_injected_429(&mut self) -> Option<u64> {
        self.injected_429.take()
    }

    pub fn break_file(&mut self, file_id: String) {
        self.broken_files.insert(file_id);
    }

    pub fn check_file(&self, file_id: &str) -> Result<(), ApiError> {
        match self.broken_files.contains(file_id) {
            true => Err(ApiError::bad_request(
                "wrong file identifier/HTTP URL specified",
            )),
            false => Ok(()),
        }
    }

    /// The 5xx this send gets, if any: a scheduled one first, else one drawn at `error_rate`.
    pub fn server_error(&mut self, error_rate: f64) -> Option<ApiError> {
        let failure = self.scheduled.pop_front();
        let failure = failure.or_else(|| {
            (rand::random::<f64>() < error_rate).then_some(Failure::InternalServerError)
        });
        failure.map(Failure::error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_failures_come_in_order_then_stop() {
        let mut faults = Faults::default();
        faults.fail_next(1, Failure::BadGateway);
        faults.fail_next(1, Failure::InternalServerError);
        let codes: Vec<_> = (0..3)
            .map(|_| faults.server_error(0.0).map(|e| e.code))
            .collect();
        assert_eq!(codes, [Some(502), Some(500), None]);
        assert_eq!(faults.server_error(1.0).map(|e| e.code), Some(500));
    }

    #[test]
    fn broken_files_are_refused() {
        let mut faults = Faults::default();
        faults.break_file("bad".into());
        assert!(faults.check_file("good").is_ok());
        let error = faults.check_file("bad").expect_err("broken");
        assert_eq!(
            error.description,
            "Bad Request: wrong file identifier/HTTP URL specified"
        );
    }
}
