//! ✏️ Edit and 🗑 Delete everywhere from a card, as an admin uses them:
//! the corrected message previewed and confirmed with its count, every
//! delivered message edited; a refusal explained; the recall's question
//! naming its count, Keep changing nothing, Delete removing every message;
//! the card counting both.

use courier_core::proto::v1::Language;
use serde_json::{Value, json};

use crate::broadcast::{start, to_summary};
use crate::{DEADLINE, Harness, OWNER, labels, text};
use courier_testing::wait_until;

const USERS: i64 = 5;

/// The card of campaign `id` once it completed (a message after `after`).
pub async fn completed_card(harness: &Harness, id: &str, after: i64) -> Value {
    harness
        .wait_for_all(OWNER, after, &[&format!("id {id}"), "\ncompleted ·"])
        .await
}

/// Presses ✏️ Edit on `card`; answers the question asked, and its id.
pub async fn ask_to_edit(harness: &Harness, card: &Value, after: i64) -> (Value, i64) {
    harness.press(OWNER, card, "✏️ Edit");
    let asked = harness
        .wait_for(OWNER, after, "Send the corrected message")
        .await;
    let id = asked["message_id"].as_i64().expect("a message id");
    (asked, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_corrects_a_sent_campaign_then_deletes_it_everywhere() {
    let harness = Harness::start(1000.0).await;
    let users: Vec<_> = (1..=USERS).map(|id| (id, Language::En, true)).collect();
    harness.users(&users).await;
    let summary = to_summary(
        &harness,
        OWNER,
        "en",
        json!({ "text": "Sale tomorow" }),
        None,
    )
    .await;
    let after = summary["message_id"].as_i64().unwrap();
    let id = start(&harness, OWNER, &summary).await;
    let card = completed_card(&harness, &id, after).await;

    // ✏️ Edit: the same text again is refused, with the reason.
    let (_, after) = ask_to_edit(&harness, &card, after).await;
    harness.say(OWNER, "Sale tomorow");
    harness
        .wait_for(OWNER, after, "the same as the one sent")
        .await;
    harness.say(OWNER, "Sale tomorrow");
    harness.wait_for(OWNER, after, "Sale tomorrow").await;
    let prompt = harness
        .wait_for(OWNER, after, "Confirm to edit the 5 message(s)")
        .await;
    assert_eq!(labels(&prompt), ["✏️ Edit 5 message(s)", "✖️ Cancel"]);
    harness.press(OWNER, &prompt, "✏️ Edit 5 message(s)");
    harness
        .wait_for(OWNER, after, "Version 2 is on its way")
        .await;
    wait_until("every recipient's message corrected", DEADLINE, || async {
        (1..=USERS)
            .all(|chat| {
                let messages = harness.messages(chat);
                messages.len() == 1 && text(&messages[0]) == "Sale tomorrow"
            })
            .then_some(())
    })
    .await;
    harness
        .wait_for(OWNER, after, "✏️ Edited (version 2): 5 edited")
        .await;

    // The buttons alone: every message gets them, its text unchanged.
    let card = completed_card(&harness, &id, 0).await;
    let (asked, after) = ask_to_edit(&harness, &card, after).await;
    harness.press(OWNER, &asked, "🔗 The buttons instead");
    harness
        .wait_for(OWNER, after, "Send the buttons every delivered message")
        .await;
    harness.say(OWNER, "Shop - https://example.com/shop");
    let prompt = harness
        .wait_for(OWNER, after, "Above: the corrected buttons")
        .await;
    harness.press(OWNER, &prompt, "✏️ Edit 5 message(s)");
    wait_until(
        "every recipient's message has the button",
        DEADLINE,
        || async {
            (1..=USERS)
                .all(|chat| {
                    let messages = harness.messages(chat);
                    messages.len() == 1
                        && text(&messages[0]) == "Sale tomorrow"
                        && labels(&messages[0]) == ["Shop"]
                })
                .then_some(())
        },
    )
    .await;
    let card = harness
        .wait_for(OWNER, after, "✏️ Edited (version 3): 5 edited")
        .await;

    // 🗑 Delete everywhere: the question names the count; Keep keeps.
    harness.press(OWNER, &card, "🗑 Delete everywhere");
    let question = harness
        .wait_for(
            OWNER,
            after,
            "Delete the 5 message(s) this campaign delivered",
        )
        .await;
    assert!(
        text(&question).contains("within 48 hours"),
        "{}",
        text(&question)
    );
    assert_eq!(labels(&question), ["🗑 Delete 5 message(s)", "Keep them"]);
    harness.press(OWNER, &question, "Keep them");
    harness
        .wait_for(OWNER, after, "Kept: nothing changed")
        .await;
    assert!((1..=USERS).all(|chat| harness.messages(chat).len() == 1));

    let after = question["message_id"].as_i64().unwrap();
    harness.press(OWNER, &card, "🗑 Delete everywhere");
    let question = harness
        .wait_for(
            OWNER,
            after,
            "Delete the 5 message(s) this campaign delivered",
        )
        .await;
    harness.press(OWNER, &question, "🗑 Delete 5 message(s)");
    harness.wait_for(OWNER, after, "Deleting").await;
    wait_until("every recipient's message deleted", DEADLINE, || async {
        (1..=USERS)
            .all(|chat| harness.messages(chat).is_empty())
            .then_some(())
    })
    .await;
    let card = harness
        .wait_for(OWNER, after, "🗑 Recalled: 5 deleted")
        .await;
    assert!(labels(&card).is_empty(), "nothing left to amend: {card}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_corrects_one_language_version_and_only_its_recipients_see_it() {
    let harness = Harness::start(1000.0).await;
    harness
        .users(&[(7_401, Language::Ru, true), (7_402, Language::En, true)])
        .await;
    let summary = to_summary(
        &harness,
        OWNER,
        "all",
        json!({ "text": "Sale tomorrow" }),
        None,
    )
    .await;
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🌐 Add ru version");
    harness
        .wait_for(OWNER, after, "users whose language is ru")
        .await;
    harness.say(OWNER, "Распродажа завтро");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    let after = summary["message_id"].as_i64().unwrap();
    let id = start(&harness, OWNER, &summary).await;
    let card = completed_card(&harness, &id, after).await;
    let (asked, after) = ask_to_edit(&harness, &card, after).await;
    harness.press(OWNER, &asked, "🌐 The ru version instead");
    harness
        .wait_for(OWNER, after, "for users whose language is ru")
        .await;
    harness.say(OWNER, "Распродажа завтра");
    let prompt = harness
        .wait_for(OWNER, after, "Confirm to edit the 2 message(s)")
        .await;
    assert!(
        harness
            .messages(OWNER)
            .iter()
            .any(|m| text(m) == "Распродажа завтра"),
        "the corrected version is previewed"
    );
    harness.press(OWNER, &prompt, "✏️ Edit 2 message(s)");
    harness.wait_for(7_401, 0, "Распродажа завтра").await;
    harness
        .wait_for(
            OWNER,
            after,
            "✏️ Edited (version 2): 1 edited · 1 already so",
        )
        .await;
    let en = harness.messages(7_402);
    assert_eq!(en.len(), 1);
    assert_eq!(
        text(&en[0]),
        "Sale tomorrow",
        "the en recipient's message is left as it was"
    );
    assert_eq!(harness.messages(7_401).len(), 1);
    harness.stop().await;
}
