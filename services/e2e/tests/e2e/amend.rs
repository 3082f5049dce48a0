//! Edit and recall everywhere: an edit while the campaign still sends
//! reaches every recipient (the ones not sent yet get the new text, the
//! others have their message edited); a recall deletes every delivered
//! message at the token's free budget, and leaves those older than
//! Telegram allows, counted.

use std::time::Duration;

use courier_core::amend_tally::Tally;
use courier_core::commands::Begin;
use courier_core::proto::v1::{Audience, Content, ContentKind};
use courier_e2e::{Setup, receipts, unlimited_sandbox};
use courier_testing::campaigns::{
    begin_text_campaign, campaign_row, wait_for_status, wait_for_users,
};
use courier_testing::read_model::assert_replays_identically;
use courier_testing::wait_until;
use telegram_sandbox::{SandboxConfig, most_in_any_window};

const DEADLINE: Duration = Duration::from_secs(120);

fn text(words: &str) -> Content {
    Content {
        kind: ContentKind::Text.into(),
        text: words.into(),
        ..Default::default()
    }
}

/// The text of the one message each of `users` chats holds (None: none,
/// or more than one).
fn texts(s: &Setup, users: i64) -> Vec<Option<String>> {
    (1..=users)
        .map(|chat| match s.sandbox.messages_to(chat).as_slice() {
            [message] => message["text"].as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edit_while_sending_reaches_the_recipients_sent_before_and_after_it() {
    const USERS: i64 = 1000;
    let s = Setup::new(USERS, unlimited_sandbox()).await;
    // Slow enough that the edit lands midway.
    let stack = s.stack(250.0, 2);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let campaign =
        begin_text_campaign(&s.commands, Audience::All, "Sale tomorow", Begin::Now).await;
    wait_until("a third delivered", DEADLINE, || async {
        campaign_row(&client, campaign)
            .await
            .filter(|row| row.delivered >= 300)
    })
    .await;

    let revision = s
        .commands
        .edit(campaign, 1, text("Sale tomorrow"), vec![])
        .await
        .unwrap();
    assert_eq!(revision, 1);
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, USERS as i32);

    wait_until(
        "every message reads the corrected text",
        DEADLINE,
        || async {
            texts(&s, USERS)
                .iter()
                .all(|t| t.as_deref() == Some("Sale tomorrow"))
                .then_some(())
        },
    )
    .await;
    assert!(
        receipts(&s.sandbox).values().all(|&n| n == 1),
        "an edit sends no second message"
    );
    let by_revision = client
        .query(
            "SELECT revision, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY 1 ORDER BY 1",
            &[&campaign],
        )
        .await
        .unwrap();
    let sent_old: i64 = by_revision[0].get(1);
    assert_eq!(by_revision.len(), 2, "both revisions were sent");
    assert!(sent_old >= 300, "{sent_old} got the first text");
    let edits = s.sandbox.amendments();
    assert_eq!(
        edits.len() as i64,
        sent_old,
        "exactly the old ones are edited"
    );
    let tally = wait_until("the edits projected", DEADLINE, || async {
        let tally = Tally::read(&**client, campaign).await.unwrap();
        tally
            .edit
            .as_ref()
            .is_some_and(|(_, c)| c.done == sent_old && c.waiting == 0)
            .then_some(tally)
    })
    .await;
    assert_eq!(tally.edit.unwrap().1.failed, vec![]);
    // Revisions and amendments replay into the same read model.
    assert_replays_identically(&s.env, &client, DEADLINE).await;
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alone_a_recall_deletes_at_the_free_budget_and_counts_what_telegram_keeps() {
    const USERS: i64 = 90;
    const OLD: i64 = 10;
    // Telegram's limits: 30 a second per token, one a second per chat.
    let s = Setup::new(USERS, SandboxConfig::default()).await;
    let stack = s.stack(30.0, 2);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let campaign = begin_text_campaign(&s.commands, Audience::All, "Oops", Begin::Now).await;
    wait_for_status(&client, campaign, "completed", DEADLINE).await;
    // Ten were sent (so the read model says) three days ago: past
    // Telegram's 48 hours, they are not tried.
    client
        .execute(
            "UPDATE deliveries SET finished_at = finished_at - interval '72 hours'
             WHERE campaign_id = $1 AND user_id <= $2",
            &[&campaign, &OLD],
        )
        .await
        .unwrap();

    s.commands.recall(campaign, 1).await.unwrap();
    let tally = wait_until("every recent message deleted", DEADLINE, || async {
        let tally = Tally::read(&**client, campaign).await.unwrap();
        tally
            .recall
            .as_ref()
            .is_some_and(|c| c.done == USERS - OLD)
            .then_some(tally)
    })
    .await;
    let recall = tally.recall.unwrap();
    assert_eq!((recall.too_old, recall.waiting), (OLD, 0));
    assert_eq!(recall.failed, vec![]);
    for chat in 1..=USERS {
        let left = s.sandbox.messages_to(chat).len();
        assert_eq!(left, usize::from(chat <= OLD), "chat {chat}");
    }
    let deletions: Vec<_> = s
        .sandbox
        .amendments()
        .iter()
        .map(|a| a.accepted_at)
        .collect();
    assert_eq!(deletions.len() as i64, USERS - OLD);
    let most = most_in_any_window(&deletions, Duration::from_secs(1));
    assert!(most <= 30, "{most} deletions within one second");
    assert_eq!(s.sandbox.stats().too_many_requests, 0, "no 429");
    assert_eq!(
        campaign_row(&client, campaign).await.unwrap().status,
        "completed",
        "a recall after completion leaves the status"
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recall_while_sending_cancels_then_deletes_what_went_out() {
    const USERS: i64 = 300;
    let s = Setup::new(USERS, unlimited_sandbox()).await;
    let stack = s.stack(100.0, 1);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, USERS, DEADLINE).await;
    let campaign =
        begin_text_campaign(&s.commands, Audience::All, "Wrong audience", Begin::Now).await;
    wait_until("some delivered", DEADLINE, || async {
        campaign_row(&client, campaign)
            .await
            .filter(|row| row.delivered >= 50)
    })
    .await;
    s.commands.recall(campaign, 1).await.unwrap();
    wait_for_status(&client, campaign, "cancelled", DEADLINE).await;
    wait_until("no message left in any chat", DEADLINE, || async {
        (1..=USERS)
            .all(|chat| s.sandbox.messages_to(chat).is_empty())
            .then_some(())
    })
    .await;
    let sent = s.sandbox.deliveries().len();
    assert!(sent < USERS as usize, "the recall stopped the sending");
    assert_eq!(
        s.sandbox.amendments().len(),
        sent,
        "each sent message deleted once"
    );
    // A second recall is refused: there is nothing left to take back.
    assert!(s.commands.recall(campaign, 1).await.is_err());
    stack.stop().await.unwrap();
}
