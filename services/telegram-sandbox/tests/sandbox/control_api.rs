//! The control API under `/_sandbox`, driven over HTTP as an out-of-process test would.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{BOT_ID, Client, start};

#[tokio::test]
async fn every_control_endpoint_works_over_http() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    let control = |method: Method, path: &str, body: Option<Value>| {
        let path = format!("/_sandbox{path}");
        let client = &client;
        async move { client.request(method, &path, body).await }
    };
    let send = |chat_id: i64| client.call("sendMessage", json!({"chat_id": chat_id, "text": "hi"}));

    let blocked = control(Method::POST, "/chats/7", Some(json!({"state": "blocked"}))).await;
    assert_eq!(blocked.result(), &json!(true));
    assert_eq!(
        send(7).await.error(),
        (403, "Forbidden: bot was blocked by the user")
    );
    control(Method::POST, "/chats/7", Some(json!({"state": "active"})))
        .await
        .result();
    // A user who blocked another bot is still this bot's.
    let other_bot = control(
        Method::POST,
        "/bots/999/chats/7",
        Some(json!({"state": "blocked"})),
    )
    .await;
    assert_eq!(other_bot.result(), &json!(true));
    send(7).await.result();

    let patched = control(
        Method::PATCH,
        "/config",
        Some(json!({"latency_ms": 5, "chat_rate_limit": 0})),
    )
    .await;
    assert_eq!(
        (
            &patched.result()["latency_ms"],
            &patched.result()["rate_limit"]
        ),
        (&json!(5), &json!(30))
    );
    assert_eq!(
        control(Method::GET, "/config", None).await.result(),
        patched.result()
    );

    control(
        Method::POST,
        "/fail_next",
        Some(json!({"count": 1, "failure": "internal_server_error"})),
    )
    .await
    .result();
    assert_eq!(send(8).await.error(), (500, "Internal Server Error"));
    control(Method::POST, "/inject_429", Some(json!({"retry_after": 3})))
        .await
        .result();
    assert_eq!(
        send(8).await.error(),
        (429, "Too Many Requests: retry after 3")
    );

    control(
        Method::POST,
        "/broken_files",
        Some(json!({"file_id": "gone"})),
    )
    .await
    .result();
    let broken = client
        .call("sendDocument", json!({"chat_id": 8, "document": "gone"}))
        .await;
    assert_eq!(
        broken.error(),
        (400, "Bad Request: wrong file identifier/HTTP URL specified")
    );

    let pushed = control(
        Method::POST,
        &format!("/bots/{BOT_ID}/updates"),
        Some(json!({"callback_query": {"id": "q"}})),
    )
    .await;
    assert_eq!(pushed.result(), &json!({"update_id": 1}));
    let updates = client.call("getUpdates", json!({})).await;
    assert_eq!(
        updates.result(),
        &json!([{"update_id": 1, "callback_query": {"id": "q"}}])
    );

    let deliveries = control(Method::GET, "/deliveries", None).await;
    let deliveries = deliveries.result().as_array().expect("a list");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (&deliveries[0]["method"], &deliveries[0]["chat_id"]),
        (&json!("sendMessage"), &json!(7))
    );
    assert!(deliveries[0]["accepted_ms"].is_u64());

    let messages = control(Method::GET, "/chats/7/messages", None).await;
    assert_eq!(messages.result()[0]["text"], json!("hi"));
    let of_this_bot = control(
        Method::GET,
        &format!("/bots/{BOT_ID}/chats/7/messages"),
        None,
    )
    .await;
    assert_eq!(of_this_bot.result()[0]["text"], json!("hi"));
    let of_another = control(Method::GET, "/bots/999/chats/7/messages", None).await;
    assert_eq!(of_another.result(), &json!([]));

    let stats = control(Method::GET, "/stats?window_ms=60000", None).await;
    let stats = stats.result();
    assert_eq!(
        (
            &stats["requests"],
            &stats["accepted_sends"],
            &stats["too_many_requests"]
        ),
        (&json!(6), &json!(1), &json!(1))
    );
    assert_eq!(
        stats["errors_by_code"],
        json!({"400": 1, "403": 1, "429": 1, "500": 1})
    );
    assert_eq!(
        (&stats["window_ms"], &stats["max_sends_in_window"]),
        (&json!(60000), &json!(1))
    );

    control(Method::POST, "/reset", None).await.result();
    assert!(sandbox.deliveries().is_empty());
    assert_eq!(sandbox.stats().requests, 0);
    assert_eq!(
        sandbox.config().latency_ms,
        5,
        "a reset keeps the configuration"
    );
}

#[tokio::test]
async fn bad_control_input_is_a_400_envelope() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    let cases = [
        (
            Method::POST,
            "/_sandbox/chats/7",
            json!({"state": "asleep"}),
        ),
        (
            Method::POST,
            "/_sandbox/chats/seven",
            json!({"state": "blocked"}),
        ),
        (
            Method::PATCH,
            "/_sandbox/config",
            json!({"rate_limit": "fast"}),
        ),
        (Method::POST, "/_sandbox/bots/1/updates", json!([1, 2])),
        (Method::POST, "/_sandbox/fail_next", json!({"count": 1})),
    ];
    for (method, path, body) in cases {
        let answer = client.request(method, path, Some(body.clone())).await;
        assert_eq!(answer.error().0, 400, "{path} {body}");
    }
    let unknown = client.request(Method::GET, "/_sandbox/nothing", None).await;
    assert_eq!(unknown.error(), (404, "Not Found"));
}
