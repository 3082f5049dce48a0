//! "Last active" for audiences (`active:30d`): any message or button press
//! is activity, but recording every one would put each user's every tap on
//! the event stream. The first in a UTC day is recorded; the rest of that
//! day is already known. Each replica remembers whom it has seen today
//! (forgotten at midnight, so memory stays at one day's active users) and,
//! the first time, asks the read model whether another replica (or this
//! one before a restart) recorded the day already; the event id names the
//! user and the day, so two replicas recording at the same moment are one
//! event for JetStream.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{Event, UserActive};
use teloxide::types::{Update, UpdateKind, User};

use crate::storage::Store;
use crate::users;

/// Who was recorded active today, per replica.
#[derive(Clone, Default)]
pub struct Activity {
    today: Arc<Mutex<Today>>,
}

#[derive(Default)]
struct Today {
    day: i64,
    recorded: HashSet<i64>,
}

impl Activity {
    /// The event to publish for `user` active at `now`, or `None` when
    /// today's is recorded already.
    pub fn first_today(&self, user: &User, now: DateTime<Utc>) -> Option<Event> {
        let activity = users::activity(user);
        let day = now.timestamp().div_euclid(86_400);
        let mut today = self
            .today
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if today.day != day {
            *today = Today {
                day,
                recorded: HashSet::new(),
            };
        }
        today.recorded.insert(activity.user_id).then(|| {
            Event::with_id(
                format!("active.{}.{day}", activity.user_id),
                Payload::UserActive(activity),
            )
        })
    }

    /// Forgets a recording that did not reach the stream, so the next
    /// update tries again.
    fn forget(&self, activity: &UserActive) {
        let mut today = self
            .today
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        today.recorded.remove(&activity.user_id);
    }
}

/// Records the sender of a private message or a button press as active;
/// runs before every handler and never holds the update up.
pub async fn record(update: Update, activity: Activity, events: EventPublisher, store: Store) {
    let user = match &update.kind {
        UpdateKind::Message(message) if message.chat.is_private() => message.from.clone(),
        UpdateKind::CallbackQuery(query) => Some(query.from.clone()),
        _ => None,
    };
    let now = Utc::now();
    let Some(event) = user.and_then(|user| activity.first_today(&user, now)) else {
        return;
    };
    tokio::spawn(async move {
        let Some(Payload::UserActive(active)) = &event.payload else {
            return;
        };
        // Unknown (the read model cannot say): recorded, as a day's first.
        if store
            .active_since(active.user_id, day_start(now))
            .await
            .unwrap_or(false)
        {
            return;
        }
        if let Err(error) = events.publish(&event).await {
            tracing::warn!(%error, "recording a user's activity failed; the next update retries");
            activity.forget(active);
        }
    });
}

/// The start of `now`'s UTC day.
fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let day = now.timestamp().div_euclid(86_400);
    DateTime::from_timestamp(day * 86_400, 0).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64) -> User {
        serde_json::from_value(
            serde_json::json!({ "id": id, "is_bot": false, "first_name": "Ann" }),
        )
        .expect("a user")
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("a time")
            .to_utc()
    }

    #[test]
    fn the_first_activity_of_a_day_is_recorded_once() {
        let activity = Activity::default();
        let first = activity.first_today(&user(7), at("2026-12-04T08:00:00Z"));
        let event = first.expect("the day's first is recorded");
        assert_eq!(event.event_id, "active.7.20791");
        assert!(
            activity
                .first_today(&user(7), at("2026-12-04T23:59:59Z"))
                .is_none()
        );
        assert!(
            activity
                .first_today(&user(8), at("2026-12-04T23:59:59Z"))
                .is_some()
        );
        assert!(
            activity
                .first_today(&user(7), at("2026-12-05T00:00:00Z"))
                .is_some()
        );
    }

    #[test]
    fn a_day_starts_at_utc_midnight() {
        assert_eq!(
            day_start(at("2026-12-04T23:59:59Z")),
            at("2026-12-04T00:00:00Z")
        );
        assert_eq!(
            day_start(at("2026-12-04T00:00:00Z")),
            at("2026-12-04T00:00:00Z")
        );
    }

    #[test]
    fn a_failed_recording_is_tried_again() {
        let activity = Activity::default();
        let now = at("2026-12-04T08:00:00Z");
        let Some(Event {
            payload: Some(Payload::UserActive(active)),
            ..
        }) = activity.first_today(&user(7), now)
        else {
            panic!("the first is recorded");
        };
        activity.forget(&active);
        assert!(activity.first_today(&user(7), now).is_some());
    }
}
