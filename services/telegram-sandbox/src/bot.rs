//! Who the calling bot is, and what it has set about itself.
//!
//! Telegram knows a bot by its token `<bot id>:<secret>`; the id is also the bot's user id, which
//! shows up as `from` on every message it sends. The webhook and command list are the bot's own
//! settings, kept so that `get*` answers what `set*` stored.

use std::collections::HashMap;

use serde_json::{Value, json};

const FIRST_NAME: &str = "Sandbox Bot";

/// A well-formed token and the bot id it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub token: String,
    pub id: i64,
}

impl Bot {
    /// Reads `<digits>:<secret>`, the shape of every token @BotFather hands out.
    pub fn from_token(token: &str) -> Option<Self> {
        let (id, secret) = token.split_once(':')?;
        let well_formed_secret = !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let id = id
            .parse::<i64>()
            .ok()
            .filter(|&id| id > 0 && well_formed_secret)?;
        Some(Self {
            token: token.to_owned(),
            id,
        })
    }

    /// The bot as a `User`, the way messages carry it in `from`.
    pub fn user(&self) -> Value {
        json!({"id": self.id, "is_bot": true, "first_name": FIRST_NAME, "username": self.username()})
    }

    /// Every bot has its own username, as on Telegram: `sandbox_<id>_bot`
    /// (5 to 32 letters, digits and underscores, ending in "bot").
    pub fn username(&self) -> String {
        format!("sandbox_{}_bot", self.id)
    }

    /// The answer to `getMe`.
    pub fn me(&self) -> Value {
        let mut me = self.user();
        me["can_join_groups"] = json!(true);
        me["can_read_all_group_messages"] = json!(false);
        me["supports_inline_queries"] = json!(false);
        me["can_connect_to_business"] = json!(false);
        me["has_main_web_app"] = json!(false);
        me
    }
}

/// What the bot set through `setWebhook` and `setMyCommands`.
#[derive(Debug, Default)]
pub struct BotSettings {
    pub webhook_url: Option<String>,
    /// Command lists by scope and language code, as Telegram keys them.
    commands: HashMap<CommandsKey, Value>,
}

impl BotSettings {
    pub fn set_commands(&mut self, scope: &Value, language: &str, commands: Value) {
        self.commands
            .insert(commands_key(scope, language), commands);
    }

    /// The list set for exactly this scope and language, or `[]`.
    pub fn commands(&self, scope: &Value, language: &str) -> Value {
        self.commands
            .get(&commands_key(scope, language))
            .cloned()
            .unwrap_or_else(|| json!([]))
    }

    pub fn delete_commands(&mut self, scope: &Value, language: &str) {
        self.commands.remove(&commands_key(scope, language));
    }
}

/// A `BotCommandScope` is its `type` plus, for some types, `chat_id` and `user_id`.
type CommandsKey = [String; 4];

fn commands_key(scope: &Value, language: &str) -> CommandsKey {
    let field = |name: &str| scope.get(name).map(Value::to_string).unwrap_or_default();
    [
        field("type"),
        field("chat_id"),
        field("user_id"),
        language.to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_digits_colon_secret() {
        assert_eq!(Bot::from_token("123:AbC-d_9").map(|b| b.id), Some(123));
        for bad in [
            "", "123", "123:", ":abc", "abc:def", "0:abc", "-5:abc", "123:a b", "123:a:b",
        ] {
            assert_eq!(Bot::from_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_bot_has_its_own_username() {
        let first = Bot::from_token("123:a").unwrap();
        let second = Bot::from_token("456:a").unwrap();
        assert_eq!(first.me()["username"], "sandbox_123_bot");
        assert_eq!(second.user()["username"], "sandbox_456_bot");
    }
}
