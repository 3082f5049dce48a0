//! The update handlers: which updates the bot reacts to and what it does
//! with them. Deciding what an update means is left to [`crate::users`] and
//! [`crate::language`]; this module publishes the events and replies.

use courier_core::event::{EventPublisher, PublishError};
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{Event, Language};
use teloxide::dispatching::{HandlerExt, UpdateFilterExt, UpdateHandler};
use teloxide::dptree::{self, case};
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, ChatMemberUpdated, Message, Update, User};
use teloxide::utils::command::BotCommands;
use teloxide::{Bot, RequestError};

use crate::{language, replies, users};

/// Failing Bot API calls are the only handler errors: a failed publish is
/// answered to the user instead.
type HandlerResult = Result<(), RequestError>;

#[derive(Debug, Clone, Copy, BotCommands)]
#[command(rename_rule = "lowercase")]
enum Command {
    /// Subscribe to the news (again).
    Start,
    /// Choose the language of the news.
    Language,
}

/// The dispatch tree. It also tells the dispatcher which update kinds to ask
/// Telegram for, `my_chat_member` included.
pub fn schema() -> UpdateHandler<RequestError> {
    let commands = Update::filter_message()
        // Users talk to the bot in private; commands in groups are not for it.
        .filter(|message: Message| message.chat.is_private())
        .filter_map(|message: Message| message.from)
        .filter_command::<Command>()
        .branch(case![Command::Start].endpoint(start))
        .branch(case![Command::Language].endpoint(choose_language));
    let language_buttons = Update::filter_callback_query()
        .filter_map(|query: CallbackQuery| language::from_callback_data(query.data.as_deref()?))
        .endpoint(language_chosen);
    let membership = Update::filter_my_chat_member()
        .filter_map(|update: ChatMemberUpdated| users::membership_change(&update))
        .endpoint(membership_changed);
    dptree::entry()
        .branch(commands)
        .branch(language_buttons)
        .branch(membership)
}

#[tracing::instrument(skip_all, fields(user_id = from.id.0))]
async fn start(bot: Bot, message: Message, from: User, events: EventPublisher) -> HandlerResult {
    let registration = users::registration(&from, message.chat.id);
    let language = registration.language();
    let reply = match publish(&events, Payload::UserRegistered(registration)).await {
        Ok(()) => replies::greeting(language),
        Err(_) => replies::failure(language),
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

async fn choose_language(bot: Bot, message: Message) -> HandlerResult {
    bot.send_message(message.chat.id, replies::CHOOSE_LANGUAGE)
        .reply_markup(language::keyboard())
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(user_id = query.from.id.0, language = ?language))]
async fn language_chosen(
    bot: Bot,
    query: CallbackQuery,
    language: Language,
    events: EventPublisher,
) -> HandlerResult {
    let change = users::language_change(&query.from, language);
    if publish(&events, Payload::UserLanguageChanged(change))
        .await
        .is_err()
    {
        bot.answer_callback_query(query.id)
            .text(replies::failure(language))
            .show_alert(true)
            .await?;
        return Ok(());
    }
    let confirmation = replies::language_set(language);
    match query.regular_message() {
        Some(buttons) => {
            bot.answer_callback_query(query.id.clone()).await?;
            // Editing drops the buttons, so the choice reads as settled.
            bot.edit_message_text(buttons.chat.id, buttons.id, confirmation)
                .await?;
        }
        // Too old to edit: confirm in the popup instead.
        None => {
            bot.answer_callback_query(query.id)
                .text(confirmation)
                .await?;
        }
    }
    Ok(())
}

async fn membership_changed(change: Payload, events: EventPublisher) -> HandlerResult {
    // Failures are logged by `publish`; there is no one to tell: a user who
    // blocked the bot cannot be messaged, and one who unblocks it sends
    // /start, which registers them again.
    let _ = publish(&events, change).await;
    Ok(())
}

/// Publishes `payload` as a new event, logging a failure with what was lost
/// so callers only decide what to tell the user.
async fn publish(events: &EventPublisher, payload: Payload) -> Result<(), PublishError> {
    let kind = payload.type_name();
    let event = Event::new(payload);
    match events.publish(&event).await {
        Ok(sequence) => {
            tracing::info!(event = kind, event_id = %event.event_id, sequence, "published");
            Ok(())
        }
        Err(error) => {
            tracing::error!(event = kind, event_id = %event.event_id, %error, "publishing the event failed");
            Err(error)
        }
    }
}
