//! teloxide, the project's Telegram client, must parse every answer the sandbox gives and map its
//! errors as it maps Telegram's.

use serde_json::json;
use telegram_sandbox::{ChatState, Sandbox};
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, CallbackQueryId, FileId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile,
    MessageEntity, Seconds, UpdateKind,
};
use teloxide::{ApiError, RequestError};

use crate::{BOT_ID, TOKEN, start};

const CHAT: ChatId = ChatId(42);

fn bot_for(sandbox: &Sandbox) -> Bot {
    Bot::new(TOKEN).set_api_url(sandbox.url().parse().expect("a valid URL"))
}

fn file(id: &str) -> InputFile {
    InputFile::file_id(FileId(id.to_owned()))
}

#[tokio::test]
async fn teloxide_parses_every_answer() {
    let sandbox = start(|_| {}).await;
    let bot = bot_for(&sandbox);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(
        (me.id, me.username()),
        (
            UserId(BOT_ID as u64),
            format!("sandbox_{BOT_ID}_bot").as_str()
        )
    );

    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::url("Open", "https://example.com/a".parse().expect("url")),
        InlineKeyboardButton::callback("Yes", "vote:yes"),
    ]]);
    let entities = vec![MessageEntity::bold(0, 5), MessageEntity::italic(6, 2)];
    let text = bot
        .send_message(CHAT, "Hello 😀 world")
        .entities(entities.clone())
        .reply_markup(keyboard.clone())
        .disable_notification(true)
        .protect_content(true)
        .await
        .expect("sendMessage");
    assert_eq!((text.chat.id, text.text()), (CHAT, Some("Hello 😀 world")));
    assert_eq!(text.entities(), Some(entities.as_slice()));
    assert_eq!(text.reply_markup(), Some(&keyboard));
    assert!(text.has_protected_content());
    assert_eq!(
        text.from.as_ref().map(|u| (u.id, u.is_bot)),
        Some((UserId(BOT_ID as u64), true))
    );

    let photo = bot
        .send_photo(CHAT, file("photo-id"))
        .caption("A photo")
        .caption_entities([MessageEntity::bold(0, 1)])
        .reply_markup(keyboard.clone())
        .await
        .expect("sendPhoto");
    assert_eq!(
        photo
            .photo()
            .and_then(|sizes| sizes.last())
            .map(|p| p.file.id.0.as_str()),
        Some("photo-id")
    );
    assert_eq!(
        (photo.caption(), photo.caption_entities().map(<[_]>::len)),
        (Some("A photo"), Some(1))
    );

    let video = bot
        .send_video(CHAT, file("video-id"))
        .caption("v")
        .await
        .expect("sendVideo");
    assert_eq!(
        video.video().map(|v| v.file.id.0.as_str()),
        Some("video-id")
    );
    let animation = bot
        .send_animation(CHAT, file("gif-id"))
        .await
        .expect("sendAnimation");
    assert_eq!(
        animation.animation().map(|a| a.file.id.0.as_str()),
        Some("gif-id")
    );
    let document = bot
        .send_document(CHAT, file("doc-id"))
        .await
        .expect("sendDocument");
    assert_eq!(
        document.document().map(|d| d.file.id.0.as_str()),
        Some("doc-id")
    );
    let audio = bot
        .send_audio(CHAT, file("audio-id"))
        .await
        .expect("sendAudio");
    assert_eq!(
        audio.audio().map(|a| a.file.id.0.as_str()),
        Some("audio-id")
    );
    let voice = bot
        .send_voice(CHAT, file("voice-id"))
        .await
        .expect("sendVoice");
    assert_eq!(
        voice.voice().map(|v| v.file.id.0.as_str()),
        Some("voice-id")
    );

    let copy = bot
        .copy_message(ChatId(43), CHAT, photo.id)
        .reply_markup(keyboard.clone())
        .await
        .expect("copyMessage");
    assert_eq!(copy.0, 1);
    let edited = bot
        .edit_message_text(CHAT, text.id, "Edited")
        .await
        .expect("editMessageText");
    assert!(edited.edit_date().is_some());
    assert_eq!(
        (edited.text(), edited.reply_markup()),
        (Some("Edited"), None)
    );
    let rekeyed = bot
        .edit_message_reply_markup(CHAT, text.id)
        .reply_markup(keyboard.clone())
        .await;
    assert_eq!(
        rekeyed.expect("editMessageReplyMarkup").reply_markup(),
        Some(&keyboard)
    );
    bot.delete_message(CHAT, video.id)
        .await
        .expect("deleteMessage");
    bot.answer_callback_query(CallbackQueryId("query-1".into()))
        .await
        .expect("answerCallbackQuery");

    let commands = vec![
        BotCommand::new("start", "Start"),
        BotCommand::new("lang", "Choose a language"),
    ];
    bot.set_my_commands(commands.clone())
        .await
        .expect("setMyCommands");
    assert_eq!(
        bot.get_my_commands().await.expect("getMyCommands"),
        commands
    );
    bot.delete_my_commands().await.expect("deleteMyCommands");
    assert!(
        bot.get_my_commands()
            .await
            .expect("getMyCommands")
            .is_empty()
    );

    bot.set_webhook("https://bot.example.com/hook".parse().expect("url"))
        .await
        .expect("setWebhook");
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert_eq!(
        info.url.map(String::from),
        Some("https://bot.example.com/hook".to_owned())
    );
    bot.delete_webhook().await.expect("deleteWebhook");
    assert_eq!(
        bot.get_webhook_info().await.expect("getWebhookInfo").url,
        None
    );

    let chat = bot.get_chat(CHAT).await.expect("getChat");
    assert_eq!(
        (chat.id, chat.is_private(), chat.first_name()),
        (CHAT, true, Some("User 42"))
    );

    let from = json!({"id": 42, "is_bot": false, "first_name": "Ann", "language_code": "en"});
    let chat = json!({"id": 42, "type": "private", "first_name": "Ann"});
    sandbox.push_update(BOT_ID, json!({"message": {"message_id": 1, "date": 1_700_000_000, "chat": chat, "from": from, "text": "/start"}}));
    let updates = bot.get_updates().await.expect("getUpdates");
    match updates.as_slice() {
        [update] => match &update.kind {
            UpdateKind::Message(message) => assert_eq!(message.text(), Some("/start")),
            other => panic!("a message update, got {other:?}"),
        },
        other => panic!("one update, got {other:?}"),
    }

    let methods: Vec<_> = sandbox.deliveries().into_iter().map(|d| d.method).collect();
    let expected = [
        "sendMessage",
        "sendPhoto",
        "sendVideo",
        "sendAnimation",
        "sendDocument",
        "sendAudio",
        "sendVoice",
        "copyMessage",
    ];
    assert_eq!(methods, expected);
    let first = &sandbox.deliveries()[0];
    assert_eq!(
        (first.chat_id, first.message_id, first.text.as_deref()),
        (42, 1, Some("Hello 😀 world"))
    );
    assert_eq!(first.entities.len(), 2);
    assert!(first.disable_notification && first.protect_content && !first.allow_paid_broadcast);
    assert_eq!(
        first
            .reply_markup
            .as_ref()
            .map(|m| m["inline_keyboard"][0][1]["callback_data"].clone()),
        Some(json!("vote:yes"))
    );
}

#[tokio::test]
async fn teloxide_maps_the_sandboxs_errors_as_telegrams() {
    let sandbox = start(|_| {}).await;
    let bot = bot_for(&sandbox);
    let states = [
        (1, ChatState::Blocked),
        (2, ChatState::Deactivated),
        (3, ChatState::NeverStarted),
        (4, ChatState::NotFound),
    ];
    for (chat_id, state) in states {
        sandbox.set_chat_state(chat_id, state);
    }
    let error = |chat_id: i64| {
        let bot = bot.clone();
        async move {
            bot.send_message(ChatId(chat_id), "hi")
                .await
                .expect_err("refused")
        }
    };
    assert!(matches!(
        error(1).await,
        RequestError::Api(ApiError::BotBlocked)
    ));
    assert!(matches!(
        error(2).await,
        RequestError::Api(ApiError::UserDeactivated)
    ));
    // teloxide still expects the old "Unauthorized:" prefix for this one, so it stays Unknown.
    assert!(
        matches!(error(3).await, RequestError::Api(ApiError::Unknown(text))
        if text == "Forbidden: bot can't initiate conversation with a user")
    );
    assert!(matches!(
        error(4).await,
        RequestError::Api(ApiError::ChatNotFound)
    ));

    sandbox.inject_429(3);
    assert!(
        matches!(error(5).await, RequestError::RetryAfter(secs) if secs == Seconds::from_seconds(3))
    );

    sandbox.reset();
    sandbox.break_file("broken");
    let broken = bot
        .send_photo(CHAT, file("broken"))
        .await
        .expect_err("refused");
    assert!(matches!(
        broken,
        RequestError::Api(ApiError::WrongFileIdOrUrl)
    ));
    let too_long = bot
        .send_message(CHAT, "x".repeat(4097))
        .await
        .expect_err("refused");
    assert!(matches!(
        too_long,
        RequestError::Api(ApiError::MessageIsTooLong)
    ));
    let bad_url = InlineKeyboardMarkup::new([[InlineKeyboardButton::url(
        "a",
        "ftp://x.org".parse().expect("url"),
    )]]);
    let refused = bot
        .send_message(CHAT, "hi")
        .reply_markup(bad_url)
        .await
        .expect_err("refused");
    assert!(matches!(
        refused,
        RequestError::Api(ApiError::ButtonUrlInvalid)
    ));

    let stranger = Bot::new("1:wrong").set_api_url(sandbox.url().parse().expect("url"));
    sandbox.configure(|c| c.tokens = vec![TOKEN.into()]);
    assert!(matches!(
        stranger.get_me().await,
        Err(RequestError::Api(ApiError::InvalidToken))
    ));
}

/// A PNG's signature and header: all the sandbox reads of an image.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 6, 0, 0, 0]);
    bytes
}

#[tokio::test]
async fn uploaded_photos_and_documents_are_kept_and_described_as_telegram_does() {
    let sandbox = start(|_| {}).await;
    let bot = bot_for(&sandbox);
    let chart = png_header(2400, 1200);
    let photo = bot
        .send_photo(
            CHAT,
            InputFile::memory(chart.clone()).file_name("chart.png"),
        )
        .caption("How it went")
        .await
        .expect("sendPhoto with an upload");
    let sizes = photo.photo().expect("a photo");
    let largest = sizes.last().expect("sizes");
    assert_eq!(
        (largest.width, largest.height),
        (1280, 640),
        "scaled to fit 1280"
    );
    assert_eq!(
        sandbox.upload(&largest.file.id.0).as_deref(),
        Some(chart.as_slice())
    );

    let csv = b"user_id,outcome\n1,delivered\n".to_vec();
    let document = bot
        .send_document(CHAT, InputFile::memory(csv.clone()).file_name("report.csv"))
        .await
        .expect("sendDocument with an upload");
    let sent = document.document().expect("a document");
    assert_eq!(sent.file_name.as_deref(), Some("report.csv"));
    assert_eq!(sent.file.size as usize, csv.len());
    assert_eq!(
        sandbox.upload(&sent.file.id.0).as_deref(),
        Some(csv.as_slice())
    );

    let not_an_image = bot
        .send_photo(CHAT, InputFile::memory(csv).file_name("report.csv"))
        .await
        .expect_err("refused");
    assert!(
        not_an_image.to_string().contains("IMAGE_PROCESS_FAILED"),
        "{not_an_image}"
    );
}
