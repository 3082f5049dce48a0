//! The Bot API methods: each reads its parameters, checks them as Telegram does and answers the
//! `result` Telegram would.
//!
//! Method names match in any case, as on the real server. Any method not listed answers 404.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::bot::Bot;
use crate::chats::{self, Sent, unix_now};
use crate::content::{self, Content, MediaKind};
use crate::envelope::ApiError;
use crate::params::Params;
use crate::record::CallbackAnswer;
use crate::state::{SendFlags, Shared, World};

const MAX_UPDATES_LIMIT: i64 = 100;
/// How long after sending a bot may delete its message in a private chat.
const DELETABLE_FOR_SECS: i64 = 48 * 3600;
const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are exactly \
                            the same as a current content and reply markup of the message";

/// Answers `method` for `bot`.
pub async fn call(
    shared: &Shared,
    bot: &Bot,
    method: &str,
    params: &Params,
) -> Result<Value, ApiError> {
    let method = method.to_ascii_lowercase();
    if let Some(kind) = MediaKind::ALL
        .into_iter()
        .find(|k| k.method().eq_ignore_ascii_case(&method))
    {
        return send(shared, bot, params, kind.method(), |p| {
            Content::media(kind, p)
        });
    }
    match method.as_str() {
        "getme" => Ok(bot.me()),
        "getmystarbalance" => Ok(star_balance(shared, bot)),
        "getstartransactions" => Ok(star_transactions(shared, bot, params)),
        "sendmessage" => send(shared, bot, params, "sendMessage", Content::text),
        "copymessage" => copy_message(shared, bot, params),
        "editmessagetext" => edit_message_text(shared, bot, params),
        "editmessagecaption" => edit_message_caption(shared, bot, params),
        "editmessagereplymarkup" => edit_message_reply_markup(shared, bot, params),
        "deletemessage" => delete_message(shared, bot, params),
        "deletemessages" => delete_messages(shared, bot, params),
        "sendmediagroup" => send_media_group(shared, bot, params),
        "answercallbackquery" => answer_callback_query(shared, params),
        "getupdates" => get_updates(shared, bot, params).await,
        "setwebhook" => set_webhook(shared, bot, params),
        "deletewebhook" => store_webhook(shared, bot, params, None),
        "getwebhookinfo" => Ok(webhook_info(shared, bot)),
        "setmycommands" => set_my_commands(shared, bot, params),
        "getmycommands" => Ok(my_commands(shared, bot, params)),
        "deletemycommands" => delete_my_commands(shared, bot, params),
        "getchat" => get_chat(shared, bot, params),
        "pinchatmessage" => pin_chat_message(shared, bot, params),
        "unpinchatmessage" => unpin_chat_message(shared, bot, params),
        _ => Err(ApiError::not_found()),
    }
}

/// Every `send*` and `copyMessage`: the chat id first (Telegram's first complaint), then the
/// content, then the trip through the world. Answers the sent `Message`.
fn send(
    shared: &Shared,
    bot: &Bot,
    params: &Params,
    method: &str,
    read_content: impl FnOnce(&Params) -> Result<Content, ApiError>,
) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    let content = read_content(params)?;
    shared
        .world()
        .send(bot, method, chat_id, content, SendFlags::from(params))
}

fn copy_message(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let message = send(shared, bot, params, "copyMessage", |params| {
        let from_chat_id = chat_id(params, "from_chat_id")?;
        let world = shared.world();
        world.chats.state(bot.id, from_chat_id).resolve()?;
        let source =
            message_id(params).and_then(|id| world.chats.message(bot.id, from_chat_id, id));
        let source = source.ok_or_else(|| ApiError::bad_request("message to copy not found"))?;
        Content::copied(&source.content, params)
    })?;
    Ok(json!({ "message_id": message["message_id"] }))
}

/// `editMessage*`: finds the message, lets `change` rewrite its content, refuses an edit
/// that changes nothing, as Telegram does, and counts it against the token's rate limit.
/// Answers the edited `Message`. Telegram sets no time limit on editing a bot's own messages in
/// private chats (only business messages not sent by the bot, after 48 hours).
fn edit(
    shared: &Shared,
    bot: &Bot,
    params: &Params,
    change: impl FnOnce(&mut Content) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let mut world = shared.world();
    let (chat_id, message_id, sent) = own_message(&world, bot, params, "edit")?;
    let mut content = sent.content.clone();
    change(&mut content)?;
    if content == sent.content {
        return Err(ApiError::bad_request(NOT_MODIFIED));
    }
    world.amend(bot, "edit", chat_id, message_id)?;
    let sent = world
        .chats
        .message_mut(bot.id, chat_id, message_id)
        .expect("found above, under the same lock");
    sent.content = content;
    sent.edit_date = Some(unix_now());
    Ok(chats::render(chat_id, message_id, sent))
}

fn edit_message_text(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let new = Content::text(params)?;
    edit(shared, bot, params, |content| match content.media {
        Some(_) => Err(ApiError::bad_request(
            "there is no text in the message to edit",
        )),
        None => {
            // Like Telegram, an edit without reply_markup drops the keyboard; the effect the
            // message arrived with stays.
            let effect_id = content.effect_id.take();
            *content = Content { effect_id, ..new };
            Ok(())
        }
    })
}

fn edit_message_caption(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let (text, entities) = content::caption(params)?;
    let markup = content::reply_markup(params)?;
    edit(shared, bot, params, |content| match &content.media {
        None => Err(ApiError::bad_request(
            "there is no caption in the message to edit",
        )),
        Some(media) => {
            content.show_caption_above_media =
                media.kind.shows_beside_caption() && params.flag("show_caption_above_media");
            (content.text, content.entities) = (text, entities);
            content.reply_markup = markup;
            Ok(())
        }
    })
}

fn edit_message_reply_markup(
    shared: &Shared,
    bot: &Bot,
    params: &Params,
) -> Result<Value, ApiError> {
    let markup = content::reply_markup(params)?;
    edit(shared, bot, params, |content| {
        content.reply_markup = markup;
        Ok(())
    })
}

/// The bot's own message that `chat_id` and `message_id` name, as it stands, for a method that
/// would `act` on it (Telegram's error: "message to edit not found"; another bot's message in
/// the same user's chat is not found, since each bot has its own chat with the user).
fn own_message(
    world: &World,
    bot: &Bot,
    params: &Params,
    act: &str,
) -> Result<(i64, i32, Sent), ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    world.chats.state(bot.id, chat_id).resolve()?;
    let message_id = message_id(params);
    let sent = message_id.and_then(|id| world.chats.message(bot.id, chat_id, id));
    let (Some(message_id), Some(sent)) = (message_id, sent) else {
        return Err(ApiError::bad_request(format!("message to {act} not found")));
    };
    Ok((chat_id, message_id, sent.clone()))
}

/// `deleteMessage`: a bot deletes its messages in a private chat only within 48 hours of
/// sending them (the Bot API's documented limit; Telegram answers "message can't be deleted for
/// everyone" past it); each deletion counts against the token's rate limit.
fn delete_message(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let mut world = shared.world();
    let (chat_id, message_id, sent) = own_message(&world, bot, params, "delete")?;
    if unix_now() - sent.date > DELETABLE_FOR_SECS {
        return Err(ApiError::bad_request(
            "message can't be deleted for everyone",
        ));
    }
    world.amend(bot, "delete", chat_id, message_id)?;
    world.chats.delete(bot.id, chat_id, message_id);
    Ok(json!(true))
}

/// `deleteMessages`: up to 100 of the bot's messages of one chat in one call (one against the
/// rate limit), each under `deleteMessage`'s 48 hours; ids not found are skipped.
fn delete_messages(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    let ids = match params.json::<Vec<i32>>("message_ids") {
        Some(Ok(ids)) if (1..=100).contains(&ids.len()) => ids,
        _ => {
            return Err(ApiError::bad_request(
                "message identifiers must be 1 to 100",
            ));
        }
    };
    let mut world = shared.world();
    world.chats.state(bot.id, chat_id).resolve()?;
    let own: Vec<(i32, Sent)> = ids
        .iter()
        .filter_map(|&id| Some((id, world.chats.message(bot.id, chat_id, id)?.clone())))
        .collect();
    let Some(&(first, _)) = own.first() else {
        return Err(ApiError::bad_request("message to delete not found"));
    };
    if own
        .iter()
        .any(|(_, sent)| unix_now() - sent.date > DELETABLE_FOR_SECS)
    {
        return Err(ApiError::bad_request(
            "message can't be deleted for everyone",
        ));
    }
    world.amend(bot, "delete", chat_id, first)?;
    for (id, _) in own {
        world.chats.delete(bot.id, chat_id, id);
    }
    Ok(json!(true))
}

/// The media an album may hold, by `InputMedia` type.
const ALBUM_KINDS: [(&str, MediaKind); 4] = [
    ("photo", MediaKind::Photo),
    ("video", MediaKind::Video),
    ("document", MediaKind::Document),
    ("audio", MediaKind::Audio),
];

/// `sendMediaGroup`: 2 to 10 photos and videos, or documents, or audio files, by file_id,
/// each checked like its own `send*` and stored as its own message of the group. Telegram
/// counts each against the token's limit; the chat gets one album. The wording of the
/// refusals for the count and the mixing is the sandbox's (Telegram's is not documented).
fn send_media_group(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    let media = match params.json::<Vec<Value>>("media") {
        Some(Ok(media)) => media,
        _ => return Err(ApiError::bad_request("can't parse media JSON object")),
    };
    if !(2..=10).contains(&media.len()) {
        return Err(ApiError::bad_request("media group must have 2 to 10 items"));
    }
    let group = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string();
    let mut contents = Vec::new();
    for item in &media {
        let kind = ALBUM_KINDS
            .iter()
            .find(|(name, _)| item["type"] == *name)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| ApiError::bad_request("unsupported media type in a media group"))?;
        let mut fields: Vec<(String, String)> = vec![(
            kind.field().to_owned(),
            item["media"].as_str().unwrap_or_default().to_owned(),
        )];
        for field in [
            "caption",
            "caption_entities",
            "has_spoiler",
            "show_caption_above_media",
        ] {
            match &item[field] {
                Value::Null => {}
                Value::String(text) => fields.push((field.to_owned(), text.clone())),
                other => fields.push((field.to_owned(), other.to_string())),
            }
        }
        let item_params = Params::from_iter(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut content = Content::media(kind, &item_params)?;
        content.effect_id = content::effect_id(params)?;
        content.media_group_id = Some(group.clone());
        contents.push(content);
    }
    let kinds: Vec<MediaKind> = contents
        .iter()
        .filter_map(|c| c.media.as_ref().map(|m| m.kind))
        .collect();
    for alone in [MediaKind::Document, MediaKind::Audio] {
        if kinds.contains(&alone) && kinds.iter().any(|k| *k != alone) {
            return Err(ApiError::bad_request(format!(
                "{} can't be mixed with other media types",
                alone.field()
            )));
        }
    }
    let sent = shared.world().send_all(
        bot,
        "sendMediaGroup",
        chat_id,
        contents,
        SendFlags::from(params),
    )?;
    Ok(Value::Array(sent))
}

/// `pinChatMessage`: a bot may pin in a private chat with the user.
fn pin_chat_message(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    let mut world = shared.world();
    world.chats.state(bot.id, chat_id).resolve()?;
    let pinned = message_id(params).is_some_and(|id| world.chats.pin(bot.id, chat_id, id));
    match pinned {
        true => Ok(json!(true)),
        false => Err(ApiError::bad_request("message to pin not found")),
    }
}

/// `unpinChatMessage`: the message given, or the latest pinned one.
fn unpin_chat_message(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    let mut world = shared.world();
    world.chats.state(bot.id, chat_id).resolve()?;
    match world.chats.unpin(bot.id, chat_id, message_id(params)) {
        true => Ok(json!(true)),
        false => Err(ApiError::bad_request("message to unpin not found")),
    }
}

/// The sandbox does not track callback queries, so any id is taken as
/// fresh; the answer is recorded for tests to read.
fn answer_callback_query(shared: &Shared, params: &Params) -> Result<Value, ApiError> {
    let Some(id) = params.text("callback_query_id") else {
        return Err(ApiError::bad_request(
            "query is too old and response timeout expired or query ID is invalid",
        ));
    };
    shared.world().record.answer_callback(CallbackAnswer {
        callback_query_id: id.to_owned(),
        text: params.text("text").map(str::to_owned),
        show_alert: params.flag("show_alert"),
    });
    Ok(json!(true))
}

/// Long polling: answers at once if updates of `bot` are waiting, else waits up to `timeout`
/// seconds for one to be pushed.
async fn get_updates(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let offset = params.integer("offset").unwrap_or(0);
    let limit = params
        .integer("limit")
        .unwrap_or(MAX_UPDATES_LIMIT)
        .clamp(1, MAX_UPDATES_LIMIT) as usize;
    let timeout = Duration::from_secs(params.integer("timeout").unwrap_or(0).max(0).unsigned_abs());
    let deadline = Instant::now() + timeout;
    loop {
        // Listen before looking, so an update pushed in between still wakes this call.
        let arrived = shared.update_arrived();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        {
            let mut world = shared.world();
            if world.settings_of(bot.id).webhook_url.is_some() {
                return Err(ApiError::conflict(
                    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ));
            }
            let updates = world.updates_of(bot.id).take(offset, limit);
            if !updates.is_empty() || Instant::now() >= deadline {
                return Ok(json!(updates));
            }
        }
        tokio::select! {
            () = arrived => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = shared.shutdown.cancelled() => return Ok(json!([])),
        }
    }
}

/// Telegram only sends updates to HTTPS webhooks. The sandbox keeps the URL (so getUpdates
/// conflicts with it) but posts nothing to it.
fn set_webhook(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let url = params.text("url");
    if url.is_some_and(|u| !u.to_ascii_lowercase().starts_with("https://")) {
        return Err(ApiError::bad_request(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }
    store_webhook(shared, bot, params, url.map(str::to_owned))
}

/// `setWebhook` and `deleteWebhook`; both may drop the updates still queued.
fn store_webhook(
    shared: &Shared,
    bot: &Bot,
    params: &Params,
    url: Option<String>,
) -> Result<Value, ApiError> {
    let mut world = shared.world();
    world.settings_of(bot.id).webhook_url = url;
    if params.flag("drop_pending_updates") {
        world.updates_of(bot.id).clear();
    }
    Ok(json!(true))
}

fn webhook_info(shared: &Shared, bot: &Bot) -> Value {
    let mut world = shared.world();
    json!({
        "url": world.settings_of(bot.id).webhook_url.clone().unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": world.updates_of(bot.id).pending_count(),
    })
}

fn set_my_commands(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let commands = commands(params)?;
    let mut world = shared.world();
    world
        .settings_of(bot.id)
        .set_commands(&scope(params), language(params), commands);
    Ok(json!(true))
}

fn my_commands(shared: &Shared, bot: &Bot, params: &Params) -> Value {
    shared
        .world()
        .settings_of(bot.id)
        .commands(&scope(params), language(params))
}

fn delete_my_commands(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let mut world = shared.world();
    world
        .settings_of(bot.id)
        .delete_commands(&scope(params), language(params));
    Ok(json!(true))
}

/// `setMyCommands`' list: each command 1-32 lowercase letters, digits or underscores.
fn commands(params: &Params) -> Result<Value, ApiError> {
    let unreadable = || ApiError::bad_request("can't parse commands JSON object");
    let commands: Vec<Value> = params
        .json("commands")
        .ok_or_else(unreadable)?
        .map_err(|_| unreadable())?;
    for command in &commands {
        let name = command
            .get("command")
            .and_then(Value::as_str)
            .ok_or_else(unreadable)?;
        command
            .get("description")
            .and_then(Value::as_str)
            .ok_or_else(unreadable)?;
        let valid = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ApiError::bad_request("BOT_COMMAND_INVALID"));
        }
    }
    Ok(json!(commands))
}

fn scope(params: &Params) -> Value {
    params
        .json("scope")
        .and_then(Result::ok)
        .unwrap_or_else(|| json!({"type": "default"}))
}

fn language(params: &Params) -> &str {
    params.text("language_code").unwrap_or_default()
}

/// `getMyStarBalance`: a `StarAmount`, whole Stars and nanostars.
fn star_balance(shared: &Shared, bot: &Bot) -> Value {
    let world = shared.world();
    let nanostars = world.stars.balance(&bot.token, world.config.stars_balance);
    json!({ "amount": nanostars / 1_000_000_000, "nanostar_amount": nanostars % 1_000_000_000 })
}

/// `getStarTransactions`: `offset` (0 by default) and `limit` (1 to 100, 100 by default).
fn star_transactions(shared: &Shared, bot: &Bot, params: &Params) -> Value {
    let offset = params.integer("offset").unwrap_or(0).max(0);
    let limit = params.integer("limit").unwrap_or(100).clamp(1, 100);
    let (offset, limit) = (offset as usize, limit as usize);
    shared.world().stars.transactions(&bot.token, offset, limit)
}

/// A private chat's `ChatFullInfo`, with the fields teloxide requires.
fn get_chat(shared: &Shared, bot: &Bot, params: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(params, "chat_id")?;
    shared.world().chats.state(bot.id, chat_id).resolve()?;
    let mut chat = chats::chat(chat_id);
    chat["accent_color_id"] = json!(0);
    chat["max_reaction_count"] = json!(11);
    chat["accepted_gift_types"] = json!({
        "unlimited_gifts": true, "limited_gifts": true, "unique_gifts": true, "premium_subscription": true,
    });
    Ok(chat)
}

/// A chat id parameter. Telegram resolves `@username` strings; the sandbox knows no usernames,
/// so any non-numeric id is an unknown chat.
fn chat_id(params: &Params, name: &str) -> Result<i64, ApiError> {
    let raw = params
        .text(name)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is empty")))?;
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("chat not found"))
}

fn message_id(params: &Params) -> Option<i32> {
    params
        .integer("message_id")
        .and_then(|id| i32::try_from(id).ok())
}
