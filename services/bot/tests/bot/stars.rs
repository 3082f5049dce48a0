//! The paid lane and the bot's Telegram Stars: the cost beside the balance
//! before Start; a balance that runs out halfway moves the campaign to the
//! free lane with nothing lost and the admin told; the report's cost is
//! Telegram's own record.

use std::collections::HashMap;

use courier_core::proto::v1::Language;
use courier_e2e::BOT_TOKEN;
use serde_json::json;

use crate::broadcast::{start, to_summary};
use crate::{Harness, OWNER, text};

/// The paid lane spends Stars: the summary says about how many, beside the
/// bot's balance as Telegram answers getMyStarBalance, and says so plainly
/// when the balance falls short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_campaign_shows_its_cost_beside_the_balance() {
    let harness = Harness::start(1000.0).await;
    let users: Vec<_> = (1..=100).map(|id| (id, Language::Ru, true)).collect();
    harness.users(&users).await;
    harness.sandbox.configure(|c| c.stars_balance = 5);
    let summary = to_summary(&harness, OWNER, "ru", json!({ "text": "Sale" }), None).await;
    assert!(!text(&summary).contains("Stars"), "{}", text(&summary));
    let before = summary["message_id"].as_i64().expect("an id") - 1;
    harness.press(OWNER, &summary, "⬜ Paid lane");
    let summary = harness.wait_for(OWNER, before, "Paid lane: on").await;
    let shown = text(&summary);
    assert!(shown.contains("Paid lane cost: about "), "{shown}");
    assert!(shown.contains("the bot's balance: 5 Stars"), "{shown}");
    assert!(shown.contains("⚠️ The balance cannot cover it"), "{shown}");

    harness.sandbox.configure(|c| c.stars_balance = 100_000);
    harness.press(OWNER, &summary, "⬜ Silent");
    let summary = harness.wait_for(OWNER, before, "Silent: on").await;
    let shown = text(&summary);
    assert!(shown.contains("the bot's balance: 100000 Stars"), "{shown}");
    assert!(!shown.contains("cannot cover"), "{shown}");
    harness.stop().await;
}

/// 3 Stars pay for 30 messages above the free 30 of a second: the rest of
/// the audience goes on the free lane, each recipient once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_campaign_whose_stars_run_out_finishes_on_the_free_lane() {
    const RECIPIENTS: i64 = 240;
    let harness = Harness::start(30.0).await;
    let users: Vec<_> = (1..=RECIPIENTS)
        .map(|id| (id, Language::Ru, true))
        .collect();
    harness.users(&users).await;
    harness.sandbox.configure(|c| c.stars_balance = 3);
    let summary = to_summary(&harness, OWNER, "ru", json!({ "text": "Sale" }), None).await;
    let before = summary["message_id"].as_i64().expect("an id") - 1;
    harness.press(OWNER, &summary, "⬜ Paid lane");
    let summary = harness.wait_for(OWNER, before, "Paid lane: on").await;
    let id = start(&harness, OWNER, &summary).await;
    // The admin is told on the card while it sends.
    harness
        .wait_for_all(
            OWNER,
            before,
            &[&format!("id {id}"), "⭐ The bot's Stars ran out"],
        )
        .await;
    let report = harness
        .wait_for_all(OWNER, before, &[&format!("id {id}"), " completed"])
        .await;
    let report = text(&report);
    assert!(
        report.contains(&format!(
            "Recipients {RECIPIENTS} · delivered {RECIPIENTS} · not alive 0 · failed 0"
        )),
        "{report}"
    );
    let deliveries = harness.sandbox.deliveries();
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for delivery in &deliveries {
        *per_chat.entry(delivery.chat_id).or_default() += 1;
    }
    assert!(
        (1..=RECIPIENTS).all(|chat| per_chat.get(&chat) == Some(&1)),
        "{per_chat:?}"
    );
    // Paid until the Stars ran out (the 30 billed at least; some within the
    // free 30 of their second), free after.
    let paid = deliveries.iter().filter(|d| d.allow_paid_broadcast).count();
    assert!((30..RECIPIENTS as usize).contains(&paid), "{paid} paid");
    assert_eq!(harness.sandbox.stars_spent(BOT_TOKEN), 3_000_000_000);
    // The report's cost is Telegram's record: what the sandbox charged.
    assert!(
        report.contains("Paid lane: Telegram billed 30 message(s) above the free 30/s, 3 Stars"),
        "{report}"
    );
    harness.stop().await;
}
