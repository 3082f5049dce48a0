//! The HTTP client the OTLP/HTTP exporter uses. The SDK's batch processor
//! exports from a thread of its own, outside any tokio runtime, where the
//! stock hyper client panics; this one runs each request on the service's
//! runtime (reqwest, already in the build) and hands the answer back.

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

#[derive(Debug, Clone)]
pub struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeHttpClient {
    /// Must be called inside the tokio runtime the requests will run on.
    pub fn new() -> RuntimeHttpClient {
        RuntimeHttpClient {
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body);
        self.runtime
            .spawn(async move {
                let response = request.send().await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                Ok(answer.body(response.bytes().await?)?)
            })
            .await?
    }
}
