//! The parameters of one Bot API call, however they were sent.
//!
//! Telegram takes them from the query string, a JSON object, a form or multipart/form-data, and
//! flattens all four to name → text: a JSON body's strings stay as they are, anything else
//! becomes its JSON text. That is also why `reply_markup` may arrive as an object or as a JSON
//! string: both read the same here.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::envelope::ApiError;
use crate::uploads::Upload;

/// Bodies above this are refused; Telegram's own cap for non-file parameters is far lower.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// File parts of a multipart request, by part name.
    uploads: HashMap<String, Upload>,
}

impl Params {
    pub async fn from_request(request: Request) -> Result<Self, ApiError> {
        let mut params = Self::default();
        if let Some(query) = request.uri().query() {
            params.extend_form(query.as_bytes());
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            params.extend_multipart(request).await?;
            return Ok(params);
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::bad_request("request body is too big"))?;
        if content_type.starts_with("application/json") && !body.is_empty() {
            params.extend_json(&body)?;
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            params.extend_form(&body);
        }
        Ok(params)
    }

    fn extend_form(&mut self, form: &[u8]) {
        self.values
            .extend(form_urlencoded::parse(form).into_owned());
    }

    fn extend_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        let Ok(Value::Object(object)) = serde_json::from_slice(body) else {
            return Err(ApiError::bad_request("can't parse JSON object"));
        };
        for (name, value) in object {
            let text = match value {
                Value::Null => continue,
                Value::String(text) => text,
                other => other.to_string(),
            };
            self.values.insert(name, text);
        }
        Ok(())
    }

    /// Text fields, and file parts as uploads.
    async fn extend_multipart(&mut self, request: Request) -> Result<(), ApiError> {
        fn malformed<E>(_: E) -> ApiError {
            ApiError::bad_request("can't parse multipart/form-data")
        }
        let too_large = ApiError::too_large;
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(malformed)?;
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            if let Some(file_name) = field.file_name().map(str::to_owned) {
                let mime_type = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|_| too_large())?;
                let file_name = Some(file_name).filter(|name| !name.is_empty());
                let upload = Upload {
                    file_name,
                    mime_type,
                    bytes,
                };
                self.uploads.insert(name, upload);
                continue;
            }
            let text = field.text().await.map_err(malformed)?;
            self.values.insert(name, text);
        }
        Ok(())
    }

    /// The file uploaded as parameter `name`: a file part of that name, or the part its text
    /// points at (`attach://<part>`).
    pub fn upload(&self, name: &str) -> Option<&Upload> {
        match self
            .text(name)
            .and_then(|text| text.strip_prefix("attach://"))
        {
            Some(part) => self.uploads.get(part),
            None => self.uploads.get(name),
        }
    }

    /// A parameter's text; Telegram treats an empty value as a missing one.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn integer(&self, name: &str) -> Option<i64> {
        self.text(name)?.trim().parse().ok()
    }

    /// Telegram reads `true` (any case) and `1` as true, anything else as false.
    pub fn flag(&self, name: &str) -> bool {
        self.text(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// A JSON-serialized parameter; `Err` carries what made it unreadable.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Option<Result<T, serde_json::Error>> {
        self.text(name).map(serde_json::from_str)
    }
}

/// Parameters given as pairs: in tests, and for each item of an album.
impl<'a> FromIterator<(&'a str, &'a str)> for Params {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            uploads: HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn parse(uri: &str, content_type: &str, body: &str) -> Result<Params, ApiError> {
        let request = Request::builder()
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .expect("valid request");
        Params::from_request(request).await
    }

    #[tokio::test]
    async fn json_values_flatten_to_text() {
        let params = parse(
            "/?limit=5",
            "application/json",
            r#"{"chat_id":42,"text":"hi","silent":true,"reply_markup":{"inline_keyboard":[]},"none":null}"#,
        )
        .await
        .expect("parses");
        assert_eq!(params.integer("chat_id"), Some(42));
        assert_eq!(params.text("text"), Some("hi"));
        assert!(params.flag("silent"));
        assert_eq!(
            params.text("reply_markup"),
            Some(r#"{"inline_keyboard":[]}"#)
        );
        assert_eq!(params.text("none"), None);
        assert_eq!(params.integer("limit"), Some(5));
    }

    #[tokio::test]
    async fn forms_and_multipart_read_the_same() {
        let form = parse(
            "/",
            "application/x-www-form-urlencoded",
            "chat_id=42&text=a%20b&silent=1",
        )
        .await
        .expect("parses");
        let multipart = parse(
            "/",
            "multipart/form-data; boundary=XX",
            "--XX\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
             --XX\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\na b\r\n\
             --XX\r\nContent-Disposition: form-data; name=\"silent\"\r\n\r\nTrue\r\n--XX--\r\n",
        )
        .await
        .expect("parses");
        for params in [form, multipart] {
            assert_eq!(params.integer("chat_id"), Some(42));
            assert_eq!(params.text("text"), Some("a b"));
            assert!(params.flag("silent"));
        }
    }

    #[tokio::test]
    async fn a_json_body_must_be_an_object() {
        let error = parse("/", "application/json", "[1]")
            .await
            .expect_err("not an object");
        assert_eq!(error.description, "Bad Request: can't parse JSON object");
    }
}
