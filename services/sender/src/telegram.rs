//! The Bot API calls a sender makes, over one pooled HTTP client.
//!
//! Why not teloxide's `Bot` here (the admin bot uses it): on every 5xx it
//! sleeps ten seconds inside the request before returning, which holds a
//! send slot and is exactly the in-process retry courier forbids, and it
//! drops the `error_code` that classification needs. The request bodies
//! are the Bot API's JSON, built from the stored content in [`payload`].

use std::time::Duration;

use courier_core::config::TelegramConfig;
use serde::Deserialize;

use crate::classify::ApiFailure;

/// One Bot API method call, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub body: serde_json::Value,
}

#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    /// `{api}/bot{token}/`: holds the secret, so it is never logged.
    base: String,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<SentMessage>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct SentMessage {
    message_id: i64,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

impl BotApi {
    pub fn new(
        config: &TelegramConfig,
        timeout: Duration,
        max_idle: usize,
    ) -> Result<BotApi, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true)
            .build()?;
        let api = config.api_url.as_str().trim_end_matches('/');
        Ok(BotApi {
            http,
            base: format!("{api}/bot{}/", config.bot_token.expose()),
        })
    }

    /// Sends one message; returns Telegram's message id.
    #[tracing::instrument(name = "telegram.request", skip_all, fields(method = call.method, http.status_code))]
    pub async fn send(&self, call: &Call) -> Result<i64, ApiFailure> {
        let response = self
            .http
            .post(format!("{}{}", self.base, call.method))
            .json(&call.body)
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status().as_u16();
        tracing::Span::current().record("http.status_code", status);
        let bytes = response.bytes().await.map_err(transport_failure)?;
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|_| ApiFailure::BadAnswer { status })?;
        match (envelope.ok, envelope.result) {
            (true, Some(message)) => Ok(message.message_id),
            (true, None) => Err(ApiFailure::BadAnswer { status }),
            (false, _) => Err(ApiFailure::Api {
                code: envelope.error_code.unwrap_or(status),
                description: envelope.description.unwrap_or_default(),
                retry_after: envelope.parameters.and_then(|p| p.retry_after),
            }),
        }
    }
}

/// Sorts a transport error by whether the request may have reached
/// Telegram. The text is reqwest's kind only: its full message carries the
/// URL, and with it the token.
fn transport_failure(error: reqwest::Error) -> ApiFailure {
    let error = error.without_url();
    // Only a failed connect proves nothing went out; anything later (a
    // timeout, a reset mid-answer) may follow a delivered message.
    if error.is_connect() {
        ApiFailure::NotSent(error.to_string())
    } else {
        ApiFailure::NoAnswer(error.to_string())
    }
}
