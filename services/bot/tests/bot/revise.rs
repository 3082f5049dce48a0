//! Changing a draft without starting over: ⬅️ Back from steps 2 and 3 and
//! from the time question, and on the summary 🏷 Name, ✏️ Message and
//! 🔗 Buttons; the campaign goes out as last changed, under its name.

use courier_core::proto::v1::Language;

use crate::broadcast::start;
use crate::{Harness, OWNER, labels, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_goes_back_and_changes_the_draft_and_it_goes_out_as_changed() {
    let harness = Harness::start(1000.0).await;
    harness.users(&[(7_301, Language::En, true)]).await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "/broadcast");
    let step1 = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &step1, "en");
    let step2 = harness.wait_for(OWNER, after, "Step 2 of 4").await;
    assert_eq!(labels(&step2), ["⬅️ Back", "✖️ Cancel"]);

    // Back from step 2 asks step 1 again; forward again.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &step2, "⬅️ Back");
    let step1 = harness.wait_for(OWNER, after, "step 1 of 4").await;
    harness.press(OWNER, &step1, "all");
    harness.wait_for(OWNER, after, "Step 2 of 4").await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "First words");
    let step3 = harness.wait_for(OWNER, after, "Step 3 of 4").await;
    assert!(
        !text(&step3).contains('`'),
        "no literal backticks: {}",
        text(&step3)
    );
    assert!(
        !text(&step3).contains("forwarded post"),
        "nothing was forwarded"
    );
    // Back from step 3 asks for the message again.
    harness.press(OWNER, &step3, "⬅️ Back");
    harness.wait_for(OWNER, after, "Back to step 2").await;
    let after = harness.last_id(OWNER);
    harness.say(OWNER, "Draft words");
    let step3 = harness.wait_for(OWNER, after, "Step 3 of 4").await;
    harness.press(OWNER, &step3, "Skip");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(
        text(&summary).contains("Name: Draft words"),
        "{}",
        text(&summary)
    );

    // 🏷 Name it.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🏷 Name…");
    harness.wait_for(OWNER, after, "Send a name").await;
    harness.say(OWNER, "Spring sale");
    let summary = harness.wait_for(OWNER, after, "Name: Spring sale").await;

    // ✏️ Message: other words, same everything else.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "✏️ Message…");
    harness
        .wait_for(OWNER, after, "Send the message to broadcast instead")
        .await;
    harness.say(OWNER, "Better words");
    harness.wait_for(OWNER, after, "Better words").await;
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(
        text(&summary).contains("Name: Spring sale"),
        "{}",
        text(&summary)
    );

    // 🔗 Buttons: step 3 again.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🔗 Buttons…");
    harness
        .wait_for(OWNER, after, "The buttons are cleared")
        .await;
    harness.say(OWNER, "Site - https://example.com");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(
        text(&summary).contains("Buttons: Site → https://example.com"),
        "{}",
        text(&summary)
    );

    // 🕑 then ⬅️ Back: the summary again, still starting now.
    let after = harness.last_id(OWNER);
    harness.press(OWNER, &summary, "🕑");
    // The time zone is asked first, once.
    harness
        .wait_for(OWNER, after, "Which time zone are you in?")
        .await;
    harness.say(OWNER, "UTC");
    let when = harness
        .wait_for(OWNER, after, "When should it start?")
        .await;
    harness.press(OWNER, &when, "⬅️ Back");
    let summary = harness.wait_for(OWNER, after, "Ready to broadcast").await;
    assert!(text(&summary).contains("Starts: when you press Start"));

    let id = start(&harness, OWNER, &summary).await;
    let card = harness.wait_for(OWNER, 0, &format!("\nid {id}")).await;
    assert!(
        text(&card).starts_with("📤 “Spring sale”") || text(&card).contains("“Spring sale”"),
        "{}",
        text(&card)
    );
    let got = harness.wait_for(7_301, 0, "Better words").await;
    assert_eq!(labels(&got), ["Site"]);
    assert_eq!(harness.messages(7_301).len(), 1);
    harness.stop().await;
}
