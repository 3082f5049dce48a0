//! The two-person rule: a campaign to at least APPROVAL_MIN_RECIPIENTS
//! waits until another admin approves it; the admin who created it cannot.

use courier_core::proto::v1::Language;
use courier_testing::wait_until;
use serde_json::json;

use crate::broadcast::to_summary;
use crate::{DEADLINE, Harness, OWNER, labels, text};

const ADMIN: i64 = 9_004;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_campaign_waits_for_another_admin_and_its_creator_cannot_approve_it() {
    let mut harness = Harness::start(1000.0).await;
    harness.stop_bot().await;
    let mut config = harness.config();
    config.broadcast.approval_min_recipients = 2;
    harness.start_bot(config);
    harness
        .users(&[(7_201, Language::En, true), (7_202, Language::En, true)])
        .await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, &format!("/admins add {ADMIN}"));
    harness.wait_for(OWNER, after, "is an admin now").await;

    let summary = to_summary(&harness, OWNER, "en", json!({ "text": "Big news" }), None).await;
    let after = summary["message_id"].as_i64().unwrap() - 1;
    harness.press(OWNER, &summary, "🚀 Start");
    let waiting = harness
        .wait_for(OWNER, after, "needs another admin's approval (2 recipients")
        .await;
    let id = text(&waiting).split_whitespace().nth(2).unwrap().to_owned();
    let card = harness.wait_for(OWNER, after, &format!("\nid {id}")).await;
    assert!(
        text(&card).contains("Waiting for another admin"),
        "{}",
        text(&card)
    );
    assert_eq!(labels(&card), ["✅ Approve", "✖️ Cancel"]);

    // Its creator cannot approve it.
    let press = harness.press(OWNER, &card, "✅ Approve");
    let answer = wait_until("the answer", DEADLINE, || async {
        harness
            .sandbox
            .callback_answers()
            .into_iter()
            .find(|answer| answer.callback_query_id == press)
    })
    .await;
    let said = answer.text.unwrap_or_default();
    assert!(said.contains("you asked for this approval"), "{said}");
    assert!(harness.messages(7_201).is_empty(), "nothing sent yet");

    // The other admin was asked, saw the message, and approves.
    harness
        .wait_for(ADMIN, 0, "asks you to approve “Big news”")
        .await;
    harness.wait_for(ADMIN, 0, "Big news").await;
    let their_card = harness.wait_for(ADMIN, 0, &format!("\nid {id}")).await;
    harness.press(ADMIN, &their_card, "✅ Approve");
    for user in [7_201, 7_202] {
        harness.wait_for(user, 0, "Big news").await;
    }
    let campaign: uuid::Uuid = id.parse().unwrap();
    wait_until("completed", DEADLINE, || async {
        let row = harness
            .db()
            .await
            .query_opt(
                "SELECT 1 FROM campaigns WHERE campaign_id = $1 AND status = 'completed'",
                &[&campaign],
            )
            .await
            .unwrap();
        row.map(|_| ())
    })
    .await;
    harness.stop().await;
}
