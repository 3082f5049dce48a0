//! The queue `getUpdates` reads: updates a test pushes, numbered as Telegram numbers them.
//!
//! An update stays queued until the bot confirms it by asking for a higher `offset`, so a bot
//! that crashes mid-batch sees it again, as with the real server.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

#[derive(Debug, Default)]
pub struct Updates {
    last_id: i64,
    pending: VecDeque<Value>,
}

impl Updates {
    /// Queues `update`, giving it the next `update_id`, which it answers.
    pub fn push(&mut self, mut update: Map<String, Value>) -> i64 {
        self.last_id += 1;
        update.insert("update_id".into(), json!(self.last_id));
        self.pending.push_back(Value::Object(update));
        self.last_id
    }

    /// Confirms what `offset` says and answers up to `limit` of the updates left. A positive
    /// offset confirms every update below it; a negative one keeps only the last `-offset`.
    pub fn take(&mut self, offset: i64, limit: usize) -> Vec<Value> {
        if offset > 0 {
            let confirmed = |u: &Value| u["update_id"].as_i64().is_some_and(|id| id < offset);
            while self.pending.front().is_some_and(confirmed) {
                self.pending.pop_front();
            }
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let drop = self.pending.len().saturating_sub(keep);
            self.pending.drain(..drop);
        }
        self.pending.iter().take(limit).cloned().collect()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(updates: &[Value]) -> Vec<i64> {
        updates
            .iter()
            .filter_map(|u| u["update_id"].as_i64())
            .collect()
    }

    #[test]
    fn updates_stay_until_confirmed_by_offset() {
        let mut updates = Updates::default();
        for _ in 0..3 {
            updates.push(Map::new());
        }
        assert_eq!(ids(&updates.take(0, 2)), [1, 2]);
        assert_eq!(ids(&updates.take(0, 100)), [1, 2, 3]);
        assert_eq!(ids(&updates.take(3, 100)), [3]);
        assert_eq!(updates.push(Map::new()), 4);
        assert_eq!(ids(&updates.take(-1, 100)), [4]);
        assert_eq!(ids(&updates.take(5, 100)), Vec::<i64>::new());
        assert_eq!(updates.pending_count(), 0);
    }
}
