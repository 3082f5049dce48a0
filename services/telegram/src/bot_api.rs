//! The Bot API calls a broadcast makes, over one pooled HTTP client.
//!
//! Why not teloxide's `Bot` here (the admin bot uses it): on every 5xx it
//! sleeps ten seconds inside the request before returning, which holds a
//! send slot and is exactly the in-process retry courier forbids, and it
//! drops the `error_code` that classification needs. The request bodies
//! are the Bot API's JSON, built from the stored content in [`payload`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use courier_core::config::TelegramConfig;
use serde::Deserialize;

use crate::classify::ApiFailure;
use crate::payload::{self, Call};

#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    /// `{api}/bot{token}/{method}` for each method a campaign may call,
    /// parsed once rather than on every send. They hold the secret, so they
    /// are never logged.
    urls: HashMap<&'static str, reqwest::Url>,
    get_me: reqwest::Url,
    get_my_star_balance: reqwest::Url,
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

impl<T> Envelope<T> {
    /// The result of a call that succeeded, or Telegram's refusal.
    fn result(self, status: u16) -> Result<T, ApiFailure> {
        match (self.ok, self.result) {
            (true, Some(result)) => Ok(result),
            (true, None) => Err(ApiFailure::BadAnswer { status }),
            (false, _) => Err(ApiFailure::Api {
                code: self.error_code.unwrap_or(status),
                description: self.description.unwrap_or_default(),
                retry_after: self.parameters.and_then(|p| p.retry_after),
            }),
        }
    }
}

/// The bot a token belongs to (getMe).
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub username: String,
}

/// A method's result: the message sent or edited, an album's messages, or
/// `true` (a deletion).
#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Message { message_id: i64 },
    Album(Vec<AlbumMessage>),
    Done(bool),
}

#[derive(Deserialize)]
struct AlbumMessage {
    message_id: i64,
}

/// What Telegram answered a call that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The message sent or edited (an album's first, with the caption), or
    /// 0 for a deletion.
    pub message_id: i64,
    /// An album's messages, in order (empty for anything else).
    pub album: Vec<i64>,
}

/// What warming up found.
#[derive(Debug, Clone, Copy)]
pub struct WarmUp {
    /// The HTTP status Telegram answered with, if it answered.
    pub status: Option<u16>,
    /// How long a getMe took on an open connection, if answered: Telegram's
    /// answer time with no connection to open.
    pub round_trip: Option<Duration>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

/// `builder` refusing redirects. Method URLs carry the token: a redirect
/// must not take it to another host (the Bot API answers its methods, never
/// with a 3xx). Every client of the Bot API is built through this.
pub fn following_no_redirect(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    builder.redirect(reqwest::redirect::Policy::none())
}

impl BotApi {
    pub fn new(
        config: &TelegramConfig,
        timeout: Duration,
        max_idle: usize,
    ) -> anyhow::Result<BotApi> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true);
        let http = following_no_redirect(http).build()?;
        Self::with_http(http, config)
    }

    /// A client of another bot (`config`'s token) over this one's
    /// connections: every bot talks to the same Bot API host, so one pool
    /// serves them all.
    pub fn for_bot(&self, config: &TelegramConfig) -> anyhow::Result<BotApi> {
        Self::with_http(self.http.clone(), config)
    }

    fn with_http(http: reqwest::Client, config: &TelegramConfig) -> anyhow::Result<BotApi> {
        let api = config.api.api_url.as_str().trim_end_matches('/');
        let token = config.bot_token.expose();
        let url = |method: &str| {
            reqwest::Url::parse(&format!("{api}/bot{token}/{method}"))
                // The error would quote the URL, and the URL the token.
                .map_err(|_| anyhow::anyhow!("TELEGRAM_API_URL does not make a method URL"))
        };
        let urls = payload::methods()
            .map(|method| Ok((method, url(method)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(BotApi {
            http,
            urls,
            get_me: url("getMe")?,
            get_my_star_balance: url("getMyStarBalance")?,
        })
    }

    /// Calls getMe on `connections` connections at once, before the first
    /// send: a send that must connect first (TCP, then TLS) reaches Telegram
    /// late and bunches with the sends after it, which can put one too many
    /// into a second. It also tries the token, and times one more getMe on
    /// a connection now open.
    pub async fn warm_up(&self, connections: usize) -> WarmUp {
        let calls = (0..connections).map(|_| self.http.post(self.get_me.clone()).send());
        let status = futures::future::join_all(calls)
            .await
            .into_iter()
            .find_map(Result::ok)
            .map(|answer| answer.status().as_u16());
        // Unanswered or refused, there is nothing to time (and a second
        // wait for an unreachable API would only delay the start).
        let round_trip = match status {
            None | Some(401 | 404) => None,
            Some(_) => {
                let asked = Instant::now();
                crate::classify::answered(&self.get_me().await).then(|| asked.elapsed())
            }
        };
        WarmUp { status, round_trip }
    }

    /// Makes one call; returns the message Telegram sent or edited (an
    /// album's messages), or 0 for a method that answers `true`
    /// (deleteMessage).
    #[tracing::instrument(name = "telegram.request", skip_all, fields(otel.kind = "client", method = call.method, http.status_code))]
    pub async fn send(&self, call: &Call) -> Result<Sent, ApiFailure> {
        let url = self.urls.get(call.method).cloned().ok_or_else(|| {
            ApiFailure::NotSent(format!("{} is not a method campaigns call", call.method))
        })?;
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(call.body.clone());
        match self.request(request).await? {
            Answer::Message { message_id } => Ok(Sent {
                message_id,
                album: Vec::new(),
            }),
            Answer::Album(messages) if !messages.is_empty() => {
                let album: Vec<i64> = messages.iter().map(|m| m.message_id).collect();
                Ok(Sent {
                    message_id: album[0],
                    album,
                })
            }
            Answer::Done(true) => Ok(Sent::default()),
            Answer::Album(_) | Answer::Done(false) => Err(ApiFailure::BadAnswer { status: 200 }),
        }
    }

    /// Who the token belongs to, or why Telegram refused it (401 for a
    /// revoked or mistyped token).
    pub async fn get_me(&self) -> Result<Me, ApiFailure> {
        self.request(self.http.post(self.get_me.clone())).await
    }

    /// Makes a request and reads Telegram's envelope around its result.
    async fn request<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiFailure> {
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        // A number in the trace (an unsigned one would export as text).
        tracing::Span::current().record("http.status_code", i64::from(status));
        let bytes = response.bytes().await.map_err(transport_failure)?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&bytes).map_err(|_| ApiFailure::BadAnswer { status })?;
        envelope.result(status)
    }
}

/// Telegram's `StarAmount`: whole Stars and nanostars (getMyStarBalance).
#[derive(Debug, Clone, Deserialize)]
pub struct StarAmount {
    pub amount: i64,
    #[serde(default)]
    pub nanostar_amount: i64,
}

impl StarAmount {
    pub fn nanostars(&self) -> i64 {
        self.amount * courier_core::stars::NANOSTARS_PER_STAR + self.nanostar_amount
    }
}

impl BotApi {
    /// The bot's Telegram Stars balance, in nanostars (getMyStarBalance),
    /// or `None` when Telegram did not answer with one.
    pub async fn star_balance(&self) -> Option<i64> {
        #[derive(Deserialize)]
        struct Answer {
            result: Option<StarAmount>,
        }
        let response = self
            .http
            .post(self.get_my_star_balance.clone())
            .send()
            .await;
        let answer: Answer = response.ok()?.json().await.ok()?;
        answer.result.as_ref().map(StarAmount::nanostars)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use courier_core::config::{TelegramApiConfig, TelegramConfig};
    use futures::FutureExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_redirect_is_not_followed_so_the_token_stays_with_the_bot_api() {
        let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let location = format!("http://{}/", elsewhere.local_addr().unwrap());
        let api_url = format!("http://{}", api.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut connection, _) = api.accept().await.unwrap();
            // One read holds the whole small request; what it says does
            // not matter.
            let mut request = [0u8; 4096];
            let _ = connection.read(&mut request).await.unwrap();
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
            );
            connection.write_all(answer.as_bytes()).await.unwrap();
        });
        let config = TelegramConfig {
            bot_token: "123456:abcdefghijklmnop".parse().unwrap(),
            api: TelegramApiConfig {
                api_url: api_url.parse().unwrap(),
            },
        };
        let api = BotApi::new(&config, Duration::from_secs(2), 1).unwrap();

        let answer = api.get_me().await;

        assert!(
            matches!(answer, Err(ApiFailure::BadAnswer { status: 307 })),
            "{answer:?}"
        );
        // Following it would have connected before the answer came back.
        assert!(
            elsewhere.accept().now_or_never().is_none(),
            "the client followed the redirect"
        );
    }
}
