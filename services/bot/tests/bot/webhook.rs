//! Webhook mode: updates come over HTTP, and only with the secret token;
//! each goes through `incoming` like a polled one. Every bot served has a
//! path and a secret of its own on the one listener.

use courier_bot::Webhook;
use courier_core::config::TokenKeyConfig;
use courier_e2e::{TOKEN_KEY, add_bot};
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
    // Without the secret, or with a wrong one: refused, once the bot serves
    // its path (until then, like any other path, it is not found).
    let status = courier_testing::wait_until("the webhook served", DEADLINE, || async {
        let status = post(None, update("/start")).await.ok()?.status();
        (status != reqwest::StatusCode::NOT_FOUND).then_some(status)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_bots_webhook_has_a_path_and_a_secret_of_its_own() {
    let mut harness = Harness::start(1000.0).await;
    harness.stop_bot().await;
    add_bot(&harness.env, "222:AAF-second_secret_0123456789").await;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let default = Webhook {
        url: "https://bot.example.com/telegram".parse().unwrap(),
        secret: SECRET.into(),
    };
    let mut config = harness.config();
    config.webhook.url = Some(default.url.clone());
    config.webhook.listen = listen;
    config.webhook.secret = Some(SECRET.into());
    config.token_key = TokenKeyConfig::of(Some(TOKEN_KEY.parse().unwrap()));
    harness.start_bot(config);

    let added = default.of_added_bot(222);
    let http = reqwest::Client::new();
    let post = |secret: &str| {
        let update = json!({ "update_id": 1, "message": {
            "message_id": 1, "date": 1_700_000_000, "text": "/start", "from": user(BEA),
            "chat": { "id": BEA, "type": "private", "first_name": "Bea" },
        }});
        http.post(format!("http://{listen}{}", added.url.path()))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(&update)
            .send()
    };
    // The default bot's secret does not open the added bot's path.
    let status = courier_testing::wait_until("the added bot's webhook", DEADLINE, || async {
        let status = post(SECRET).await.ok()?.status();
        (status != reqwest::StatusCode::NOT_FOUND).then_some(status)
    })
    .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let accepted = post(&added.secret).await.unwrap();
    assert_eq!(accepted.status(), reqwest::StatusCode::OK);
    // The answer is in Bea's chat with the added bot.
    harness.talk_to(222);
    harness.wait_for(BEA, 0, "Hi!").await;
    let answered_by: Vec<i64> = harness
        .sandbox
        .deliveries()
        .iter()
        .filter(|d| d.chat_id == BEA)
        .map(|d| d.bot_id)
        .collect();
    assert_eq!(answered_by, [222]);
    harness.stop().await;
}
