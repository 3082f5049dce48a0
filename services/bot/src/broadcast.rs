//! The /broadcast dialog, one handler per step: choose the audience, send
//! the content, add buttons (or skip), check the preview and press Start.
//! Each step stores where the dialog stands ([`crate::dialogue`]) before
//! answering, so the next update may reach any replica, or a restarted bot.

use std::sync::Arc;

use chrono::Utc;
use courier_core::audience::{self, AudienceSize};
use courier_core::campaign::CampaignStatus;
use courier_core::commands::{Begin, NewCampaign};
use courier_core::proto::campaign_name;
use courier_core::proto::v1::{
    Audience, AudienceFilter, Content, InlineKeyboard, Language, Names, Variant,
};
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardMarkup, Message, MessageEntity, MessageId,
};

use crate::actions::{Action, Toggle};
use crate::config::BroadcastConfig;
use crate::dialogue::{AlbumInProgress, AlbumInto, Dialogue, Dialogues, Draft, State};
use crate::handlers::HandlerResult;
use crate::incoming::Original;
use crate::preview::{self, Preview};
use crate::roles::Roles;
use crate::storage::{Store, wait_for_projection};
use crate::timing::Campaigning;
use crate::{approval, buttons, content, revise, segment, users};

const CANCEL_HINT: &str = "(/cancel to stop)";

/// /broadcast: step 1, at any point of a dialog (it starts over).
pub async fn begin(bot: Bot, message: Message, dialogue: Dialogue, store: Store) -> HandlerResult {
    ask_for_audience(&bot, message.chat.id, &dialogue, &store).await
}

/// Step 1's question.
pub(crate) async fn ask_for_audience(
    bot: &Bot,
    chat: ChatId,
    dialogue: &Dialogue,
    store: &Store,
) -> HandlerResult {
    let mut counts = Vec::new();
    for audience in ONE_TAP {
        counts.push((
            audience,
            store
                .audience(&audience::from_legacy(audience))
                .await?
                .recipients,
        ));
    }
    bot.send_message(
        chat,
        format!(
            "New broadcast, step 1 of 4: who should receive it? \
             The numbers are the users who can be reached now; \
             🎯 Segment picks users by tags, source, join date or activity. {CANCEL_HINT}"
        ),
    )
    .reply_markup(audience_keyboard(&counts))
    .await?;
    dialogue
        .update(State::ChoosingAudience {
            filter: AudienceFilter::default(),
        })
        .await?;
    Ok(())
}

/// The seed's audiences, one tap each.
const ONE_TAP: [Audience; 3] = [Audience::Ru, Audience::En, Audience::All];

fn audience_keyboard(counts: &[(Audience, i64)]) -> InlineKeyboardMarkup {
    let choices = counts.iter().map(|&(audience, count)| {
        let name = audience.code().unwrap_or_default();
        Action::Audience(audience).button(format!("{name} · {count}"))
    });
    InlineKeyboardMarkup::new([
        choices.collect(),
        vec![
            Action::Segment.button("🎯 Segment…"),
            Action::Abort.button("✖️ Cancel"),
        ],
    ])
}

/// Step 1 answered with one tap.
pub async fn audience(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    audience: Audience,
    store: Store,
) -> HandlerResult {
    let filter = audience::from_legacy(audience);
    let size = store.audience(&filter).await?;
    choose(bot, query, dialogue, filter, size).await
}

/// Step 1 answered with the segment built.
pub async fn use_segment(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    filter: AudienceFilter,
    store: Store,
) -> HandlerResult {
    let size = store.audience(&filter).await?;
    if size.recipients == 0 {
        bot.answer_callback_query(query.id)
            .text("Nobody matches this audience now: change it first.")
            .show_alert(true)
            .await?;
        return Ok(());
    }
    choose(bot, query, dialogue, filter, size).await
}

/// Step 1 done: ask for the content.
async fn choose(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    filter: AudienceFilter,
    size: AudienceSize,
) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    settle(
        &bot,
        &query,
        format!("Audience: {}.", audience::to_text(&filter)),
    )
    .await?;
    ask_for_content(&bot, &dialogue, filter, size).await
}

/// Step 2's question.
pub(crate) async fn ask_for_content(
    bot: &Bot,
    dialogue: &Dialogue,
    filter: AudienceFilter,
    size: AudienceSize,
) -> HandlerResult {
    let text = format!(
        "Audience: {} · {} recipients now.\n\nStep 2 of 4: send me the message to broadcast: {}. \
         Forward a channel post to keep its link buttons. {CANCEL_HINT}",
        audience::to_text(&filter),
        size.recipients,
        content::SUPPORTED
    );
    dialogue
        .update(State::AwaitingContent { audience: filter })
        .await?;
    bot.send_message(dialogue.chat_id(), text)
        .reply_markup(back_or_cancel())
        .await?;
    Ok(())
}

/// ⬅️ Back alone, under a question asked from the summary (it leads back
/// there).
pub(crate) fn back_only() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[Action::Back.button("⬅️ Back")]])
}

/// ⬅️ Back and ✖️ Cancel, under a step's question.
pub(crate) fn back_or_cancel() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        Action::Back.button("⬅️ Back"),
        Action::Abort.button("✖️ Cancel"),
    ]])
}

/// Step 1, building a segment: a press opens the builder or changes one
/// part of the filter; the card shows the new audience at once.
pub async fn refine(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    filter: AudienceFilter,
    action: Action,
    store: Store,
) -> HandlerResult {
    let filter = match action {
        Action::Refine(press) => segment::refine(filter, press),
        _ => filter,
    };
    let (text, keyboard) = segment_card(&store, &filter).await?;
    dialogue.update(State::ChoosingAudience { filter }).await?;
    bot.answer_callback_query(query.id.clone()).await?;
    if let Some(message) = query.regular_message() {
        bot.edit_message_text(message.chat.id, message.id, text)
            .reply_markup(keyboard)
            .await?;
    }
    Ok(())
}

/// Step 1: a filter typed instead of tapped. A mistake is shown where it is.
pub async fn typed_filter(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    store: Store,
) -> HandlerResult {
    let chat = message.chat.id;
    let Some(typed) = message.text() else {
        bot.send_message(chat, format!("{}\n{CANCEL_HINT}", segment::TYPE_HINT))
            .await?;
        return Ok(());
    };
    let filter = match audience::parse(typed) {
        Ok(filter) => filter,
        Err(error) => {
            // The caret lines up under the mistake only in a fixed-width font.
            let intro = "I couldn't read that filter:\n";
            let pointing = error.pointing_into(typed);
            let reply = format!("{intro}{pointing}\n\nType it again {CANCEL_HINT}.");
            let utf16 = |text: &str| text.encode_utf16().count();
            bot.send_message(chat, reply)
                .entities([MessageEntity::pre(None, utf16(intro), utf16(&pointing))])
                .await?;
            return Ok(());
        }
    };
    let (text, keyboard) = segment_card(&store, &filter).await?;
    dialogue.update(State::ChoosingAudience { filter }).await?;
    bot.send_message(chat, text).reply_markup(keyboard).await?;
    Ok(())
}

async fn segment_card(
    store: &Store,
    filter: &AudienceFilter,
) -> HandlerResult<(String, InlineKeyboardMarkup)> {
    let tags = store.popular_tags().await?;
    let sources = store.popular_sources().await?;
    let unknown_tags = store.unknown_tags(filter).await?;
    let languages = store.languages().await;
    let choices = segment::Choices {
        size: store.audience(filter).await?,
        tags: &tags,
        sources: &sources,
        unknown_tags: &unknown_tags,
        languages: &languages,
    };
    Ok(segment::card(filter, &choices))
}

/// Step 2: the content, checked as Telegram would check it.
pub async fn content(
    bot: Bot,
    message: Message,
    original: Original,
    dialogue: Dialogue,
    audience: AudienceFilter,
) -> HandlerResult {
    let chat = message.chat.id;
    let sent = original.of(&message);
    if let Some(group) = content::album_of(&sent) {
        let into = AlbumInto::NewDraft { audience };
        return begin_album(&bot, chat, &dialogue, group, into, &sent).await;
    }
    let Some(captured) = capture(&bot, &message, &original).await? else {
        return Ok(());
    };
    let kept = captured.keyboard.as_ref().map_or(0, |k| k.rows.len());
    let draft = Draft::new(audience, captured);
    dialogue.update(State::AwaitingButtons { draft }).await?;
    let source = match message.forward_origin() {
        Some(_) => "the forwarded post",
        None => "your message",
    };
    let kept = match kept {
        0 => String::new(),
        n => format!(" The {n} row(s) of link buttons of {source} are kept; yours go below."),
    };
    ask_for_buttons(&bot, chat, &format!("Got it.{kept}")).await
}

/// The first item of an album: the rest are gathered in
/// [`State::CollectingAlbum`].
pub(crate) async fn begin_album(
    bot: &Bot,
    chat: ChatId,
    dialogue: &Dialogue,
    group: &str,
    into: AlbumInto,
    sent: &serde_json::Value,
) -> HandlerResult {
    let album = AlbumInProgress {
        group: group.to_owned(),
        album: Content::default(),
        prompt: 0,
        into,
    };
    collect_album_item(bot, chat, dialogue, album, sent).await
}

/// The next item of an album; any other message answers the question the
/// album was answering.
pub async fn album_item(
    bot: Bot,
    message: Message,
    original: Original,
    dialogue: Dialogue,
    album: AlbumInProgress,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let sent = original.of(&message);
    if content::album_of(&sent) == Some(album.group.as_str()) {
        return collect_album_item(&bot, message.chat.id, &dialogue, album, &sent).await;
    }
    match album.into {
        AlbumInto::NewDraft { audience } => {
            content(bot, message, original, dialogue, audience).await
        }
        AlbumInto::Replacement { draft } => {
            revise::replacement(bot, message, original, dialogue, *draft, preview, config).await
        }
        AlbumInto::Version { draft, language } => {
            variant_content(
                bot,
                message,
                original,
                dialogue,
                (*draft, language),
                preview,
                config,
            )
            .await
        }
    }
}

/// Adds `sent` to the album being collected, and counts its items in the
/// prompt (sent with the first, edited after).
async fn collect_album_item(
    bot: &Bot,
    chat: ChatId,
    dialogue: &Dialogue,
    mut collecting: AlbumInProgress,
    sent: &serde_json::Value,
) -> HandlerResult {
    if let Err(refusal) = content::add_to_album(&mut collecting.album, sent) {
        dialogue.update(collecting.into.before()).await?;
        let reply = format!("{refusal}\n\nSend another message {CANCEL_HINT}.");
        bot.send_message(chat, reply).await?;
        return Ok(());
    }
    let count = collecting.album.album.len();
    let text = format!(
        "Got an album: {count} item(s) so far. Albums go out without buttons (Telegram takes \
         none on them). When all its items are here, press ➡️ Use this album."
    );
    let keyboard = InlineKeyboardMarkup::new([[
        Action::UseAlbum.button("➡️ Use this album"),
        Action::Abort.button("✖️ Cancel"),
    ]]);
    collecting.prompt = match collecting.prompt {
        0 => {
            bot.send_message(chat, text)
                .reply_markup(keyboard)
                .await?
                .id
                .0
        }
        id => {
            bot.edit_message_text(chat, MessageId(id), text)
                .reply_markup(keyboard)
                .await?;
            id
        }
    };
    dialogue.update(State::CollectingAlbum(collecting)).await?;
    Ok(())
}

/// Step 2: the album is complete; it has no buttons to ask for, so the
/// preview follows.
pub async fn use_album(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    AlbumInProgress { album, into, .. }: AlbumInProgress,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    let chat = dialogue.chat_id();
    match content::finish_album(album) {
        Ok(album) => {
            settle(
                &bot,
                &query,
                format!("An album of {} items.", album.album.len()),
            )
            .await?;
            let admin = users::names(&query.from);
            let draft = into.with(album);
            show_preview(&bot, chat, &dialogue, draft, &preview, &config, admin).await
        }
        Err(refusal) => {
            dialogue.update(into.before()).await?;
            let reply = format!("{refusal}\n\nSend another message {CANCEL_HINT}.");
            bot.send_message(chat, reply).await?;
            Ok(())
        }
    }
}

/// Step 3's question, after `intro`.
pub(crate) async fn ask_for_buttons(bot: &Bot, chat: ChatId, intro: &str) -> HandlerResult {
    bot.send_message(
        chat,
        format!(
            "{intro}\n\nStep 3 of 4: add link buttons? Send them {}, or press Skip. {CANCEL_HINT}",
            buttons::FORMAT_HINT
        ),
    )
    .reply_markup(InlineKeyboardMarkup::new([[
        Action::SkipButtons.button("Skip"),
        Action::Back.button("⬅️ Back"),
        Action::Abort.button("✖️ Cancel"),
    ]]))
    .await?;
    Ok(())
}

/// The content of `message`, or `None` once the admin is told why it
/// cannot be broadcast.
pub(crate) async fn capture(
    bot: &Bot,
    message: &Message,
    original: &Original,
) -> HandlerResult<Option<Content>> {
    match content::capture(&original.of(message)) {
        Ok(captured) => Ok(Some(captured)),
        Err(refusal) => {
            let reply = format!("{refusal}\n\nSend another message {CANCEL_HINT}.");
            bot.send_message(message.chat.id, reply).await?;
            Ok(None)
        }
    }
}

/// Step 3: button lines.
pub async fn buttons(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    mut draft: Draft,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let chat = message.chat.id;
    let Some(text) = message.text() else {
        let reply = format!(
            "Send the buttons as text, {}, or press Skip.",
            buttons::FORMAT_HINT
        );
        bot.send_message(chat, reply).await?;
        return Ok(());
    };
    match buttons::parse(text) {
        Ok(rows) => {
            let keyboard = draft
                .content
                .keyboard
                .get_or_insert_with(InlineKeyboard::default);
            keyboard.rows.extend(rows);
            summary_after(&bot, &message, &dialogue, draft, &preview, &config).await
        }
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let reply = format!(
                "I couldn't read these lines:\n{}\n\nSend all the buttons again, {}, or press Skip.",
                lines.join("\n"),
                buttons::FORMAT_HINT
            );
            bot.send_message(chat, reply).await?;
            Ok(())
        }
    }
}

/// Step 3 skipped.
pub async fn skip_buttons(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    draft: Draft,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    settle(&bot, &query, "No extra buttons.".into()).await?;
    let chat = dialogue.chat_id();
    let admin = users::names(&query.from);
    show_preview(&bot, chat, &dialogue, draft, &preview, &config, admin).await
}

/// Step 4: the exact message, then the summary with Start. Content that
/// Telegram refuses sends the admin back to step 2.
/// A greeting in the preview is filled with the admin's own names.
/// [`show_preview`] in answer to the admin's `message`.
pub(crate) async fn summary_after(
    bot: &Bot,
    message: &Message,
    dialogue: &Dialogue,
    draft: Draft,
    preview: &Preview,
    config: &BroadcastConfig,
) -> HandlerResult {
    let admin = admin(message);
    show_preview(
        bot,
        message.chat.id,
        dialogue,
        draft,
        preview,
        config,
        admin,
    )
    .await
}

pub(crate) async fn show_preview(
    bot: &Bot,
    chat: ChatId,
    dialogue: &Dialogue,
    draft: Draft,
    preview: &Preview,
    config: &BroadcastConfig,
    admin: Names,
) -> HandlerResult {
    if let Err(refusal) = preview.send(chat, &draft.content, &admin).await {
        let audience = draft.audience.clone();
        dialogue.update(State::AwaitingContent { audience }).await?;
        let reply = format!(
            "The preview failed: {refusal}\n\nRecipients would get the same error. \
             Send the message again (step 2) {CANCEL_HINT}."
        );
        bot.send_message(chat, reply).await?;
        return Ok(());
    }
    // Every version, as its recipients will see it; one Telegram refuses
    // is dropped, and the admin told why.
    let mut draft = draft;
    let mut kept = Vec::new();
    for variant in std::mem::take(&mut draft.variants) {
        let language = variant.language.clone();
        bot.send_message(
            chat,
            format!("⬆️ for everyone else · ⬇️ the {language} version"),
        )
        .await?;
        let content = variant.content.as_ref().unwrap_or(&draft.content);
        match preview.send(chat, content, &admin).await {
            Ok(()) => kept.push(variant),
            Err(refusal) => {
                let reply = format!("The {language} version was dropped: {refusal}");
                bot.send_message(chat, reply).await?;
            }
        }
    }
    draft.variants = kept;
    let (text, keyboard) = preview.summarize(&draft, config.paid_enabled).await?;
    let summary = bot.send_message(chat, text).reply_markup(keyboard).await?;
    dialogue
        .update(State::Confirming {
            draft,
            summary: summary.id.0,
        })
        .await?;
    Ok(())
}

/// Step 4: a version in another language asked for (or dropped).
pub async fn variant(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (mut draft, summary): (Draft, i32),
    language: Language,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let pressed_on = query.regular_message().map(|m| m.id.0);
    let code = language.code().unwrap_or_default().to_owned();
    if pressed_on != Some(summary) || preview::only_language(&draft.audience, &code).is_none() {
        return outdated_press(bot, query).await;
    }
    bot.answer_callback_query(query.id.clone()).await?;
    let before = draft.variants.len();
    draft.variants.retain(|v| v.language != code);
    if draft.variants.len() == before {
        settle(&bot, &query, format!("Adding a {code} version.")).await?;
        bot.send_message(
            dialogue.chat_id(),
            format!(
                "Send the message for users whose language is {code}: {}. \
                 Without buttons of its own it gets the main message's. {CANCEL_HINT}",
                content::SUPPORTED
            ),
        )
        .reply_markup(back_only())
        .await?;
        dialogue
            .update(State::AwaitingVariant {
                draft,
                language: code,
            })
            .await?;
        return Ok(());
    }
    let (text, keyboard) = preview.summarize(&draft, config.paid_enabled).await?;
    dialogue
        .update(State::Confirming { draft, summary })
        .await?;
    bot.edit_message_text(dialogue.chat_id(), MessageId(summary), text)
        .reply_markup(keyboard)
        .await?;
    Ok(())
}

/// Step 4: the message for one language arrived; the preview starts over
/// with every version.
pub async fn variant_content(
    bot: Bot,
    message: Message,
    original: Original,
    dialogue: Dialogue,
    (mut draft, language): (Draft, String),
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let sent = original.of(&message);
    if let Some(group) = content::album_of(&sent) {
        let into = AlbumInto::Version {
            draft: Box::new(draft),
            language,
        };
        return begin_album(&bot, message.chat.id, &dialogue, group, into, &sent).await;
    }
    let Some(mut captured) = capture(&bot, &message, &original).await? else {
        return Ok(());
    };
    if captured.keyboard.as_ref().is_none_or(|k| k.rows.is_empty()) {
        captured.keyboard = draft.content.keyboard.clone();
    }
    draft.variants.push(Variant {
        language,
        content: Some(captured),
    });
    summary_after(&bot, &message, &dialogue, draft, &preview, &config).await
}

/// Step 4: the message exactly as recipients will get it (every version,
/// the Unsubscribe button if on, the greeting filled with the admin's
/// names), sent to the admin by the senders' payload code.
pub async fn test_send(
    bot: Bot,
    query: CallbackQuery,
    (draft, summary): (Draft, i32),
    preview: Preview,
) -> HandlerResult {
    let pressed_on = query.regular_message().map(|m| m.id.0);
    if pressed_on != Some(summary) {
        return outdated_press(bot, query).await;
    }
    let chat = ChatId(query.from.id.0 as i64);
    let admin = users::names(&query.from);
    let (content, variants) = draft.to_send();
    let versions = std::iter::once(("everyone else".to_owned(), Some(content))).chain(
        variants
            .into_iter()
            .map(|v| (format!("{} users", v.language), v.content)),
    );
    let mut failed = None;
    for (who, content) in versions {
        let Some(content) = content else { continue };
        bot.send_message(chat, format!("📨 Test: what {who} get"))
            .await?;
        if let Err(refusal) = preview.send(chat, &content, &admin).await {
            failed = Some(refusal.to_string());
        }
    }
    let answer = failed.unwrap_or_else(|| "Sent to you.".to_owned());
    bot.answer_callback_query(query.id).text(answer).await?;
    Ok(())
}

/// Step 4: an option flipped on the summary.
pub async fn toggle(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (mut draft, summary): (Draft, i32),
    toggle: Toggle,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let pressed_on = query.regular_message().map(|m| m.id.0);
    if pressed_on != Some(summary) || (toggle == Toggle::Paid && !config.paid_enabled) {
        return outdated_press(bot, query).await;
    }
    draft.toggle(toggle);
    let (text, keyboard) = preview.summarize(&draft, config.paid_enabled).await?;
    dialogue
        .update(State::Confirming { draft, summary })
        .await?;
    bot.answer_callback_query(query.id).await?;
    bot.edit_message_text(dialogue.chat_id(), MessageId(summary), text)
        .reply_markup(keyboard)
        .await?;
    Ok(())
}

/// Start (or Schedule): publishes CampaignCreated and CampaignStarted (or
/// CampaignScheduled, with its timer), then shows the progress card.
#[tracing::instrument(skip_all, fields(admin = query.from.id.0 as i64))]
pub async fn confirm(
    bot: Bot,
    query: CallbackQuery,
    (_, summary): (Draft, i32),
    dialogues: Arc<Dialogues>,
    campaigning: Campaigning,
    roles: Roles,
) -> HandlerResult {
    let Campaigning {
        commands,
        cards,
        store,
        config,
        preview,
    } = campaigning;
    let chat = query.regular_message().map(|m| m.chat.id);
    let pressed_on = query.regular_message().map(|m| m.id.0);
    let (Some(chat), Some(summary)) = (chat, pressed_on.filter(|&id| id == summary)) else {
        return outdated_press(bot, query).await;
    };
    // Taken atomically: a second press finds nothing and starts nothing.
    let Some(draft) = dialogues.take_confirmed(chat, summary).await? else {
        return outdated_press(bot, query).await;
    };
    let begin = match &draft.start {
        Some(start) if start.at <= Utc::now() => {
            dialogues.put_back(chat, draft, summary).await?;
            bot.answer_callback_query(query.id)
                .text("That start time has passed: choose another with 🕑, then press Schedule.")
                .show_alert(true)
                .await?;
            return Ok(());
        }
        Some(start) => Begin::At(start.at),
        None => Begin::Now,
    };
    let recipients = match config.approval_may_apply(draft.paid) {
        true => store.audience(&draft.audience).await?.recipients,
        false => 0,
    };
    let approval = config.approval_needed(recipients, draft.paid);
    let (content, variants) = draft.to_send();
    let by = query.from.id.0 as i64;
    let campaign = NewCampaign {
        bot_id: store.bot_id(),
        id: draft.campaign_id,
        created_by: by,
        audience: draft.audience.clone(),
        content: content.clone(),
        variants,
        options: draft.options(),
        title: draft.title.clone(),
    };
    let created = match &approval {
        Some(_) => commands.create_for_approval(campaign, begin).await,
        None => commands.create_and_begin(campaign, begin).await,
    };
    match created {
        Ok(id) if approval.is_some() => {
            let why = approval.unwrap_or_default();
            tracing::info!(campaign = %id, why, "campaign awaits approval");
            bot.answer_callback_query(query.id.clone())
                .text("Waiting for approval")
                .await?;
            let text = format!(
                "🔐 Campaign {id} needs another admin's approval ({why}). \
                 The other admins were asked; its card follows."
            );
            settle(&bot, &query, text).await?;
            projected_past_pending(&store, id).await;
            cards.show(chat, id).await?;
            let request = approval::Request {
                campaign: id,
                by: users::names(&query.from),
                recipients,
                why,
                name: campaign_name(&draft.title, &content),
                content,
            };
            approval::ask_others(&bot, &roles, &store, &preview, &cards, &request, by).await;
        }
        Ok(id) => {
            tracing::info!(campaign = %id, ?begin, "campaign started");
            let (answer, text) = match &draft.start {
                Some(start) => (
                    "Scheduled",
                    format!(
                        "🗓 Scheduled campaign {id} for {}. It starts then by itself; \
                         its card follows (Move or Cancel it there).",
                        start.describe()
                    ),
                ),
                None => (
                    "Started",
                    format!("🚀 Started campaign {id}. Its progress card follows."),
                ),
            };
            bot.answer_callback_query(query.id.clone())
                .text(answer)
                .await?;
            settle(&bot, &query, text).await?;
            // Its card starts as what it is (sending, scheduled), never as
            // "pending" with only Cancel until the next refresh.
            projected_past_pending(&store, id).await;
            cards.show(chat, id).await?;
        }
        Err(error) => {
            tracing::error!(%error, "starting a campaign failed");
            // Back to the summary, so Start can be pressed again.
            dialogues.put_back(chat, draft, summary).await?;
            bot.answer_callback_query(query.id)
                .text(format!(
                    "Could not start the campaign: {error}. Press Start to try again."
                ))
                .show_alert(true)
                .await?;
        }
    }
    Ok(())
}

/// Waits (briefly) until the read model shows the campaign past `pending`,
/// so its card does not start as "pending".
async fn projected_past_pending(store: &Store, id: uuid::Uuid) {
    wait_for_projection(|| async {
        Ok(store
            .campaign(id)
            .await?
            .is_some_and(|snapshot| snapshot.status != CampaignStatus::Pending))
    })
    .await;
}

/// /cancel: leaves the dialog at any step.
pub async fn cancel(bot: Bot, message: Message, dialogue: Dialogue, state: State) -> HandlerResult {
    let reply = match end(&dialogue, &state).await? {
        true => cancelled(&state),
        false => "There is nothing to cancel. Start a broadcast with /broadcast.",
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

/// The Cancel button of any step.
pub async fn abort(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    state: State,
) -> HandlerResult {
    let text = match end(&dialogue, &state).await? {
        true => cancelled(&state),
        false => "This broadcast was already started or cancelled.",
    };
    bot.answer_callback_query(query.id.clone()).await?;
    settle(&bot, &query, text.into()).await
}

/// What leaving the dialog at `state` meant.
fn cancelled(state: &State) -> &'static str {
    match state {
        State::AwaitingCorrection { .. }
        | State::AwaitingCorrectedButtons { .. }
        | State::ConfirmingCorrection { .. } => "Left as it was: nothing was edited.",
        _ => "Cancelled; nothing was sent. Start again with /broadcast.",
    }
}

/// Ends the dialog; `false` if none was under way.
async fn end(dialogue: &Dialogue, state: &State) -> HandlerResult<bool> {
    let under_way = *state != State::Idle;
    if under_way {
        dialogue.exit().await?;
    }
    Ok(under_way)
}

/// A button of a step that is over (an older message, a second press).
pub async fn outdated_press(bot: Bot, query: CallbackQuery) -> HandlerResult {
    bot.answer_callback_query(query.id)
        .text("This button belongs to a step that is over.")
        .await?;
    Ok(())
}

/// The names of whoever sent `message` (an admin, in the dialog).
fn admin(message: &Message) -> Names {
    message.from.as_ref().map(users::names).unwrap_or_default()
}

/// The dialog of the chat a card's button was pressed in, for a step that
/// asks something (a new time, a corrected message); `None` once the
/// admin is told to finish the broadcast they are composing first.
pub(crate) async fn idle_dialogue(
    bot: &Bot,
    query: &CallbackQuery,
    dialogues: Arc<Dialogues>,
) -> HandlerResult<Option<Dialogue>> {
    let Some(chat) = query.regular_message().map(|m| m.chat.id) else {
        return Ok(None);
    };
    let dialogue = Dialogue::new(dialogues, chat);
    if dialogue
        .get()
        .await?
        .is_some_and(|state| state != State::Idle)
    {
        bot.answer_callback_query(query.id.clone())
            .text("Finish the broadcast you are composing (or /cancel it) first.")
            .await?;
        return Ok(None);
    }
    Ok(Some(dialogue))
}

/// Replaces the text of the message whose button was pressed, dropping its
/// buttons, so finished steps cannot be pressed again.
pub(crate) async fn settle(bot: &Bot, query: &CallbackQuery, text: String) -> HandlerResult {
    if let Some(message) = query.regular_message() {
        bot.edit_message_text(message.chat.id, message.id, text)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::InlineKeyboardButtonKind;

    #[test]
    fn audience_buttons_show_live_counts() {
        let counts = [
            (Audience::Ru, 120),
            (Audience::En, 80),
            (Audience::All, 200),
        ];
        let keyboard = audience_keyboard(&counts);
        let buttons: Vec<(String, String)> = keyboard
            .inline_keyboard
            .into_iter()
            .flatten()
            .map(|b| match b.kind {
                InlineKeyboardButtonKind::CallbackData(data) => (b.text, data),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            buttons,
            [
                ("ru · 120".to_owned(), "bc:aud:ru".to_owned()),
                ("en · 80".into(), "bc:aud:en".into()),
                ("all · 200".into(), "bc:aud:all".into()),
                ("🎯 Segment…".into(), "bc:seg".into()),
                ("✖️ Cancel".into(), "bc:abort".into()),
            ]
        );
    }
}
