//! What courier says to the Telegram Bot API, shared by the senders (which
//! deliver campaigns) and the bot (which previews them exactly as they
//! will arrive):
//!
//! - [`payload`] turns a campaign's stored content into the call that
//!   delivers it to one chat ([`payload::Template`] → [`payload::Call`]);
//! - [`bot_api`] makes that call over one pooled HTTP client
//!   ([`bot_api::BotApi`]) and hands back Telegram's answer;
//! - [`classify`] says what a failed answer means for a broadcast (retry,
//!   not alive, broken content, 429...), as a pure function.

pub mod bot_api;
pub mod classify;
pub mod payload;
