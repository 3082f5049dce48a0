//! The user registry through the bot: /start, /language and blocking or
//! unblocking the bot, each ending up in the read model via its event.

use serde_json::json;

use crate::{DEADLINE, Harness, user};

const ANN: i64 = 4_000_000_001;

async fn user_row(harness: &Harness, id: i64) -> Option<(String, bool)> {
    let row = harness
        .db()
        .await
        .query_opt(
            "SELECT language, is_alive FROM users WHERE user_id = $1",
            &[&id],
        )
        .await
        .ok()??;
    Some((row.get(0), row.get(1)))
}

async fn wait_for_user(harness: &Harness, id: i64, expected: (&str, bool)) {
    courier_testing::wait_until(&format!("user {id} is {expected:?}"), DEADLINE, || async {
        user_row(harness, id)
            .await
            .filter(|(language, alive)| (language.as_str(), *alive) == expected)
    })
    .await;
}

/// The bot's membership in Ann's chat changes from `old` to `new`.
fn membership(harness: &Harness, old: &str, new: &str) {
    let bot = json!({ "id": 123_456_789, "is_bot": true, "first_name": "Sandbox Bot" });
    let member = |status: &str| match status {
        "kicked" => json!({ "user": bot, "status": "kicked", "until_date": 0 }),
        status => json!({ "user": bot, "status": status }),
    };
    harness.sandbox.push_update(
        courier_e2e::BOT_ID,
        json!({ "my_chat_member": {
            "chat": { "id": ANN, "type": "private", "first_name": "Ann" },
            "from": user(ANN),
            "date": 1_700_000_000,
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_register_choose_a_language_and_block_and_unblock_the_bot() {
    let harness = Harness::start(1000.0).await;
    harness.say(ANN, "/start");
    harness.wait_for(ANN, 0, "Hi!").await;
    wait_for_user(&harness, ANN, ("en", true)).await;

    harness.say(ANN, "/language");
    let buttons = harness.wait_for(ANN, 0, "Choose your language").await;
    harness.press(ANN, &buttons, "Русский");
    harness.wait_for(ANN, 0, "на русском").await;
    wait_for_user(&harness, ANN, ("ru", true)).await;

    membership(&harness, "member", "kicked");
    wait_for_user(&harness, ANN, ("ru", false)).await;
    membership(&harness, "kicked", "member");
    wait_for_user(&harness, ANN, ("ru", true)).await;
    // The bot said nothing about either: a user who blocked it cannot hear.
    assert_eq!(harness.messages(ANN).len(), 2);

    // Blocked again, then back with /start (Telegram's "Restart"): revived,
    // and still in the language Ann chose, not her app's.
    membership(&harness, "member", "kicked");
    wait_for_user(&harness, ANN, ("ru", false)).await;
    harness.say(ANN, "/start");
    wait_for_user(&harness, ANN, ("ru", true)).await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn choosing_a_language_before_start_registers_the_user_with_it() {
    let harness = Harness::start(1000.0).await;
    harness.say(ANN, "/language");
    let buttons = harness.wait_for(ANN, 0, "Choose your language").await;
    harness.press(ANN, &buttons, "Русский");
    harness.wait_for(ANN, 0, "на русском").await;
    wait_for_user(&harness, ANN, ("ru", true)).await;
    // A later /start (the app speaks English) keeps the choice.
    let updated_at = || async {
        let row = harness
            .db()
            .await
            .query_one(
                "SELECT updated_at, language FROM users WHERE user_id = $1",
                &[&ANN],
            )
            .await
            .unwrap();
        (
            row.get::<_, chrono::DateTime<chrono::Utc>>(0),
            row.get::<_, String>(1),
        )
    };
    let (chosen_at, _) = updated_at().await;
    harness.say(ANN, "/start");
    let (_, language) = courier_testing::wait_until("the /start applied", DEADLINE, || async {
        let (at, language) = updated_at().await;
        (at > chosen_at).then_some((at, language))
    })
    .await;
    assert_eq!(language, "ru");
    harness.stop().await;
}

/// A user last active days ago writes twice today: one `UserActive` is
/// recorded (with the names Telegram shows), and the read model says
/// today.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_message_of_a_day_records_the_user_active_once() {
    use courier_core::proto::v1::{Event, Language, UserRegistered, event::Payload};
    let harness = Harness::start(1000.0).await;
    let mut registered = Event::new(Payload::UserRegistered(UserRegistered {
        user_id: ANN,
        chat_id: ANN,
        language: Language::En.into(),
        ..Default::default()
    }));
    registered.occurred_at_ms -= 3 * 86_400_000;
    harness.publisher.publish(&registered).await.unwrap();
    let user_subject = harness
        .env
        .topology()
        .user_subject(courier_core::topology::DEFAULT_BOT, ANN);
    let js = harness.env.jetstream().await;
    let events = harness.env.topology().events_stream();
    let last_active = || async {
        harness
            .db()
            .await
            .query_opt(
                "SELECT last_active_at::date = now()::date, first_name FROM users WHERE user_id = $1",
                &[&ANN],
            )
            .await
            .ok()
            .flatten()
            .map(|row| (row.get::<_, bool>(0), row.get::<_, String>(1)))
    };
    courier_testing::wait_until("Ann registered days ago", DEADLINE, || async {
        last_active().await.filter(|(today, _)| !today)
    })
    .await;

    harness.say(ANN, "hello");
    harness.say(ANN, "/language");
    harness.wait_for(ANN, 0, "Choose your language").await;
    let (_, first_name) = courier_testing::wait_until("Ann active today", DEADLINE, || async {
        last_active().await.filter(|(today, _)| *today)
    })
    .await;
    assert_eq!(
        first_name,
        format!("User {ANN}"),
        "the names Telegram shows"
    );
    // The registration and one activity: the second message recorded nothing.
    let recorded = courier_testing::messages_on(&js, &events, &user_subject).await;
    assert_eq!(recorded, 2);
    harness.stop().await;
}
