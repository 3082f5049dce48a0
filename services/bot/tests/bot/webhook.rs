//! Webhook mode: updates come over HTTP, and only with the secret token;
//! each goes through `incoming` like a polled one.

use serde_json::json;

use crate::{DEADLINE, Harness, user};

const SECRET: &str = "webhook_secret-42";
const BEA: i64 = 4_000_000_002;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_updates_need_the_secret_token() {
    let mut harness = Harness::start(1000.0).await;
    harness.stop_bot().await;
    // A free port for the webhook server.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut config = harness.config();
    config.webhook.url = Some("https://bot.example.com/telegram".parse().unwrap());
    config.webhook.listen = listen;
    config.webhook.secret = Some(SECRET.into());
    harness.start_bot(config);

    let http = reqwest::Client::new();
    let update = |text: &str| {
        json!({ "update_id": 1, "message": {
            "message_id": 1, "date": 1_700_000_000, "text": text, "from": user(BEA),
            "chat": { "id": BEA, "type": "private", "first_name": "Bea" },
        }})
    };
    let post = |secret: Option<&'static str>, body: serde_json::Value| {
        let mut request = http.post(format!("http://{listen}/telegram")).json(&body);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };
    // Without the secret, or with a wrong one: refused, once the server is up.
    let status = courier_testing::wait_until("the webhook server", DEADLINE, || async {
        post(None, update("/start")).await.ok().map(|r| r.status())
    })
    .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let wrong = post(Some("guess"), update("/start")).await.unwrap();
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(harness.messages(BEA).is_empty());

    // With the secret, even a message teloxide alone would read as empty (a
    // Bot API 9.5 entity) reaches the dialogue.
    let mut newer = update("/start");
    newer["message"]["entities"] = json!([{ "type": "date_time", "offset": 0, "length": 6,
                                            "unix_time": 1_790_000_000 }]);
    let accepted = post(Some(SECRET), newer).await.unwrap();
    assert_eq!(accepted.status(), reqwest::StatusCode::OK);
    harness.wait_for(BEA, 0, "Hi!").await;
    harness.stop().await;
}
