//! Shared by every courier service: the event and work-item types generated
//! from `proto/`, the JetStream topology, configuration, database setup,
//! telemetry and the campaign state machine.
//!
//! Services stay thin adapters over this crate; anything two services must
//! agree on (subject names, stream settings, event encoding, statuses) lives
//! here exactly once.

pub mod added_bots;
pub mod amend;
#[cfg(feature = "postgres")]
pub mod amend_tally;
pub mod audience;
pub mod backlog;
pub mod bot_languages;
pub mod bot_tokens;
pub mod campaign;
pub mod commands;
pub mod config;
#[cfg(feature = "postgres")]
pub mod db;
pub mod event;
pub mod greeting;
pub mod health;
pub mod metrics;
mod otlp_http;
pub mod proto;
#[cfg(feature = "report")]
pub mod report;
pub mod retry;
pub mod schedule;
pub mod send_limits;
pub mod service;
pub mod shutdown;
pub mod stars;
pub mod startup;
pub mod telemetry;
pub mod topology;
pub mod trace_context;
