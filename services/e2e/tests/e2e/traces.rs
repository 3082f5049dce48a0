//! One trace follows a campaign: the admin's start → CampaignStarted →
//! projector and loader → each send → the Telegram request, linked through
//! `traceparent` in NATS headers. An in-process OTLP/HTTP receiver collects
//! the spans the real services export.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use courier_core::metrics::{self, Format};
use courier_core::proto::v1::Audience;
use courier_core::telemetry::{self, LogFormat, OtlpProtocol, TelemetryConfig, TracesSampler};
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{start_text_campaign, wait_for_status, wait_for_users};
use courier_testing::wait_until;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message as _;
use telegram_sandbox::ChatState;

type Received = Arc<Mutex<Vec<Span>>>;

async fn receive(State(spans): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            spans.extend(scope.spans);
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        })
}

/// An attribute exported as a number (an unsigned one would be text).
fn number(span: &Span, key: &str) -> Option<i64> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        })
}

/// This process's telemetry exporting every span to an OTLP receiver of
/// the test's own; the spans it received.
async fn collect_spans() -> (Received, telemetry::TelemetryGuard) {
    let spans: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let telemetry = telemetry::init(
        &TelemetryConfig {
            log_filter: "warn".into(),
            log_format: LogFormat::Text,
            otlp_endpoint: Some(endpoint),
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            send_trace_ratio: 1.0,
            user_trace_ratio: 1.0,
            traces_sampler: TracesSampler::ParentbasedAlwaysOn,
            traces_sampler_arg: 1.0,
            service_name: Some("courier-test".into()),
            resource_attributes: None,
        },
        "courier-test",
    )
    .unwrap();
    (spans, telemetry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_follows_a_campaign_from_the_start_to_every_telegram_request() {
    let (spans, telemetry) = collect_spans().await;

    // After telemetry::init: the test environment's own log subscriber
    // must not take its place.
    let s = Setup::new(4, unlimited_sandbox()).await;
    s.sandbox.set_chat_state(4, ChatState::Blocked);
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 4, Duration::from_secs(30)).await;
    // The first send draws a 429: its item is tried again a second later.
    s.sandbox.inject_429(1);
    let campaign = start_text_campaign(&s.commands, Audience::All, "traced")
        .await
        .to_string();
    wait_for_status(
        &client,
        campaign.parse().unwrap(),
        "completed",
        Duration::from_secs(30),
    )
    .await;
    stack.stop().await.unwrap();
    courier_core::service::flush(telemetry).await;

    let spans = wait_until("the campaign's spans", Duration::from_secs(10), || async {
        let spans = spans.lock().unwrap().clone();
        spans
            .iter()
            .any(|s| s.name == "telegram.request")
            .then_some(spans)
    })
    .await;
    let root = spans
        .iter()
        .find(|s| {
            s.name == "campaign.start" && attribute(s, "campaign_id").as_deref() == Some(&campaign)
        })
        .expect("the campaign's root span");
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == root.trace_id)
        .collect();
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (s.span_id.as_slice(), *s)).collect();
    let parent_name = |span: &Span| {
        by_id
            .get(span.parent_span_id.as_slice())
            .map(|p| p.name.clone())
    };
    // Events, work items and outcomes are published in PRODUCER spans:
    // what consumes a message descends from the span that published it.
    let published_from = |span: &Span| {
        by_id
            .get(span.parent_span_id.as_slice())
            .filter(|publish| publish.name == "publish")
            .map(|publish| publish.parent_span_id.clone())
    };
    let named = |name: &str| {
        trace
            .iter()
            .copied()
            .filter(move |s| s.name == name)
            .collect::<Vec<_>>()
    };

    // The loader may see CampaignStarted more than once (it waits for the
    // projector by NAKing); the fan-out is the one that enqueued recipients.
    let loader_spans = named("loader");
    assert!(
        loader_spans
            .iter()
            .all(|s| published_from(s) == Some(root.span_id.clone())),
        "the loader continues the admin's start"
    );
    let loader: Vec<&Span> = loader_spans
        .into_iter()
        .filter(|s| attribute(s, "recipients").is_some())
        .collect();
    assert_eq!(loader.len(), 1, "one fan-out");
    assert_eq!(
        attribute(loader[0], "campaign_id").as_deref(),
        Some(campaign.as_str())
    );
    assert_eq!(number(loader[0], "recipients"), Some(4));

    let projected_events = named("project")
        .into_iter()
        .filter(|s| published_from(s) == Some(root.span_id.clone()))
        .count();
    assert!(
        projected_events >= 2,
        "the projector continues the trace of CampaignCreated and CampaignStarted"
    );

    // Sends in flight when the penalty began draw a 429 too (as on
    // Telegram): each is one more send span, request and kept failure.
    let throttled_sends = s.sandbox.stats().too_many_requests as usize;
    assert!(throttled_sends >= 1, "the injected 429 was answered");
    let sends = named("send");
    assert_eq!(
        sends.len(),
        4 + throttled_sends,
        "one send span per recipient, and one per 429"
    );
    for send in &sends {
        assert_eq!(
            published_from(send),
            Some(loader[0].span_id.clone()),
            "sends descend from the fan-out's batch publish"
        );
        assert_eq!(
            send.kind,
            SpanKind::Consumer as i32,
            "a send consumes its work item"
        );
        assert_eq!(attribute(send, "messaging.system").as_deref(), Some("nats"));
        assert!(
            attribute(send, "messaging.destination.name")
                .is_some_and(|subject| subject.ends_with(&format!(".work.send.{campaign}"))),
            "{:?}",
            attribute(send, "messaging.destination.name")
        );
        assert_eq!(
            attribute(send, "campaign_id").as_deref(),
            Some(campaign.as_str())
        );
    }
    let batch_publish = by_id[sends[0].parent_span_id.as_slice()];
    assert_eq!(batch_publish.kind, SpanKind::Producer as i32);
    assert_eq!(
        number(batch_publish, "messaging.batch.message_count"),
        Some(4),
        "the fan-out's one batch"
    );
    let outcomes: Vec<String> = sends
        .iter()
        .filter_map(|s| attribute(s, "outcome"))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "delivered").count(),
        3,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "not_alive").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "deferred").count(),
        throttled_sends,
        "{outcomes:?}"
    );

    let requests = named("telegram.request");
    assert_eq!(requests.len(), 4 + throttled_sends);
    for request in &requests {
        assert_eq!(
            request.kind,
            SpanKind::Client as i32,
            "a call to the Bot API"
        );
    }
    let mut codes: Vec<i64> = requests
        .iter()
        .filter_map(|r| number(r, "http.status_code"))
        .collect();
    codes.sort_unstable();
    assert_eq!(codes.len(), requests.len(), "every status code a number");
    assert!(
        codes.contains(&200) && codes.contains(&403) && codes.contains(&429),
        "{codes:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| parent_name(r).as_deref() == Some("send"))
    );

    let failed = named("send.failed");
    let class_of = |class: &str| {
        failed
            .iter()
            .find(|s| attribute(s, "class").as_deref() == Some(class))
            .unwrap_or_else(|| panic!("no kept {class} failure"))
    };
    assert_eq!(
        failed.len(),
        throttled_sends + 1,
        "the 429s and the blocked recipient are kept"
    );
    for failure in &failed {
        let status = failure.status.as_ref().map(|status| status.code);
        assert_eq!(
            status,
            Some(StatusCode::Error as i32),
            "a failed send is an error"
        );
        assert!(number(failure, "attempt").is_some_and(|attempt| attempt >= 1));
    }
    let throttled = class_of("retry_after");
    assert_eq!(number(throttled, "retry_after_s"), Some(1));
    assert_eq!(
        attribute(throttled, "campaign_id").as_deref(),
        Some(campaign.as_str())
    );
    for failure in [throttled, class_of("not_alive")] {
        assert_eq!(published_from(failure), Some(loader[0].span_id.clone()));
    }

    let send_ids: Vec<&[u8]> = sends.iter().map(|s| s.span_id.as_slice()).collect();
    let published_by_a_send =
        |s: &&Span| published_from(s).is_some_and(|from| send_ids.contains(&from.as_slice()));
    let projections_under_sends: Vec<String> = named("project")
        .into_iter()
        .filter(published_by_a_send)
        .filter_map(|s| attribute(s, "messaging.destination.name"))
        .collect();
    let outcomes = projections_under_sends
        .iter()
        .filter(|s| s.contains(".outcomes."))
        .count();
    assert_eq!(
        outcomes, 4,
        "each outcome's projection continues its send: {projections_under_sends:?}"
    );
    let blocked = projections_under_sends
        .iter()
        .filter(|s| s.contains(".events.user.4"))
        .count();
    assert_eq!(blocked, 1, "so does the UserBlocked the send published");

    // The latencies measured in the campaign lead to its trace.
    let trace_id: String = root.trace_id.iter().map(|b| format!("{b:02x}")).collect();
    let exposition = metrics::render(Format::OpenMetrics);
    for (histogram, labels) in [
        (
            "courier_telegram_request_duration_seconds_bucket{",
            "method=\"sendMessage\",lane=\"free\"}",
        ),
        ("courier_recipient_wait_seconds_bucket{", "lane=\"free\"}"),
        ("courier_loader_batch_duration_seconds_bucket{", ""),
        (
            "courier_projector_batch_duration_seconds_bucket{",
            "stream=\"outcomes\"}",
        ),
    ] {
        assert!(
            exposition.lines().any(|line| line.starts_with(histogram)
                && line.contains(labels)
                && line.contains(&format!(" # {{trace_id=\"{trace_id}\"}}"))),
            "{histogram} has an exemplar of the campaign's trace in {exposition}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_bots_token_is_in_no_span_and_no_metric() {
    const SECRET: &str = "AAF-added_bots_secret_0123456789";
    let (spans, telemetry) = collect_spans().await;
    let s = Setup::new(3, unlimited_sandbox()).await;
    courier_e2e::add_bot(&s.env, &format!("222:{SECRET}")).await;
    s.register_users_of(222, &courier_e2e::en_users(3)).await;
    let stack = s.stack(100.0, 0);
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(courier_sender::run(
        courier_e2e::sender_serving_added_bots(&s.env, &s.sandbox.url(), 100.0),
        stop.clone(),
    ));
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 6, Duration::from_secs(30)).await;
    let campaign = courier_testing::campaigns::start_text_campaign_of(
        &s.commands,
        222,
        Audience::All,
        "traced",
    )
    .await;
    wait_for_status(&client, campaign, "completed", Duration::from_secs(30)).await;
    stop.cancel();
    sender.await.unwrap().unwrap();
    stack.stop().await.unwrap();
    let exposition = metrics::render(Format::OpenMetrics);
    courier_core::service::flush(telemetry).await;

    let spans = wait_until("the sends' spans", Duration::from_secs(10), || async {
        let spans = spans.lock().unwrap().clone();
        let requests = spans
            .iter()
            .filter(|s| s.name == "telegram.request")
            .count();
        (requests == 3).then_some(spans)
    })
    .await;
    for span in &spans {
        let text = format!("{span:?}");
        assert!(!text.contains(SECRET), "a span holds the token: {text}");
    }
    assert!(exposition.contains("courier_sends_total"), "{exposition}");
    assert!(!exposition.contains(SECRET), "a metric holds the token");
}
