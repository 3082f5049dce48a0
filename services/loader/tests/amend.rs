//! Amendments against real NATS and Postgres: an edit enqueues exactly the
//! delivered messages that still need it, a recall every one sent within
//! Telegram's 48 hours, and an amendment the projector has not applied
//! yet, or that a later one replaces, enqueues nothing.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    Amend, AmendKind, Audience, Content, ContentKind, Delivered, DeliveryOutcome, Language,
    NotAlive, SendMessage, delivery_outcome,
};
use courier_loader::amend::{Amended, Amendment};
use courier_loader::fanout::Loader;
use courier_testing::campaigns::{
    publish_outcome, register_users, start_text_campaign, wait_for_users,
};
use courier_testing::{TestEnv, wait_until};
use prost::Message as _;

const DEADLINE: Duration = Duration::from_secs(30);

/// The amendments in the work stream: (user, kind, message id, revision).
async fn enqueued(env: &TestEnv) -> Vec<(i64, AmendKind, i64, u32)> {
    let js = env.jetstream().await;
    let mut work = js.get_stream(env.topology().work_stream()).await.unwrap();
    let state = &work.info().await.unwrap().state;
    let (first, last) = (state.first_sequence, state.last_sequence);
    let mut items = Vec::new();
    for seq in first..=last {
        let Ok(message) = work.get_raw_message(seq).await else {
            continue;
        };
        let item = SendMessage::decode(message.payload.as_ref()).unwrap();
        let amend = item.amend.expect("only amendments were enqueued");
        items.push((item.user_id, amend.kind(), amend.message_id, amend.revision));
    }
    items.sort_unstable_by_key(|item| (item.1 as i32, item.0));
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn amendments_enqueue_exactly_the_delivered_messages_that_need_them() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let users: Vec<_> = (1..=6).map(|id| (id, Language::En, true)).collect();
    register_users(&EventPublisher::new(js.clone(), topology.clone()), &users).await;
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 6, DEADLINE).await;
    let commands = CampaignCommands::new(js.clone(), topology.clone())
        .await
        .unwrap();
    let campaign = start_text_campaign(&commands, Audience::All, "Sale tomorow").await;
    let loader = Loader {
        js: js.clone(),
        topology: topology.clone(),
        pool: pool.clone(),
        batch_size: 2,
    };

    // Edited to revision 1 once the sends below are out.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let three_days_ago = now - 72 * 3600 * 1000;
    let delivered = |message_id, revision| {
        delivery_outcome::Result::Delivered(Delivered {
            message_id,
            revision,
            ..Default::default()
        })
    };
    for user in [1, 2, 4] {
        publish_outcome(
            &js,
            &topology,
            campaign,
            user,
            now,
            delivered(100 + user, 0),
        )
        .await;
    }
    // User 3 was sent the corrected text already; user 5 three days ago.
    publish_outcome(&js, &topology, campaign, 3, now, delivered(103, 1)).await;
    publish_outcome(
        &js,
        &topology,
        campaign,
        5,
        three_days_ago,
        delivered(105, 0),
    )
    .await;
    let blocked = delivery_outcome::Result::NotAlive(NotAlive {
        reason: "Forbidden: bot was blocked by the user".into(),
    });
    publish_outcome(&js, &topology, campaign, 6, now, blocked).await;
    let corrected = Content {
        kind: ContentKind::Text.into(),
        text: "Sale tomorrow".into(),
        ..Default::default()
    };
    let revision = commands.edit(campaign, 1, corrected, vec![]).await.unwrap();
    assert_eq!(revision, 1);
    // User 2's message was edited already (an earlier run, say).
    let edit = Amend {
        kind: AmendKind::Edit.into(),
        message_id: 102,
        revision: 1,
        ..Default::default()
    };
    let outcome = DeliveryOutcome {
        campaign_id: campaign.to_string(),
        user_id: 2,
        chat_id: 2,
        occurred_at_ms: now,
        attempts: 1,
        amend: Some(edit.clone()),
        result: Some(delivered(102, 1)),
    };
    js.send_publish(
        topology.amend_outcome_subject(&campaign.to_string(), 2, &edit),
        PublishMessage::build().payload(outcome.encode_to_vec().into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    wait_until("outcomes and the edit projected", DEADLINE, || async {
        let row = client
            .query_one(
                "SELECT COALESCE((SELECT revision FROM campaigns WHERE campaign_id = $1), -1),
                        (SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND status <> 'pending'),
                        (SELECT count(*) FROM amendments WHERE campaign_id = $1)",
                &[&campaign],
            )
            .await
            .unwrap();
        let projected: (i32, i64, i64) = (row.get(0), row.get(1), row.get(2));
        (projected == (1, 6, 1)).then_some(())
    })
    .await;

    // A revision the read model does not have yet waits; an older one is
    // covered by the newer one's job.
    assert_eq!(
        loader.amend(campaign, Amendment::Edit(2)).await.unwrap(),
        Amended::NotProjectedYet
    );
    assert_eq!(
        loader.amend(campaign, Amendment::Recall).await.unwrap(),
        Amended::NotProjectedYet
    );
    assert_eq!(
        loader.amend(campaign, Amendment::Edit(1)).await.unwrap(),
        Amended::Done { enqueued: 3 }
    );
    assert_eq!(
        enqueued(&env).await,
        [
            (1, AmendKind::Edit, 101, 1),
            (4, AmendKind::Edit, 104, 1),
            (5, AmendKind::Edit, 105, 1),
        ],
        "not user 2 (edited), 3 (sent as corrected) or 6 (blocked)"
    );

    commands.recall(campaign, 1).await.unwrap();
    wait_until("the recall projected", DEADLINE, || async {
        client
            .query_opt(
                "SELECT 1 FROM campaigns WHERE campaign_id = $1 AND recalled_at IS NOT NULL",
                &[&campaign],
            )
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
    assert_eq!(
        loader.amend(campaign, Amendment::Edit(1)).await.unwrap(),
        Amended::Superseded,
        "nothing is edited after a recall"
    );
    assert_eq!(
        loader.amend(campaign, Amendment::Recall).await.unwrap(),
        Amended::Done { enqueued: 4 }
    );
    let deletions: Vec<_> = enqueued(&env)
        .await
        .into_iter()
        .filter(|item| item.1 == AmendKind::Delete)
        .map(|(user, _, message, _)| (user, message))
        .collect();
    assert_eq!(
        deletions,
        [(1, 101), (2, 102), (3, 103), (4, 104)],
        "not user 5's, sent three days before the recall"
    );
    projector.stop().await;
}
