//! /broadcast from the first command to the final report, for every kind
//! of content and a forwarded post with the options toggled; the refusals
//! of bad input; a restart in the middle.

use courier_core::config::BotToken;
use courier_core::proto::v1::Language;
use courier_core::send_limits::{Lane, PublishedLimits};
use courier_e2e::BOT_TOKEN;
use courier_testing::wait_until;
use serde_json::{Value, json};

use crate::{DEADLINE, Harness, OWNER, text};

/// Walks `admin` through steps 1 to 3 (audience by the label's start,
/// `content`, button lines or Skip) and answers the summary message.
pub async fn to_summary(
    harness: &Harness,
    admin: i64,
    audience: &str,
    content: Value,
    buttons: Option<&str>,
) -> Value {
    let after = harness.last_id(admin);
    harness.say(admin, "/broadcast");
    let prompt = harness.wait_for(admin, after, "step 1 of 4").await;
    harness.press(admin, &prompt, audience);
    harness.wait_for(admin, after, "Step 2 of 4").await;
    let after = harness.last_id(admin);
    harness.send(admin, content);
    let step3 = harness.wait_for(admin, after, "Step 3 of 4").await;
    match buttons {
        Some(lines) => harness.say(admin, lines),
        None => {
            harness.press(admin, &step3, "Skip");
        }
    }
    harness.wait_for(admin, after, "Ready to broadcast").await
}

/// Presses Start on `summary`; answers the new campaign's id.
pub async fn start(harness: &Harness, admin: i64, summary: &Value) -> String {
    let after = summary["message_id"].as_i64().expect("an id") - 1;
    harness.press(admin, summary, "🚀 Start");
    let started = harness.wait_for(admin, after, "Started campaign").await;
    let id = text(&started)
        .split_whitespace()
        .nth(3)
        .expect("the campaign id")
        .trim_end_matches('.')
        .to_owned();
    // The progress card follows.
    harness.wait_for(admin, after, &format!("\nid {id}")).await;
    id
}

pub fn file(id: &str) -> Value {
    json!({ "file_id": id, "file_unique_id": format!("u-{id}"), "mime_type": "application/octet-stream",
            "width": 640, "height": 480, "duration": 3 })
}

/// Each kind: what the admin sends, the method recipients get it by, and
/// the field with the file.
fn kinds() -> Vec<(Value, &'static str, Option<&'static str>)> {
    let caption = |media: &str, value: Value| {
        json!({ media: value, "caption": format!("A {media} for you"),
                "caption_entities": [{ "type": "italic", "offset": 2, "length": media.len() }] })
    };
    let mut animation = caption("animation", file("animation-id"));
    animation["document"] = file("animation-id");
    vec![
        (
            json!({ "text": "Hello 😀 world", "entities": [{ "type": "bold", "offset": 9, "length": 5 }] }),
            "sendMessage",
            None,
        ),
        (
            caption(
                "photo",
                json!([
                    { "file_id": "photo-small", "file_unique_id": "s", "width": 90, "height": 60 },
                    { "file_id": "photo-id", "file_unique_id": "l", "width": 1280, "height": 853 },
                ]),
            ),
            "sendPhoto",
            Some("photo"),
        ),
        (
            caption("video", file("video-id")),
            "sendVideo",
            Some("video"),
        ),
        (animation, "sendAnimation", Some("animation")),
        (
            caption("document", file("document-id")),
            "sendDocument",
            Some("document"),
        ),
        (
            caption("audio", file("audio-id")),
            "sendAudio",
            Some("audio"),
        ),
        (
            caption("voice", file("voice-id")),
            "sendVoice",
            Some("voice"),
        ),
    ]
}

const RU_USERS: [i64; 3] = [101, 102, 103];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_content_goes_from_broadcast_to_the_final_report() {
    let harness = Harness::start(1000.0).await;
    let mut users: Vec<_> = RU_USERS
        .iter()
        .map(|&id| (id, Language::Ru, true))
        .collect();
    users.push((201, Language::En, true));
    harness.users(&users).await;

    for (content, method, file_field) in kinds() {
        let buttons = "Read more - https://example.com/more\nChat - tg://resolve?domain=courier";
        let summary = to_summary(&harness, OWNER, "ru", content.clone(), Some(buttons)).await;
        let summary_text = text(&summary);
        assert!(
            summary_text.contains("Audience: lang:ru · 3 recipients now"),
            "{summary_text}"
        );
        assert!(
            summary_text.contains("Read more → https://example.com/more"),
            "{summary_text}"
        );

        // The preview, just above the summary, is what recipients will get.
        let summary_id = summary["message_id"].as_i64().unwrap();
        let preview = harness
            .messages(OWNER)
            .into_iter()
            .find(|m| m["message_id"].as_i64() == Some(summary_id - 1))
            .expect("the preview");
        let sent_text = content["text"]
            .as_str()
            .or(content["caption"].as_str())
            .unwrap();
        assert_eq!(text(&preview), sent_text, "{method}");

        let id = start(&harness, OWNER, &summary).await;
        let after = summary_id;
        let report = harness
            .wait_for_all(OWNER, after, &[&format!("id {id}"), " completed"])
            .await;
        assert!(
            text(&report).contains("Recipients 3 · delivered 3 · not alive 0 · failed 0"),
            "{}",
            text(&report)
        );
        // The card shows the end too; what is left to do is amend it.
        let card = harness
            .wait_for_all(OWNER, after, &[&format!("id {id}"), "\ncompleted ·"])
            .await;
        assert_eq!(crate::labels(&card), ["✏️ Edit", "🗑 Delete everywhere"]);

        for chat in RU_USERS {
            let delivery = harness
                .sandbox
                .deliveries()
                .into_iter()
                .find(|d| d.chat_id == chat && d.method == method)
                .unwrap_or_else(|| panic!("{method} to {chat}"));
            assert_eq!(delivery.text.as_deref(), Some(sent_text));
            let entities = content.get("entities").or(content.get("caption_entities"));
            assert_eq!(Some(&Value::from(delivery.entities.clone())), entities);
            if let Some(field) = file_field {
                let expected = format!("{field}-id");
                assert_eq!(delivery.file_id.as_deref(), Some(expected.as_str()));
            }
            let keyboard = delivery.reply_markup.expect("the buttons");
            assert_eq!(
                keyboard["inline_keyboard"],
                json!([
                    [{ "text": "Read more", "url": "https://example.com/more" }],
                    [{ "text": "Chat", "url": "tg://resolve?domain=courier" }],
                ])
            );
        }
        assert!(
            !harness
                .sandbox
                .deliveries()
                .iter()
                .any(|d| d.chat_id == 201),
            "the en user got a ru campaign"
        );
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_post_keeps_its_url_buttons_and_the_toggles_reach_recipients() {
    let harness = Harness::start(1000.0).await;
    harness
        .users(&[(101, Language::Ru, true), (102, Language::Ru, true)])
        .await;
    let post = json!({
        "text": "Channel news",
        "forward_origin": {
            "type": "channel", "date": 1_700_000_000, "message_id": 3,
            "chat": { "id": -1_001_234, "type": "channel", "title": "News" },
        },
        "reply_markup": { "inline_keyboard": [[
            { "text": "Read", "url": "https://example.com/read" },
            { "text": "Vote", "callback_data": "v:1" },
        ]]},
    });
    let summary = to_summary(&harness, OWNER, "ru", post, None).await;
    let before = summary["message_id"].as_i64().unwrap() - 1;
    harness.press(OWNER, &summary, "⬜ Silent");
    let summary = harness.wait_for(OWNER, before, "Silent: on").await;
    harness.press(OWNER, &summary, "⬜ Protected");
    let summary = harness.wait_for(OWNER, before, "Protected: on").await;
    harness.press(OWNER, &summary, "⬜ Paid lane");
    let summary = harness.wait_for(OWNER, before, "Paid lane: on").await;
    let id = start(&harness, OWNER, &summary).await;
    harness
        .wait_for_all(OWNER, before, &[&format!("id {id}"), " completed"])
        .await;
    for chat in [101, 102] {
        let delivery = harness
            .sandbox
            .deliveries()
            .into_iter()
            .find(|d| d.chat_id == chat)
            .unwrap_or_else(|| panic!("nothing to {chat}"));
        assert_eq!(delivery.text.as_deref(), Some("Channel news"));
        assert!(delivery.disable_notification, "{delivery:?}");
        assert!(delivery.protect_content, "{delivery:?}");
        assert!(delivery.allow_paid_broadcast, "{delivery:?}");
        // The post's URL button came along; its callback button could not.
        assert_eq!(
            delivery.reply_markup.expect("the buttons")["inline_keyboard"],
            json!([[{ "text": "Read", "url": "https://example.com/read" }]])
        );
    }
    harness.stop().await;
}

/// The estimate before Start is at the limit the senders run with, which
/// they publish as they start: the bot has no rate setting of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_estimate_is_at_the_rate_the_senders_published() {
    let harness = Harness::start(4.0).await;
    let users: Vec<_> = (1..=8).map(|id| (id, Language::Ru, true)).collect();
    harness.users(&users).await;
    let rates = harness
        .env
        .jetstream()
        .await
        .get_key_value(harness.env.topology().rate_bucket())
        .await
        .unwrap();
    let bot_id = BOT_TOKEN.parse::<BotToken>().unwrap().bot_id().to_owned();
    let limits = PublishedLimits::new(rates, &bot_id);
    wait_until("the sender's limit published", DEADLINE, || async {
        (limits.rate(Lane::Free).await == 4.0).then_some(())
    })
    .await;
    let summary = to_summary(&harness, OWNER, "ru", json!({ "text": "Soon" }), None).await;
    assert!(
        text(&summary).contains("Estimated duration: about 2s at 4/s"),
        "{}",
        text(&summary)
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_with_the_reason_and_the_dialog_goes_on() {
    let harness = Harness::start(1000.0).await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let prompt = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &prompt, "all");
    harness.wait_for(OWNER, after, "Step 2 of 4").await;

    let sticker = json!({ "sticker": {
        "file_id": "s", "file_unique_id": "s", "type": "regular", "width": 512, "height": 512,
        "is_animated": false, "is_video": false,
    }});
    harness.send(OWNER, sticker);
    let refusal = harness
        .wait_for(OWNER, after, "I can't broadcast a sticker")
        .await;
    assert!(
        text(&refusal).contains("a voice message"),
        "{}",
        text(&refusal)
    );

    let poll = json!({ "location": { "latitude": 55.75, "longitude": 37.62 } });
    harness.send(OWNER, poll);
    harness
        .wait_for(OWNER, after, "I can't broadcast a location")
        .await;

    let long_caption = "x".repeat(1100);
    harness.send(
        OWNER,
        json!({ "video": file("v"), "caption": long_caption }),
    );
    let refusal = harness
        .wait_for(OWNER, after, "The caption is 1100 characters long")
        .await;
    assert!(
        text(&refusal).contains("at most 1024"),
        "{}",
        text(&refusal)
    );
    assert_eq!(
        harness.dialog_step(OWNER).await.as_deref(),
        Some("awaiting_content")
    );

    harness.say(OWNER, "Fine, just text");
    harness.wait_for(OWNER, after, "Step 3 of 4").await;
    harness.say(
        OWNER,
        "Good - https://example.com\nno separator here\nBad - ftp://example.com",
    );
    let refusal = harness
        .wait_for(OWNER, after, "I couldn't read these lines")
        .await;
    let refusal = text(&refusal);
    assert!(
        refusal.contains("line 2: expected: Text - https://..."),
        "{refusal}"
    );
    assert!(
        refusal.contains("line 3: the URL must start with https://"),
        "{refusal}"
    );
    assert!(!refusal.contains("line 1"), "{refusal}");
    assert_eq!(
        harness.dialog_step(OWNER).await.as_deref(),
        Some("awaiting_buttons")
    );

    harness.say(OWNER, "/cancel");
    harness
        .wait_for(OWNER, after, "Cancelled; nothing was sent")
        .await;
    assert_eq!(harness.dialog_step(OWNER).await.as_deref(), None);
    harness.say(OWNER, "/cancel");
    harness
        .wait_for(OWNER, after, "There is nothing to cancel")
        .await;
    assert_eq!(harness.campaign_events().await, 0);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telegram_refusing_the_preview_sends_the_admin_back_to_step_2() {
    let harness = Harness::start(1000.0).await;
    harness.sandbox.break_file("broken-id");
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let prompt = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &prompt, "en");
    harness.wait_for(OWNER, after, "Step 2 of 4").await;
    harness.send(OWNER, json!({ "document": file("broken-id") }));
    let step3 = harness.wait_for(OWNER, after, "Step 3 of 4").await;
    harness.press(OWNER, &step3, "Skip");
    let refusal = harness.wait_for(OWNER, after, "The preview failed").await;
    assert!(
        text(&refusal).contains("wrong file identifier"),
        "{}",
        text(&refusal)
    );
    assert_eq!(
        harness.dialog_step(OWNER).await.as_deref(),
        Some("awaiting_content")
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dialog_survives_a_restart_of_the_bot() {
    let mut harness = Harness::start(1000.0).await;
    harness.users(&[(301, Language::En, true)]).await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let prompt = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &prompt, "en");
    harness.wait_for(OWNER, after, "Step 2 of 4").await;
    harness.say(OWNER, "Before and after a restart");
    harness.wait_for(OWNER, after, "Step 3 of 4").await;

    harness.stop_bot().await;
    harness.start_bot(harness.config());

    harness.say(OWNER, "Site - https://example.com");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    let id = start(&harness, OWNER, &summary).await;
    harness
        .wait_for_all(OWNER, after, &[&format!("id {id}"), " completed"])
        .await;
    let delivery = courier_testing::wait_until("the delivery", DEADLINE, || async {
        harness
            .sandbox
            .deliveries()
            .into_iter()
            .find(|d| d.chat_id == 301)
    })
    .await;
    assert_eq!(delivery.text.as_deref(), Some("Before and after a restart"));
    // Created and started, once each: no update was handled twice.
    assert_eq!(harness.campaign_events().await, 3);
    harness.stop().await;
}

/// What Bot API 9.x lets an admin compose: each field, as the admin's
/// client sent it, is in the preview and in every recipient's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_field_an_admin_composes_reaches_recipients_as_composed() {
    let harness = Harness::start(1000.0).await;
    harness
        .users(&[(101, Language::Ru, true), (102, Language::Ru, true)])
        .await;
    let in_a_month = chrono::Utc::now().timestamp() + 30 * 86_400;
    let text = json!({
        "text": "Sale at 10:00 ⭐ read more",
        "entities": [
            { "type": "date_time", "offset": 8, "length": 5,
              "unix_time": in_a_month, "date_time_format": "wt" },
            { "type": "custom_emoji", "offset": 14, "length": 1, "custom_emoji_id": "5368" },
            { "type": "expandable_blockquote", "offset": 16, "length": 9 },
        ],
        "link_preview_options": { "url": "https://example.com/sale",
                                  "prefer_large_media": true, "show_above_text": true },
        "effect_id": "5104841245755180586",
        "reply_markup": { "inline_keyboard": [
            [{ "text": "Shop", "url": "https://example.com/shop", "style": "success",
               "icon_custom_emoji_id": "5370" }],
            [{ "text": "Promo code", "copy_text": { "text": "SPRING26" }, "style": "primary" }],
        ]},
    });
    let mut photo = file("photo-id");
    photo["width"] = json!(1280);
    let photo = json!({
        "photo": [photo],
        "caption": "Look ⭐",
        "caption_entities": [{ "type": "spoiler", "offset": 0, "length": 4 }],
        "show_caption_above_media": true,
        "has_media_spoiler": true,
        "effect_id": "5046509860389126442",
    });
    // The fields as a recipient's message shows them.
    let shown = |message: &Value| -> Value {
        let fields = [
            "text",
            "entities",
            "caption",
            "caption_entities",
            "link_preview_options",
            "effect_id",
            "reply_markup",
            "show_caption_above_media",
            "has_media_spoiler",
        ];
        fields
            .iter()
            .filter_map(|&field| Some((field.to_owned(), message.get(field)?.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    for composed in [text, photo] {
        let expected = shown(&composed);
        let summary = to_summary(&harness, OWNER, "ru", composed, None).await;
        let summary_id = summary["message_id"].as_i64().expect("an id");
        let preview = harness
            .messages(OWNER)
            .into_iter()
            .find(|m| m["message_id"].as_i64() == Some(summary_id - 1))
            .expect("the preview");
        assert_eq!(shown(&preview), expected, "the preview");
        let id = start(&harness, OWNER, &summary).await;
        harness
            .wait_for_all(OWNER, summary_id, &[&format!("id {id}"), " completed"])
            .await;
        for chat in [101, 102] {
            let received = harness.messages(chat).pop().expect("a message");
            assert_eq!(shown(&received), expected, "what {chat} received");
        }
    }
    harness.stop().await;
}
