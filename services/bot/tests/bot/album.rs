//! An album at step 2: its items (Telegram sends each as its own message)
//! gathered into one campaign, previewed as the album it is, sent to each
//! recipient in one sendMediaGroup (every item, one caption, one
//! media_group_id), its caption edited on the first item, and every item
//! deleted by a recall; an album as a draft's replacement and as a
//! language version.

use courier_core::proto::v1::Language;
use courier_testing::wait_until;
use serde_json::{Value, json};

use crate::amend::{ask_to_edit, completed_card};
use crate::broadcast::{start, to_summary};
use crate::{DEADLINE, Harness, OWNER, text};

const USERS: i64 = 3;

fn item(mut media: Value) -> Value {
    media["media_group_id"] = json!("album-1");
    media
}

fn photo(id: &str) -> Value {
    json!([{ "file_id": id, "file_unique_id": id, "width": 1280, "height": 720 }])
}

/// The album items of `chat`, as their captions (empty without one), if
/// all of them share one media_group_id.
fn album_in(harness: &Harness, chat: i64) -> Option<Vec<String>> {
    let messages = harness.messages(chat);
    let group = messages.first()?.get("media_group_id")?.clone();
    messages
        .iter()
        .all(|m| m.get("media_group_id") == Some(&group))
        .then(|| {
            messages
                .iter()
                .map(|m| m["caption"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_album_goes_out_whole_and_is_edited_and_recalled_whole() {
    let harness = Harness::start(1000.0).await;
    let users: Vec<_> = (1..=USERS).map(|id| (id, Language::En, true)).collect();
    harness.users(&users).await;

    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let prompt = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &prompt, "en");
    harness.wait_for(OWNER, after, "Step 2 of 4").await;
    let after = harness.last_id(OWNER);
    harness.send(
        OWNER,
        item(json!({ "photo": photo("p1"), "caption": "Our shop",
                     "caption_entities": [{ "type": "bold", "offset": 0, "length": 3 }],
                     "has_media_spoiler": true })),
    );
    let mut video = crate::broadcast::file("v1");
    video["duration"] = json!(3);
    harness.send(OWNER, item(json!({ "video": video })));
    harness.send(OWNER, item(json!({ "photo": photo("p2") })));
    let prompt = harness
        .wait_for(OWNER, after, "Got an album: 3 item(s)")
        .await;
    harness.press(OWNER, &prompt, "➡️ Use this album");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    let shown = text(&summary);
    assert!(
        shown.contains("Content: album of 3 items with caption"),
        "{shown}"
    );
    assert!(
        shown.contains("Unsubscribe button: not on albums"),
        "{shown}"
    );
    // The preview is the album itself, above the summary.
    let previewed: Vec<Value> = harness
        .messages(OWNER)
        .into_iter()
        .filter(|m| m.get("media_group_id").is_some())
        .collect();
    assert_eq!(previewed.len(), 3);
    assert_eq!(previewed[0]["caption"], "Our shop");
    assert_eq!(previewed[0]["has_media_spoiler"], true);

    let summary_id = summary["message_id"].as_i64().expect("an id");
    let id = start(&harness, OWNER, &summary).await;
    let card = completed_card(&harness, &id, summary_id).await;
    assert!(
        text(&card).contains("Delivered 3 · not alive 0 · failed 0"),
        "{}",
        text(&card)
    );
    for chat in 1..=USERS {
        assert_eq!(
            album_in(&harness, chat),
            Some(vec!["Our shop".into(), String::new(), String::new()]),
            "chat {chat}"
        );
    }
    let sends: Vec<_> = harness
        .sandbox
        .deliveries()
        .into_iter()
        .filter(|d| (1..=USERS).contains(&d.chat_id))
        .collect();
    assert!(
        sends.iter().all(|d| d.method == "sendMediaGroup"),
        "{sends:?}"
    );
    assert_eq!(sends.len() as i64, 3 * USERS, "three items to each");

    // ✏️ Edit: the caption changes, on the album's first item.
    let (_, after) = ask_to_edit(&harness, &card, summary_id).await;
    harness.say(OWNER, "Our new shop");
    let prompt = harness
        .wait_for(OWNER, after, "Confirm to edit the 3 message(s)")
        .await;
    harness.press(OWNER, &prompt, "✏️ Edit 3 message(s)");
    wait_until("every album's caption corrected", DEADLINE, || async {
        (1..=USERS)
            .all(|chat| {
                album_in(&harness, chat)
                    == Some(vec!["Our new shop".into(), String::new(), String::new()])
            })
            .then_some(())
    })
    .await;

    // 🗑 Delete everywhere: every item of every album.
    let card = completed_card(&harness, &id, 0).await;
    harness.press(OWNER, &card, "🗑 Delete everywhere");
    let question = harness
        .wait_for(
            OWNER,
            after,
            "Delete the 3 message(s) this campaign delivered",
        )
        .await;
    harness.press(OWNER, &question, "🗑 Delete 3 message(s)");
    wait_until("every album deleted", DEADLINE, || async {
        (1..=USERS)
            .all(|chat| harness.messages(chat).is_empty())
            .then_some(())
    })
    .await;
    harness.stop().await;
}

/// ✏️ Message… on the summary and 🌐 a language version take an album too:
/// the draft's message becomes the album, the ru version another one, and
/// each recipient gets the album of their language.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_album_replaces_a_drafts_message_and_makes_a_language_version() {
    let harness = Harness::start(1000.0).await;
    harness
        .users(&[
            (1, Language::En, true),
            (2, Language::En, true),
            (3, Language::Ru, true),
        ])
        .await;
    let summary = to_summary(&harness, OWNER, "all", json!({ "text": "Hello" }), None).await;
    let send_album = |group: &str, ids: &[&str]| {
        for (index, id) in ids.iter().enumerate() {
            let mut fields = json!({ "media_group_id": group, "photo": photo(id) });
            if index == 0 {
                fields["caption"] = json!(format!("Album {group}"));
            }
            harness.send(OWNER, fields);
        }
    };

    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🌐 Add ru version");
    harness
        .wait_for(
            OWNER,
            after,
            "Send the message for users whose language is ru",
        )
        .await;
    send_album("ru", &["r1", "r2", "r3"]);
    let prompt = harness
        .wait_for(OWNER, after, "Got an album: 3 item(s)")
        .await;
    harness.press(OWNER, &prompt, "➡️ Use this album");
    let summary = harness.wait_for(OWNER, after, "Versions: ru · 1").await;

    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "✏️ Message…");
    harness
        .wait_for(OWNER, after, "Send the message to broadcast instead")
        .await;
    send_album("en", &["e1", "e2"]);
    let prompt = harness
        .wait_for(OWNER, after, "Got an album: 2 item(s)")
        .await;
    harness.press(OWNER, &prompt, "➡️ Use this album");
    let summary = harness
        .wait_for(OWNER, after, "Content: album of 2 items with caption")
        .await;
    assert!(
        text(&summary).contains("Versions: ru · 1"),
        "{}",
        text(&summary)
    );

    let summary_id = summary["message_id"].as_i64().expect("an id");
    let id = start(&harness, OWNER, &summary).await;
    completed_card(&harness, &id, summary_id).await;
    for (chat, expected) in [(1, "Album en"), (2, "Album en"), (3, "Album ru")] {
        let items = if chat == 3 { 3 } else { 2 };
        let mut captions = vec![String::new(); items];
        captions[0] = expected.into();
        assert_eq!(album_in(&harness, chat), Some(captions), "chat {chat}");
    }
    harness.stop().await;
}
