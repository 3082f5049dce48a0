//! `courierctl parked retry` as an operator runs it after an upgrade: the
//! campaign events a projector of an older version parked (it could not
//! read them) are published again the way they were first published, and
//! the whole system acts on them: a retried start fans out and completes,
//! a retried resume releases the items senders set aside, a retried cancel
//! drops them.
//!
//! The stream's own copies of such events are long past the duplicate
//! window when an operator retries, which a test cannot wait for: so the
//! tests write the parked rows themselves, with events the stream lacks.

use std::process::Output;
use std::time::Duration;

use courier_core::commands::Change;
use courier_core::event::{EVENT_TYPE_HEADER, EventPublisher};
use courier_core::proto::v1::{
    Audience, CampaignCancelled, CampaignCreated, CampaignOptions, CampaignResumed,
    CampaignStarted, Content, ContentKind, Event, event::Payload,
};
use courier_e2e::{SenderSettings, Setup, Stack, receipts, sender_config, unlimited_sandbox};
use courier_testing::campaigns::{start_text_campaign, wait_for_status, wait_for_users};
use courier_testing::{TestEnv, messages_on, wait_until};
use prost::Message as _;

const DEADLINE: Duration = Duration::from_secs(60);

/// Writes `event` into `parked_messages` as the projector parks one.
async fn park(setup: &Setup, event: &Event, seq: i64) {
    let topology = setup.env.topology();
    let subject = event
        .payload
        .as_ref()
        .expect("an event with a payload")
        .subject(&topology);
    setup
        .pool
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO parked_messages (stream, seq, subject, payload, error)
             VALUES ($1, $2, $3, $4, 'event has a payload this version does not know')",
            &[
                &topology.events_stream(),
                &seq,
                &subject,
                &event.encode_to_vec(),
            ],
        )
        .await
        .unwrap();
}

/// Runs the courierctl binary against the test's NATS and database;
/// traces go to a port where nothing listens, so events carry a
/// `traceparent` (the export fails quietly).
async fn courierctl(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(courier_testing::process::binary("courierctl"));
    command
        .env_clear()
        .envs(env.service_env())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("running courierctl"))
        .await
        .unwrap()
}

async fn retry(env: &TestEnv, seq: i64) -> u64 {
    let stream = env.topology().events_stream();
    let retried = courierctl(env, &["parked", "retry", &stream, &seq.to_string()]).await;
    let stdout = String::from_utf8_lossy(&retried.stdout);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    stdout
        .trim()
        .rsplit('#')
        .next()
        .and_then(|seq| seq.parse().ok())
        .unwrap_or_else(|| panic!("a new sequence in {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_parked_start_is_published_as_an_event_and_the_campaign_completes() {
    let setup = Setup::new(3, unlimited_sandbox()).await;
    let env = &setup.env;
    let js = env.jetstream().await;
    let stack = Stack::start(
        env,
        &setup.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    let client = setup.pool.get().await.unwrap();
    wait_for_users(&client, 3, DEADLINE).await;
    let campaign = uuid::Uuid::now_v7();
    let id = campaign.to_string();
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: id.clone(),
        created_by: 1,
        audience: Audience::All.into(),
        content: Some(Content {
            kind: ContentKind::Text.into(),
            text: "once parked".into(),
            ..Default::default()
        }),
        options: Some(CampaignOptions::default()),
        // A campaign from before filters: the seed's audience only.
        ..Default::default()
    }));
    EventPublisher::new(js.clone(), env.topology())
        .publish(&created)
        .await
        .unwrap();
    wait_for_status(&client, campaign, "pending", DEADLINE).await;
    let started = Event::with_id(
        format!("{id}.started"),
        Payload::CampaignStarted(CampaignStarted {
            campaign_id: id.clone(),
            started_by: 1,
        }),
    );
    park(&setup, &started, 1_000).await;

    let seq = retry(env, 1_000).await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!((row.audience_size, row.delivered), (Some(3), 3), "{row:?}");
    assert_eq!(receipts(&setup.sandbox).len(), 3);
    let parked: i64 = client
        .query_one("SELECT count(*) FROM parked_messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(parked, 0);

    let republished = js
        .get_stream(env.topology().events_stream())
        .await
        .unwrap()
        .get_raw_message(seq)
        .await
        .unwrap();
    let header = |name: &str| {
        republished
            .headers
            .get(name)
            .map(|value| value.as_str().to_owned())
    };
    assert_eq!(
        header(EVENT_TYPE_HEADER).as_deref(),
        Some("CampaignStarted")
    );
    assert_eq!(
        header("Nats-Msg-Id").as_deref(),
        Some(started.event_id.as_str())
    );
    assert!(header("traceparent").is_some(), "{:?}", republished.headers);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_parked_resume_releases_held_items_and_a_retried_cancel_drops_them() {
    let setup = Setup::new(3, unlimited_sandbox()).await;
    let env = &setup.env;
    let js = env.jetstream().await;
    let topology = env.topology();
    // Projector and loader; the sender comes once both campaigns are paused.
    let stack = Stack::start(
        env,
        &setup.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 0,
        },
    );
    let client = setup.pool.get().await.unwrap();
    wait_for_users(&client, 3, DEADLINE).await;
    let resumed = start_text_campaign(&setup.commands, Audience::All, "resumed").await;
    let cancelled = start_text_campaign(&setup.commands, Audience::All, "cancelled").await;
    let work = topology.work_stream();
    for campaign in [resumed, cancelled] {
        let to_send =
            topology.work_subject(courier_core::topology::DEFAULT_BOT, &campaign.to_string());
        wait_until("the campaign fanned out", DEADLINE, || async {
            (messages_on(&js, &work, &to_send).await == 3).then_some(())
        })
        .await;
        setup
            .commands
            .change(campaign, Change::Pause { reason: "".into() }, 1)
            .await
            .unwrap();
        wait_for_status(&client, campaign, "paused", DEADLINE).await;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(courier_sender::run(
        sender_config(env, &setup.sandbox.url(), 100.0),
        shutdown.clone(),
    ));
    let held = |campaign: uuid::Uuid| topology.held_subject(&campaign.to_string());
    wait_until("every item set aside", DEADLINE, || async {
        let resumed = messages_on(&js, &work, &held(resumed)).await;
        let cancelled = messages_on(&js, &work, &held(cancelled)).await;
        (resumed == 3 && cancelled == 3).then_some(())
    })
    .await;

    let resume = Event::new(Payload::CampaignResumed(CampaignResumed {
        campaign_id: resumed.to_string(),
        resumed_by: 1,
    }));
    let cancel = Event::new(Payload::CampaignCancelled(CampaignCancelled {
        campaign_id: cancelled.to_string(),
        cancelled_by: 1,
    }));
    park(&setup, &resume, 1_000).await;
    park(&setup, &cancel, 1_001).await;
    retry(env, 1_000).await;
    retry(env, 1_001).await;

    let row = wait_for_status(&client, resumed, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 3, "{row:?}");
    wait_for_status(&client, cancelled, "cancelled", DEADLINE).await;
    wait_until(
        "the cancelled campaign's items dropped",
        DEADLINE,
        || async { (messages_on(&js, &work, &held(cancelled)).await == 0).then_some(()) },
    )
    .await;
    let texts: Vec<String> = setup
        .sandbox
        .deliveries()
        .into_iter()
        .filter_map(|delivery| delivery.text)
        .collect();
    assert_eq!(texts, ["resumed"; 3], "nothing of the cancelled campaign");
    shutdown.cancel();
    sender.await.unwrap().unwrap();
    stack.stop().await.unwrap();
}
