//! The loader recognises an event by what it is, not by its headers: a
//! campaign's start or resume published without any (as `courierctl
//! parked retry` once republished them) still fans the campaign out or
//! releases its held items.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::time::Duration;

use async_nats::HeaderMap;
use courier_core::commands::{CampaignCommands, Change};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Audience, CampaignCreated, CampaignOptions, CampaignResumed, CampaignStarted, Content,
    ContentKind, Event, Language, SendMessage, event::Payload,
};
use courier_core::topology::ATTEMPTS_HEADER;
use courier_testing::campaigns::{register_users, wait_for_status, wait_for_users};
use courier_testing::{TestEnv, messages_on, wait_until};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_start_and_a_resume_published_without_headers_are_handled() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let publisher = EventPublisher::new(js.clone(), topology.clone());
    let users: Vec<_> = (1..=3).map(|id| (id, Language::En, true)).collect();
    register_users(&publisher, &users).await;
    let projector = env.start_projector();
    let shutdown = CancellationToken::new();
    let loader = tokio::spawn(courier_loader::run(
        courier_loader::LoaderConfig {
            nats: env.nats.clone(),
            database: env.database.clone(),
            batch_size: 100,
        },
        shutdown.clone(),
    ));
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 3, DEADLINE).await;

    let campaign = uuid::Uuid::now_v7();
    let id = campaign.to_string();
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: id.clone(),
        created_by: 1,
        audience: Audience::All.into(),
        content: Some(Content {
            kind: ContentKind::Text.into(),
            text: "hi".into(),
            ..Default::default()
        }),
        options: Some(CampaignOptions::default()),
        ..Default::default()
    }));
    publisher.publish(&created).await.unwrap();
    let bare = |payload| -> bytes::Bytes { Event::new(payload).encode_to_vec().into() };
    let subject = topology.campaign_subject(&id);
    js.publish(
        subject.clone(),
        bare(Payload::CampaignStarted(CampaignStarted {
            campaign_id: id.clone(),
            started_by: 1,
        })),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let work = topology.work_stream();
    let send_subject = topology.work_subject(courier_core::topology::DEFAULT_BOT, &id);
    wait_until("the campaign fanned out", DEADLINE, || async {
        (messages_on(&js, &work, &send_subject).await == 3).then_some(())
    })
    .await;

    // Paused, with two items a sender set aside.
    let commands = CampaignCommands::new(js.clone(), topology.clone())
        .await
        .unwrap();
    commands
        .change(campaign, Change::Pause { reason: "".into() }, 1)
        .await
        .unwrap();
    wait_for_status(&client, campaign, "paused", DEADLINE).await;
    let held_subject = topology.held_subject(&id);
    for user_id in 1..=2 {
        let item = SendMessage {
            campaign_id: id.clone(),
            user_id,
            chat_id: user_id,
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(ATTEMPTS_HEADER, "1");
        js.publish_with_headers(held_subject.clone(), headers, item.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    js.publish(
        subject,
        bare(Payload::CampaignResumed(CampaignResumed {
            campaign_id: id.clone(),
            resumed_by: 1,
        })),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    wait_until("the held items released", DEADLINE, || async {
        let held = messages_on(&js, &work, &held_subject).await;
        let to_send = messages_on(&js, &work, &send_subject).await;
        (held == 0 && to_send == 5).then_some(())
    })
    .await;
    wait_for_status(&client, campaign, "sending", DEADLINE).await;

    shutdown.cancel();
    loader.await.unwrap().unwrap();
    projector.stop().await;
}
