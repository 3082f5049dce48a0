//! User events: the `users` table, one row per user of each bot (a person
//! who writes to two bots is two users), which fixes each campaign's
//! audience when the campaign starts (see `courier_core::audience`): language,
//! liveness, tags, source, when a user joined and was last active, whether
//! they opted out, and the names greetings use.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use courier_core::audience;
use courier_core::proto::v1::{
    UserActive, UserBlocked, UserLanguageChanged, UserRegistered, UserTagged, UserUnblocked,
    UserUntagged,
};
use tokio_postgres::Transaction;

use super::{ApplyError, Applying};

/// A user is one bot's: (bot id, user id).
pub(super) type UserKey = (i64, i64);

/// Registrations and tags of distinct users, waiting in a batch to be
/// written by one statement each: an import or a replay brings them by the
/// hundred thousand, and a statement per event would make Postgres round
/// trips the limit. Anything else applied in the batch writes them first,
/// and so does a second event of a user already waiting, so every user's
/// events, and every campaign start, see them in stream order.
#[derive(Default)]
pub(crate) struct UserWrites {
    registered: Vec<(UserRegistered, DateTime<Utc>)>,
    tagged: Vec<(UserKey, String, DateTime<Utc>)>,
    users: HashSet<UserKey>,
}

impl UserWrites {
    /// Keeps a registration to write with the others.
    pub(super) async fn register(
        &mut self,
        event: &Applying<'_>,
        registered: UserRegistered,
    ) -> Result<(), ApplyError> {
        let user = (registered.bot_id, registered.user_id);
        if !self.tagged.is_empty() || self.users.contains(&user) {
            self.write(event.tx).await?;
        }
        self.users.insert(user);
        self.registered.push((registered, event.at));
        Ok(())
    }

    /// Keeps a tag to write with the others; one that cannot be a tag
    /// parks its event.
    pub(super) async fn tag(
        &mut self,
        event: &Applying<'_>,
        tagged: UserTagged,
    ) -> Result<(), ApplyError> {
        let tag = audience::tag(&tagged.tag).map_err(ApplyError::Poison)?;
        let user = (tagged.bot_id, tagged.user_id);
        if !self.registered.is_empty() || self.users.contains(&user) {
            self.write(event.tx).await?;
        }
        self.users.insert(user);
        self.tagged.push((user, tag, event.at));
        Ok(())
    }

    /// Writes what waits.
    pub(crate) async fn write(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        registered(tx, &std::mem::take(&mut self.registered)).await?;
        tagged(tx, &std::mem::take(&mut self.tagged)).await?;
        self.users.clear();
        Ok(())
    }
}

/// Registering again (/start after a block) revives the user. A guessed
/// language (the Telegram app's) never overrides one the user chose; the
/// first source and the first time seen stay; names are the newest known
/// (an event from before names were recorded carries none and keeps
/// them). A /start is activity too. `users` are distinct.
async fn registered(
    tx: &Transaction<'_>,
    users: &[(UserRegistered, DateTime<Utc>)],
) -> Result<(), tokio_postgres::Error> {
    if users.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&UserRegistered) -> String| -> Vec<String> {
        users.iter().map(|(user, _)| f(user)).collect()
    };
    let bots: Vec<i64> = users.iter().map(|(user, _)| user.bot_id).collect();
    let ids: Vec<i64> = users.iter().map(|(user, _)| user.user_id).collect();
    let chats: Vec<i64> = users.iter().map(|(user, _)| user.chat_id).collect();
    let languages = column(|user| user.language().code().unwrap_or("en").to_owned());
    let chosen: Vec<bool> = users.iter().map(|(user, _)| user.language_chosen).collect();
    let at: Vec<DateTime<Utc>> = users.iter().map(|(_, at)| *at).collect();
    let sources: Vec<Option<&str>> = users
        .iter()
        .map(|(user, _)| Some(user.source.as_str()).filter(|s| !s.is_empty()))
        .collect();
    let first_names = column(|user| user.names.clone().unwrap_or_default().first_name);
    let last_names = column(|user| user.names.clone().unwrap_or_default().last_name);
    let usernames = column(|user| user.names.clone().unwrap_or_default().username);
    let sql = "INSERT INTO users (bot_id, user_id, chat_id, language, language_chosen, is_alive, registered_at,
             updated_at, source, first_name, last_name, username, last_active_at)
         SELECT u.bot_id, u.user_id, u.chat_id, u.language, u.chosen, TRUE, u.at, u.at, u.source,
             u.first_name, u.last_name, u.username, u.at
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bool[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
             AS u(user_id, chat_id, language, chosen, at, source, first_name, last_name, username,
                  bot_id)
         ON CONFLICT (bot_id, user_id) DO UPDATE
         SET chat_id = EXCLUDED.chat_id,
             language = CASE WHEN users.language_chosen AND NOT EXCLUDED.language_chosen
                             THEN users.language ELSE EXCLUDED.language END,
             language_chosen = users.language_chosen OR EXCLUDED.language_chosen,
             source = COALESCE(users.source, EXCLUDED.source),
             first_name = CASE WHEN (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.username) <> ('', '', '') THEN EXCLUDED.first_name ELSE users.first_name END,
             last_name = CASE WHEN (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.username) <> ('', '', '') THEN EXCLUDED.last_name ELSE users.last_name END,
             username = CASE WHEN (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.username) <> ('', '', '') THEN EXCLUDED.username ELSE users.username END,
             last_active_at = EXCLUDED.last_active_at,
             is_alive = TRUE, updated_at = EXCLUDED.updated_at";
    tx.execute(
        sql,
        &[
            &ids,
            &chats,
            &languages,
            &chosen,
            &at,
            &sources,
            &first_names,
            &last_names,
            &usernames,
            &bots,
        ],
    )
    .await?;
    Ok(())
}

/// Tags are kept sorted and once each, so a replay in any batching gives
/// the same array. `tags` are of distinct users.
async fn tagged(
    tx: &Transaction<'_>,
    tags: &[(UserKey, String, DateTime<Utc>)],
) -> Result<(), tokio_postgres::Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let bots: Vec<i64> = tags.iter().map(|((bot, _), _, _)| *bot).collect();
    let ids: Vec<i64> = tags.iter().map(|((_, id), _, _)| *id).collect();
    let names: Vec<&str> = tags.iter().map(|(_, tag, _)| tag.as_str()).collect();
    let at: Vec<DateTime<Utc>> = tags.iter().map(|(_, _, at)| *at).collect();
    tx.execute(
        "UPDATE users SET updated_at = t.at,
             tags = ARRAY(SELECT DISTINCT x FROM unnest(array_append(users.tags, t.tag)) AS x ORDER BY x)
         FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[])
             AS t(user_id, tag, at, bot_id)
         WHERE users.bot_id = t.bot_id AND users.user_id = t.user_id",
        &[&ids, &names, &at, &bots],
    )
    .await?;
    Ok(())
}

/// Activity (at most a day's first) refreshes the names Telegram showed
/// (an event without names keeps those known).
pub(super) async fn active(event: &Applying<'_>, active: UserActive) -> Result<(), ApplyError> {
    let names = active.names.unwrap_or_default();
    event
        .tx
        .execute(
            "UPDATE users SET last_active_at = $2, updated_at = $2,
                 first_name = CASE WHEN ($3::text, $4::text, $5::text) <> ('', '', '') THEN $3 ELSE first_name END,
                 last_name = CASE WHEN ($3::text, $4::text, $5::text) <> ('', '', '') THEN $4 ELSE last_name END,
                 username = CASE WHEN ($3::text, $4::text, $5::text) <> ('', '', '') THEN $5 ELSE username END
             WHERE bot_id = $6 AND user_id = $1",
            &[
                &active.user_id,
                &event.at,
                &names.first_name,
                &names.last_name,
                &names.username,
                &active.bot_id,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn untagged(
    event: &Applying<'_>,
    untagged: UserUntagged,
) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE users SET tags = array_remove(tags, $2), updated_at = $3
             WHERE bot_id = $4 AND user_id = $1",
            &[
                &untagged.user_id,
                &untagged.tag,
                &event.at,
                &untagged.bot_id,
            ],
        )
        .await?;
    Ok(())
}

/// /stop and /subscribe: in no audience while opted out, still alive.
pub(super) async fn opted(
    event: &Applying<'_>,
    (bot_id, user_id): UserKey,
    out: bool,
) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE users SET opted_out = $2, updated_at = $3 WHERE bot_id = $4 AND user_id = $1",
            &[&user_id, &out, &event.at, &bot_id],
        )
        .await?;
    Ok(())
}

/// A language this version does not know changes nothing.
pub(super) async fn language_changed(
    event: &Applying<'_>,
    changed: UserLanguageChanged,
) -> Result<(), ApplyError> {
    if let Some(language) = changed.language().code() {
        event
            .tx
            .execute(
                "UPDATE users SET language = $2, language_chosen = TRUE, updated_at = $3
                 WHERE bot_id = $4 AND user_id = $1",
                &[&changed.user_id, &language, &event.at, &changed.bot_id],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn blocked(event: &Applying<'_>, blocked: UserBlocked) -> Result<(), ApplyError> {
    set_alive(event, (blocked.bot_id, blocked.user_id), false).await
}

pub(super) async fn unblocked(
    event: &Applying<'_>,
    unblocked: UserUnblocked,
) -> Result<(), ApplyError> {
    set_alive(event, (unblocked.bot_id, unblocked.user_id), true).await
}

async fn set_alive(
    event: &Applying<'_>,
    (bot_id, user_id): UserKey,
    alive: bool,
) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE users SET is_alive = $2, updated_at = $3 WHERE bot_id = $4 AND user_id = $1",
            &[&user_id, &alive, &event.at, &bot_id],
        )
        .await?;
    Ok(())
}
