//! Trace propagation through NATS headers: W3C `traceparent` (and
//! `tracestate`) is written on publish and read on receive, so one trace
//! follows a campaign from the admin's tap to every send.
//!
//! Publishing and processing a message are spans of OpenTelemetry's
//! messaging conventions: a PRODUCER span ([`producer_span`]) whose context
//! the message carries, and a CONSUMER span ([`crate::consumer_span!`]) that
//! continues it, both with `messaging.system` `nats`, the subject as
//! `messaging.destination.name` and the operation. Tempo's service graph
//! draws an edge from each producer to its consumers.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Writes the current span's context into `headers`. Without an active
/// trace (telemetry off) this writes nothing.
pub fn inject(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}

/// Makes `span` a child of the trace carried in `headers`, if any. Call it
/// before entering the span: a started span cannot be re-parented.
pub fn adopt(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers else { return };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when the span was already entered; the span then keeps its
    // local parent, which is still a valid (if shorter) trace.
    let _ = span.set_parent(parent);
}

/// The PRODUCER span of publishing to `subject` (one message, or a batch:
/// record its `messaging.batch.message_count`); inject the messages'
/// headers inside it, so their consumers descend from it.
pub fn producer_span(subject: &str) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        messaging.destination.name = subject,
        messaging.batch.message_count = tracing::field::Empty,
    )
}

/// A CONSUMER span named `$name` for processing `$message` (a NATS or
/// JetStream message), a child of the trace its headers carry, with any
/// further fields of `tracing::info_span!` after the message:
/// `consumer_span!("project", message, stream, applied = Empty)`.
#[macro_export]
macro_rules! consumer_span {
    ($name:expr, $message:expr $(, $($fields:tt)*)?) => {{
        let message = &$message;
        let span = ::tracing::info_span!(
            $name,
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %message.subject,
            $($($fields)*)?
        );
        $crate::trace_context::adopt(&span, message.headers.as_ref());
        span
    }};
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry::trace::{SpanKind, TracerProvider as _};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Runs `traced` with spans going to memory; returns the finished spans.
    fn spans_of(traced: impl FnOnce()) -> Vec<SpanData> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, traced);
        exporter.get_finished_spans().expect("finished spans")
    }

    fn attribute(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    fn message(subject: &str, headers: HeaderMap) -> async_nats::Message {
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload: Default::default(),
            headers: Some(headers),
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn a_consumer_continues_the_producer_of_its_message() {
        let spans = spans_of(|| {
            let mut headers = HeaderMap::new();
            producer_span("courier.events.campaign.c1").in_scope(|| inject(&mut headers));
            let received = message("courier.events.campaign.c1", headers);
            crate::consumer_span!("project", received, stream = "events", applied = 3_i64)
                .in_scope(|| {});
        });
        let [producer, consumer] = &spans[..] else {
            panic!("two spans: {spans:?}");
        };
        assert_eq!(producer.span_kind, SpanKind::Producer);
        assert_eq!(consumer.span_kind, SpanKind::Consumer);
        assert_eq!(
            consumer.parent_span_id,
            producer.span_context.span_id(),
            "the consumer descends from the producer"
        );
        assert_eq!(
            consumer.span_context.trace_id(),
            producer.span_context.trace_id()
        );
        for (span, operation) in [(producer, "send"), (consumer, "process")] {
            assert_eq!(attribute(span, "messaging.system"), Some("nats".into()));
            assert_eq!(
                attribute(span, "messaging.destination.name"),
                Some("courier.events.campaign.c1".into())
            );
            assert_eq!(
                attribute(span, "messaging.operation.type"),
                Some(operation.into())
            );
        }
        assert_eq!(attribute(consumer, "stream"), Some("events".into()));
        assert_eq!(attribute(consumer, "applied"), Some(Value::I64(3)));
    }

    #[test]
    fn a_failed_span_is_an_error_and_counts_are_numbers_when_signed() {
        let spans = spans_of(|| {
            let span = tracing::info_span!(
                "send.failed",
                attempt = 3_i64,
                http.status_code = i64::from(502_u16),
                unsigned = 7_u64,
            );
            crate::telemetry::mark_error(&span, "502 Bad Gateway");
            span.in_scope(|| {});
        });
        let failed = &spans[0];
        assert_eq!(
            failed.status,
            opentelemetry::trace::Status::error("502 Bad Gateway")
        );
        assert_eq!(attribute(failed, "attempt"), Some(Value::I64(3)));
        assert_eq!(attribute(failed, "http.status_code"), Some(Value::I64(502)));
        // Why every count is recorded as i64: an unsigned one becomes text.
        assert_eq!(attribute(failed, "unsigned"), Some("7".into()));
    }
}
