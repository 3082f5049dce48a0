//! An import is one trace: a `users.import` span, under it one `register`
//! span per user (which the sampler keeps at COURIER_USER_TRACE_RATIO), and
//! under each the PRODUCER span of its UserRegistered, whose context the
//! event carries to the projector.

use courier_core::event::EventPublisher;
use courier_core::telemetry::REGISTRATION_SPAN;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tokio::test]
async fn an_import_is_one_trace_with_a_registration_per_user() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _ = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("courierctl")))
        .try_init();
    let env = courier_testing::TestEnv::new().await;
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    let users =
        courierctl::users::parse("user_id,language\n1,ru\n2,en\n3,en\n".as_bytes()).unwrap();

    courierctl::users::publish(&publisher, courier_core::topology::DEFAULT_BOT, &users)
        .await
        .unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let import = spans
        .iter()
        .find(|s| s.name == "users.import")
        .expect("the import's span");
    let trace = import.span_context.trace_id();
    assert!(
        spans.iter().all(|s| s.span_context.trace_id() == trace),
        "one trace"
    );
    let registrations: Vec<_> = spans
        .iter()
        .filter(|s| s.name == REGISTRATION_SPAN)
        .collect();
    assert_eq!(registrations.len(), 3);
    assert!(
        registrations
            .iter()
            .all(|r| r.parent_span_id == import.span_context.span_id())
    );
    let publishes: Vec<_> = spans.iter().filter(|s| s.name == "publish").collect();
    assert_eq!(publishes.len(), 3);
    for publish in publishes {
        assert_eq!(publish.span_kind, SpanKind::Producer);
        assert!(
            registrations
                .iter()
                .any(|r| r.span_context.span_id() == publish.parent_span_id)
        );
    }
    let users = import
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "users")
        .map(|kv| kv.value.clone());
    assert_eq!(users, Some(opentelemetry::Value::I64(3)), "a number");
}
