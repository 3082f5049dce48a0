//! A fake Telegram Bot API server that answers exactly like the real one, for tests and demos.
//!
//! Telegram cannot be reached from tests, and its failures (blocked users, 429s, broken content)
//! cannot be summoned on demand. The sandbox serves `/bot<token>/<method>` with Telegram's
//! results, error codes, descriptions and rate limits, records every accepted send, and lets a
//! test steer it, in-process through [`Sandbox`] or over HTTP under `/_sandbox`.
//!
//! The control API (JSON in, `{"ok":true,"result":...}` out), mirroring [`Sandbox`]'s methods:
//! - `POST /_sandbox/chats/{chat_id}` `{"state":"blocked"}` (see [`ChatState`]), for every bot;
//!   `POST /_sandbox/bots/{bot_id}/chats/{chat_id}` for one; `GET /_sandbox/chats/{chat_id}/messages`
//!   (every bot's) and `GET /_sandbox/bots/{bot_id}/chats/{chat_id}/messages`
//! - `GET /_sandbox/config`; `PATCH /_sandbox/config` with any fields of [`SandboxConfig`]
//! - `POST /_sandbox/fail_next` `{"count":2,"failure":"bad_gateway"}` (see [`Failure`])
//! - `POST /_sandbox/inject_429` `{"retry_after":5}`; `POST /_sandbox/broken_files` `{"file_id":"..."}`
//! - `POST /_sandbox/bots/<bot id>/updates` with an `Update` minus `update_id`
//! - `GET /_sandbox/deliveries`; `GET /_sandbox/stats?window_ms=1000`; `POST /_sandbox/reset`
//!
//! A request's way through the modules:
//! - `server`: routes, token check, in-flight cap, latency; counts every answer.
//! - `params`: reads the parameters from query, JSON, form or multipart (`uploads`: files).
//! - `api`: one function per method; `content` checks what a message carries.
//! - `state`: the one lock over the world, and the order every send is checked in:
//!   `chats` (who can be reached), `faults` (injected failures), `limits` (flood control),
//!   `stars` (what a paid message costs), then `record` (what tests read back). `updates` feeds
//!   `getUpdates`.

mod api;
mod bot;
mod chats;
mod config;
mod content;
mod control;
mod envelope;
mod faults;
mod limits;
mod params;
mod record;
mod sandbox;
mod server;
mod stars;
mod state;
mod updates;
mod uploads;

pub use chats::ChatState;
pub use config::SandboxConfig;
pub use faults::Failure;
pub use record::{Amendment, CallbackAnswer, Delivery, Stats, most_in_any_window};
pub use sandbox::Sandbox;
