//! The Bot API over raw HTTP: exact envelopes, every way of passing parameters, Telegram's error
//! texts, long polling.

use std::time::{Duration, Instant};

use courier_testing::wait_until;
use reqwest::Method;
use serde_json::{Value, json};
use telegram_sandbox::{ChatState, Failure};

use crate::{BOT_ID, Client, TOKEN, start};

#[tokio::test]
async fn unknown_methods_and_tokens_get_telegrams_exact_envelopes() {
    let sandbox = start(|c| c.tokens = vec![TOKEN.into()]).await;
    let client = Client::new(&sandbox);

    let unknown = client.call("sendTelepathy", json!({})).await;
    assert_eq!(
        (unknown.status, unknown.body),
        (
            404,
            json!({"ok":false,"error_code":404,"description":"Not Found"})
        )
    );

    for token in ["123", "abc:def", "99:not-listed", ""] {
        let answer = client
            .send(client.http().get(client.url(&format!("/bot{token}/getMe"))))
            .await;
        let unauthorized = json!({"ok":false,"error_code":401,"description":"Unauthorized"});
        assert_eq!(
            (answer.status, answer.body),
            (401, unauthorized),
            "token {token:?}"
        );
    }
}

#[tokio::test]
async fn parameters_come_as_json_form_or_query_and_methods_ignore_case() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);

    let me = client
        .send(client.http().get(client.url(&format!("/bot{TOKEN}/GETME"))))
        .await;
    assert_eq!(me.result()["id"], json!(BOT_ID));
    assert_eq!(me.result()["is_bot"], json!(true));

    let by_query = client
        .http()
        .get(client.url(&format!("/bot{TOKEN}/sendmessage?chat_id=42&text=query")));
    let by_form = client
        .http()
        .post(client.url(&format!("/bot{TOKEN}/sendMessage")))
        .form(&[
            ("chat_id", "42"),
            ("text", "form"),
            ("disable_notification", "true"),
        ]);
    assert_eq!(client.send(by_query).await.result()["text"], json!("query"));
    assert_eq!(client.send(by_form).await.result()["text"], json!("form"));
    let by_json = client
        .call(
            "sendMessage",
            json!({"chat_id": "42", "text": "json", "protect_content": true}),
        )
        .await;

    let message = by_json.result();
    assert_eq!(message["message_id"], json!(3));
    assert_eq!(
        message["chat"],
        json!({"id": 42, "type": "private", "first_name": "User 42"})
    );
    assert_eq!(message["from"]["id"], json!(BOT_ID));
    assert_eq!(message["has_protected_content"], json!(true));
    assert!(
        message["date"]
            .as_i64()
            .is_some_and(|date| date > 1_700_000_000)
    );

    let flags: Vec<_> = sandbox
        .deliveries()
        .iter()
        .map(|d| (d.disable_notification, d.protect_content))
        .collect();
    assert_eq!(flags, [(false, false), (true, false), (false, true)]);
}

#[tokio::test]
async fn refusals_use_telegrams_words() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    sandbox.set_chat_state(1, ChatState::Blocked);
    sandbox.set_chat_state(2, ChatState::Deactivated);
    sandbox.set_chat_state(3, ChatState::NeverStarted);
    sandbox.set_chat_state(4, ChatState::NotFound);
    sandbox.break_file("broken-file");

    let keyboard = |button: Value| json!({ "inline_keyboard": [[button]] });
    let cases = [
        (
            "sendMessage",
            json!({"text": "hi"}),
            400,
            "Bad Request: chat_id is empty",
        ),
        (
            "sendMessage",
            json!({"chat_id": 9}),
            400,
            "Bad Request: message text is empty",
        ),
        (
            "sendMessage",
            json!({"chat_id": 9, "text": "x".repeat(4097)}),
            400,
            "Bad Request: message is too long",
        ),
        (
            "sendPhoto",
            json!({"chat_id": 9, "photo": "p", "caption": "x".repeat(1025)}),
            400,
            "Bad Request: message caption is too long",
        ),
        (
            "sendMessage",
            json!({"chat_id": 9, "text": "hi", "reply_markup": keyboard(json!({"text": "a", "url": "javascript:alert(1)"}))}),
            400,
            "Bad Request: BUTTON_URL_INVALID",
        ),
        (
            "sendMessage",
            json!({"chat_id": 9, "text": "hi", "reply_markup": keyboard(json!({"text": "a", "callback_data": "x".repeat(65)}))}),
            400,
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            "sendVideo",
            json!({"chat_id": 9, "video": "broken-file"}),
            400,
            "Bad Request: wrong file identifier/HTTP URL specified",
        ),
        (
            "sendMessage",
            json!({"chat_id": 1, "text": "hi"}),
            403,
            "Forbidden: bot was blocked by the user",
        ),
        (
            "sendMessage",
            json!({"chat_id": 2, "text": "hi"}),
            403,
            "Forbidden: user is deactivated",
        ),
        (
            "sendPhoto",
            json!({"chat_id": 3, "photo": "p"}),
            403,
            "Forbidden: bot can't initiate conversation with a user",
        ),
        (
            "sendMessage",
            json!({"chat_id": 4, "text": "hi"}),
            400,
            "Bad Request: chat not found",
        ),
        (
            "sendMessage",
            json!({"chat_id": "@nobody", "text": "hi"}),
            400,
            "Bad Request: chat not found",
        ),
        (
            "deleteMessage",
            json!({"chat_id": 9, "message_id": 1}),
            400,
            "Bad Request: message to delete not found",
        ),
        (
            "editMessageText",
            json!({"chat_id": 9, "message_id": 1, "text": "a"}),
            400,
            "Bad Request: message to edit not found",
        ),
        (
            "copyMessage",
            json!({"chat_id": 9, "from_chat_id": 9, "message_id": 1}),
            400,
            "Bad Request: message to copy not found",
        ),
    ];
    for (method, params, code, description) in cases {
        let answer = client.call(method, params.clone()).await;
        assert_eq!(answer.error(), (code, description), "{method} {params}");
        assert_eq!(
            answer.body.as_object().map(|o| o.len()),
            Some(3),
            "only ok, error_code, description"
        );
    }

    let entities = json!([{"type": "bold", "offset": 2, "length": 5}]);
    let answer = client
        .call(
            "sendMessage",
            json!({"chat_id": 9, "text": "hi 😀", "entities": entities}),
        )
        .await;
    let (code, description) = answer.error();
    assert_eq!(code, 400);
    assert!(
        description.starts_with("Bad Request: can't parse entities: "),
        "{description}"
    );
    assert!(sandbox.deliveries().is_empty());
}

#[tokio::test]
async fn messages_can_be_edited_copied_and_deleted() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    let keyboard = json!({"inline_keyboard": [[{"text": "Open", "url": "https://example.com"}]]});
    let sent = client
        .call(
            "sendPhoto",
            json!({"chat_id": 5, "photo": "photo-id", "caption": "old", "reply_markup": keyboard}),
        )
        .await;
    assert_eq!(sent.result()["reply_markup"], keyboard);

    let same_markup = json!({"chat_id": 5, "message_id": 1, "reply_markup": keyboard});
    let unchanged = client.call("editMessageReplyMarkup", same_markup).await;
    assert!(
        unchanged
            .error()
            .1
            .starts_with("Bad Request: message is not modified")
    );
    let text_edit = client
        .call(
            "editMessageText",
            json!({"chat_id": 5, "message_id": 1, "text": "new"}),
        )
        .await;
    assert_eq!(
        text_edit.error().1,
        "Bad Request: there is no text in the message to edit"
    );

    let copy = client.call(
        "copyMessage",
        json!({"chat_id": 6, "from_chat_id": 5, "message_id": 1, "caption": "copy"}),
    );
    assert_eq!(copy.await.result(), &json!({"message_id": 1}));
    let copied = &sandbox.messages_to(6)[0];
    assert_eq!(
        (&copied["caption"], &copied["photo"][1]["file_id"]),
        (&json!("copy"), &json!("photo-id"))
    );
    assert!(
        copied.get("reply_markup").is_none(),
        "a copy keeps only the keyboard it is given"
    );

    let removed = client
        .call(
            "editMessageReplyMarkup",
            json!({"chat_id": 5, "message_id": 1}),
        )
        .await;
    assert!(removed.result().get("reply_markup").is_none());
    assert!(removed.result()["edit_date"].is_i64());
    assert_eq!(
        client
            .call("deleteMessage", json!({"chat_id": 5, "message_id": 1}))
            .await
            .result(),
        &json!(true)
    );
    assert!(sandbox.messages_to(5).is_empty());

    let methods: Vec<_> = sandbox.deliveries().into_iter().map(|d| d.method).collect();
    assert_eq!(methods, ["sendPhoto", "copyMessage"]);
}

#[tokio::test]
async fn a_caption_is_edited_and_a_message_is_deleted_only_within_48_hours() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    client
        .call(
            "sendPhoto",
            json!({"chat_id": 5, "photo": "photo-id", "caption": "old"}),
        )
        .await
        .result();
    client
        .call("sendMessage", json!({"chat_id": 5, "text": "words"}))
        .await
        .result();
    let caption = client
        .call(
            "editMessageCaption",
            json!({"chat_id": 5, "message_id": 1, "caption": "new",
                   "caption_entities": [{"type": "bold", "offset": 0, "length": 3}]}),
        )
        .await;
    let edited = caption.result();
    assert_eq!(
        (&edited["caption"], &edited["caption_entities"][0]["type"]),
        (&json!("new"), &json!("bold"))
    );
    assert_eq!(edited["photo"][1]["file_id"], "photo-id", "the photo stays");
    let no_caption = client
        .call(
            "editMessageCaption",
            json!({"chat_id": 5, "message_id": 2, "caption": "x"}),
        )
        .await;
    assert_eq!(
        no_caption.error().1,
        "Bad Request: there is no caption in the message to edit"
    );
    let missing = client
        .call(
            "editMessageText",
            json!({"chat_id": 5, "message_id": 9, "text": "x"}),
        )
        .await;
    assert_eq!(missing.error().1, "Bad Request: message to edit not found");

    sandbox.age_messages(std::time::Duration::from_secs(49 * 3600));
    let too_old = client
        .call("deleteMessage", json!({"chat_id": 5, "message_id": 1}))
        .await;
    assert_eq!(
        too_old.error(),
        (400, "Bad Request: message can't be deleted for everyone")
    );
    // Editing has no such limit for a bot's own messages.
    client
        .call(
            "editMessageText",
            json!({"chat_id": 5, "message_id": 2, "text": "later"}),
        )
        .await
        .result();
    assert_eq!(sandbox.messages_to(5).len(), 2);
    let actions: Vec<_> = sandbox.amendments().iter().map(|a| a.action).collect();
    assert_eq!(actions, ["edit", "edit"]);
}

#[tokio::test]
async fn messages_are_pinned_and_unpinned_as_telegram_answers() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    for text in ["one", "two"] {
        client
            .call("sendMessage", json!({"chat_id": 5, "text": text}))
            .await
            .result();
    }
    let pin = |id: i64| client.call("pinChatMessage", json!({"chat_id": 5, "message_id": id}));
    assert_eq!(pin(1).await.result(), &json!(true));
    assert_eq!(pin(2).await.result(), &json!(true));
    assert_eq!(
        pin(9).await.error(),
        (400, "Bad Request: message to pin not found")
    );
    assert_eq!(sandbox.pinned(5), [1, 2]);
    // Without a message id, the latest pin goes.
    let unpin = client.call("unpinChatMessage", json!({"chat_id": 5})).await;
    assert_eq!(unpin.result(), &json!(true));
    assert_eq!(sandbox.pinned(5), [1]);
    client
        .call("deleteMessage", json!({"chat_id": 5, "message_id": 1}))
        .await
        .result();
    assert!(
        sandbox.pinned(5).is_empty(),
        "a deleted message is no longer pinned"
    );
    let none = client.call("unpinChatMessage", json!({"chat_id": 5})).await;
    assert_eq!(
        none.error(),
        (400, "Bad Request: message to unpin not found")
    );
}

#[tokio::test]
async fn scheduled_server_errors_come_then_stop() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    sandbox.fail_next(2, Failure::BadGateway);
    let send = || client.call("sendMessage", json!({"chat_id": 1, "text": "hi"}));
    assert_eq!(send().await.error(), (502, "Bad Gateway"));
    assert_eq!(send().await.error(), (502, "Bad Gateway"));
    send().await.result();

    sandbox.configure(|c| c.error_rate = 1.0);
    assert_eq!(send().await.error(), (500, "Internal Server Error"));
    let stats = sandbox.stats();
    assert_eq!((stats.requests, stats.accepted_sends), (4, 1));
    assert_eq!(
        stats.errors_by_code.into_iter().collect::<Vec<_>>(),
        [(500, 1), (502, 2)]
    );
}

#[tokio::test]
async fn get_updates_long_polls_until_an_update_arrives() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);

    let started = Instant::now();
    assert_eq!(
        client
            .call("getUpdates", json!({"timeout": 1}))
            .await
            .result(),
        &json!([])
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let poll = tokio::spawn({
        let client = Client::new(&sandbox);
        async move { client.call("getUpdates", json!({"timeout": 30})).await }
    });
    wait_until("both requests in", Duration::from_secs(5), || async {
        (sandbox.stats().requests == 2).then_some(())
    })
    .await;
    let message = json!({"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private", "first_name": "A"}, "text": "/start"});
    let update_id = sandbox.push_update(BOT_ID, json!({ "message": message }));
    let answer = poll.await.expect("poll finishes");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered on arrival, not at the timeout"
    );
    assert_eq!(
        answer.result(),
        &json!([{"update_id": update_id, "message": message}])
    );

    // Still there until confirmed by a higher offset.
    assert_eq!(
        client
            .call("getUpdates", json!({}))
            .await
            .result()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let confirmed = client
        .call("getUpdates", json!({"offset": update_id + 1}))
        .await;
    assert_eq!(confirmed.result(), &json!([]));

    // Another bot's update waits in that bot's queue, not in this one's.
    let other_bot = Client::new(&sandbox);
    let other = sandbox.push_update(999, json!({ "message": message }));
    assert_eq!(
        client.call("getUpdates", json!({})).await.result(),
        &json!([])
    );
    let of_other = other_bot
        .request(
            Method::POST,
            "/bot999:AAF-other_token/getUpdates",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        of_other.result(),
        &json!([{"update_id": other, "message": message}])
    );

    let webhook = client
        .call("setWebhook", json!({"url": "https://bot.example.com/hook"}))
        .await;
    assert_eq!(webhook.result(), &json!(true));
    assert_eq!(
        client.call("getUpdates", json!({})).await.error(),
        (
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
        )
    );
    let http_webhook = client
        .call("setWebhook", json!({"url": "http://bot.example.com/hook"}))
        .await;
    assert_eq!(
        http_webhook.error(),
        (
            400,
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        )
    );
}

#[tokio::test]
async fn latency_delays_every_answer_and_in_flight_requests_are_capped() {
    let sandbox = start(|c| {
        c.latency_ms = 1500;
        c.max_in_flight = 2;
    })
    .await;
    let client = Client::new(&sandbox);
    let slow = || {
        let client = Client::new(&sandbox);
        tokio::spawn(async move { client.call("getMe", json!({})).await })
    };
    let started = Instant::now();
    let (first, second) = (slow(), slow());
    wait_until("both requests in", Duration::from_secs(5), || async {
        (sandbox.stats().requests == 2).then_some(())
    })
    .await;

    let third = client.call("getMe", json!({})).await;
    assert_eq!(third.error(), (429, "Too Many Requests: retry after 60"));
    assert_eq!(third.body["parameters"], json!({"retry_after": 60}));
    for answer in [first.await, second.await] {
        answer.expect("finishes").result();
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// The sandbox counts the connections clients open: a client that keeps
/// its connection alive opens one for many requests, another client its own.
#[tokio::test]
async fn connections_opened_are_counted() {
    let sandbox = start(|_| {}).await;
    let client = Client::new(&sandbox);
    for _ in 0..5 {
        client.call("getMe", json!({})).await.result();
    }
    assert_eq!(sandbox.stats().connections_opened, 1);
    Client::new(&sandbox)
        .call("getMe", json!({}))
        .await
        .result();
    assert_eq!(sandbox.stats().connections_opened, 2);
}
