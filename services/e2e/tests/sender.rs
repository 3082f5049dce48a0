//! Senders against the Telegram sandbox: each failure class ends where
//! `classify` says, and retries happen through redelivery.

use std::time::Duration;

use courier_core::proto::v1::{Audience, Content, ContentKind};
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{
    CampaignRow, start_campaign, start_text_campaign, wait_for_status, wait_for_users,
};
use telegram_sandbox::Failure;

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
