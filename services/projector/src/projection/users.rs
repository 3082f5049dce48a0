//! User events: the `users` table, which fixes each campaign's audience
//! when the campaign starts (see `courier_core::audience`): language,
//! liveness, tags, source, when a user joined and was last active, whether
//! they opted out, and the names greetings use.

use courier_core::audience;
use courier_core::proto::v1::{
    Names, UserActive, UserBlocked, UserLanguageChanged, UserRegistered, UserTagged, UserUnblocked,
    UserUntagged,
};

use super::{ApplyError, Applying};

/// Registering again (/start after a block) revives the user. A guessed
/// language (the Telegram app's) never overrides one the user chose; the
/// first source and the first time seen stay; names are the newest known.
/// A /start is activity too.
pub(super) async fn registered(
    event: &Applying<'_>,
    registered: UserRegistered,
) -> Result<(), ApplyError> {
    let language = registered.language().code().unwrap_or("en");
    let source = (!registered.source.is_empty()).then_some(&registered.source);
    let names = registered.names.unwrap_or_default();
    event
        .tx
        .execute(
            "INSERT INTO users (user_id, chat_id, language, language_chosen, is_alive, registered_at,
                 updated_at, source, first_name, last_name, username, last_active_at)
             VALUES ($1, $2, $3, $4, TRUE, $5, $5, $6, $7, $8, $9, $5)
             ON CONFLICT (user_id) DO UPDATE
             SET chat_id = EXCLUDED.chat_id,
                 language = CASE WHEN users.language_chosen AND NOT EXCLUDED.language_chosen
                                 THEN users.language ELSE EXCLUDED.language END,
                 language_chosen = users.language_chosen OR EXCLUDED.language_chosen,
                 source = COALESCE(users.source, EXCLUDED.source),
                 first_name = CASE WHEN $10 THEN EXCLUDED.first_name ELSE users.first_name END,
                 last_name = CASE WHEN $10 THEN EXCLUDED.last_name ELSE users.last_name END,
                 username = CASE WHEN $10 THEN EXCLUDED.username ELSE users.username END,
                 last_active_at = EXCLUDED.last_active_at,
                 is_alive = TRUE, updated_at = EXCLUDED.updated_at",
            &[
                &registered.user_id,
                &registered.chat_id,
                &language,
                &registered.language_chosen,
                &event.at,
                &source,
                &names.first_name,
                &names.last_name,
                &names.username,
                &known(&names),
            ],
        )
        .await?;
    Ok(())
}

/// Events from before names were recorded carry none: they keep what is known.
fn known(names: &Names) -> bool {
    *names != Names::default()
}

/// Activity (at most a day's first) refreshes the names Telegram showed.
pub(super) async fn active(event: &Applying<'_>, active: UserActive) -> Result<(), ApplyError> {
    let names = active.names.unwrap_or_default();
    event
        .tx
        .execute(
            "UPDATE users SET last_active_at = $2, updated_at = $2,
                 first_name = CASE WHEN $6 THEN $3 ELSE first_name END,
                 last_name = CASE WHEN $6 THEN $4 ELSE last_name END,
                 username = CASE WHEN $6 THEN $5 ELSE username END
             WHERE user_id = $1",
            &[
                &active.user_id,
                &event.at,
                &names.first_name,
                &names.last_name,
                &names.username,
                &known(&names),
            ],
        )
        .await?;
    Ok(())
}

/// Tags are kept sorted and once each, so a replay in any batching gives
/// the same array.
pub(super) async fn tagged(event: &Applying<'_>, tagged: UserTagged) -> Result<(), ApplyError> {
    let tag = audience::tag(&tagged.tag).map_err(ApplyError::Poison)?;
    event
        .tx
        .execute(
            "UPDATE users SET updated_at = $3,
                 tags = ARRAY(SELECT DISTINCT t FROM unnest(array_append(tags, $2)) AS t ORDER BY t)
             WHERE user_id = $1",
            &[&tagged.user_id, &tag, &event.at],
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
            "UPDATE users SET tags = array_remove(tags, $2), updated_at = $3 WHERE user_id = $1",
            &[&untagged.user_id, &untagged.tag, &event.at],
        )
        .await?;
    Ok(())
}

/// /stop and /subscribe: in no audience while opted out, still alive.
pub(super) async fn opted(event: &Applying<'_>, user_id: i64, out: bool) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE users SET opted_out = $2, updated_at = $3 WHERE user_id = $1",
            &[&user_id, &out, &event.at],
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
                 WHERE user_id = $1",
                &[&changed.user_id, &language, &event.at],
            )
            .await?;
    }
    Ok(())
}

pub(super) async fn blocked(event: &Applying<'_>, blocked: UserBlocked) -> Result<(), ApplyError> {
    set_alive(event, blocked.user_id, false).await
}

pub(super) async fn unblocked(
    event: &Applying<'_>,
    unblocked: UserUnblocked,
) -> Result<(), ApplyError> {
    set_alive(event, unblocked.user_id, true).await
}

async fn set_alive(event: &Applying<'_>, user_id: i64, alive: bool) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE users SET is_alive = $2, updated_at = $3 WHERE user_id = $1",
            &[&user_id, &alive, &event.at],
        )
        .await?;
    Ok(())
}
