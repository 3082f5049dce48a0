//! Senders against the Telegram sandbox: each failure class ends where
//! `classify` says, and retries happen through redelivery.

use std::time::Duration;

use async_nats::HeaderMap;
use courier_core::proto::v1::{
    AlbumItem, Audience, Content, ContentKind, DeliveryOutcome, Failed, SendMessage,
    delivery_outcome,
};
use courier_core::topology::{
    ATTEMPTS_HEADER, MAYBE_DUPLICATE_HEADER, SENDER_MAX_ATTEMPTS, SENDERS_CONSUMER,
};
use courier_e2e::{SenderSettings, Setup, Stack, sender_config, unlimited_sandbox};
use courier_testing::campaigns::{
    CampaignRow, start_campaign, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::wait_until;
use prost::Message as _;
use telegram_sandbox::{Failure, SandboxConfig, most_in_any_window};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_through_redelivery() {
    let s = Setup::new(3, unlimited_sandbox()).await;
    s.sandbox.fail_next(2, Failure::InternalServerError);
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 3, DEADLINE).await;
    let campaign = start_text_campaign(&s.commands, Audience::All, "retry me").await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 3, "{row:?}");
    assert_eq!(
        s.sandbox.deliveries().len(),
        3,
        "each recipient exactly once"
    );
    assert_eq!(s.sandbox.stats().errors_by_code.get(&500), Some(&2));
    let retried: i64 = client
        .query_one(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND attempts > 1",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert!(retried >= 1, "the failed sends came back as new attempts");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_defers_the_item_for_retry_after() {
    let s = Setup::new(2, unlimited_sandbox()).await;
    s.sandbox.inject_429(1);
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 2, DEADLINE).await;
    let campaign = start_text_campaign(&s.commands, Audience::All, "slow down").await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 2, "{row:?}");
    assert_eq!(s.sandbox.deliveries().len(), 2);
    assert!(s.sandbox.stats().too_many_requests >= 1);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_content_is_recorded_as_failed_with_the_reason() {
    let s = Setup::new(2, unlimited_sandbox()).await;
    s.sandbox.break_file("BROKEN_FILE_ID");
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
    );
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 2, DEADLINE).await;
    let content = Content {
        kind: ContentKind::Photo.into(),
        file_id: "BROKEN_FILE_ID".into(),
        text: "caption".into(),
        ..Default::default()
    };
    let campaign = start_campaign(&s.commands, Audience::All, content).await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(
        row,
        CampaignRow {
            status: "completed".into(),
            audience_size: Some(2),
            delivered: 0,
            not_alive: 0,
            failed: 2,
        }
    );
    let reason: String = client
        .query_one(
            "SELECT reason FROM deliveries WHERE campaign_id = $1 LIMIT 1",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, "wrong file identifier/HTTP URL specified");
    stack.stop().await.unwrap();
}

/// A recipient whose last allowed attempt fails too is recorded as failed
/// with the reason, so the campaign can still complete. (The item carries
/// the attempts it made before being set aside, as a held item does, so
/// the test need not wait through nine growing retry delays.)
#[tokio::test(flavor = "multi_thread")]
async fn the_last_attempt_failing_records_the_recipient_as_failed() {
    let s = Setup::new(1, unlimited_sandbox()).await;
    s.sandbox.fail_next(1, Failure::BadGateway);
    // The test enqueues the item itself, in the loader's place.
    let stack = Stack::start_without(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 1,
        },
        Some("courier-loader"),
    );
    let campaign = start_text_campaign(&s.commands, Audience::All, "last try").await;
    // Senders read the content from the read model: an item that came
    // before it would be deferred, one more attempt.
    wait_for_status(&s.pool.get().await.unwrap(), campaign, "sending", DEADLINE).await;
    let earlier = SENDER_MAX_ATTEMPTS - 1;
    let item = enqueue_for_user_1(&s, campaign, ATTEMPTS_HEADER, &earlier.to_string()).await;
    let topology = s.env.topology();
    let js = s.env.jetstream().await;
    let outcomes = js.get_stream(topology.outcomes_stream()).await.unwrap();
    let subject = topology.outcome_subject(&item.campaign_id, 1);
    let recorded = wait_until("the recipient's outcome", DEADLINE, || async {
        outcomes.direct_get_last_for_subject(&subject).await.ok()
    })
    .await;
    let outcome = DeliveryOutcome::decode(recorded.payload).unwrap();
    assert_eq!(outcome.attempts as u64, SENDER_MAX_ATTEMPTS);
    match outcome.result {
        Some(delivery_outcome::Result::Failed(Failed { reason, .. })) => assert!(
            reason.starts_with(&format!("gave up after {SENDER_MAX_ATTEMPTS} attempts")),
            "{reason}"
        ),
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(s.sandbox.stats().errors_by_code.get(&502), Some(&1));
    assert!(s.sandbox.deliveries().is_empty());
    stack.stop().await.unwrap();
}

/// A second copy of a delivered recipient's work item, as a loader
/// recovering from a crash past the dedup window enqueues (marked as a
/// possible duplicate), is skipped: the recipient gets one message.
#[tokio::test(flavor = "multi_thread")]
async fn a_marked_second_copy_of_a_delivered_item_is_not_sent() {
    let s = Setup::new(1, unlimited_sandbox()).await;
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 100.0,
            replicas: 0,
        },
    );
    // Per-chat spacing off: the copy must meet the outcome check on its
    // first delivery, not come back later as a redelivery.
    let sender_stop = CancellationToken::new();
    let sender = tokio::spawn(courier_sender::run(
        courier_sender::SenderConfig {
            chat_rate_limit: 1000.0,
            ..sender_config(&s.env, &s.sandbox.url(), 100.0)
        },
        sender_stop.clone(),
    ));
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 1, DEADLINE).await;
    let campaign = start_text_campaign(&s.commands, Audience::All, "once").await;
    wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(s.sandbox.deliveries().len(), 1);

    enqueue_for_user_1(&s, campaign, MAYBE_DUPLICATE_HEADER, "1").await;
    let topology = s.env.topology();
    let js = s.env.jetstream().await;
    let consumer = js
        .get_stream(topology.work_stream())
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(SENDERS_CONSUMER)
        .await
        .unwrap();
    wait_until("the copy handled", DEADLINE, || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.ok()?;
            let handled = info.delivered.stream_sequence >= 2
                && info.num_pending == 0
                && info.num_ack_pending == 0;
            handled.then_some(())
        }
    })
    .await;
    assert_eq!(s.sandbox.deliveries().len(), 1, "the copy was sent");
    sender_stop.cancel();
    sender.await.unwrap().unwrap();
    stack.stop().await.unwrap();
}

/// Enqueues a work item for user 1 of `campaign` with one header, in the
/// loader's place (as a held or a republished item would come back).
async fn enqueue_for_user_1(
    s: &Setup,
    campaign: uuid::Uuid,
    header: &str,
    value: &str,
) -> SendMessage {
    let mut headers = HeaderMap::new();
    headers.insert(header, value);
    let item = SendMessage {
        campaign_id: campaign.to_string(),
        user_id: 1,
        chat_id: 1,
        ..Default::default()
    };
    s.env
        .jetstream()
        .await
        .publish_with_headers(
            s.env
                .topology()
                .work_subject(item.bot_id, &item.campaign_id),
            headers,
            item.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    item
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_go_on_while_the_projector_is_stuck() {
    const USERS: i64 = 40;
    let s = Setup::new(USERS, unlimited_sandbox()).await;
    let stack = Stack::start(
        &s.env,
        &s.sandbox.url(),
        SenderSettings {
            rate_limit: 20.0,
            replicas: 1,
        },
    );
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let campaign = start_text_campaign(&s.commands, Audience::All, "unstoppable").await;
    let js = s.env.jetstream().await;
    wait_until("every item enqueued", DEADLINE, || async {
        let mut work = js.get_stream(s.env.topology().work_stream()).await.ok()?;
        let enqueued = work.info().await.ok()?.state.last_sequence;
        (enqueued >= USERS as u64).then_some(())
    })
    .await;
    // The projector's next write to the campaigns table waits on this lock
    // (as the sender's reads once did).
    let mut locker = s.pool.get().await.unwrap();
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    wait_until("every recipient sent to", DEADLINE, || async {
        (s.sandbox.deliveries().len() == USERS as usize).then_some(())
    })
    .await;
    lock.rollback().await.unwrap();
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(i64::from(row.delivered), USERS, "{row:?}");
    stack.stop().await.unwrap();
}

/// An album of N is N messages for Telegram's limits: with Telegram's
/// limits on, two senders keep every sliding second at 30 messages or
/// fewer, counting each item, and Telegram never answers 429; every
/// recipient gets the whole album once, its items' ids recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alone_an_album_campaign_counts_each_item_against_the_limit() {
    const USERS: i64 = 40;
    let s = Setup::new(USERS, SandboxConfig::default()).await;
    let stack = s.stack(30.0, 2);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let item = |kind: ContentKind, file_id: &str| AlbumItem {
        kind: kind.into(),
        file_id: file_id.into(),
        has_spoiler: false,
    };
    let content = Content {
        kind: ContentKind::Album.into(),
        text: "Three views".into(),
        album: vec![
            item(ContentKind::Photo, "p1"),
            item(ContentKind::Video, "v1"),
            item(ContentKind::Photo, "p2"),
        ],
        ..Default::default()
    };
    let campaign = start_campaign(&s.commands, Audience::All, content).await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!((row.delivered, row.failed), (USERS as i32, 0));
    let deliveries = s.sandbox.deliveries();
    assert_eq!(deliveries.len() as i64, 3 * USERS);
    for chat in 1..=USERS {
        let messages = s.sandbox.messages_to(chat);
        assert_eq!(messages.len(), 3, "chat {chat}");
        assert_eq!(messages[0]["caption"], "Three views");
    }
    let accepted: Vec<_> = deliveries.iter().map(|d| d.accepted_at).collect();
    let most = most_in_any_window(&accepted, Duration::from_secs(1));
    assert!(most <= 30, "{most} messages within one second");
    assert_eq!(s.sandbox.stats().too_many_requests, 0, "no 429");
    let recorded: i64 = client
        .query_one(
            "SELECT count(*) FROM deliveries
             WHERE campaign_id = $1 AND cardinality(album_message_ids) = 3",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, USERS);
    // The albums' message ids replay into the same read model.
    courier_testing::read_model::assert_replays_identically(&s.env, &client, DEADLINE).await;
    stack.stop().await.unwrap();
}

/// A paid campaign whose bot's balance runs low moves to the free lane
/// before Telegram refuses anything: the senders ask for the balance while
/// they send paid, and one that cannot pay for ten more seconds of it
/// marks the Stars out for every replica. Nobody is lost, nobody is sent
/// twice, and the balance is never exhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alone_a_paid_campaign_whose_balance_runs_low_moves_to_the_free_lane() {
    use courier_core::commands::{Begin, NewCampaign};
    use courier_core::proto::v1::CampaignOptions;

    const USERS: i64 = 3000;
    // 900 Stars pay for about nine seconds at 1,000/s: "low" from the start.
    let sandbox = SandboxConfig {
        rate_limit: 0,
        stars_balance: 900,
        ..SandboxConfig::default()
    };
    let s = Setup::new(USERS, sandbox).await;
    let stack = s.stack(400.0, 2);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let campaign = s
        .commands
        .create_and_begin(
            NewCampaign {
                bot_id: courier_core::topology::DEFAULT_BOT,
                id: uuid::Uuid::now_v7(),
                created_by: 1,
                audience: courier_core::audience::from_legacy(Audience::All),
                content: Content {
                    kind: ContentKind::Text.into(),
                    text: "Flash sale".into(),
                    ..Default::default()
                },
                variants: Vec::new(),
                options: CampaignOptions {
                    paid_broadcast: true,
                    ..Default::default()
                },
                title: String::new(),
            },
            Begin::Now,
        )
        .await
        .unwrap();
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!((row.delivered, row.failed), (USERS as i32, 0));
    let deliveries = s.sandbox.deliveries();
    assert_eq!(deliveries.len() as i64, USERS, "each recipient once");
    let paid = deliveries.iter().filter(|d| d.allow_paid_broadcast).count();
    assert!(paid > 0 && paid < USERS as usize, "{paid} of {USERS} paid");
    // Once one replica closed the paid lane, every replica saw it within
    // its next read of the mark (a second), and it stayed closed.
    let first_free = deliveries
        .iter()
        .find(|d| !d.allow_paid_broadcast)
        .expect("a free send")
        .accepted_at;
    let last_paid = deliveries
        .iter()
        .filter(|d| d.allow_paid_broadcast)
        .map(|d| d.accepted_at)
        .max()
        .expect("a paid send");
    assert!(
        last_paid <= first_free + Duration::from_secs(2),
        "paid {:?} after the lane closed",
        last_paid - first_free
    );
    let spent = s.sandbox.stars_spent(courier_e2e::BOT_TOKEN);
    assert!(
        spent < 900 * 1_000_000_000,
        "the balance was exhausted: {spent}"
    );
    // SREs see the lane closed: the gauge counts the bot once per sender
    // (both run in this process, so it counts it twice).
    let closed = &courier_core::metrics::sender().paid_lane_closed;
    wait_until("the paid lane shown closed", DEADLINE, || async {
        (closed.get() == 2.0).then_some(())
    })
    .await;
    stack.stop().await.unwrap();
}
