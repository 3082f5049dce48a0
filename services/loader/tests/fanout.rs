//! Fan-out against real NATS and Postgres: one work item per recipient,
//! and a loader stopped mid-way resumes without enqueueing anyone twice.

use std::collections::HashSet;
use std::time::Duration;

use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Audience, CampaignOptions, Content, ContentKind, Event, Language, SendMessage, UserRegistered,
    event::Payload,
};
use courier_loader::fanout::{FanOut, Loader};
use courier_testing::{TestEnv, wait_until};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const AUDIENCE: i64 = 35;

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_fan_out_resumes_without_duplicates() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let publisher = EventPublisher::new(js.clone(), env.topology());
    for user_id in 1..=AUDIENCE {
        let event = Event::new(Payload::UserRegistered(UserRegistered {
            user_id,
            chat_id: user_id,
            language: Language::En.into(),
        }));
        publisher.publish(&event).await.unwrap();
    }
    let commands = CampaignCommands::new(js.clone(), env.topology())
        .await
        .unwrap();
    let campaign = commands
        .create_and_start(NewCampaign {
            created_by: 1,
            audience: Audience::All,
            content: Content {
                kind: ContentKind::Text.into(),
                text: "hi".into(),
                ..Default::default()
            },
            options: CampaignOptions::default(),
        })
        .await
        .unwrap();

    // The projector fixes the audience; the loader itself is driven by hand.
    let shutdown = CancellationToken::new();
    let projector = tokio::spawn(courier_projector::run(
        courier_projector::ProjectorConfig {
            nats: env.nats.clone(),
            database: env.database.clone(),
        },
        shutdown.clone(),
    ));
    let pool = env.pool().await;
    let loader = Loader {
        js: js.clone(),
        topology: env.topology(),
        pool: pool.clone(),
        batch_size: 10,
    };
    wait_until("campaign projected", Duration::from_secs(30), || async {
        match loader.fan_out(campaign, || async { false }).await.unwrap() {
            FanOut::NotProjectedYet => None,
            other => Some(other),
        }
    })
    .await;
    // Stopped after the first batch; a new run picks up after it.
    assert_eq!(
        loader.fan_out(campaign, || async { true }).await.unwrap(),
        FanOut::Done {
            enqueued: (AUDIENCE - 10) as u64
        }
    );
    // Finished campaigns are not fanned out again.
    assert_eq!(
        loader.fan_out(campaign, || async { true }).await.unwrap(),
        FanOut::Done { enqueued: 0 }
    );

    let mut work = js.get_stream(env.topology().work_stream()).await.unwrap();
    assert_eq!(work.info().await.unwrap().state.messages, AUDIENCE as u64);
    let mut users = HashSet::new();
    for seq in 1..=AUDIENCE as u64 {
        let message = work.get_raw_message(seq).await.unwrap();
        users.insert(
            SendMessage::decode(message.payload.as_ref())
                .unwrap()
                .user_id,
        );
    }
    assert_eq!(users, (1..=AUDIENCE).collect());
    shutdown.cancel();
    projector.await.unwrap().unwrap();
}
