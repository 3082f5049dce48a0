//! One bot service, two bots: the default bot and one added with
//! `courierctl bots add`, each with its own users, owners, languages and
//! campaigns.

use courier_core::config::TokenKeyConfig;
use courier_core::proto::v1::{BotLanguagesSet, BotOwnersSet, Event, Language, event::Payload};
use courier_e2e::{BOT_ID, TOKEN_KEY, add_bot};
use courier_testing::wait_until;
use serde_json::json;

use crate::broadcast::{start, to_summary};
use crate::{DEADLINE, Harness, OWNER, text};

const SECOND_BOT: i64 = 222;
const SECOND_TOKEN: &str = "222:AAF-second_secret_0123456789";
/// Owns the second bot (`courierctl bots owners`), not the default one.
const SECOND_OWNER: i64 = 9_101;
/// Starts the second bot.
const NEWCOMER: i64 = 301;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_bot_has_its_own_users_owners_languages_and_campaigns() {
    let mut harness = Harness::start(1000.0).await;
    harness.users(&[(101, Language::En, true)]).await;
    add_bot(&harness.env, SECOND_TOKEN).await;
    let owners = Payload::BotOwnersSet(BotOwnersSet {
        bot_id: SECOND_BOT,
        owner_ids: vec![SECOND_OWNER],
    });
    // A bot for Russian speakers only; the default bot offers both.
    let languages = Payload::BotLanguagesSet(BotLanguagesSet {
        bot_id: SECOND_BOT,
        languages: vec![Language::Ru.into()],
    });
    for event in [owners, languages] {
        harness.publisher.publish(&Event::new(event)).await.unwrap();
    }
    harness.stop_bot().await;
    let mut config = harness.config();
    config.token_key = TokenKeyConfig::of(Some(TOKEN_KEY.parse().unwrap()));
    harness.start_bot(config);

    // Someone starts the second bot: its user, not the default bot's, in
    // its one language whatever their app's; /language offers no choice.
    harness.talk_to(SECOND_BOT);
    harness.say(NEWCOMER, "/start");
    let db = harness.db().await;
    let bots_of_newcomer = wait_until("the newcomer registered", DEADLINE, || async {
        let rows = db
            .query(
                "SELECT bot_id, language FROM users WHERE user_id = $1",
                &[&NEWCOMER],
            )
            .await
            .ok()?;
        let bots: Vec<(i64, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        (!bots.is_empty()).then_some(bots)
    })
    .await;
    assert_eq!(bots_of_newcomer, [(SECOND_BOT, "ru".to_owned())]);
    let after = harness.last_id(NEWCOMER);
    harness.say(NEWCOMER, "/language");
    harness
        .wait_for(NEWCOMER, after, "Этот бот пишет только на русском.")
        .await;

    // The second bot's owner broadcasts to the second bot's users only:
    // step 1 counts them, and the message goes out under the second bot.
    let summary = to_summary(
        &harness,
        SECOND_OWNER,
        "all · 1",
        json!({ "text": "From the second bot" }),
        None,
    )
    .await;
    assert!(
        text(&summary).contains("1 recipients now"),
        "{}",
        text(&summary)
    );
    let buttons = summary["reply_markup"]["inline_keyboard"].to_string();
    assert!(
        !buttons.contains("version"),
        "no other version asked: {buttons}"
    );
    let id = start(&harness, SECOND_OWNER, &summary).await;
    harness
        .wait_for_all(
            SECOND_OWNER,
            summary["message_id"].as_i64().unwrap(),
            &[&format!("id {id}"), " completed"],
        )
        .await;
    let sent: Vec<(i64, i64)> = harness
        .sandbox
        .deliveries()
        .into_iter()
        // The owner's own preview aside.
        .filter(|d| d.text.as_deref() == Some("From the second bot") && d.chat_id != SECOND_OWNER)
        .map(|d| (d.bot_id, d.chat_id))
        .collect();
    assert_eq!(sent, [(SECOND_BOT, NEWCOMER)]);
    // Owners are per bot: the second bot's owner manages its admins; the
    // default bot's owner is just a user there, never told /admins exists.
    let after = harness.last_id(SECOND_OWNER);
    harness.say(SECOND_OWNER, "/admins");
    harness
        .wait_for(
            SECOND_OWNER,
            after,
            &format!("Owners (courierctl bots owners): {SECOND_OWNER}"),
        )
        .await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/admins");
    harness.say(OWNER, "/start");
    // In the second bot's one language.
    harness.wait_for(OWNER, after, "Привет!").await;
    let replies = harness.texts_after(OWNER, after);
    assert_eq!(replies.len(), 1, "only the greeting: {replies:?}");

    // The default bot's owner is staff there, but a press naming the second
    // bot's campaign (callback data a client made up) does nothing.
    harness.talk_to(BOT_ID);
    let after = harness.last_id(OWNER);
    let forged = json!({
        "message_id": after + 100, "date": 1_700_000_000,
        "chat": { "id": OWNER, "type": "private", "first_name": "Owner" },
        "reply_markup": { "inline_keyboard": [[
            { "text": "Show", "callback_data": format!("cc:show:{id}") },
        ]]},
    });
    harness.press(OWNER, &forged, "Show");
    harness.say(OWNER, "/start");
    harness.wait_for(OWNER, after, "Hi!").await;
    let shown = harness.texts_after(OWNER, after);
    assert_eq!(shown.len(), 1, "only the greeting: {shown:?}");
    harness.talk_to(SECOND_BOT);

    // The second bot's people wrote to it only: every answer came from it.
    assert!(
        harness
            .sandbox
            .deliveries()
            .iter()
            .filter(|d| [SECOND_OWNER, NEWCOMER].contains(&d.chat_id))
            .all(|d| d.bot_id == SECOND_BOT)
    );
    harness.stop().await;
}
