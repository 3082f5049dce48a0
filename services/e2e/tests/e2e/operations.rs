//! What an SRE's tooling sees: /healthz, /readyz and /metrics of a running
//! service, with the sends of a campaign counted, and a service that
//! refuses to start on a conflicting topology.

use std::time::Duration;

use courier_core::health::{self, HealthConfig};
use courier_core::proto::v1::Audience;
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{start_text_campaign, wait_for_status, wait_for_users};
use courier_testing::wait_until;

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_endpoints_report_the_service() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let shutdown = tokio_util::sync::CancellationToken::new();
    health::start(
        &HealthConfig {
            metrics_addr: format!("127.0.0.1:{port}").parse().unwrap(),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        get(&format!("{base}/healthz")).await,
        Some((200, "ok".into()))
    );
    assert_eq!(
        get(&format!("{base}/readyz")).await,
        Some((503, "starting".into()))
    );

    let s = Setup::new(5, unlimited_sandbox()).await;
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    wait_until("ready", Duration::from_secs(30), || async {
        get(&format!("{base}/readyz"))
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 5, Duration::from_secs(30)).await;
    let campaign = start_text_campaign(&s.commands, Audience::All, "measured").await;
    wait_for_status(&client, campaign, "completed", Duration::from_secs(30)).await;
    let (status, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("courier_sends_total{outcome=\"delivered\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("courier_projector_applied_total{stream=\"outcomes\"} 5"),
        "{metrics}"
    );
    for line in [
        "courier_send_rate_limit{lane=\"free\"} 100",
        // Counters show at 0 before their first increment.
        "courier_telegram_429_total 0",
        "courier_send_failures_total{class=\"retry_after\"} 0",
        // What keeps a lane below its limit, by lane (nothing on the paid one here).
        "courier_rate_slots_dropped_total{lane=\"paid\"} 0",
        "courier_rate_schedule_moved_seconds_total{lane=\"paid\"} 0",
        "courier_loader_enqueued_total 5",
        "courier_telegram_request_duration_seconds_count{method=\"sendMessage\",lane=\"free\"} 5",
        "courier_recipient_wait_seconds_count{lane=\"free\"} 5",
        "# HELP courier_sends_total Work items handled, by outcome",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // Every recipient counted for the SLI once, on time or late (which,
    // depends on the machine's speed: the unit tests decide that part).
    let resolved: f64 = ["true", "false"]
        .iter()
        .filter_map(|on_time| {
            let series = format!("courier_recipients_resolved_total{{on_time=\"{on_time}\"}} ");
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(series.as_str()))
                .and_then(|value| value.parse::<f64>().ok())
        })
        .sum();
    assert_eq!(resolved, 5.0, "{metrics}");
    for histogram in [
        "courier_projector_batch_duration_seconds_count{stream=\"outcomes\"}",
        "courier_loader_batch_duration_seconds_count",
    ] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with(histogram) && !line.ends_with(" 0")),
            "{histogram} observed in {metrics}"
        );
    }
    // What Prometheus asks for: OpenMetrics, the format with exemplars.
    let openmetrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        openmetrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(openmetrics.text().await.unwrap().ends_with("# EOF\n"));
    stack.stop().await.unwrap();
    shutdown.cancel();
}

/// What a service says when the JetStream topology it needs is in the way
/// of something else: an error naming the problem, at once, not retries.
#[tokio::test]
async fn a_conflicting_topology_stops_the_service_with_a_clear_error() {
    use async_nats::jetstream::{consumer, stream};
    let Setup { env, .. } = Setup::new(0, unlimited_sandbox()).await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let start = || async {
        let started = tokio::time::timeout(
            Duration::from_secs(20),
            courier_core::startup::nats(&env.nats, "test", &Default::default()),
        )
        .await
        .expect("an error at once, not retries");
        started.err().expect("refused to start").to_string()
    };

    // Another stream already captures courier's work subjects (where the
    // test's own topology had put its work stream).
    js.delete_stream(topology.work_stream()).await.unwrap();
    let squatter = format!("{}_SQUATTER", topology.work_stream());
    js.create_stream(stream::Config {
        name: squatter.clone(),
        subjects: vec![topology.work_subject(courier_core::topology::DEFAULT_BOT, "*")],
        ..Default::default()
    })
    .await
    .unwrap();
    let error = start().await;
    assert!(
        error.contains("another stream already takes its subjects"),
        "{error}"
    );
    js.delete_stream(&squatter).await.unwrap();

    // The senders' consumer exists with another configuration.
    courier_core::startup::nats(&env.nats, "test", &Default::default())
        .await
        .unwrap()
        .unwrap();
    let work = js.get_stream(topology.work_stream()).await.unwrap();
    work.delete_consumer(courier_core::topology::SENDERS_CONSUMER)
        .await
        .unwrap();
    work.create_consumer(consumer::pull::Config {
        durable_name: Some(courier_core::topology::SENDERS_CONSUMER.into()),
        ack_wait: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .unwrap();
    let error = start().await;
    assert!(
        error.contains("exists with a different configuration"),
        "{error}"
    );
}

/// `--help` of each service binary lists its configuration: every variable
/// with its default; a malformed value stops it with the variable's name.
#[test]
fn every_service_lists_its_variables_and_refuses_a_bad_one_by_name() {
    let shared = [
        "NATS_URL",
        "COURIER_NATS_PREFIX",
        "RUST_LOG",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "METRICS_ADDR",
    ];
    let own: [(&str, &[&str]); 4] = [
        ("courier-projector", &["DATABASE_URL"]),
        ("courier-loader", &["DATABASE_URL", "LOADER_BATCH_SIZE"]),
        (
            "courier-sender",
            &[
                "TELEGRAM_BOT_TOKEN",
                "TELEGRAM_API_URL",
                "SENDER_RATE_LIMIT",
                "SENDER_PAID_RATE_LIMIT",
                "SENDER_CHAT_RATE_LIMIT",
                "SENDER_MAX_IN_FLIGHT",
            ],
        ),
        (
            "courier-bot",
            &["DATABASE_URL", "TELEGRAM_BOT_TOKEN", "OWNER_IDS"],
        ),
    ];
    for (service, variables) in own {
        let binary = courier_testing::process::binary(service);
        let help = std::process::Command::new(&binary)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        assert!(help.status.success(), "{service} --help");
        let help = String::from_utf8(help.stdout).unwrap();
        for variable in shared.iter().chain(variables) {
            assert!(
                help.contains(&format!("[env: {variable}")),
                "{service}: {variable}"
            );
        }
        assert!(
            help.contains("[default: nats://127.0.0.1:4222]"),
            "{service} shows defaults"
        );
        assert_eq!(
            help.contains("DATABASE_URL"),
            service != "courier-sender",
            "{service}: only senders have no database"
        );
        let refused = std::process::Command::new(&binary)
            .env_clear()
            .env("TELEGRAM_BOT_TOKEN", courier_e2e::BOT_TOKEN)
            .env("OWNER_IDS", "1")
            .env("NATS_URL", "nats://host:port-oops")
            .output()
            .unwrap();
        assert!(
            !refused.status.success(),
            "{service} started with a bad NATS_URL"
        );
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(
            error.contains("NATS_URL is malformed"),
            "{service}: {error}"
        );
    }
}
