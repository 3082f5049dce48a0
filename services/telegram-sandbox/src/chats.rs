//! The users the bots talk to: whether each one can be reached, and what it was sent.
//!
//! Every chat is a private chat with a user who started the bot, unless a test says otherwise
//! (blocked, deleted account, never started, unknown), for every bot or for one. Sent messages
//! are kept per bot and chat with per-chat ids, as Telegram numbers them, so they can be edited,
//! deleted, copied and read back by the bot that sent them.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::content::Content;
use crate::envelope::ApiError;

/// How a user relates to the bot, which decides what a send to them gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatState {
    /// Started the bot and can be messaged.
    #[default]
    Active,
    Blocked,
    /// The account was deleted.
    Deactivated,
    /// Never pressed Start, so the bot may not write first.
    NeverStarted,
    /// Telegram does not know the chat.
    NotFound,
}

impl ChatState {
    /// Finding the chat, which Telegram does before anything else: only an unknown chat fails.
    pub fn resolve(self) -> Result<(), ApiError> {
        match self {
            Self::NotFound => Err(ApiError::bad_request("chat not found")),
            _ => Ok(()),
        }
    }

    /// Handing a message to the user, which only fails once it has reached Telegram's servers.
    pub fn receive(self) -> Result<(), ApiError> {
        match self {
            Self::Blocked => Err(ApiError::forbidden("bot was blocked by the user")),
            Self::Deactivated => Err(ApiError::forbidden("user is deactivated")),
            Self::NeverStarted => Err(ApiError::forbidden(
                "bot can't initiate conversation with a user",
            )),
            Self::Active | Self::NotFound => self.resolve(),
        }
    }
}

/// A message the bot sent, as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub content: Content,
    /// The bot as a `User`.
    pub from: Value,
    /// Unix seconds.
    pub date: i64,
    pub edit_date: Option<i64>,
    pub protected: bool,
}

/// Each bot's private chat with each user. Telegram numbers messages per bot
/// and chat, and a user blocks one bot, not all of them; a deleted account
/// is gone for every bot.
#[derive(Debug, Default)]
pub struct Chats {
    /// By (bot id, chat id).
    of_bots: HashMap<(i64, i64), Chat>,
    /// A user's state with every bot, where no bot's own says otherwise.
    users: HashMap<i64, ChatState>,
}

#[derive(Debug, Default)]
struct Chat {
    /// This bot's own, over the user's state with every bot.
    state: Option<ChatState>,
    last_message_id: i32,
    messages: BTreeMap<i32, Sent>,
    /// Pinned messages, the latest last.
    pinned: Vec<i32>,
}

impl Chats {
    pub fn state(&self, bot_id: i64, chat_id: i64) -> ChatState {
        self.of_bots
            .get(&(bot_id, chat_id))
            .and_then(|chat| chat.state)
            .or_else(|| self.users.get(&chat_id).copied())
            .unwrap_or_default()
    }

    /// The user's state with every bot.
    pub fn set_state(&mut self, chat_id: i64, state: ChatState) {
        self.users.insert(chat_id, state);
        for ((_, chat), of_bot) in &mut self.of_bots {
            if *chat == chat_id {
                of_bot.state = None;
            }
        }
    }

    /// The user's state with bot `bot_id` alone (blocked it, say).
    pub fn set_state_of(&mut self, bot_id: i64, chat_id: i64, state: ChatState) {
        self.of_bots.entry((bot_id, chat_id)).or_default().state = Some(state);
    }

    /// Keeps a message the bot sent and answers its id, the next in this
    /// bot's chat.
    pub fn store(&mut self, bot_id: i64, chat_id: i64, sent: Sent) -> i32 {
        let chat = self.of_bots.entry((bot_id, chat_id)).or_default();
        chat.last_message_id += 1;
        chat.messages.insert(chat.last_message_id, sent);
        chat.last_message_id
    }

    pub fn message(&self, bot_id: i64, chat_id: i64, message_id: i32) -> Option<&Sent> {
        self.of_bots
            .get(&(bot_id, chat_id))?
            .messages
            .get(&message_id)
    }

    pub fn message_mut(&mut self, bot_id: i64, chat_id: i64, message_id: i32) -> Option<&mut Sent> {
        self.of_bots
            .get_mut(&(bot_id, chat_id))?
            .messages
            .get_mut(&message_id)
    }

    pub fn delete(&mut self, bot_id: i64, chat_id: i64, message_id: i32) -> Option<Sent> {
        let chat = self.of_bots.get_mut(&(bot_id, chat_id))?;
        chat.pinned.retain(|&id| id != message_id);
        chat.messages.remove(&message_id)
    }

    /// Pins a message of the chat; `false` if there is no such message.
    pub fn pin(&mut self, bot_id: i64, chat_id: i64, message_id: i32) -> bool {
        let Some(chat) = self.of_bots.get_mut(&(bot_id, chat_id)) else {
            return false;
        };
        if !chat.messages.contains_key(&message_id) {
            return false;
        }
        chat.pinned.retain(|&id| id != message_id);
        chat.pinned.push(message_id);
        true
    }

    /// Unpins `message_id`, or the latest pinned message; `false` if it was
    /// not pinned (or none is).
    pub fn unpin(&mut self, bot_id: i64, chat_id: i64, message_id: Option<i32>) -> bool {
        let Some(chat) = self.of_bots.get_mut(&(bot_id, chat_id)) else {
            return false;
        };
        let Some(message_id) = message_id.or_else(|| chat.pinned.last().copied()) else {
            return false;
        };
        let before = chat.pinned.len();
        chat.pinned.retain(|&id| id != message_id);
        chat.pinned.len() < before
    }

    /// The chat's pinned messages, oldest pin first, of every bot.
    pub fn pinned(&self, chat_id: i64) -> Vec<i32> {
        self.of_chat(chat_id)
            .flat_map(|(_, chat)| chat.pinned.iter().copied())
            .collect()
    }

    /// Makes every message look sent `by_secs` earlier (a test of what Telegram allows only
    /// within some time of sending).
    pub fn age(&mut self, by_secs: i64) {
        for chat in self.of_bots.values_mut() {
            for sent in chat.messages.values_mut() {
                sent.date -= by_secs;
            }
        }
    }

    /// Bot `bot_id`'s messages in the chat, oldest first, as the Bot API
    /// renders them.
    pub fn rendered_of(&self, bot_id: i64, chat_id: i64) -> Vec<Value> {
        self.of_bots
            .get(&(bot_id, chat_id))
            .map(|chat| render_all(chat_id, chat))
            .unwrap_or_default()
    }

    /// Every bot's messages in the chat, bot by bot (by id), each oldest
    /// first.
    pub fn rendered(&self, chat_id: i64) -> Vec<Value> {
        self.of_chat(chat_id)
            .flat_map(|(_, chat)| render_all(chat_id, chat))
            .collect()
    }

    /// The bots' chats with user `chat_id`, by bot id.
    fn of_chat(&self, chat_id: i64) -> impl Iterator<Item = (i64, &Chat)> {
        let mut chats: Vec<_> = self
            .of_bots
            .iter()
            .filter(|((_, chat), _)| *chat == chat_id)
            .map(|(&(bot, _), chat)| (bot, chat))
            .collect();
        chats.sort_by_key(|&(bot, _)| bot);
        chats.into_iter()
    }
}

fn render_all(chat_id: i64, chat: &Chat) -> Vec<Value> {
    chat.messages
        .iter()
        .map(|(&id, sent)| render(chat_id, id, sent))
        .collect()
}

/// Now, in the unix seconds message dates use.
pub fn unix_now() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// A private chat with user `chat_id`, as a `Chat` object.
pub fn chat(chat_id: i64) -> Value {
    json!({"id": chat_id, "type": "private", "first_name": format!("User {chat_id}")})
}

/// A `Message` object.
pub fn render(chat_id: i64, message_id: i32, sent: &Sent) -> Value {
    let mut message = Map::new();
    message.insert("message_id".into(), json!(message_id));
    message.insert("from".into(), sent.from.clone());
    message.insert("chat".into(), chat(chat_id));
    message.insert("date".into(), json!(sent.date));
    if let Some(edit_date) = sent.edit_date {
        message.insert("edit_date".into(), json!(edit_date));
    }
    if sent.protected {
        message.insert("has_protected_content".into(), json!(true));
    }
    sent.content.render_into(&mut message);
    Value::Object(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str) -> Sent {
        let content = Content {
            text: Some(text.into()),
            entities: Vec::new(),
            ..Default::default()
        };
        Sent {
            content,
            from: json!({"id": 1}),
            date: 0,
            edit_date: None,
            protected: false,
        }
    }

    #[test]
    fn message_ids_count_per_bot_and_chat() {
        let mut chats = Chats::default();
        assert_eq!(chats.store(1, 10, sent("a")), 1);
        assert_eq!(chats.store(1, 10, sent("b")), 2);
        assert_eq!(chats.store(1, 20, sent("c")), 1);
        assert_eq!(chats.store(2, 10, sent("other bot")), 1);
        assert!(chats.delete(1, 10, 1).is_some());
        assert_eq!(chats.store(1, 10, sent("d")), 3);
        let texts = |messages: Vec<Value>| -> Vec<Value> {
            messages.iter().map(|m| m["text"].clone()).collect()
        };
        assert_eq!(texts(chats.rendered_of(1, 10)), [json!("b"), json!("d")]);
        assert_eq!(texts(chats.rendered_of(2, 10)), [json!("other bot")]);
        assert_eq!(
            texts(chats.rendered(10)),
            [json!("b"), json!("d"), json!("other bot")]
        );
        // One bot's message is not another's to edit or delete.
        assert!(chats.message(2, 10, 3).is_none());
        assert!(chats.delete(2, 10, 3).is_none());
    }

    #[test]
    fn a_user_blocks_one_bot_and_a_deleted_account_is_gone_for_every_bot() {
        let mut chats = Chats::default();
        chats.set_state_of(1, 10, ChatState::Blocked);
        assert_eq!(chats.state(1, 10), ChatState::Blocked);
        assert_eq!(chats.state(2, 10), ChatState::Active);
        chats.set_state(10, ChatState::Deactivated);
        assert_eq!(chats.state(1, 10), ChatState::Deactivated);
        assert_eq!(chats.state(2, 10), ChatState::Deactivated);
    }

    #[test]
    fn states_answer_with_telegrams_errors() {
        let description = |state: ChatState| state.receive().err().map(|e| (e.code, e.description));
        assert_eq!(description(ChatState::Active), None);
        assert_eq!(
            description(ChatState::Blocked),
            Some((403, "Forbidden: bot was blocked by the user".into()))
        );
        assert_eq!(
            description(ChatState::Deactivated),
            Some((403, "Forbidden: user is deactivated".into()))
        );
        assert_eq!(
            description(ChatState::NeverStarted),
            Some((
                403,
                "Forbidden: bot can't initiate conversation with a user".into()
            ))
        );
        assert_eq!(
            description(ChatState::NotFound),
            Some((400, "Bad Request: chat not found".into()))
        );
        assert!(ChatState::Blocked.resolve().is_ok());
    }
}
