//! Fan-out against real NATS and Postgres: one work item per recipient,
//! and a loader stopped mid-way resumes without enqueueing anyone twice.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::collections::HashSet;
use std::time::Duration;

use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    AudienceFilter, CampaignOptions, Content, ContentKind, Event, Language, SendMessage,
    UserRegistered, event::Payload,
};
use courier_core::topology::MAYBE_DUPLICATE_HEADER;
use courier_loader::fanout::{FanOut, Loader};
use courier_testing::{TestEnv, wait_until};
use prost::Message as _;

const AUDIENCE: i64 = 35;

/// A campaign to AUDIENCE users, projected (its audience fixed), and a
/// loader driven by hand that has published the first batch of 10 and
/// stopped.
struct Started {
    env: TestEnv,
    js: async_nats::jetstream::Context,
    loader: Loader,
    campaign: uuid::Uuid,
    projector: courier_testing::Projector,
}

async fn start_and_publish_a_first_batch() -> Started {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let publisher = EventPublisher::new(js.clone(), env.topology());
    for user_id in 1..=AUDIENCE {
        let event = Event::new(Payload::UserRegistered(UserRegistered {
            user_id,
            chat_id: user_id,
            language: Language::En.into(),
            language_chosen: true,
            ..Default::default()
        }));
        publisher.publish(&event).await.unwrap();
    }
    let commands = CampaignCommands::new(js.clone(), env.topology())
        .await
        .unwrap();
    let campaign = commands
        .create_and_start(NewCampaign {
            bot_id: courier_core::topology::DEFAULT_BOT,
            id: uuid::Uuid::now_v7(),
            created_by: 1,
            audience: AudienceFilter::default(),
            content: Content {
                kind: ContentKind::Text.into(),
                text: "hi".into(),
                ..Default::default()
            },
            variants: Vec::new(),
            options: CampaignOptions::default(),
            title: String::new(),
        })
        .await
        .unwrap();

    // The projector fixes the audience; the loader itself is driven by hand.
    let projector = env.start_projector();
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
    Started {
        env,
        js,
        loader,
        campaign,
        projector,
    }
}

impl Started {
    async fn stop(self) {
        self.projector.stop().await;
    }
}

async fn work_items(
    js: &async_nats::jetstream::Context,
    env: &TestEnv,
) -> Vec<(SendMessage, bool)> {
    let mut work = js.get_stream(env.topology().work_stream()).await.unwrap();
    let count = work.info().await.unwrap().state.messages;
    let mut items = Vec::new();
    for seq in 1..=count {
        let message = work.get_raw_message(seq).await.unwrap();
        let marked = message.headers.get(MAYBE_DUPLICATE_HEADER).is_some();
        items.push((
            SendMessage::decode(message.payload.as_ref()).unwrap(),
            marked,
        ));
    }
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_fan_out_resumes_without_duplicates() {
    let started = start_and_publish_a_first_batch().await;
    let (env, js, loader, campaign) =
        (&started.env, &started.js, &started.loader, started.campaign);

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

    let items = work_items(js, env).await;
    assert_eq!(items.len(), AUDIENCE as usize);
    let users: HashSet<i64> = items.iter().map(|(item, _)| item.user_id).collect();
    assert_eq!(users, (1..=AUDIENCE).collect());
    // A clean stop and resume enqueue nothing twice: nothing is marked.
    assert!(items.iter().all(|(_, marked)| !marked));
    started.stop().await;
}

/// A loader that crashed while publishing its second batch (users 11–20)
/// republishes that batch on restart. Past the dedup window both copies
/// would stay in the stream, so the republished ones are marked for the
/// senders to check for an outcome; the batches after it are not.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_republished_after_a_crash_is_marked_as_a_possible_duplicate() {
    let started = start_and_publish_a_first_batch().await;
    let (env, js, loader, campaign) =
        (&started.env, &started.js, &started.loader, started.campaign);
    // What the crashed run left: it had noted the second batch's reach,
    // and its cursor still stood after the first.
    let client = env.pool().await.get().await.unwrap();
    client
        .execute(
            "UPDATE loader_cursors SET publishing_through = 20 WHERE campaign_id = $1",
            &[&campaign],
        )
        .await
        .unwrap();
    loader.fan_out(campaign, || async { true }).await.unwrap();
    let marked: Vec<i64> = work_items(js, env)
        .await
        .into_iter()
        .filter(|(_, marked)| *marked)
        .map(|(item, _)| item.user_id)
        .collect();
    assert_eq!(marked, (11..=20).collect::<Vec<_>>());
    started.stop().await;
}
