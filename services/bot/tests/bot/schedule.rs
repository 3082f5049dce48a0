//! Scheduling from the dialog: the admin's time zone asked once, a preset
//! or a typed time shown on the summary, Schedule; then Move and Cancel on
//! the card, before the campaign starts.

use chrono::{DateTime, Utc};
use courier_core::proto::v1::Language;
use courier_core::schedule;
use courier_testing::wait_until;
use serde_json::json;

use crate::broadcast::to_summary;
use crate::{DEADLINE, Harness, OWNER, labels, text};

/// When the read model says the campaign starts, once it is `status`.
async fn scheduled_at(harness: &Harness, campaign: &str, status: &str) -> Option<DateTime<Utc>> {
    let id: uuid::Uuid = campaign.parse().expect("a campaign id");
    let row = harness
        .db()
        .await
        .query_opt(
            "SELECT scheduled_at FROM campaigns WHERE campaign_id = $1 AND status = $2",
            &[&id, &status],
        )
        .await
        .expect("reading the campaign")?;
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_schedules_moves_and_cancels_a_campaign_in_their_time_zone() {
    let harness = Harness::start(1000.0).await;
    harness
        .users(&[(7_001, Language::En, true), (7_002, Language::En, true)])
        .await;
    let summary = to_summary(&harness, OWNER, "en", json!({ "text": "Later" }), None).await;
    let summary_id = summary["message_id"].as_i64().unwrap();
    assert!(text(&summary).contains("Starts: when you press Start"));

    // First time: the time zone, then the time.
    harness.press(OWNER, &summary, "🕑 Starts now");
    harness
        .wait_for(OWNER, summary_id, "Which time zone are you in?")
        .await;
    harness.say(OWNER, "Mars/Olympus");
    harness
        .wait_for(OWNER, summary_id, "\"Mars/Olympus\" is not a time zone")
        .await;
    harness.say(OWNER, "europe/moscow");
    let question = harness
        .wait_for(OWNER, summary_id, "Noted: Europe/Moscow")
        .await;
    harness.say(OWNER, "soon");
    harness
        .wait_for(
            OWNER,
            summary_id,
            "\"soon\" is not a time courier understands",
        )
        .await;
    let asked_at = Utc::now();
    harness.press(OWNER, &question, "In 1 hour");
    harness
        .wait_for(OWNER, summary_id, "confirm on the summary above")
        .await;
    let summary = harness
        .wait_for(OWNER, summary_id - 1, "(Europe/Moscow)")
        .await;
    assert!(
        labels(&summary).contains(&"🗓 Schedule".to_owned()),
        "{:?}",
        labels(&summary)
    );

    harness.press(OWNER, &summary, "🗓 Schedule");
    let scheduled = harness
        .wait_for(OWNER, summary_id - 1, "Scheduled campaign")
        .await;
    let id = text(&scheduled)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    let at = wait_until("scheduled in the read model", DEADLINE, || {
        scheduled_at(&harness, &id, "scheduled")
    })
    .await;
    let in_an_hour = at - asked_at - chrono::Duration::hours(1);
    assert!(
        in_an_hour >= chrono::Duration::zero() && in_an_hour < chrono::Duration::seconds(30),
        "an hour after the press: {at}"
    );
    let card = harness
        .wait_for(OWNER, summary_id, &format!("\nid {id}"))
        .await;
    assert!(
        text(&card).contains("Starts 20") && text(&card).contains("MSK (Europe/Moscow)"),
        "in the admin's zone: {}",
        text(&card)
    );
    assert_eq!(labels(&card), ["🕑 Move", "✖️ Cancel"]);

    // Move it: the zone is remembered, the time typed.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &card, "🕑 Move");
    harness
        .wait_for(
            OWNER,
            after,
            "When should it start? Choose below, or send a time in Europe/Moscow",
        )
        .await;
    let moscow = schedule::parse_zone("Europe/Moscow").unwrap();
    let tomorrow = schedule::parse_start("tomorrow 10:00", moscow, Utc::now()).unwrap();
    harness.say(OWNER, "tomorrow 10:00");
    harness.wait_for(OWNER, after, "now starts").await;
    wait_until("moved in the read model", DEADLINE, || async {
        (scheduled_at(&harness, &id, "scheduled").await == Some(tomorrow)).then_some(())
    })
    .await;

    // Cancel it before it starts: nobody gets anything.
    let card = harness
        .wait_for(OWNER, summary_id, &format!("\nid {id}"))
        .await;
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &card, "✖️ Cancel");
    let question = harness
        .wait_for(
            OWNER,
            after,
            "It will not start; nothing was sent. This cannot be undone.",
        )
        .await;
    harness.press(OWNER, &question, "✖️ Yes, cancel it");
    wait_until("cancelled", DEADLINE, || async {
        let id: uuid::Uuid = id.parse().unwrap();
        let row = harness
            .db()
            .await
            .query_opt(
                "SELECT 1 FROM campaigns WHERE campaign_id = $1 AND status = 'cancelled'",
                &[&id],
            )
            .await
            .unwrap();
        row.map(|_| ())
    })
    .await;
    for user in [7_001, 7_002] {
        assert!(harness.messages(user).is_empty(), "{user} got nothing");
    }
    harness.stop().await;
}
