//! Flood control as a client meets it: 429s with retry_after, the penalty, the paid limit.

use std::time::{Duration, Instant};

use courier_testing::wait_until;
use serde_json::json;

use crate::{Answer, Client, start};

async fn send(client: &Client, chat_id: i64, paid: bool) -> Answer {
    client
        .call(
            "sendMessage",
            json!({"chat_id": chat_id, "text": "hi", "allow_paid_broadcast": paid}),
        )
        .await
}

fn assert_429(answer: &Answer) -> u64 {
    let (code, description) = answer.error();
    let retry_after = answer.body["parameters"]["retry_after"]
        .as_u64()
        .expect("retry_after");
    assert_eq!(
        (code, description),
        (
            429,
            format!("Too Many Requests: retry after {retry_after}").as_str()
        )
    );
    assert_eq!(answer.retry_after, Some(retry_after), "Retry-After header");
    assert!(retry_after >= 1);
    retry_after
}

#[tokio::test]
async fn a_token_gets_its_limit_per_second_and_429_past_it() {
    let sandbox = start(|c| c.rate_limit = 5).await;
    let client = Client::new(&sandbox);
    let started = Instant::now();
    let mut answers = Vec::new();
    for chat_id in 0..20 {
        answers.push(send(&client, chat_id, false).await);
    }
    // The 6th send starts a 1 s penalty, so the rest fall inside it as long as they came fast.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "20 sends took {:?}",
        started.elapsed()
    );
    let accepted = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(accepted, 5);
    assert!(answers[..5].iter().all(|a| a.status == 200));
    for answer in &answers[5..] {
        assert_429(answer);
    }
    let stats = sandbox.stats();
    assert_eq!((stats.accepted_sends, stats.too_many_requests), (5, 15));
    assert_eq!(stats.max_sends_in_any_window(Duration::from_secs(1)), 5);
}

#[tokio::test]
async fn a_429_puts_the_whole_token_in_a_penalty_that_sending_does_not_shorten() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    sandbox.inject_429(2);
    let penalized_at = Instant::now();
    assert_eq!(assert_429(&send(&client, 1, false).await), 2);
    // Every send in the penalty fails, whatever the chat, and paid ones too.
    for chat_id in 2..6 {
        assert!((1..=2).contains(&assert_429(&send(&client, chat_id, chat_id % 2 == 0).await)));
    }
    assert!(sandbox.deliveries().is_empty());

    // Keep knocking until the penalty ends: it ends on time, not earlier.
    wait_until("the penalty's end", Duration::from_secs(5), || async {
        (send(&client, 9, false).await.status == 200).then_some(())
    })
    .await;
    assert!(
        penalized_at.elapsed() >= Duration::from_secs(2),
        "accepted after {:?}",
        penalized_at.elapsed()
    );
}

#[tokio::test]
async fn one_chat_takes_one_message_a_second() {
    let sandbox = start(|c| c.chat_rate_limit = 1).await;
    let client = Client::new(&sandbox);
    send(&client, 1, false).await.result();
    assert_eq!(assert_429(&send(&client, 1, false).await), 1);
    // Telegram pauses the whole token on any 429.
    assert_eq!(assert_429(&send(&client, 2, false).await), 1);
    assert_eq!(sandbox.stats().accepted_sends, 1);
}

#[tokio::test]
async fn paid_broadcasts_have_their_own_higher_limit() {
    let sandbox = start(|c| {
        c.rate_limit = 2;
        c.paid_rate_limit = 4;
    })
    .await;
    let client = Client::new(&sandbox);
    let started = Instant::now();
    for chat_id in 0..2 {
        send(&client, chat_id, false).await.result();
    }
    for chat_id in 10..14 {
        send(&client, chat_id, true).await.result();
    }
    assert_429(&send(&client, 20, true).await);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the sends must fall in one second"
    );

    let paid: Vec<_> = sandbox
        .deliveries()
        .iter()
        .map(|d| d.allow_paid_broadcast)
        .collect();
    assert_eq!(paid, [false, false, true, true, true, true]);
    assert_eq!(
        sandbox
            .stats()
            .max_sends_in_any_window(Duration::from_secs(1)),
        6
    );
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let sandbox = start(|c| c.rate_limit = 1).await;
    sandbox.configure(|c| c.rate_limit = 0);
    let client = Client::new(&sandbox);
    for chat_id in 0..50 {
        send(&client, chat_id, false).await.result();
    }
    assert_eq!(sandbox.stats().accepted_sends, 50);
}

#[tokio::test]
async fn edits_and_deletions_count_against_the_tokens_limit_but_not_the_chats() {
    let sandbox = start(|c| {
        c.rate_limit = 4;
        c.chat_rate_limit = 1;
    })
    .await;
    let client = Client::new(&sandbox);
    for chat_id in 1..=2 {
        assert_eq!(send(&client, chat_id, false).await.status, 200);
    }
    // Within the same second: two amendments of chat 1's message fit the
    // token's 4 (a chat's one message a second is about new messages).
    let edit = client
        .call(
            "editMessageText",
            json!({"chat_id": 1, "message_id": 1, "text": "edited"}),
        )
        .await;
    assert_eq!(edit.result()["text"], "edited");
    let delete = client
        .call("deleteMessage", json!({"chat_id": 2, "message_id": 1}))
        .await;
    assert_eq!(delete.result(), &json!(true));
    // The fifth call of the second is one too many, whatever it is.
    let edit = client
        .call(
            "editMessageText",
            json!({"chat_id": 1, "message_id": 1, "text": "again"}),
        )
        .await;
    assert_429(&edit);
    let actions: Vec<_> = sandbox.amendments().iter().map(|a| a.action).collect();
    assert_eq!(actions, ["edit", "delete"]);
}

/// Paid messages above the free 30 of a second cost 0.1 Star each, once the balance cannot
/// pay Telegram refuses them, and getStarTransactions lists what was billed.
#[tokio::test]
async fn paid_messages_above_the_free_rate_cost_stars_until_the_balance_runs_out() {
    let sandbox = start(|c| {
        c.stars_balance = 1;
        c.chat_rate_limit = 0;
    })
    .await;
    let client = Client::new(&sandbox);
    let started = Instant::now();
    let mut answers = Vec::new();
    for chat_id in 0..45 {
        answers.push(send(&client, chat_id, true).await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "45 sends took {:?}",
        started.elapsed()
    );
    // 30 free, 10 at 0.1 Star (the whole balance), then refused.
    assert!(answers[..40].iter().all(|a| a.status == 200));
    for answer in &answers[40..] {
        assert_eq!(answer.error(), (400, "Bad Request: BALANCE_TOO_LOW"));
    }
    assert_eq!(sandbox.stars_spent(crate::TOKEN), 1_000_000_000);
    let balance = client.call("getMyStarBalance", json!({})).await;
    assert_eq!(
        balance.body["result"],
        json!({ "amount": 0, "nanostar_amount": 0 })
    );
    let listed = client.call("getStarTransactions", json!({})).await;
    let billed: i64 = listed.body["result"]["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| {
            assert_eq!(t["receiver"]["type"], "telegram_api");
            t["receiver"]["request_count"].as_i64().expect("a count")
        })
        .sum();
    assert_eq!(billed, 10);
    // The free lane does not need Stars.
    assert_eq!(send(&client, 99, false).await.status, 200);
}

/// An album is one call, as many messages as it has items for the token's limit, one for
/// the chat's; its items share a media_group_id, and deleteMessages takes them all back.
#[tokio::test]
async fn an_album_counts_each_item_against_the_token_and_deletes_in_one_call() {
    let sandbox = start(|c| c.rate_limit = 5).await;
    let client = Client::new(&sandbox);
    let album = |chat_id: i64| {
        json!({ "chat_id": chat_id, "media": [
            { "type": "photo", "media": "p1", "caption": "Look", "has_spoiler": true },
            { "type": "video", "media": "v1" },
            { "type": "photo", "media": "p2" },
        ]})
    };
    let sent = client.call("sendMediaGroup", album(1)).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let messages = sent.body["result"]
        .as_array()
        .expect("the album's messages")
        .clone();
    assert_eq!(messages.len(), 3);
    let group = &messages[0]["media_group_id"];
    assert!(group.is_string());
    assert!(messages.iter().all(|m| &m["media_group_id"] == group));
    assert_eq!(messages[0]["caption"], "Look");
    assert_eq!(messages[0]["has_media_spoiler"], true);
    assert!(messages[1]["video"]["file_id"] == "v1");
    // 3 of the token's 5 are gone: another album of 3 is over the limit.
    let over = client.call("sendMediaGroup", album(2)).await;
    assert_eq!(over.status, 429);

    let mixed = client
        .call(
            "sendMediaGroup",
            json!({ "chat_id": 3, "media": [
                { "type": "photo", "media": "p1" },
                { "type": "document", "media": "d1" },
            ]}),
        )
        .await;
    assert_eq!(
        mixed.error(),
        (
            400,
            "Bad Request: document can't be mixed with other media types"
        )
    );
    let alone = client
        .call(
            "sendMediaGroup",
            json!({ "chat_id": 3, "media": [{ "type": "photo", "media": "p1" }] }),
        )
        .await;
    assert_eq!(alone.error().0, 400);

    let ids: Vec<i64> = messages
        .iter()
        .map(|m| m["message_id"].as_i64().expect("an id"))
        .collect();
    wait_until("the penalty to end", Duration::from_secs(5), || async {
        let deleted = client
            .call(
                "deleteMessages",
                json!({ "chat_id": 1, "message_ids": ids }),
            )
            .await;
        (deleted.status == 200).then_some(())
    })
    .await;
    assert!(sandbox.messages_to(1).is_empty());
}
