//! The bot's RED metrics: every update counted and timed by kind, the
//! histogram's exemplar leading to the update's trace.

use courier_core::metrics::{self, Format};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::{DEADLINE, Harness};

const BEA: i64 = 4_000_000_101;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_are_counted_and_timed_with_their_trace_as_exemplar() {
    // Every span kept, into memory: nextest runs each test in a process of
    // its own, so this test's subscriber is the only one.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _ = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("courier-bot")))
        .try_init();
    let harness = Harness::start(1000.0).await;
    let counted = || metrics::bot().updates.get(["message"]).get();
    let before = counted();

    harness.say(BEA, "/start");
    harness.wait_for(BEA, 0, "Hi!").await;
    courier_testing::wait_until("the update counted", DEADLINE, || async {
        (counted() > before).then_some(())
    })
    .await;

    let update = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .find(|span| span.name == courier_core::telemetry::UPDATE_SPAN)
        .expect("the update's span");
    let trace_id = update.span_context.trace_id().to_string();
    let exposition = metrics::render(Format::OpenMetrics);
    let exemplars: Vec<&str> = exposition
        .lines()
        .filter(|line| line.starts_with("courier_bot_update_duration_seconds_bucket{"))
        .filter(|line| line.contains("kind=\"message\""))
        .filter(|line| line.contains(" # {trace_id="))
        .collect();
    assert!(
        exemplars
            .iter()
            .any(|line| line.contains(&format!("{{trace_id=\"{trace_id}\"}}"))),
        "the update's trace is an exemplar: {exemplars:?}"
    );
    for line in [
        "courier_bot_update_errors_total{kind=\"message\"} 0",
        "courier_bot_updates_total{kind=\"my_chat_member\"} 0",
    ] {
        assert!(exposition.contains(line), "{line} in {exposition}");
    }
    harness.stop().await;
}
