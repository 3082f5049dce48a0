//! ✏️ Edit and 🗑 Delete everywhere, on a campaign's card. An edit asks for
//! the corrected message, shows it as recipients will see it, and asks to
//! confirm with the number of delivered messages it edits; a recall asks
//! to confirm with the number it deletes and the number Telegram keeps
//! (sent more than 48 hours ago). Confirmed, the command is published
//! ([`courier_core::amend`]): senders carry it out at the bot's free rate,
//! and the campaign's cards follow it, counts and reasons included.

use std::sync::Arc;

use courier_core::amend::{Revision, decide_edit};
use courier_core::commands::{CampaignCommands, CommandError};
use courier_core::proto::v1::{Content, ContentKind, InlineKeyboard, Language, Names, Variant};
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardMarkup, Message};
use uuid::Uuid;

use crate::actions::{Action, Confirm};
use crate::broadcast::{self, outdated_press, settle};
use crate::buttons;
use crate::cards::Cards;
use crate::control;
use crate::dialogue::{Dialogue, Dialogues, State};
use crate::handlers::HandlerResult;
use crate::incoming::Original;
use crate::preview::Preview;
use crate::storage::{Store, wait_for_projection};
use crate::users;

const CORRECTION_QUESTION: &str = "✏️ Send the corrected message. Its text (or caption) \
    replaces the one sent, formatting included; the buttons stay unless it has its own. A photo, \
    video or file stays what it is: send the new caption as plain text. /cancel leaves the \
    campaign as it is.";

/// ✏️ Edit on a card: asks for the corrected message (or, with 🔗, for the
/// buttons alone; with 🌐, for a language's version).
pub async fn ask_for_correction(
    bot: Bot,
    query: &CallbackQuery,
    campaign: Uuid,
    dialogues: Arc<Dialogues>,
    commands: CampaignCommands,
) -> HandlerResult {
    let Some(dialogue) = broadcast::idle_dialogue(&bot, query, dialogues).await? else {
        return Ok(());
    };
    bot.answer_callback_query(query.id.clone()).await?;
    let versions = match commands.revision(campaign).await {
        Ok((current, _)) => current.variants.into_iter().map(|v| v.language).collect(),
        Err(_) => Vec::new(),
    };
    dialogue
        .update(State::AwaitingCorrection {
            campaign,
            language: None,
        })
        .await?;
    let mut rows = vec![vec![
        Action::CorrectButtons(campaign).button("🔗 The buttons instead"),
        Action::Abort.button("✖️ Cancel"),
    ]];
    let languages = versions.iter().filter_map(|code| Language::from_code(code));
    let version_buttons: Vec<_> = languages
        .map(|l| {
            let label = format!("🌐 The {} version instead", l.code().unwrap_or_default());
            Action::CorrectVersion(campaign, l).button(label)
        })
        .collect();
    if !version_buttons.is_empty() {
        rows.insert(0, version_buttons);
    }
    bot.send_message(dialogue.chat_id(), CORRECTION_QUESTION)
        .reply_markup(InlineKeyboardMarkup::new(rows))
        .await?;
    Ok(())
}

/// 🌐 The ru version instead: asks for that version corrected.
pub async fn ask_for_version(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (campaign, language): (Uuid, Language),
) -> HandlerResult {
    let code = language.code().unwrap_or_default().to_owned();
    bot.answer_callback_query(query.id.clone()).await?;
    settle(&bot, &query, format!("🌐 Correcting the {code} version.")).await?;
    bot.send_message(
        dialogue.chat_id(),
        format!(
            "Send the corrected message for users whose language is {code}, as for the main \
             one. /cancel leaves the campaign as it is."
        ),
    )
    .await?;
    dialogue
        .update(State::AwaitingCorrection {
            campaign,
            language: Some(code),
        })
        .await?;
    Ok(())
}

/// 🔗 The buttons instead: asks for the campaign's new buttons.
pub async fn ask_for_buttons(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    campaign: Uuid,
) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    settle(&bot, &query, "🔗 Correcting the buttons.".into()).await?;
    dialogue
        .update(State::AwaitingCorrectedButtons { campaign })
        .await?;
    bot.send_message(
        dialogue.chat_id(),
        format!(
            "Send the buttons every delivered message should have, {}; or \"none\" to \
             remove them. The text stays. /cancel leaves the campaign as it is.",
            buttons::FORMAT_HINT
        ),
    )
    .await?;
    Ok(())
}

/// The corrected message: previewed, then a confirmation naming how many
/// delivered messages it edits.
#[expect(
    clippy::too_many_arguments,
    reason = "a handler's injected dependencies"
)]
pub async fn correction(
    bot: Bot,
    message: Message,
    original: Original,
    dialogue: Dialogue,
    (campaign, language): (Uuid, Option<String>),
    commands: CampaignCommands,
    preview: Preview,
    store: Store,
) -> HandlerResult {
    let Some(captured) = broadcast::capture(&bot, &message, &original).await? else {
        return Ok(());
    };
    Proposal::of(&message, campaign)
        .make(&bot, &dialogue, &commands, &preview, &store, |current| {
            let Some(language) = language else {
                return (corrected(&current.content, captured), None);
            };
            let was = current
                .variants
                .iter()
                .find(|v| v.language == language)
                .and_then(|v| v.content.as_ref())
                .unwrap_or(&current.content);
            let version = Variant {
                language,
                content: Some(corrected(was, captured)),
            };
            (current.content.clone(), Some(version))
        })
        .await
}

/// The corrected buttons, as lines (or "none").
pub async fn corrected_buttons(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    campaign: Uuid,
    commands: CampaignCommands,
    preview: Preview,
    store: Store,
) -> HandlerResult {
    let typed = message.text().unwrap_or_default().trim();
    let rows = match typed.eq_ignore_ascii_case("none") {
        true => Vec::new(),
        false => match buttons::parse(typed) {
            Ok(rows) => rows,
            Err(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let reply = format!(
                    "I couldn't read these lines:\n{}\n\nSend the buttons again, {}.",
                    lines.join("\n"),
                    buttons::FORMAT_HINT
                );
                bot.send_message(message.chat.id, reply).await?;
                return Ok(());
            }
        },
    };
    Proposal::of(&message, campaign)
        .make(&bot, &dialogue, &commands, &preview, &store, |current| {
            let keyboard = (!rows.is_empty()).then_some(InlineKeyboard { rows });
            let content = Content {
                keyboard,
                ..current.content.clone()
            };
            (content, None)
        })
        .await
}

/// An edit being put to the admin.
struct Proposal {
    campaign: Uuid,
    /// Who asked, to greet in the preview.
    admin: Names,
}

impl Proposal {
    /// The edit of `campaign` the admin who sent `message` proposes.
    fn of(message: &Message, campaign: Uuid) -> Proposal {
        Proposal {
            campaign,
            admin: message.from.as_ref().map(users::names).unwrap_or_default(),
        }
    }

    /// Decides the edit `change` makes to the current content (the
    /// default, and a language's version if it corrects one); shows what
    /// it changes as recipients will see it and asks to confirm, naming how
    /// many delivered messages it edits. A refusal is explained, and the
    /// admin may send another.
    async fn make(
        self,
        bot: &Bot,
        dialogue: &Dialogue,
        commands: &CampaignCommands,
        preview: &Preview,
        store: &Store,
        change: impl FnOnce(&Revision) -> (Content, Option<Variant>),
    ) -> HandlerResult {
        let (chat, campaign) = (dialogue.chat_id(), self.campaign);
        let decided = async {
            let (status, _) = commands.status(campaign).await?;
            let (current, amended) = commands.revision(campaign).await?;
            let (content, version) = change(&current);
            let shown = version.as_ref().map(|v| v.language.clone());
            let edit = decide_edit(
                status,
                &amended,
                &current,
                content,
                version.into_iter().collect(),
            )?;
            Ok::<_, CommandError>((edit, shown))
        };
        let ((content, variants, markup_only), shown) = match decided.await {
            Ok(decided) => decided,
            Err(error) => {
                let (refusal, _) = control::answer(&Err(error));
                bot.send_message(chat, format!("{refusal}\n\nSend another, or /cancel."))
                    .await?;
                return Ok(());
            }
        };
        let shown = shown
            .and_then(|language| variants.iter().find(|v| v.language == language))
            .and_then(|v| v.content.as_ref())
            .unwrap_or(&content);
        if let Err(error) = preview.send(chat, shown, &self.admin).await {
            bot.send_message(
                chat,
                format!("Telegram would not show it: {error}\n\nSend another, or /cancel."),
            )
            .await?;
            return Ok(());
        }
        let (delivered, _) = store.delivered_messages(campaign).await?;
        let what = match markup_only {
            true => "buttons",
            false => "message",
        };
        let prompt = bot
            .send_message(
                chat,
                format!(
                    "Above: the corrected {what}, as recipients will see it. Confirm to edit the \
                     {delivered} message(s) delivered so far (at the bot's free rate); recipients \
                     not sent yet get it as it is now."
                ),
            )
            .reply_markup(InlineKeyboardMarkup::new([[
                Action::Confirm(campaign, Confirm::Edit)
                    .button(format!("✏️ Edit {delivered} message(s)")),
                Action::Abort.button("✖️ Cancel"),
            ]]))
            .await?;
        dialogue
            .update(State::ConfirmingCorrection {
                campaign,
                content,
                variants,
                prompt: prompt.id.0,
            })
            .await?;
        Ok(())
    }
}

/// What the admin sent, fitted to the message it corrects (`was`): plain
/// text for a media message is its new caption; without buttons of its
/// own, the current ones stay.
fn corrected(was: &Content, mut captured: Content) -> Content {
    if captured.kind() == ContentKind::Text && was.kind() != ContentKind::Text {
        captured.kind = was.kind;
        captured.file_id.clone_from(&was.file_id);
        captured.album.clone_from(&was.album);
    }
    if captured.keyboard.as_ref().is_none_or(|k| k.rows.is_empty()) {
        captured.keyboard.clone_from(&was.keyboard);
    }
    captured
}

/// ✏️ Edit N messages, under the corrected message.
pub async fn confirm_edit(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (campaign, content, variants, prompt): (Uuid, Content, Vec<Variant>, i32),
    commands: CampaignCommands,
    store: Store,
    cards: Cards,
) -> HandlerResult {
    if query.regular_message().map(|m| m.id.0) != Some(prompt) {
        return outdated_press(bot, query).await;
    }
    let by = query.from.id.0 as i64;
    match commands.edit(campaign, by, content, variants).await {
        Ok(revision) => {
            bot.answer_callback_query(query.id.clone()).await?;
            dialogue.exit().await?;
            let text = format!(
                "✏️ Version {} is on its way: its card follows the edits.",
                revision + 1
            );
            settle(&bot, &query, text).await?;
            follow(&query, campaign, &store, &cards, |s| {
                s.revision >= revision as i32
            })
            .await
        }
        Err(error) => refused(&bot, &query, error).await,
    }
}

/// 🗑 Delete everywhere on a card: asks to confirm, with the counts.
pub async fn ask_to_recall(
    bot: Bot,
    query: &CallbackQuery,
    campaign: Uuid,
    store: Store,
) -> HandlerResult {
    let Some(chat) = query.regular_message().map(|m| m.chat.id) else {
        return Ok(());
    };
    let Some(snapshot) = store.campaign(campaign).await? else {
        return Ok(());
    };
    if snapshot.recalled {
        bot.answer_callback_query(query.id.clone())
            .text("This campaign was recalled already.")
            .await?;
        return Ok(());
    }
    bot.answer_callback_query(query.id.clone()).await?;
    let (delivered, too_old) = store.delivered_messages(campaign).await?;
    let deletable = delivered - too_old;
    bot.send_message(
        chat,
        recall_question(delivered, too_old, !snapshot.status.is_final()),
    )
    .reply_markup(InlineKeyboardMarkup::new([[
        Action::Confirm(campaign, Confirm::Recall)
            .button(format!("🗑 Delete {deletable} message(s)")),
        Action::Confirm(campaign, Confirm::Keep).button("Keep them"),
    ]]))
    .await?;
    Ok(())
}

/// The question before a recall: what it deletes, what Telegram keeps,
/// and that it cannot be undone.
fn recall_question(delivered: i64, too_old: i64, still_sending: bool) -> String {
    let mut text = format!(
        "🗑 Delete the {delivered} message(s) this campaign delivered, in every chat? This \
         cannot be undone."
    );
    if still_sending {
        text.push_str(" It is still sending: it is cancelled first.");
    }
    text.push_str(" Telegram lets a bot delete its messages only within 48 hours of sending them");
    match too_old {
        0 => text.push_str(": all of these are recent enough."),
        n => text.push_str(&format!(": {n} of them are older and will stay.")),
    }
    text
}

/// 🗑 Delete N messages, under the recall's question.
pub async fn recall(
    bot: Bot,
    query: CallbackQuery,
    campaign: Uuid,
    commands: CampaignCommands,
    store: Store,
    cards: Cards,
) -> HandlerResult {
    let by = query.from.id.0 as i64;
    match commands.recall(campaign, by).await {
        Ok(()) => {
            bot.answer_callback_query(query.id.clone()).await?;
            settle(
                &bot,
                &query,
                "🗑 Deleting: its card follows the deletions.".into(),
            )
            .await?;
            follow(&query, campaign, &store, &cards, |s| s.recalled).await
        }
        Err(error) => refused(&bot, &query, error).await,
    }
}

/// Once the read model shows the amendment, every card of the campaign
/// follows it again, and a new one comes to the admin's chat.
async fn follow(
    query: &CallbackQuery,
    campaign: Uuid,
    store: &Store,
    cards: &Cards,
    shows_it: impl Fn(&crate::progress::Snapshot) -> bool,
) -> HandlerResult {
    let Some(chat) = query.regular_message().map(|m| m.chat.id) else {
        return Ok(());
    };
    wait_for_projection(|| async {
        Ok(store
            .campaign(campaign)
            .await?
            .is_some_and(|s| shows_it(&s)))
    })
    .await;
    store.reopen_cards(campaign).await?;
    cards.show(chat, campaign).await?;
    Ok(())
}

/// Tells the admin why nothing changed.
async fn refused(bot: &Bot, query: &CallbackQuery, error: CommandError) -> HandlerResult {
    if let CommandError::Publish(_) | CommandError::Read(_) = &error {
        tracing::error!(%error, "amending a campaign failed");
    }
    let (text, alert) = control::answer(&Err(error));
    bot.answer_callback_query(query.id.clone())
        .text(text)
        .show_alert(alert)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::proto::v1::{Button, ButtonRow, InlineKeyboard, button};

    fn keyboard() -> InlineKeyboard {
        InlineKeyboard {
            rows: vec![ButtonRow {
                buttons: vec![Button {
                    text: "Open".into(),
                    action: Some(button::Action::Url("https://example.com".into())),
                    ..Default::default()
                }],
            }],
        }
    }

    #[test]
    fn plain_text_for_a_photo_is_its_caption_and_the_buttons_stay() {
        let current = Revision {
            number: 0,
            content: Content {
                kind: ContentKind::Photo.into(),
                text: "Old".into(),
                file_id: "photo-1".into(),
                keyboard: Some(keyboard()),
                ..Default::default()
            },
            variants: vec![],
        };
        let typed = Content {
            kind: ContentKind::Text.into(),
            text: "New".into(),
            ..Default::default()
        };
        let content = corrected(&current.content, typed);
        assert_eq!(content.kind(), ContentKind::Photo);
        assert_eq!(
            (content.text.as_str(), content.file_id.as_str()),
            ("New", "photo-1")
        );
        assert_eq!(content.keyboard, Some(keyboard()));
    }

    #[test]
    fn the_recall_question_says_what_telegram_keeps() {
        assert_eq!(
            recall_question(100, 0, false),
            "🗑 Delete the 100 message(s) this campaign delivered, in every chat? This cannot be \
             undone. Telegram lets a bot delete its messages only within 48 hours of sending \
             them: all of these are recent enough."
        );
        let question = recall_question(100, 30, true);
        assert!(question.contains("It is still sending: it is cancelled first."));
        assert!(question.ends_with(": 30 of them are older and will stay."));
    }
}
