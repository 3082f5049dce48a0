//! An OTLP/HTTP trace receiver in the test's own process: it keeps every
//! span the code under test exports, for tests that follow a trace across
//! services.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use courier_core::telemetry::{LogFormat, OtlpProtocol, TelemetryConfig, TracesSampler};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

type Received = Arc<Mutex<Vec<Span>>>;

pub struct SpanCollector {
    spans: Received,
    endpoint: String,
}

impl SpanCollector {
    /// Listens on a port of its own until the test ends.
    pub async fn start() -> SpanCollector {
        let spans = Received::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the span collector");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("the collector's address")
        );
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        SpanCollector { spans, endpoint }
    }

    /// Telemetry that exports every span here (sends included).
    pub fn telemetry(&self) -> TelemetryConfig {
        TelemetryConfig {
            log_filter: "warn".into(),
            log_format: LogFormat::Text,
            otlp_endpoint: Some(self.endpoint.clone()),
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            send_trace_ratio: 1.0,
            user_trace_ratio: 1.0,
            traces_sampler: TracesSampler::ParentbasedAlwaysOn,
            traces_sampler_arg: 1.0,
            service_name: Some("courier-test".into()),
            resource_attributes: None,
        }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("the spans").clone()
    }
}

async fn receive(State(spans): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut spans = spans.lock().expect("the spans");
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            spans.extend(scope.spans);
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// A span's attribute, as text.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        })
}
