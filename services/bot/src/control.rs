//! Controlling campaigns from Telegram: `/campaigns` lists the recent ones
//! and shows a card on request, and the card's Pause / Resume / Cancel
//! buttons issue commands for any admin. Commands carry optimistic
//! concurrency (see `courier_core::commands`): of two admins pressing
//! conflicting buttons at once one wins, and the other is told what the
//! campaign became.

use std::sync::Arc;
use std::time::Duration;

use courier_core::campaign::CampaignStatus;
use courier_core::commands::{CampaignCommands, Change, CommandError};
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardMarkup, Message};
use uuid::Uuid;

use crate::actions::{Action, Confirm, Control};
use crate::cards::Cards;
use crate::dialogue::Dialogues;
use crate::handlers::HandlerResult;
use crate::progress::{self, Snapshot};
use crate::storage::{Store, wait_for_projection};
use crate::timing;
use crate::{amend, broadcast};

/// Campaigns a page of `/campaigns` lists.
const PAGE: i64 = 10;

/// `/campaigns`: the most recent campaigns, a button each to show its
/// card, and buttons to older and newer pages.
pub async fn list(bot: Bot, message: Message, store: Store) -> HandlerResult {
    let admin = message.from.as_ref().map(|from| from.id.0 as i64);
    let Some((text, keyboard)) = page(&store, admin, 0).await? else {
        bot.send_message(
            message.chat.id,
            "No campaigns yet. Start one with /broadcast.",
        )
        .await?;
        return Ok(());
    };
    bot.send_message(message.chat.id, text)
        .reply_markup(keyboard)
        .await?;
    Ok(())
}

/// ◀️ or ▶️ under `/campaigns`: the list shows another page.
pub async fn turn(bot: Bot, query: CallbackQuery, offset: i64, store: Store) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    let admin = Some(query.from.id.0 as i64);
    if let (Some(message), Some((text, keyboard))) =
        (query.regular_message(), page(&store, admin, offset).await?)
    {
        bot.edit_message_text(message.chat.id, message.id, text)
            .reply_markup(keyboard)
            .await?;
    }
    Ok(())
}

/// The page from `offset`, times in `admin`'s zone; `None` for none.
async fn page(
    store: &Store,
    admin: Option<i64>,
    offset: i64,
) -> HandlerResult<Option<(String, InlineKeyboardMarkup)>> {
    let mut campaigns = store.recent_campaigns(PAGE + 1, offset).await?;
    if campaigns.is_empty() {
        return Ok(None);
    }
    let older = campaigns.len() as i64 > PAGE;
    campaigns.truncate(PAGE as usize);
    let zone = match admin {
        Some(admin) => store.time_zone(admin).await?,
        None => None,
    };
    let zone = zone.unwrap_or(chrono_tz::Tz::UTC);
    Ok(Some((
        list_text(&campaigns, offset, zone),
        list_keyboard(&campaigns, offset, older),
    )))
}

fn list_text(campaigns: &[Snapshot], offset: i64, zone: chrono_tz::Tz) -> String {
    let lines: Vec<String> = campaigns
        .iter()
        .zip(offset + 1..)
        .map(|(campaign, n)| {
            format!(
                "{n}. {}\n     {}",
                progress::list_line(campaign, zone),
                campaign.preview
            )
        })
        .collect();
    format!(
        "Campaigns, newest first. Choose one to see its card:\n\n{}",
        lines.join("\n")
    )
}

/// Numbered buttons, five to a row, then ◀️ Newer and Older ▶️ where there
/// are more.
fn list_keyboard(campaigns: &[Snapshot], offset: i64, older: bool) -> InlineKeyboardMarkup {
    let buttons: Vec<_> = campaigns
        .iter()
        .zip(offset + 1..)
        .map(|(campaign, n)| Action::Show(campaign.id).button(n.to_string()))
        .collect();
    let mut rows: Vec<_> = buttons.chunks(5).map(<[_]>::to_vec).collect();
    let turns: Vec<_> = [
        (offset > 0).then(|| Action::Page((offset - PAGE).max(0)).button("◀️ Newer")),
        older.then(|| Action::Page(offset + PAGE).button("Older ▶️")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !turns.is_empty() {
        rows.push(turns);
    }
    InlineKeyboardMarkup::new(rows)
}

/// A number pressed in `/campaigns`: the campaign's card.
pub async fn show(bot: Bot, query: CallbackQuery, campaign: Uuid, cards: Cards) -> HandlerResult {
    bot.answer_callback_query(query.id.clone()).await?;
    if let Some(message) = query.regular_message() {
        cards.show(message.chat.id, campaign).await?;
    }
    Ok(())
}

/// A button on a card: Pause, Resume, Cancel, Move, Approve, Edit or
/// Delete everywhere.
#[tracing::instrument(skip_all, fields(admin = query.from.id.0 as i64, %campaign, ?control))]
pub async fn pressed(
    bot: Bot,
    query: CallbackQuery,
    (campaign, control): (Uuid, Control),
    commands: CampaignCommands,
    store: Store,
    cards: Cards,
    dialogues: Arc<Dialogues>,
) -> HandlerResult {
    let by = query.from.id.0 as i64;
    let change = match control {
        Control::Pause => Change::Pause {
            reason: String::new(),
        },
        Control::Resume => Change::Resume,
        // Cannot be undone: asked first.
        Control::Cancel => return ask_to_cancel(bot, &query, campaign, store).await,
        // Not a change yet: the new time is asked for first.
        Control::Move => {
            return timing::ask_to_move(bot, &query, campaign, dialogues, store).await;
        }
        Control::Approve => {
            let outcome = commands.approve(campaign, by).await;
            return settled(bot, query, campaign, outcome, store, cards).await;
        }
        Control::Edit => {
            return amend::ask_for_correction(bot, &query, campaign, dialogues, commands).await;
        }
        Control::Recall => return amend::ask_to_recall(bot, &query, campaign, store).await,
    };
    let outcome = commands.change(campaign, change, by).await;
    settled(bot, query, campaign, outcome, store, cards).await
}

/// ✖️ Cancel on a card: asks first, saying what a cancel means now.
async fn ask_to_cancel(
    bot: Bot,
    query: &CallbackQuery,
    campaign: Uuid,
    store: Store,
) -> HandlerResult {
    let (Some(chat), Some(snapshot)) = (
        query.regular_message().map(|m| m.chat.id),
        store.campaign(campaign).await?,
    ) else {
        return Ok(());
    };
    bot.answer_callback_query(query.id.clone()).await?;
    bot.send_message(chat, cancel_question(&snapshot))
        .reply_markup(InlineKeyboardMarkup::new([[
            Action::Confirm(campaign, Confirm::Cancel).button("✖️ Yes, cancel it"),
            Action::Confirm(campaign, Confirm::Keep).button("Keep it"),
        ]]))
        .await?;
    Ok(())
}

/// What cancelling the campaign now would do.
fn cancel_question(snapshot: &Snapshot) -> String {
    let consequence = match (snapshot.status, snapshot.recipients) {
        (CampaignStatus::Sending | CampaignStatus::Paused, Some(recipients)) => format!(
            "The {} recipient(s) not sent yet will not get it; the {} who did keep it \
             (🗑 Delete everywhere takes it back).",
            snapshot.remaining(),
            recipients - snapshot.remaining()
        ),
        _ => "It will not start; nothing was sent.".to_owned(),
    };
    format!(
        "✖️ Cancel {}? {consequence} This cannot be undone.",
        snapshot.title()
    )
}

/// The answer to a card's question: cancel, delete everywhere, or leave
/// things as they are (an edit is confirmed in its dialog).
pub async fn confirmed(
    bot: Bot,
    query: CallbackQuery,
    (campaign, answer): (Uuid, Confirm),
    commands: CampaignCommands,
    store: Store,
    cards: Cards,
) -> HandlerResult {
    match answer {
        Confirm::Cancel => {
            let by = query.from.id.0 as i64;
            let outcome = commands.change(campaign, Change::Cancel, by).await;
            if outcome.is_ok() {
                broadcast::settle(&bot, &query, "✖️ Cancelled.".into()).await?;
            }
            settled(bot, query, campaign, outcome, store, cards).await
        }
        Confirm::Recall => amend::recall(bot, query, campaign, commands, store, cards).await,
        Confirm::Keep | Confirm::Edit => {
            bot.answer_callback_query(query.id.clone()).await?;
            broadcast::settle(&bot, &query, "Kept: nothing changed.".into()).await
        }
    }
}

/// Tells the admin how a press on `campaign`'s card ended, and refreshes
/// its cards.
async fn settled(
    bot: Bot,
    query: CallbackQuery,
    campaign: Uuid,
    outcome: Result<CampaignStatus, CommandError>,
    store: Store,
    cards: Cards,
) -> HandlerResult {
    if let Err(error @ (CommandError::Publish(_) | CommandError::Read(_))) = &outcome {
        tracing::error!(%error, "changing a campaign failed");
    }
    let (answer, alert) = answer(&outcome);
    bot.answer_callback_query(query.id)
        .text(answer)
        .show_alert(alert)
        .await?;
    // The card refreshed next shows the new status (else the periodic
    // refresh catches up).
    if let Ok(status) = outcome {
        wait_for_projection(|| async {
            Ok(store
                .campaign(campaign)
                .await?
                .is_some_and(|snapshot| snapshot.status == status))
        })
        .await;
    }
    // Every card of the campaign shows where it stands now, the loser's too.
    cards.refresh(Some(campaign), Duration::ZERO).await?;
    Ok(())
}

/// What the admin is told, and whether as an alert they must dismiss.
pub(crate) fn answer(outcome: &Result<CampaignStatus, CommandError>) -> (String, bool) {
    match outcome {
        Ok(status) => (format!("Done: the campaign is {status}."), false),
        Err(CommandError::Conflict(now)) => (
            format!(
                "Another admin changed this campaign at the same moment; it is {now} now. \
                 Your press changed nothing."
            ),
            true,
        ),
        Err(CommandError::Refused(refusal)) => (
            format!("Nothing changed: {refusal} (another admin or courier got there first)."),
            true,
        ),
        Err(CommandError::NotFound(_)) => ("There is no such campaign.".into(), true),
        Err(CommandError::Unreadable(_)) => (
            "This campaign was changed by a newer version of courier; use that one.".into(),
            true,
        ),
        Err(error @ (CommandError::OwnApproval | CommandError::Amend(_))) => {
            (format!("Nothing changed: {error}."), true)
        }
        Err(CommandError::Publish(_) | CommandError::Read(_) | CommandError::Timer(_)) => (
            "Courier could not record that right now; try again in a moment.".into(),
            true,
        ),
    }
}

/// Waits, briefly, until the read model shows `status`.
#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::campaign::{Transition, TransitionError};

    fn snapshot(id: u128) -> Snapshot {
        Snapshot {
            audience: "all".into(),
            content_kind: "text".into(),
            recipients: Some(10),
            delivered: 4,
            ..Snapshot::starting(Uuid::from_u128(id))
        }
    }

    #[test]
    fn the_list_numbers_campaigns_and_their_buttons_and_turns_pages() {
        let campaigns: Vec<_> = (1..=7)
            .map(|id| Snapshot {
                name: format!("Sale {id}"),
                preview: format!("text: Sale {id} starts now"),
                ..snapshot(id)
            })
            .collect();
        let text = list_text(&campaigns, 0, chrono_tz::Tz::UTC);
        assert!(text.contains("\n7. 📤 “Sale 7”"), "{text}");
        assert!(text.contains("\n     text: Sale 7 starts now"), "{text}");
        let keyboard = list_keyboard(&campaigns, 0, false);
        let sizes: Vec<_> = keyboard.inline_keyboard.iter().map(Vec::len).collect();
        assert_eq!(sizes, [5, 2]);
        assert_eq!(keyboard.inline_keyboard[1][1].text, "7");

        // The second page numbers on, and turns both ways.
        assert!(list_text(&campaigns, 10, chrono_tz::Tz::UTC).contains("\n17. "));
        let keyboard = list_keyboard(&campaigns, 10, true);
        let turns: Vec<_> = keyboard.inline_keyboard[2]
            .iter()
            .map(|b| b.text.as_str())
            .collect();
        assert_eq!(turns, ["◀️ Newer", "Older ▶️"]);
        assert_eq!(keyboard.inline_keyboard[0][0].text, "11");
    }

    #[test]
    fn the_loser_of_a_race_is_told_what_happened() {
        let (text, alert) = answer(&Err(CommandError::Conflict(CampaignStatus::Cancelled)));
        assert!(alert && text.contains("it is cancelled now"), "{text}");
        let refused = CommandError::Refused(TransitionError {
            from: CampaignStatus::Paused,
            transition: Transition::Pause,
        });
        let (text, alert) = answer(&Err(refused));
        assert!(
            alert && text.contains("cannot pause a campaign that is paused"),
            "{text}"
        );
        let (text, alert) = answer(&Ok(CampaignStatus::Paused));
        assert_eq!(
            (text.as_str(), alert),
            ("Done: the campaign is paused.", false)
        );
    }
}
