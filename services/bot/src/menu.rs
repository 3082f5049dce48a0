//! The command menu Telegram shows beside the input field (setMyCommands).
//! Everyone sees the users' commands; each owner's and admin's private chat
//! gets its own list (a chat scope) with the admin commands too, so users
//! are never shown what they cannot use. Set for every owner and admin
//! when the bot starts, and again for one whose rights change.

use teloxide::Bot;
use teloxide::payloads::{DeleteMyCommandsSetters, SetMyCommandsSetters};
use teloxide::prelude::Requester;
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};

use crate::roles::Role;
use crate::storage::{Store, StoreError};

/// Everyone's commands.
const USERS: [(&str, &str); 4] = [
    ("start", "Subscribe to the bot's messages"),
    ("language", "Choose your language"),
    ("stop", "No more broadcasts"),
    ("subscribe", "Broadcasts again"),
];

/// Owners' and admins' commands, besides everyone's.
const STAFF: [(&str, &str); 6] = [
    ("broadcast", "Send a message to your users"),
    ("campaigns", "Recent campaigns and their cards"),
    ("cancel", "Leave the broadcast you are composing"),
    ("timezone", "The time zone you schedule in"),
    ("tag", "Tag a user: /tag <user id> <tag>…"),
    ("untag", "Untag a user: /untag <user id> <tag>…"),
];

/// Owners' alone.
const OWNERS: [(&str, &str); 1] = [("admins", "List, add or remove admins")];

/// The menu someone with `role` gets.
pub fn commands(role: Role) -> Vec<BotCommand> {
    let staff: &[(&str, &str)] = if role.is_staff() { &STAFF } else { &[] };
    let owners: &[(&str, &str)] = if role.manages_admins() { &OWNERS } else { &[] };
    staff
        .iter()
        .chain(owners)
        .chain(&USERS)
        .map(|(command, description)| BotCommand::new(*command, *description))
        .collect()
}

/// Everyone's menu, and every owner's and admin's own. A chat Telegram
/// refuses (someone who never started the bot) is logged and skipped.
pub async fn install(bot: &Bot, owners: &[i64], store: &Store) -> Result<(), StoreError> {
    if let Err(error) = bot.set_my_commands(commands(Role::User)).await {
        tracing::warn!(%error, "setting the command menu failed");
    }
    let admins = store.admins().await?;
    let staff = owners.iter().map(|&owner| (owner, Role::Owner)).chain(
        admins
            .into_iter()
            .map(|admin| (admin, Role::of(admin, owners, true))),
    );
    for (user, role) in staff {
        set_for(bot, user, role).await;
    }
    Ok(())
}

/// `user`'s own menu, for `role` (a user's is everyone's: their own goes).
pub async fn set_for(bot: &Bot, user: i64, role: Role) {
    let scope = BotCommandScope::Chat {
        chat_id: Recipient::Id(ChatId(user)),
    };
    let set = match role.is_staff() {
        true => bot
            .set_my_commands(commands(role))
            .scope(scope)
            .await
            .map(drop),
        false => bot.delete_my_commands().scope(scope).await.map(drop),
    };
    if let Err(error) = set {
        tracing::warn!(%error, user, "setting a command menu failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(role: Role) -> Vec<String> {
        commands(role).into_iter().map(|c| c.command).collect()
    }

    #[test]
    fn each_role_sees_only_what_it_may_use() {
        assert_eq!(
            names(Role::User),
            ["start", "language", "stop", "subscribe"]
        );
        let admin = names(Role::Admin);
        assert_eq!(admin[0], "broadcast");
        assert!(!admin.contains(&"admins".to_owned()));
        assert!(names(Role::Owner).contains(&"admins".to_owned()));
        for role in [Role::User, Role::Admin, Role::Owner] {
            for command in commands(role) {
                let valid = (1..=32).contains(&command.command.len())
                    && command
                        .command
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                assert!(valid, "{}", command.command);
                assert!((1..=256).contains(&command.description.len()));
            }
        }
    }
}
