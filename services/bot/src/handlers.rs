//! The update handlers: which updates the bot reacts to and who may do
//! what. Users' updates are handled here (deciding what they mean is left
//! to [`crate::users`] and [`crate::language`]); admins' commands and
//! buttons go to [`crate::broadcast`], [`crate::control`] and
//! [`crate::admins`], behind a role check that shows everyone else nothing.

use courier_core::audience::{self, Tagging};
use courier_core::event::{EventPublisher, PublishError};
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{Event, Language, UserOptedIn, UserOptedOut};
use teloxide::dispatching::dialogue;
use teloxide::dispatching::{HandlerExt, UpdateFilterExt, UpdateHandler};
use teloxide::dptree::{self, case};
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{CallbackQuery, ChatId, ChatMemberUpdated, Message, Update, User};
use teloxide::utils::command::BotCommands;
use teloxide::{Bot, RequestError};

use crate::actions::{Action, Confirm};
use crate::cards::CardError;
use crate::dialogue::{DialogueError, Dialogues, State};
use crate::roles::Roles;
use crate::storage::{Store, StoreError};
use crate::{
    activity, admins, amend, broadcast, control, language, replies, report, revise, tags, timing,
    users,
};

/// What a handler can fail with; logged by the dispatcher. A failed
/// publish is not among them: it is answered to the user instead.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("telegram: {0}")]
    Telegram(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dialogue(#[from] DialogueError),
    #[error(transparent)]
    Card(#[from] CardError),
}

pub type HandlerResult<T = ()> = Result<T, HandlerError>;

/// Everyone's commands.
#[derive(Debug, Clone, BotCommands)]
#[command(rename_rule = "lowercase")]
enum Command {
    /// Subscribe to the news (again). A deep link's parameter
    /// (`t.me/bot?start=<source>`) arrives as its argument.
    Start(String),
    /// Choose the language of the news.
    Language,
    /// Stop receiving the news (the bot stays usable).
    Stop,
    /// Receive the news again after /stop.
    Subscribe,
}

/// Commands only owners and admins have; for anyone else they do not exist.
#[derive(Debug, Clone, BotCommands)]
#[command(rename_rule = "lowercase")]
enum StaffCommand {
    /// Send a message to the users.
    Broadcast,
    /// Leave the /broadcast dialog.
    Cancel,
    /// Recent campaigns, to follow and control them.
    Campaigns,
    /// Owners: list, grant and revoke admins.
    Admins(String),
    /// Owners: /tag <user id> <tag>... puts tags on a user.
    Tag(String),
    /// Owners: /untag <user id> <tag>... takes them off.
    Untag(String),
    /// /timezone <name>: the time zone you write start times in.
    Timezone(String),
}

/// The dispatch tree. It also tells the dispatcher which update kinds to ask
/// Telegram for, `my_chat_member` included.
pub fn schema() -> UpdateHandler<HandlerError> {
    let private_messages = Update::filter_message()
        // People talk to the bot in private; messages in groups are not for it.
        .filter(|message: Message| message.chat.is_private())
        .filter_map(|message: Message| message.from);
    let commands = private_messages
        .clone()
        .filter_command::<Command>()
        .branch(case![Command::Start(payload)].endpoint(start))
        .branch(case![Command::Language].endpoint(choose_language))
        .branch(case![Command::Stop].map(|| Opt::Out).endpoint(opt))
        .branch(case![Command::Subscribe].map(|| Opt::In).endpoint(opt));
    let staff_messages = private_messages
        .filter_async(|from: User, roles: Roles| async move { roles.of(from.id).await.is_staff() })
        .enter_dialogue::<Update, Dialogues, State>()
        .branch(
            dptree::entry()
                .filter_command::<StaffCommand>()
                .branch(case![StaffCommand::Broadcast].endpoint(broadcast::begin))
                .branch(case![StaffCommand::Cancel].endpoint(broadcast::cancel))
                .branch(case![StaffCommand::Campaigns].endpoint(control::list))
                .branch(case![StaffCommand::Admins(args)].endpoint(admins::manage))
                .branch(
                    case![StaffCommand::Tag(args)]
                        .map(|| Tagging::Put)
                        .endpoint(tags::change),
                )
                .branch(
                    case![StaffCommand::Untag(args)]
                        .map(|| Tagging::TakeOff)
                        .endpoint(tags::change),
                )
                .branch(case![StaffCommand::Timezone(args)].endpoint(timing::set_zone)),
        )
        .branch(case![State::ChoosingAudience { filter }].endpoint(broadcast::typed_filter))
        .branch(case![State::AwaitingContent { audience }].endpoint(broadcast::content))
        .branch(case![State::CollectingAlbum(album)].endpoint(broadcast::album_item))
        .branch(case![State::AwaitingButtons { draft }].endpoint(broadcast::buttons))
        .branch(
            case![State::AwaitingVariant { draft, language }].endpoint(broadcast::variant_content),
        )
        .branch(case![State::AwaitingTimeZone { timing }].endpoint(timing::typed_zone))
        .branch(case![State::AwaitingStart { timing }].endpoint(timing::typed_start))
        .branch(case![State::AwaitingTitle { draft }].endpoint(revise::typed_title))
        .branch(case![State::AwaitingReplacement { draft }].endpoint(revise::replacement))
        .branch(case![State::AwaitingCorrection { campaign, language }].endpoint(amend::correction))
        .branch(
            case![State::AwaitingCorrectedButtons { campaign }].endpoint(amend::corrected_buttons),
        );
    // A campaign's Unsubscribe button, pressed by whoever received it.
    let unsubscribe_buttons = Update::filter_callback_query()
        .filter(|query: CallbackQuery| query.data.as_deref() == Some(audience::UNSUBSCRIBE))
        .endpoint(unsubscribe_pressed);
    let language_buttons = Update::filter_callback_query()
        .filter_map(|query: CallbackQuery| language::from_callback_data(query.data.as_deref()?))
        .endpoint(language_chosen);
    let staff_buttons = Update::filter_callback_query()
        .filter_map(|query: CallbackQuery| Action::parse(query.data.as_deref()?))
        .branch(
            // Someone else pressing an admin's button (in a forwarded
            // message, say): it does nothing and says nothing.
            dptree::filter_async(|query: CallbackQuery, roles: Roles| async move {
                !roles.of(query.from.id).await.is_staff()
            })
            .endpoint(ignore_press),
        )
        .branch(
            // A press naming another bot's campaign (callback data a client
            // made up): the admins of one bot never act on another's.
            dptree::filter_async(|action: Action, store: Store| async move {
                match action.campaign() {
                    Some(campaign) => store.is_another_bots(campaign).await.unwrap_or(true),
                    None => false,
                }
            })
            .endpoint(ignore_press),
        )
        .branch(case![Action::Control(campaign, change)].endpoint(control::pressed))
        .branch(case![Action::Show(campaign)].endpoint(control::show))
        .branch(case![Action::Page(offset)].endpoint(control::turn))
        .branch(case![Action::Csv(campaign)].endpoint(report::csv_pressed))
        .branch(
            dptree::filter(|action: Action| !matches!(action, Action::Confirm(_, Confirm::Edit)))
                .branch(case![Action::Confirm(campaign, answer)].endpoint(control::confirmed)),
        )
        .branch(
            dialogue::enter::<Update, Dialogues, State, _>()
                .branch(case![Action::Abort].endpoint(broadcast::abort))
                .branch(case![Action::Back].endpoint(revise::back))
                .branch(
                    case![State::ChoosingAudience { filter }]
                        .branch(case![Action::Audience(audience)].endpoint(broadcast::audience))
                        .branch(case![Action::UseSegment].endpoint(broadcast::use_segment))
                        .branch(
                            dptree::filter(|action: Action| {
                                matches!(action, Action::Segment | Action::Refine(_))
                            })
                            .endpoint(broadcast::refine),
                        ),
                )
                .branch(
                    case![State::AwaitingButtons { draft }]
                        .branch(case![Action::SkipButtons].endpoint(broadcast::skip_buttons)),
                )
                .branch(
                    case![State::CollectingAlbum(album)]
                        .branch(case![Action::UseAlbum].endpoint(broadcast::use_album)),
                )
                .branch(
                    case![State::Confirming { draft, summary }]
                        .branch(case![Action::Toggle(toggle)].endpoint(broadcast::toggle))
                        .branch(case![Action::Variant(language)].endpoint(broadcast::variant))
                        .branch(case![Action::TestSend].endpoint(broadcast::test_send))
                        .branch(case![Action::When].endpoint(timing::ask_for_draft))
                        .branch(case![Action::Rename].endpoint(revise::rename))
                        .branch(case![Action::ChangeMessage].endpoint(revise::change_message))
                        .branch(case![Action::ChangeButtons].endpoint(revise::change_buttons))
                        .branch(case![Action::Start].endpoint(broadcast::confirm)),
                )
                .branch(
                    case![State::AwaitingStart { timing }]
                        .branch(case![Action::StartAt(preset)].endpoint(timing::preset)),
                )
                .branch(
                    case![State::AwaitingCorrection { campaign, language }]
                        .branch(
                            case![Action::CorrectButtons(campaign)]
                                .endpoint(amend::ask_for_buttons),
                        )
                        .branch(
                            case![Action::CorrectVersion(campaign, language)]
                                .endpoint(amend::ask_for_version),
                        ),
                )
                .branch(
                    case![State::ConfirmingCorrection {
                        campaign,
                        content,
                        variants,
                        prompt
                    }]
                    .filter(|action: Action| matches!(action, Action::Confirm(_, Confirm::Edit)))
                    .endpoint(amend::confirm_edit),
                )
                .branch(dptree::endpoint(broadcast::outdated_press)),
        );
    let membership = Update::filter_my_chat_member()
        .filter_map(|update: ChatMemberUpdated| users::membership_change(&update))
        .endpoint(membership_changed);
    dptree::entry()
        .inspect_async(activity::record)
        .branch(commands)
        .branch(staff_messages)
        .branch(unsubscribe_buttons)
        .branch(language_buttons)
        .branch(staff_buttons)
        .branch(membership)
}

async fn ignore_press(bot: Bot, query: CallbackQuery) -> HandlerResult {
    bot.answer_callback_query(query.id).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(user_id = from.id.0 as i64))]
async fn start(
    bot: Bot,
    message: Message,
    from: User,
    payload: String,
    events: EventPublisher,
    store: Store,
) -> HandlerResult {
    let languages = store.languages().await;
    let registration = users::registration(&from, message.chat.id, &payload, &languages);
    let language = registration.language();
    let reply = match publish(&events, Payload::UserRegistered(registration)).await {
        Ok(()) => replies::greeting(language),
        Err(_) => replies::failure(language),
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

/// What /stop and /subscribe do.
#[derive(Debug, Clone, Copy)]
enum Opt {
    /// /stop: no more broadcasts, but the bot keeps answering (blocking it
    /// is what users did before, and it loses them for good).
    Out,
    /// /subscribe: broadcasts again.
    In,
}

#[tracing::instrument(skip_all, fields(user_id = from.id.0 as i64, ?opt))]
async fn opt(
    bot: Bot,
    message: Message,
    from: User,
    events: EventPublisher,
    store: Store,
    opt: Opt,
) -> HandlerResult {
    let user_id = from.id.0 as i64;
    let (change, confirmation): (_, fn(Language) -> &'static str) = match opt {
        Opt::Out => (
            Payload::UserOptedOut(UserOptedOut {
                user_id,
                ..Default::default()
            }),
            replies::stopped,
        ),
        Opt::In => (
            Payload::UserOptedIn(UserOptedIn {
                user_id,
                ..Default::default()
            }),
            replies::subscribed,
        ),
    };
    let language = (store.languages().await).for_new_user(from.language_code.as_deref());
    let reply = match publish(&events, change).await {
        Ok(()) => confirmation(language),
        Err(_) => replies::failure(language),
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

/// The Unsubscribe button under a campaign's message: the same as /stop,
/// answered where the user pressed.
#[tracing::instrument(skip_all, fields(user_id = query.from.id.0 as i64))]
async fn unsubscribe_pressed(
    bot: Bot,
    query: CallbackQuery,
    events: EventPublisher,
    store: Store,
) -> HandlerResult {
    let language = (store.languages().await).for_new_user(query.from.language_code.as_deref());
    let opted_out = Payload::UserOptedOut(UserOptedOut {
        user_id: query.from.id.0 as i64,
        ..Default::default()
    });
    let answer = match publish(&events, opted_out).await {
        Ok(()) => replies::stopped(language),
        Err(_) => replies::failure(language),
    };
    bot.answer_callback_query(query.id)
        .text(answer)
        .show_alert(true)
        .await?;
    Ok(())
}

async fn choose_language(bot: Bot, message: Message, store: Store) -> HandlerResult {
    let languages = store.languages().await;
    if !languages.is_a_choice() {
        bot.send_message(message.chat.id, replies::only_language(languages.first()))
            .await?;
        return Ok(());
    }
    bot.send_message(message.chat.id, replies::CHOOSE_LANGUAGE)
        .reply_markup(language::keyboard(&languages))
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(user_id = query.from.id.0 as i64, language = ?language))]
async fn language_chosen(
    bot: Bot,
    query: CallbackQuery,
    language: Language,
    events: EventPublisher,
    store: Store,
) -> HandlerResult {
    // A button of a language the bot no longer offers (or made up).
    if !store.languages().await.offers(language) {
        bot.answer_callback_query(query.id).await?;
        return Ok(());
    }
    // Someone who never sent /start (the buttons of a forwarded /language,
    // or a client that skipped it) is registered with the choice.
    let change = match store.is_registered(query.from.id.0 as i64).await? {
        true => Payload::UserLanguageChanged(users::language_change(&query.from, language)),
        false => {
            // The buttons are in the user's private chat with the bot.
            let chat = query
                .regular_message()
                .map_or(ChatId(query.from.id.0 as i64), |m| m.chat.id);
            Payload::UserRegistered(users::registration_choosing(&query.from, chat, language))
        }
    };
    if publish(&events, change).await.is_err() {
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
pub(crate) async fn publish(events: &EventPublisher, payload: Payload) -> Result<(), PublishError> {
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
