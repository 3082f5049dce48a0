//! The Bot API response envelope.
//!
//! Telegram answers `{"ok":true,"result":...}` or `{"ok":false,"error_code":N,"description":"..."}`
//! with the same HTTP status; clients classify failures by code plus the text after the colon, so
//! the texts built here are Telegram's own, word for word.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// One failed Bot API call, as Telegram would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub description: String,
    /// Set only on 429: how many seconds the client must wait.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400; `detail` is the text after "Bad Request: ".
    pub fn bad_request(detail: impl AsRef<str>) -> Self {
        Self::new(400, format!("Bad Request: {}", detail.as_ref()))
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 403; `detail` is the text after "Forbidden: ".
    pub fn forbidden(detail: &str) -> Self {
        Self::new(403, format!("Forbidden: {detail}"))
    }

    pub fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    /// 409; `detail` is the text after "Conflict: ".
    pub fn conflict(detail: &str) -> Self {
        Self::new(409, format!("Conflict: {detail}"))
    }

    /// 413: an upload over Telegram's 50 MB.
    pub fn too_large() -> Self {
        Self::new(413, "Request Entity Too Large")
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(429, format!("Too Many Requests: retry after {retry_after}"))
        }
    }

    /// A 5xx with the bare reason phrase, as Telegram's front end sends it.
    pub fn server(code: u16, description: &str) -> Self {
        Self::new(code, description)
    }
}

/// The error body, with its fields in Telegram's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    ok: bool,
    error_code: u16,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Parameters>,
}

#[derive(Serialize)]
struct Parameters {
    retry_after: u64,
}

/// The success body, `ok` first as Telegram sends it.
#[derive(Serialize)]
struct OkBody {
    ok: bool,
    result: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            ok: false,
            error_code: self.code,
            description: &self.description,
            parameters: self
                .retry_after
                .map(|retry_after| Parameters { retry_after }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `{"ok":true,"result":...}`, the success envelope.
pub fn ok(result: Value) -> Response {
    axum::Json(OkBody { ok: true, result }).into_response()
}
