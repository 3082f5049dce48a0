//! Going back and changing a draft without starting over: ⬅️ Back on every
//! step's question, and on the summary 🏷 Name, ✏️ Message and 🔗 Buttons,
//! each of which leads back to the summary with everything else kept.

use std::sync::Arc;

use teloxide::Bot;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, Message};

use crate::broadcast::{self, outdated_press, settle};
use crate::config::BroadcastConfig;
use crate::content::{self, utf16_len};
use crate::dialogue::{AlbumInto, Dialogue, Draft, State, Timing};
use crate::handlers::HandlerResult;
use crate::incoming::Original;
use crate::preview::Preview;
use crate::storage::Store;
use crate::users;

/// The longest name a campaign may be given.
const MAX_NAME: usize = 64;

/// ⬅️ Back: the step before the one asking.
pub async fn back(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    state: State,
    store: Store,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let to_summary = |draft: Draft| async {
        let admin = users::names(&query.from);
        let chat = dialogue.chat_id();
        broadcast::show_preview(&bot, chat, &dialogue, draft, &preview, &config, admin).await
    };
    match state {
        State::AwaitingContent { .. } => {
            answer(&bot, &query, "⬅️ Back to step 1.").await?;
            broadcast::ask_for_audience(&bot, dialogue.chat_id(), &dialogue, &store).await
        }
        State::AwaitingButtons { draft } => {
            answer(&bot, &query, "⬅️ Back to step 2.").await?;
            let size = store.audience(&draft.audience).await?;
            broadcast::ask_for_content(&bot, &dialogue, draft.audience, size).await
        }
        State::AwaitingVariant { draft, .. }
        | State::AwaitingTitle { draft }
        | State::AwaitingReplacement { draft } => {
            answer(&bot, &query, "⬅️ Back to the summary.").await?;
            to_summary(draft).await
        }
        State::AwaitingTimeZone { timing } | State::AwaitingStart { timing } => match timing {
            Timing::Draft { draft, .. } => {
                answer(&bot, &query, "⬅️ Back to the summary.").await?;
                to_summary(*draft).await
            }
            Timing::Move { .. } => {
                answer(&bot, &query, "The campaign keeps its time.").await?;
                Ok(dialogue.exit().await?)
            }
        },
        _ => outdated_press(bot, query).await,
    }
}

async fn answer(bot: &Bot, query: &CallbackQuery, text: &str) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    settle(bot, query, text.to_owned()).await
}

/// Only a press on the summary that is shown counts.
fn on_summary(query: &CallbackQuery, summary: i32) -> bool {
    query.regular_message().map(|m| m.id.0) == Some(summary)
}

/// 🏷 Name… on the summary.
pub async fn rename(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (draft, summary): (Draft, i32),
) -> HandlerResult {
    let question = format!(
        "Send a name for this campaign (at most {MAX_NAME} characters, one line): admins see it \
         on cards, reports and /campaigns. Without one it is called by its first words."
    );
    let asking = State::AwaitingTitle { draft };
    ask_from_summary(
        bot,
        query,
        dialogue,
        summary,
        "🏷 Naming it.",
        question,
        asking,
    )
    .await
}

/// The name, typed.
pub async fn typed_title(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    mut draft: Draft,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let name = message.text().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.contains('\n') || utf16_len(name) > MAX_NAME {
        let reply = format!("A name is one line of at most {MAX_NAME} characters: send another.");
        return ask(&bot, &dialogue, reply).await;
    }
    draft.title = name.to_owned();
    broadcast::summary_after(&bot, &message, &dialogue, draft, &preview, &config).await
}

/// ✏️ Message… on the summary.
pub async fn change_message(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (draft, summary): (Draft, i32),
) -> HandlerResult {
    let question = "Send the message to broadcast instead. The audience, the options and the \
                    other languages' versions stay; so do the buttons, unless it has its own.";
    let asking = State::AwaitingReplacement { draft };
    let under_way = "✏️ Changing the message.";
    ask_from_summary(
        bot,
        query,
        dialogue,
        summary,
        under_way,
        question.into(),
        asking,
    )
    .await
}

/// A question asked by a press on the summary `summary` (any other is
/// outdated): the summary says what is under way (`under_way`), the
/// question comes with ⬅️ Back, and the dialog waits in `asking`.
async fn ask_from_summary(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    summary: i32,
    under_way: &str,
    question: String,
    asking: State,
) -> HandlerResult {
    if !on_summary(&query, summary) {
        return outdated_press(bot, query).await;
    }
    answer(&bot, &query, under_way).await?;
    ask(&bot, &dialogue, question).await?;
    Ok(dialogue.update(asking).await?)
}

/// The message to send instead.
pub async fn replacement(
    bot: Bot,
    message: Message,
    original: Original,
    dialogue: Dialogue,
    mut draft: Draft,
    preview: Preview,
    config: Arc<BroadcastConfig>,
) -> HandlerResult {
    let sent = original.of(&message);
    if let Some(group) = content::album_of(&sent) {
        let into = AlbumInto::Replacement {
            draft: Box::new(draft),
        };
        return broadcast::begin_album(&bot, message.chat.id, &dialogue, group, into, &sent).await;
    }
    let Some(mut captured) = broadcast::capture(&bot, &message, &original).await? else {
        return Ok(());
    };
    if captured.keyboard.as_ref().is_none_or(|k| k.rows.is_empty()) {
        captured.keyboard = draft.content.keyboard.take();
    }
    draft.content = captured;
    broadcast::summary_after(&bot, &message, &dialogue, draft, &preview, &config).await
}

/// 🔗 Buttons… on the summary: step 3 again, from no buttons.
pub async fn change_buttons(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (mut draft, summary): (Draft, i32),
) -> HandlerResult {
    if !on_summary(&query, summary) {
        return outdated_press(bot, query).await;
    }
    answer(&bot, &query, "🔗 Setting the buttons again.").await?;
    draft.content.keyboard = None;
    dialogue.update(State::AwaitingButtons { draft }).await?;
    broadcast::ask_for_buttons(&bot, dialogue.chat_id(), "The buttons are cleared.").await
}

/// A question asked from the summary, with ⬅️ Back to it.
async fn ask(bot: &Bot, dialogue: &Dialogue, question: String) -> HandlerResult {
    bot.send_message(dialogue.chat_id(), question)
        .reply_markup(broadcast::back_only())
        .await?;
    Ok(())
}
