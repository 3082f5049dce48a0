//! Telegram updates about a user, turned into the user events courier
//! records. Which bot's user they are is put on by the bot's publisher
//! (`EventPublisher::for_bot`). Pure functions: the handlers do the I/O.

use courier_core::audience;
use courier_core::bot_languages::BotLanguages;
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{
    Language, Names, UserActive, UserBlocked, UserLanguageChanged, UserRegistered, UserUnblocked,
};
use teloxide::types::{ChatId, ChatMemberUpdated, User};

/// Why a user is no longer reachable, as recorded on `UserBlocked`.
const BLOCKED_REASON: &str = "blocked the bot";

/// `/start` (or `/start <source>` from a deep link): the user (re)joins, in
/// the language their Telegram app uses, if the bot offers it (`languages`),
/// until they choose one. Registering again revives a user who blocked the
/// bot. A payload that is not a valid deep-link parameter is no source.
pub fn registration(
    user: &User,
    chat: ChatId,
    payload: &str,
    languages: &BotLanguages,
) -> UserRegistered {
    let language = languages.for_new_user(user.language_code.as_deref());
    UserRegistered {
        user_id: id(user),
        chat_id: chat.0,
        language: language.into(),
        language_chosen: false,
        source: audience::source(payload.trim()).unwrap_or_default(),
        names: Some(names(user)),
        ..Default::default()
    }
}

/// A user not registered yet chose a language in `chat`: registered with it.
pub fn registration_choosing(user: &User, chat: ChatId, language: Language) -> UserRegistered {
    UserRegistered {
        language: language.into(),
        language_chosen: true,
        ..registration(user, chat, "", &BotLanguages::default())
    }
}

/// The user wrote or pressed a button (the caller records one a day).
pub fn activity(user: &User) -> UserActive {
    UserActive {
        user_id: id(user),
        names: Some(names(user)),
        ..Default::default()
    }
}

/// The names Telegram shows for `user`, which greetings use.
pub fn names(user: &User) -> Names {
    Names {
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone().unwrap_or_default(),
        username: user.username.clone().unwrap_or_default(),
    }
}

pub fn language_change(user: &User, language: Language) -> UserLanguageChanged {
    UserLanguageChanged {
        user_id: id(user),
        language: language.into(),
        ..Default::default()
    }
}

/// The bot's own membership in a private chat changed: the user blocked it
/// (it is "kicked") or unblocked it (a member again). Everything else, and
/// every group or channel, says nothing about the user.
pub fn membership_change(update: &ChatMemberUpdated) -> Option<Payload> {
    if !update.chat.is_private() {
        return None;
    }
    let (old, new) = (&update.old_chat_member, &update.new_chat_member);
    // In a private chat the one who changed the bot's status is the user.
    let user_id = id(&update.from);
    if new.is_banned() && !old.is_banned() {
        Some(Payload::UserBlocked(UserBlocked {
            user_id,
            reason: BLOCKED_REASON.to_owned(),
            ..Default::default()
        }))
    } else if old.is_banned() && new.is_member() {
        Some(Payload::UserUnblocked(UserUnblocked {
            user_id,
            ..Default::default()
        }))
    } else {
        None
    }
}

/// Telegram user ids have at most 52 significant bits, so they fit courier's
/// signed ids (and Postgres `bigint`) unchanged.
fn id(user: &User) -> i64 {
    user.id.0 as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: i64 = 4_000_000_001;
    const BOT: i64 = 777;

    fn user(language_code: Option<&str>) -> User {
        serde_json::from_value(json!({
            "id": USER, "is_bot": false, "first_name": "Ann", "language_code": language_code,
        }))
        .unwrap()
    }

    fn update(chat: serde_json::Value, old: &str, new: &str) -> ChatMemberUpdated {
        let bot = json!({ "id": BOT, "is_bot": true, "first_name": "Courier", "username": "courier_bot" });
        let member = |status: &str| match status {
            "kicked" => json!({ "user": bot, "status": "kicked", "until_date": 0 }),
            status => json!({ "user": bot, "status": status }),
        };
        serde_json::from_value(json!({
            "chat": chat,
            "from": { "id": USER, "is_bot": false, "first_name": "Ann" },
            "date": 1_700_000_000,
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }))
        .unwrap()
    }

    fn private_update(old: &str, new: &str) -> ChatMemberUpdated {
        update(
            json!({ "id": USER, "type": "private", "first_name": "Ann" }),
            old,
            new,
        )
    }

    #[test]
    fn registration_guesses_the_language_from_the_app() {
        let chat = ChatId(USER + 1);
        let every = BotLanguages::default();
        assert_eq!(
            registration(&user(Some("ru-RU")), chat, "", &every),
            UserRegistered {
                user_id: USER,
                chat_id: USER + 1,
                language: Language::Ru.into(),
                language_chosen: false,
                source: String::new(),
                names: Some(Names {
                    first_name: "Ann".into(),
                    ..Names::default()
                }),
                ..Default::default()
            }
        );
        assert_eq!(
            registration(&user(Some("de")), chat, "", &every).language(),
            Language::En
        );
        assert_eq!(
            registration(&user(None), chat, "", &every).language(),
            Language::En
        );
        let russian_only = BotLanguages::parse(&["ru"]).unwrap();
        assert_eq!(
            registration(&user(Some("en")), chat, "", &russian_only).language(),
            Language::Ru
        );
    }

    #[test]
    fn a_deep_link_is_the_source_when_telegram_would_allow_it() {
        let chat = ChatId(USER);
        let every = BotLanguages::default();
        assert_eq!(
            registration(&user(None), chat, "ad_spring-2026", &every).source,
            "ad_spring-2026"
        );
        for payload in ["not a link", &"x".repeat(65)] {
            assert_eq!(registration(&user(None), chat, payload, &every).source, "");
        }
    }

    #[test]
    fn activity_carries_the_names_telegram_shows() {
        let mut ann = user(None);
        ann.last_name = Some("Lee".into());
        ann.username = Some("ann_lee".into());
        assert_eq!(
            activity(&ann).names,
            Some(Names {
                first_name: "Ann".into(),
                last_name: "Lee".into(),
                username: "ann_lee".into(),
            })
        );
    }

    #[test]
    fn a_language_change_names_the_user() {
        assert_eq!(
            language_change(&user(Some("en")), Language::Ru),
            UserLanguageChanged {
                user_id: USER,
                language: Language::Ru.into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn blocking_the_bot_blocks_the_user() {
        assert_eq!(
            membership_change(&private_update("member", "kicked")),
            Some(Payload::UserBlocked(UserBlocked {
                user_id: USER,
                reason: "blocked the bot".into(),
                ..Default::default()
            }))
        );
    }

    #[test]
    fn unblocking_the_bot_unblocks_the_user() {
        assert_eq!(
            membership_change(&private_update("kicked", "member")),
            Some(Payload::UserUnblocked(UserUnblocked {
                user_id: USER,
                ..Default::default()
            }))
        );
    }

    #[test]
    fn other_changes_say_nothing_about_the_user() {
        assert_eq!(membership_change(&private_update("member", "member")), None);
        assert_eq!(membership_change(&private_update("kicked", "kicked")), None);
        assert_eq!(membership_change(&private_update("left", "member")), None);
        let group = json!({ "id": -100_123, "type": "supergroup", "title": "Team" });
        assert_eq!(
            membership_change(&update(group.clone(), "member", "kicked")),
            None
        );
        assert_eq!(membership_change(&update(group, "kicked", "member")), None);
    }
}
