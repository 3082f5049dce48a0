//! End-to-end tests, one test binary (one link, one process per test under
//! nextest): the real services in-process, or as processes where a test
//! kills them, on each test's own NATS prefix and database, with the
//! Telegram sandbox as Telegram. Every test starts from
//! [`courier_e2e::Setup`].
//!
//! Tests named `alone_...` measure timing (rates within a one-second
//! window, a pause taking effect within a second) and run with no other
//! test beside them (`.config/nextest.toml`); tests in `chaos` are the
//! fault tests `just chaos` selects.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

mod amend;
mod audience;
mod bots;
mod budget;
mod campaign;
mod chaos;
mod operations;
mod parked;
mod restart_guard;
mod rules;
mod schedule;
mod secrets;
mod sender;
mod traces;
