//! Audiences beyond language through the bot: users arriving by a deep
//! link, tagged by the owner, opting out with /stop; the owner building a
//! segment with buttons (the count after every press) and by typing, adding
//! a version in another language, and the campaign reaching exactly the
//! segment with each user's version.

use courier_core::proto::v1::Language;
use serde_json::Value;

use crate::{DEADLINE, Harness, OWNER, labels, text};

/// Waits until the card (edited in place) says `needle`.
async fn card_saying(harness: &Harness, card_id: i64, needle: &str) -> Value {
    courier_testing::wait_until(&format!("the card says {needle:?}"), DEADLINE, || async {
        harness
            .messages(OWNER)
            .into_iter()
            .find(|m| m["message_id"].as_i64() == Some(card_id))
            .filter(|card| text(card).contains(needle))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_builds_a_segment_and_each_user_gets_their_version() {
    let harness = Harness::start(1000.0).await;
    // 101-106: odd ru, even en, registered as imported users.
    let users: Vec<(i64, Language, bool)> = (101..=106)
        .map(|id| {
            (
                id,
                if id % 2 == 1 {
                    Language::Ru
                } else {
                    Language::En
                },
                true,
            )
        })
        .collect();
    harness.users(&users).await;
    // 107 arrives by a deep link; 105 stops broadcasts.
    harness.say(107, "/start spring_ad");
    harness.wait_for(107, 0, "Hi!").await;
    // 105 stops, comes back with /subscribe, and stops again.
    harness.say(105, "/stop");
    let stopped = harness.wait_for(105, 0, "no more news").await;
    harness.say(105, "/subscribe");
    let back = harness.wait_for(105, 0, "receive our news again").await;
    assert!(back["message_id"].as_i64() > stopped["message_id"].as_i64());
    harness.say(105, "/stop");
    let back_id = back["message_id"].as_i64().expect("an id");
    harness.wait_for(105, back_id, "no more news").await;
    for id in [101, 102, 103, 105] {
        harness.say(OWNER, &format!("/tag {id} vip"));
        harness
            .wait_for(OWNER, 0, &format!("Tagged {id}: vip."))
            .await;
    }
    harness.say(OWNER, "/tag 103 churned");
    harness.wait_for(OWNER, 0, "Tagged 103: churned.").await;
    harness.say(OWNER, "/tag 999 vip");
    harness
        .wait_for(OWNER, 0, "999 is not a user of this bot.")
        .await;

    // The counts below are read from the read model: wait for the last stop.
    let client = harness.db().await;
    courier_testing::wait_until("105 opted out", DEADLINE, || async {
        let row = client
            .query_one("SELECT opted_out FROM users WHERE user_id = 105", &[])
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(())
    })
    .await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let prompt = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &prompt, "🎯 Segment");
    let card_id = prompt["message_id"].as_i64().expect("an id");
    // Everyone: 7 users, one of them opted out.
    let card = card_saying(&harness, card_id, "Audience: all · 6 recipients now").await;
    assert!(
        text(&card).contains("1 more match but opted out"),
        "{}",
        text(&card)
    );
    harness.press(OWNER, &card, "⬜ #vip");
    let card = card_saying(&harness, card_id, "Audience: tag:vip · 3 recipients now").await;
    harness.press(OWNER, &card, "⬜ #churned");
    // Pressed once: has it (vip or churned: 101, 102, 103).
    let card = card_saying(
        &harness,
        card_id,
        "Audience: tag:vip,churned · 3 recipients now",
    )
    .await;
    harness.press(OWNER, &card, "✅ #churned");
    // Pressed twice: has it not (vip, not churned: 101, 102).
    let card = card_saying(
        &harness,
        card_id,
        "Audience: tag:vip -tag:churned · 2 recipients now",
    )
    .await;
    assert!(
        labels(&card).iter().any(|l| l == "🚫 #churned · 1"),
        "{:?}",
        labels(&card)
    );

    // Typing: a mistake is pointed at; a filter nobody matches cannot be used.
    let typed_after = harness.last_id(OWNER);
    harness.say(OWNER, "tag:vip sorce:spring_ad");
    let refused = harness
        .wait_for(OWNER, typed_after, "couldn't read that filter")
        .await;
    // In a fixed-width block, so the caret stands under the mistake.
    assert_eq!(refused["entities"][0]["type"], "pre", "{refused}");
    assert!(
        text(&refused).contains("tag:vip sorce:spring_ad\n        ^ \"sorce\" is not a term"),
        "{}",
        text(&refused)
    );
    harness.say(OWNER, "tag:vpi");
    let nobody = harness.wait_for(OWNER, typed_after, "Nobody matches").await;
    assert!(
        text(&nobody).contains("No user has the tag(s) vpi"),
        "{}",
        text(&nobody)
    );
    assert!(!labels(&nobody).iter().any(|l| l.starts_with("✅ Use")));
    harness.say(OWNER, "source:spring_ad");
    let by_link = harness
        .wait_for(OWNER, typed_after, "source:spring_ad · 1 recipients")
        .await;
    harness.press(OWNER, &by_link, "↺ Everyone");
    let by_link_id = by_link["message_id"].as_i64().expect("an id");
    let everyone = card_saying(&harness, by_link_id, "Audience: all · 6 recipients now").await;
    harness.press(OWNER, &everyone, "⬜ #vip");
    let vip = card_saying(&harness, by_link_id, "Audience: tag:vip · 3 recipients now").await;
    harness.press(OWNER, &vip, "✅ Use · 3");
    harness
        .wait_for(OWNER, typed_after, "Audience: tag:vip · 3 recipients now.")
        .await;

    // A placeholder that does not exist is named; one that does greets,
    // the admin in the preview and each recipient in the campaign.
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "News of the week, {frist_name}");
    harness
        .wait_for(OWNER, after, "{frist_name} is not a placeholder")
        .await;
    harness.say(OWNER, "News of the week, {first_name|friend}");
    let step3 = harness.wait_for(OWNER, after, "Step 3 of 4").await;
    harness.press(OWNER, &step3, "Skip");
    harness
        .wait_for(OWNER, after, "News of the week, User 9001")
        .await;
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(
        text(&summary)
            .contains("Audience: tag:vip · 3 recipients now (1 more opted out with /stop)"),
        "{}",
        text(&summary)
    );
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🌐 Add ru version");
    harness
        .wait_for(OWNER, after, "users whose language is ru")
        .await;
    harness.say(OWNER, "Новости недели");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(
        text(&summary).contains("Versions: ru · 2; default · 1"),
        "{}",
        text(&summary)
    );
    harness.press(OWNER, &summary, "⬜ Unsubscribe button");
    let summary_id = summary["message_id"].as_i64().expect("an id");
    let summary = courier_testing::wait_until("the Unsubscribe button on", DEADLINE, || async {
        harness
            .messages(OWNER)
            .into_iter()
            .find(|m| m["message_id"].as_i64() == Some(summary_id))
            .filter(|m| text(m).contains("Unsubscribe button: on"))
    })
    .await;
    // A test send: every version as recipients get it, button included,
    // greeting the owner.
    let before_test = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "📨 Send to me");
    harness
        .wait_for(OWNER, before_test, "📨 Test: what ru users get")
        .await;
    let test = harness
        .wait_for(OWNER, before_test, "News of the week, User 9001")
        .await;
    assert_eq!(labels(&test), ["Unsubscribe"]);
    let ru_test = harness.wait_for(OWNER, before_test, "Новости недели").await;
    assert_eq!(labels(&ru_test), ["Отписаться от рассылки"]);
    let id = crate::broadcast::start(&harness, OWNER, &summary).await;
    let report = harness
        .wait_for_all(OWNER, 0, &[&format!("id {id}"), " completed"])
        .await;
    assert!(
        text(&report).contains("By version: ru 2/2 · default 1/1 delivered"),
        "{}",
        text(&report)
    );
    let got = |chat: i64| -> Vec<String> {
        harness
            .messages(chat)
            .iter()
            .map(|m| text(m).to_owned())
            .filter(|t| t.starts_with("Новости") || t.starts_with("News"))
            .collect()
    };
    assert_eq!(got(101), ["Новости недели"]);
    assert_eq!(got(103), ["Новости недели"]);
    // 102 was registered without names (an import): the fallback.
    assert_eq!(got(102), ["News of the week, friend"]);
    for left_out in [104, 105, 106, 107] {
        assert!(
            got(left_out).is_empty(),
            "{left_out} got {:?}",
            got(left_out)
        );
    }
    // Each version carries the Unsubscribe button, in its language; a
    // press opts the user out, and they stay a user of the bot.
    let message = |chat: i64| {
        harness
            .messages(chat)
            .into_iter()
            .find(|m| text(m).starts_with("Новости") || text(m).starts_with("News"))
            .expect("the campaign's message")
    };
    assert_eq!(labels(&message(101)), ["Отписаться от рассылки"]);
    assert_eq!(labels(&message(102)), ["Unsubscribe"]);
    let pressed = harness.press(102, &message(102), "Unsubscribe");
    courier_testing::wait_until("102 opted out", DEADLINE, || async {
        let row = client
            .query_one(
                "SELECT opted_out AND is_alive FROM users WHERE user_id = 102",
                &[],
            )
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(())
    })
    .await;
    let answer = courier_testing::wait_until("the press answered", DEADLINE, || async {
        harness
            .sandbox
            .callback_answers()
            .into_iter()
            .find(|answer| answer.callback_query_id == pressed)
    })
    .await;
    assert!(
        answer.text.unwrap_or_default().contains("no more news"),
        "the user is told"
    );
    harness.stop().await;
}
