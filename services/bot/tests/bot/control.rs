//! Pause, resume and cancel from progress cards, by two admins at once.

use courier_core::proto::v1::Language;
use serde_json::json;

use crate::broadcast::{start, to_summary};
use crate::{DEADLINE, Harness, OWNER, labels, text};
use courier_testing::wait_until;

const ADMIN: i64 = 9_002;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_pause_resume_and_cancel_from_their_cards_and_a_race_has_one_winner() {
    // 40 users at 4 messages a second: about ten seconds of sending.
    let harness = Harness::start(4.0).await;
    let users: Vec<_> = (1..=40).map(|id| (id, Language::En, true)).collect();
    harness.users(&users).await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, &format!("/admins add {ADMIN}"));
    harness.wait_for(OWNER, after, "is an admin now").await;

    let summary = to_summary(&harness, OWNER, "en", json!({ "text": "Slowly" }), None).await;
    let after = summary["message_id"].as_i64().unwrap();
    let id = start(&harness, OWNER, &summary).await;
    let card = harness.wait_for(OWNER, after, "Delivered").await;

    harness.press(OWNER, &card, "⏸ Pause");
    let card = harness.wait_for(OWNER, after, "Paused by ").await;
    // (✏️ Edit and 🗑 Delete everywhere follow once something was delivered.)
    assert_eq!(labels(&card)[..2], ["▶️ Resume", "✖️ Cancel"]);
    harness.press(OWNER, &card, "▶️ Resume");
    let card = harness.wait_for(OWNER, after, "ETA").await;
    assert_eq!(labels(&card)[..2], ["⏸ Pause", "✖️ Cancel"]);

    // The other admin opens the campaign from /campaigns.
    harness.say(ADMIN, "/campaigns");
    let list = harness.wait_for(ADMIN, 0, "Campaigns, newest first").await;
    assert!(text(&list).contains("1. 📤 “Slowly”"), "{}", text(&list));
    assert!(
        text(&list).contains("\n     text: Slowly"),
        "{}",
        text(&list)
    );
    harness.press(ADMIN, &list, "1");
    let other_card = harness.wait_for(ADMIN, 0, &format!("\nid {id}")).await;

    // Cancel asks first, saying what it means now.
    let (owner_after, admin_after) = (harness.last_id(OWNER), harness.last_id(ADMIN));
    harness.press(OWNER, &card, "✖️ Cancel");
    harness.press(ADMIN, &other_card, "✖️ Cancel");
    let not_yet = "recipient(s) not sent yet will not get it";
    let question = harness.wait_for(OWNER, owner_after, not_yet).await;
    let other_question = harness.wait_for(ADMIN, admin_after, not_yet).await;
    assert_eq!(labels(&question), ["✖️ Yes, cancel it", "Keep it"]);
    // Both confirm at once: one CampaignCancelled, the loser is told.
    let presses = [
        harness.press(OWNER, &question, "✖️ Yes, cancel it"),
        harness.press(ADMIN, &other_question, "✖️ Yes, cancel it"),
    ];
    let answers = wait_until("both presses answered", DEADLINE, || async {
        let answers: Vec<_> = harness
            .sandbox
            .callback_answers()
            .into_iter()
            .filter(|a| presses.contains(&a.callback_query_id))
            .collect();
        (answers.len() == 2).then_some(answers)
    })
    .await;
    let text_of = |a: &telegram_sandbox::CallbackAnswer| a.text.clone().unwrap_or_default();
    let winners = answers
        .iter()
        .filter(|a| text_of(a) == "Done: the campaign is cancelled.")
        .count();
    assert_eq!(winners, 1, "{answers:?}");
    let loser = answers
        .iter()
        .find(|a| text_of(a) != "Done: the campaign is cancelled.")
        .unwrap();
    assert!(loser.show_alert, "{loser:?}");
    assert!(
        text_of(loser).contains("changed nothing") || text_of(loser).contains("Nothing changed"),
        "{loser:?}"
    );
    // Named by its first words, and who cancelled it.
    let report = "⛔ “Slowly” was cancelled by ";
    harness.wait_for(OWNER, after, report).await;
    harness.wait_for(ADMIN, 0, report).await;
    let card = harness
        .wait_for_all(OWNER, after, &[&format!("id {id}"), "\ncancelled ·"])
        .await;
    assert!(
        labels(&card)
            .iter()
            .all(|l| l == "✏️ Edit" || l == "🗑 Delete everywhere"),
        "{card}"
    );
    // Created, started, paused, resumed, cancelled: nothing twice.
    assert_eq!(harness.campaign_events().await, 5);
    let delivered = harness
        .sandbox
        .deliveries()
        .iter()
        .filter(|d| d.text.as_deref() == Some("Slowly") && d.chat_id != OWNER)
        .count();
    assert!(delivered < 40, "the campaign was not cancelled midway");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn courier_pausing_a_campaign_itself_is_reported_with_the_reason() {
    let harness = Harness::start(1000.0).await;
    let users: Vec<_> = (1..=10).map(|id| (id, Language::En, true)).collect();
    harness.users(&users).await;
    let document = json!({ "document": { "file_id": "doc-id", "file_unique_id": "d",
                                         "mime_type": "application/pdf" } });
    let summary = to_summary(&harness, OWNER, "en", document, None).await;
    // The file goes bad between the preview and the sends.
    harness.sandbox.break_file("doc-id");
    let after = summary["message_id"].as_i64().unwrap();
    let id = start(&harness, OWNER, &summary).await;
    let report = harness
        .wait_for_all(OWNER, after, &[&format!("id {id}"), "Courier paused"])
        .await;
    assert!(
        text(&report).contains("wrong file identifier"),
        "{}",
        text(&report)
    );
    let card = harness.wait_for(OWNER, after, "Paused by courier").await;
    assert_eq!(labels(&card), ["▶️ Resume", "✖️ Cancel"]);
    harness.stop().await;
}
