//! Integration tests: the sandbox served over real HTTP, read by reqwest and by teloxide.

mod bot_api;
mod control_api;
mod rate_limits;
mod teloxide_client;

use reqwest::Method;
use serde_json::{Value, json};
use telegram_sandbox::{Sandbox, SandboxConfig};

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const BOT_ID: i64 = 123456;

/// A sandbox on a random port, with the per-chat limit off unless `change` turns it on, so tests
/// can send to one chat quickly.
pub async fn start(change: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig {
        chat_rate_limit: 0,
        ..SandboxConfig::default()
    };
    change(&mut config);
    Sandbox::start(config).await.expect("sandbox starts")
}

/// A raw HTTP client, to see exactly what the sandbox answers.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The `Retry-After` header.
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Answer {
    /// The envelope of an error answer, checked against its HTTP status.
    pub fn error(&self) -> (i64, &str) {
        assert_eq!(self.body["ok"], json!(false), "{self:?}");
        let code = self.body["error_code"].as_i64().expect("error_code");
        assert_eq!(i64::from(self.status), code, "{self:?}");
        (
            code,
            self.body["description"].as_str().expect("description"),
        )
    }

    /// The `result` of a success answer.
    pub fn result(&self) -> &Value {
        assert_eq!(
            (self.status, &self.body["ok"]),
            (200, &json!(true)),
            "{self:?}"
        );
        &self.body["result"]
    }
}

impl Client {
    pub fn new(sandbox: &Sandbox) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sandbox.url(),
        }
    }

    /// POSTs `params` as JSON to Bot API `method` with [`TOKEN`].
    pub async fn call(&self, method: &str, params: Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}/bot{TOKEN}/{method}", self.base))
                .json(&params),
        )
        .await
    }

    /// A request to any path, e.g. the control API.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let request = self.http.request(method, format!("{}{path}", self.base));
        self.send(match body {
            Some(body) => request.json(&body),
            None => request,
        })
        .await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.to_str().expect("ascii").parse().expect("seconds"));
        let body = response.json().await.expect("a JSON body");
        Answer {
            status,
            retry_after,
            body,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}
