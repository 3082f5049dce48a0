//! Roles: only owners and admins broadcast; everyone else sees nothing of
//! it, and their presses on an admin's buttons change nothing.

use serde_json::json;

use crate::broadcast::to_summary;
use crate::{Harness, OWNER, STRANGER, text};

const ADMIN: i64 = 9_002;

/// Sends /start as `user` and waits for the greeting: every update `user`
/// sent before it has been handled by then (a chat's updates are handled
/// in order).
async fn handled_so_far(harness: &Harness, user: i64) {
    let after = harness.last_id(user);
    harness.say(user, "/start");
    harness.wait_for(user, after, "Hi!").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_get_no_hint_and_their_presses_change_nothing() {
    let harness = Harness::start(1000.0).await;
    for command in ["/broadcast", "/campaigns", "/cancel", "/admins add 5"] {
        harness.say(STRANGER, command);
    }
    handled_so_far(&harness, STRANGER).await;
    let replies: Vec<_> = harness
        .messages(STRANGER)
        .iter()
        .map(|m| text(m).to_owned())
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(harness.dialog_step(STRANGER).await, None);

    // The stranger presses the owner's buttons (say, on a forwarded
    // summary): Silent and Start.
    let summary = to_summary(
        &harness,
        OWNER,
        "all",
        json!({ "text": "For everyone" }),
        None,
    )
    .await;
    harness.press(STRANGER, &summary, "⬜ Silent");
    harness.press(STRANGER, &summary, "🚀 Start");
    // The owner's own press comes after theirs (same chat, handled in order).
    harness.press(OWNER, &summary, "⬜ Silent");
    let after = summary["message_id"].as_i64().unwrap() - 1;
    let summary = harness.wait_for(OWNER, after, "Silent: on").await;
    assert!(
        text(&summary).contains("Ready to broadcast"),
        "{}",
        text(&summary)
    );
    assert_eq!(
        harness.dialog_step(OWNER).await.as_deref(),
        Some("confirming")
    );
    assert_eq!(harness.campaign_events().await, 0);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owners_grant_and_revoke_admins() {
    let harness = Harness::start(1000.0).await;
    harness.say(ADMIN, "/broadcast");
    handled_so_far(&harness, ADMIN).await;
    assert_eq!(harness.messages(ADMIN).len(), 1, "only the greeting");

    // The menu: users' commands for everyone, the owner's own in their chat.
    let chat = |id: i64| json!({ "type": "chat", "chat_id": id });
    assert_eq!(
        harness.menu(json!({ "type": "default" })).await,
        ["start", "language", "stop", "subscribe"]
    );
    let owners = harness.menu(chat(OWNER)).await;
    assert!(owners.contains(&"admins".into()) && owners.contains(&"broadcast".into()));
    assert!(harness.menu(chat(ADMIN)).await.is_empty());

    let after = harness.last_id(OWNER);
    harness.say(OWNER, &format!("/admins add {ADMIN}"));
    harness
        .wait_for(OWNER, after, &format!("{ADMIN} is an admin now"))
        .await;
    let admins = harness.menu(chat(ADMIN)).await;
    assert!(admins.contains(&"broadcast".into()) && !admins.contains(&"admins".into()));
    harness.say(OWNER, "/admins");
    let list = harness.wait_for(OWNER, after, "Owners (OWNER_IDS)").await;
    assert!(text(&list).contains(&format!("Owners (OWNER_IDS): {OWNER}\nAdmins: {ADMIN}")));
    harness.say(OWNER, "/admins promote everyone");
    harness.wait_for(OWNER, after, "Usage:").await;

    let admin_after = harness.last_id(ADMIN);
    harness.say(ADMIN, "/broadcast");
    harness.wait_for(ADMIN, admin_after, "step 1 of 4").await;
    harness.say(ADMIN, "/admins add 5");
    harness
        .wait_for(ADMIN, admin_after, "Only owners manage admins")
        .await;
    harness.say(ADMIN, "/cancel");
    harness.wait_for(ADMIN, admin_after, "Cancelled").await;

    harness.say(OWNER, &format!("/admins remove {ADMIN}"));
    harness
        .wait_for(OWNER, after, "is no longer an admin")
        .await;
    assert!(
        harness.menu(chat(ADMIN)).await.is_empty(),
        "back to everyone's menu"
    );
    harness.say(OWNER, &format!("/admins remove {OWNER}"));
    harness
        .wait_for(OWNER, after, "is an owner; owners are set by OWNER_IDS")
        .await;
    let before = harness.messages(ADMIN).len();
    harness.say(ADMIN, "/broadcast");
    handled_so_far(&harness, ADMIN).await;
    assert_eq!(
        harness.messages(ADMIN).len(),
        before + 1,
        "only a greeting again"
    );
    harness.stop().await;
}
