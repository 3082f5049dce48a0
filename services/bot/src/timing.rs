//! When a campaign starts: 🕑 on the summary (for the draft) or 🕑 Move on
//! a scheduled campaign's card. Times are written in the admin's time
//! zone, asked once and remembered (`bot_time_zones`, `/timezone`); the
//! parsing is `courier_core::schedule`'s, and so is the timer, which NATS
//! holds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use courier_core::campaign::CampaignStatus;
use courier_core::commands::CampaignCommands;
use courier_core::schedule::{self, START_FORMATS};
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardMarkup, Message, MessageId, UserId};
use uuid::Uuid;

use crate::actions::{Action, Preset};
use crate::broadcast::{self, outdated_press};
use crate::cards::Cards;
use crate::config::BroadcastConfig;
use crate::dialogue::{Dialogue, Dialogues, Draft, Start, State, Timing};
use crate::handlers::HandlerResult;
use crate::preview::Preview;
use crate::progress;
use crate::storage::{Store, wait_for_projection};

const ZONE_QUESTION: &str = "Which time zone are you in? Send its name, like \
     Europe/Moscow, Asia/Dubai or UTC. I'll remember it (/timezone changes it).";

fn time_question(zone: Tz) -> String {
    format!(
        "When should it start? Choose below, or send a time in {} like: {START_FORMATS}.",
        zone.name()
    )
}

fn presets() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([
        Preset::ALL
            .iter()
            .map(|preset| Action::StartAt(*preset).button(preset.label()))
            .collect::<Vec<_>>(),
        vec![
            Action::Back.button("⬅️ Back"),
            Action::Abort.button("✖️ Cancel"),
        ],
    ])
}

/// 🕑 on the summary: when the draft starts.
pub async fn ask_for_draft(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    (draft, summary): (Draft, i32),
    store: Store,
) -> HandlerResult {
    if query.regular_message().map(|m| m.id.0) != Some(summary) {
        return outdated_press(bot, query).await;
    }
    bot.answer_callback_query(query.id).await?;
    let timing = Timing::Draft {
        draft: Box::new(draft),
        summary,
    };
    ask(&bot, &dialogue, timing, &store, query.from.id).await
}

/// 🕑 Move on a scheduled campaign's card.
pub async fn ask_to_move(
    bot: Bot,
    query: &CallbackQuery,
    campaign: Uuid,
    dialogues: Arc<Dialogues>,
    store: Store,
) -> HandlerResult {
    let Some(dialogue) = broadcast::idle_dialogue(&bot, query, dialogues).await? else {
        return Ok(());
    };
    bot.answer_callback_query(query.id.clone()).await?;
    ask(
        &bot,
        &dialogue,
        Timing::Move { campaign },
        &store,
        query.from.id,
    )
    .await
}

/// Asks for the time, or first for the admin's time zone.
async fn ask(
    bot: &Bot,
    dialogue: &Dialogue,
    timing: Timing,
    store: &Store,
    admin: UserId,
) -> HandlerResult {
    let chat = dialogue.chat_id();
    match store.time_zone(admin.0 as i64).await? {
        Some(zone) => {
            dialogue.update(State::AwaitingStart { timing }).await?;
            bot.send_message(chat, time_question(zone))
                .reply_markup(presets())
                .await?;
        }
        None => {
            dialogue.update(State::AwaitingTimeZone { timing }).await?;
            bot.send_message(chat, ZONE_QUESTION)
                .reply_markup(broadcast::back_or_cancel())
                .await?;
        }
    }
    Ok(())
}

/// The admin's time zone, typed; then the time is asked for.
pub async fn typed_zone(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    timing: Timing,
    store: Store,
) -> HandlerResult {
    let Some(admin) = message.from.as_ref().map(|from| from.id.0 as i64) else {
        return Ok(());
    };
    match schedule::parse_zone(message.text().unwrap_or_default()) {
        Ok(zone) => {
            store.set_time_zone(admin, zone).await?;
            dialogue.update(State::AwaitingStart { timing }).await?;
            bot.send_message(
                message.chat.id,
                format!("Noted: {}.\n\n{}", zone.name(), time_question(zone)),
            )
            .reply_markup(presets())
            .await?;
        }
        Err(error) => {
            bot.send_message(message.chat.id, error.to_string()).await?;
        }
    }
    Ok(())
}

/// `/timezone <zone>`: sets the zone start times are written in; alone,
/// says which it is.
pub async fn set_zone(bot: Bot, message: Message, args: String, store: Store) -> HandlerResult {
    let Some(admin) = message.from.as_ref().map(|from| from.id.0 as i64) else {
        return Ok(());
    };
    let reply = match args.trim() {
        "" => match store.time_zone(admin).await? {
            Some(zone) => format!(
                "You write start times in {}. /timezone <name> changes it.",
                zone.name()
            ),
            None => "No time zone yet: /timezone <name>, like /timezone Europe/Moscow.".to_owned(),
        },
        written => match schedule::parse_zone(written) {
            Ok(zone) => {
                store.set_time_zone(admin, zone).await?;
                format!("Done: you write start times in {} now.", zone.name())
            }
            Err(error) => error.to_string(),
        },
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

/// What beginning a campaign works with (Start, a chosen start time, a
/// move, an approval): the summary's preview and settings, the commands,
/// the cards and the read model. One dependency of the dispatcher.
#[derive(Clone)]
pub struct Campaigning {
    pub preview: Preview,
    pub config: Arc<BroadcastConfig>,
    pub commands: CampaignCommands,
    pub cards: Cards,
    pub store: Store,
}

/// A time typed while one is asked for.
pub async fn typed_start(
    bot: Bot,
    message: Message,
    dialogue: Dialogue,
    timing: Timing,
    campaigning: Campaigning,
) -> HandlerResult {
    let Some(admin) = message.from.as_ref().map(|from| from.id.0 as i64) else {
        return Ok(());
    };
    let zone = campaigning.store.time_zone(admin).await?.unwrap_or(Tz::UTC);
    match schedule::parse_start(message.text().unwrap_or_default(), zone, Utc::now()) {
        Ok(at) => apply(&bot, &dialogue, timing, Some(at), zone, admin, &campaigning).await,
        Err(error) => {
            bot.send_message(message.chat.id, error.to_string()).await?;
            Ok(())
        }
    }
}

/// A preset pressed while a time is asked for.
pub async fn preset(
    bot: Bot,
    query: CallbackQuery,
    dialogue: Dialogue,
    timing: Timing,
    preset: Preset,
    campaigning: Campaigning,
) -> HandlerResult {
    let admin = query.from.id.0 as i64;
    let zone = campaigning.store.time_zone(admin).await?.unwrap_or(Tz::UTC);
    let at = match preset.written() {
        None => None,
        Some(written) => match schedule::parse_start(written, zone, Utc::now()) {
            Ok(at) => Some(at),
            // Presets are always ahead; a zone's odd hour could skip one.
            Err(error) => {
                bot.answer_callback_query(query.id)
                    .text(error.to_string())
                    .await?;
                return Ok(());
            }
        },
    };
    bot.answer_callback_query(query.id.clone()).await?;
    if let Some(message) = query.regular_message() {
        // The question is answered: its buttons go.
        bot.edit_message_reply_markup(message.chat.id, message.id)
            .await?;
    }
    apply(&bot, &dialogue, timing, at, zone, admin, &campaigning).await
}

/// Puts the campaigning time (`None`: now) where it was asked for: on the
/// draft's summary, or as the scheduled campaign's new time.
async fn apply(
    bot: &Bot,
    dialogue: &Dialogue,
    timing: Timing,
    at: Option<DateTime<Utc>>,
    zone: Tz,
    admin: i64,
    campaigning: &Campaigning,
) -> HandlerResult {
    let chat = dialogue.chat_id();
    match timing {
        Timing::Draft { mut draft, summary } => {
            draft.start = at.map(|at| Start {
                at,
                zone: zone.name().to_owned(),
            });
            let paid_enabled = campaigning.config.paid_enabled;
            let (text, keyboard) = campaigning.preview.summarize(&draft, paid_enabled).await?;
            let when = draft
                .start
                .as_ref()
                .map_or_else(|| "when you press Start".to_owned(), Start::describe);
            dialogue
                .update(State::Confirming {
                    draft: *draft,
                    summary,
                })
                .await?;
            bot.edit_message_text(chat, MessageId(summary), text)
                .reply_markup(keyboard)
                .await?;
            bot.send_message(
                chat,
                format!("⬆️ It starts {when}: confirm on the summary above."),
            )
            .await?;
        }
        Timing::Move { campaign } => {
            dialogue.exit().await?;
            let at = at.unwrap_or_else(Utc::now);
            let moved = campaigning.commands.reschedule(campaign, at, admin).await;
            let reply = match &moved {
                Ok(_) => format!(
                    "🕑 Campaign {campaign} now starts {}.",
                    progress::moment(at, zone)
                ),
                Err(error) => format!("Nothing changed: {error}."),
            };
            bot.send_message(chat, reply).await?;
            if moved.is_ok() {
                refreshed(campaigning, campaign, at).await?;
            }
        }
    }
    Ok(())
}

/// Refreshes the campaign's cards once the projector shows the new time.
async fn refreshed(campaigning: &Campaigning, campaign: Uuid, at: DateTime<Utc>) -> HandlerResult {
    let store = campaigning.store.clone();
    wait_for_projection(|| async {
        Ok(store.campaign(campaign).await?.is_some_and(|snapshot| {
            snapshot.status != CampaignStatus::Scheduled
                || snapshot.scheduled_at.map(|s| s.timestamp()) == Some(at.timestamp())
        }))
    })
    .await;
    campaigning
        .cards
        .refresh(Some(campaign), Duration::ZERO)
        .await?;
    Ok(())
}
