//! Updates as Telegram sent them. teloxide-core 0.13 knows the Bot API up to
//! 8.3: it drops the fields added since (a button's `style`) and cannot read
//! a message at all when it holds something newer (a `date_time` entity),
//! which would lose the admin's message without a word. So both transports
//! hand every update here first: a message is kept as received, for
//! [`crate::content`] to capture field for field, and teloxide is given the
//! same update without the parts it cannot read, so the dialogue still
//! sees the message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize as _;
use serde_json::Value;
use teloxide::dispatching::UpdateHandler;
use teloxide::dptree;
use teloxide::types::{Message, MessageKind, Update};

use crate::handlers::HandlerError;

/// Updates handed to the dispatcher but not yet handled: a bound, so a
/// handler that never runs cannot make the map grow.
const MAX_WAITING: usize = 1024;

/// The messages of the updates in flight, by update id, as Telegram sent
/// them. Shared by the transport (which keeps them) and the dispatcher
/// (which takes each one as its update is handled).
#[derive(Clone, Default)]
pub struct Originals(Arc<Mutex<HashMap<u32, Arc<Value>>>>);

/// The message of the update being handled, as Telegram sent it (injected
/// into every handler; `None` for updates without a message).
#[derive(Clone, Default)]
pub struct Original(Option<Arc<Value>>);

/// The fields teloxide reads with types that may lag behind the Bot API.
const NEWER_THAN_TELOXIDE: [&str; 3] = ["entities", "caption_entities", "reply_markup"];

impl Originals {
    /// Keeps the message of `update` and answers the update as teloxide can
    /// read it.
    pub fn admit(&self, mut update: Value) -> Value {
        let id = update["update_id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok());
        if let (Some(id), Some(message)) = (id, update.get_mut("message")) {
            let kept = Arc::new(message.clone());
            if !teloxide_reads(message)
                && let Some(fields) = message.as_object_mut()
            {
                for field in NEWER_THAN_TELOXIDE {
                    fields.remove(field);
                }
            }
            let mut waiting = self.0.lock().expect("no panic while holding the originals");
            if waiting.len() >= MAX_WAITING {
                waiting.clear();
            }
            waiting.insert(id, kept);
        }
        update
    }

    /// The original message of update `id`, no longer kept.
    pub fn take(&self, id: u32) -> Original {
        let mut waiting = self.0.lock().expect("no panic while holding the originals");
        Original(waiting.remove(&id))
    }
}

/// Whether teloxide makes out what `message` is: given parts it cannot
/// read, it yields an empty message (or none at all).
fn teloxide_reads(message: &Value) -> bool {
    Message::deserialize(message).is_ok_and(|read| !matches!(read.kind, MessageKind::Empty {}))
}

/// `handlers`, with the [`Original`] of each update among their
/// dependencies.
pub fn with_originals(handlers: UpdateHandler<HandlerError>) -> UpdateHandler<HandlerError> {
    dptree::entry()
        .map(|update: Update, originals: Originals| originals.take(update.id.0))
        .chain(handlers)
}

impl Original {
    /// `message` as Telegram sent it: the original when this update had
    /// one, else teloxide's reading of it (for a message handled later, as
    /// from a stored dialogue).
    pub fn of(&self, message: &Message) -> Value {
        match &self.0 {
            Some(original) if original["message_id"].as_i64() == Some(message.id.0.into()) => {
                original.as_ref().clone()
            }
            _ => serde_json::to_value(message).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use teloxide::types::UpdateKind;

    fn update(id: u32, message: Value) -> Value {
        let mut message_fields = json!({
            "message_id": 5, "date": 1_700_000_000,
            "chat": { "id": 7, "type": "private", "first_name": "Ann" },
            "from": { "id": 7, "is_bot": false, "first_name": "Ann" },
        });
        message_fields
            .as_object_mut()
            .expect("an object")
            .extend(message.as_object().expect("an object").clone());
        json!({ "update_id": id, "message": message_fields })
    }

    #[test]
    fn a_message_teloxide_cannot_read_still_reaches_the_dialogue_and_is_kept_whole() {
        let originals = Originals::default();
        let newer = json!({
            "text": "Meet at 10:00",
            "entities": [{ "type": "date_time", "offset": 8, "length": 5,
                           "unix_time": 1_790_000_000, "date_time_format": "t" }],
        });
        // What teloxide makes of it alone: a message without text.
        assert!(!teloxide_reads(&update(1, newer.clone())["message"]));

        let admitted = Update::deserialize(&originals.admit(update(1, newer))).expect("an update");
        let UpdateKind::Message(message) = admitted.kind else {
            panic!("not a message: {:?}", admitted.kind);
        };
        assert_eq!(message.text(), Some("Meet at 10:00"));
        let original = originals.take(1).of(&message);
        assert_eq!(original["entities"][0]["date_time_format"], "t");
        // Taken once.
        assert!(originals.take(1).0.is_none());
    }

    #[test]
    fn a_message_teloxide_reads_keeps_the_fields_it_drops() {
        let originals = Originals::default();
        let styled = json!({
            "text": "Go",
            "reply_markup": { "inline_keyboard": [[
                { "text": "Open", "url": "https://example.com", "style": "success" },
            ]]},
        });
        let admitted = Update::deserialize(&originals.admit(update(2, styled))).expect("an update");
        let UpdateKind::Message(message) = admitted.kind else {
            panic!("not a message");
        };
        assert!(
            message.reply_markup().is_some(),
            "teloxide still sees the buttons"
        );
        let original = originals.take(2).of(&message);
        assert_eq!(
            original["reply_markup"]["inline_keyboard"][0][0]["style"],
            "success"
        );
        // Without an original, teloxide's reading stands in.
        assert_eq!(Original::default().of(&message)["text"], "Go");
    }
}
