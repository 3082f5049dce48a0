//! User events: the `users` table, which fixes each campaign's audience
//! when the campaign starts (live users of its language).

use courier_core::proto::v1::{UserBlocked, UserLanguageChanged, UserRegistered, UserUnblocked};

use super::{ApplyError, Applying};

/// Registering again (/start after a block) revives the user. A guessed
/// language (the Telegram app's) never overrides one the user chose.
pub(super) async fn registered(
    event: &Applying<'_>,
    registered: UserRegistered,
) -> Result<(), ApplyError> {
    let language = registered.language().code().unwrap_or("en");
    event
        .tx
        .execute(
            "INSERT INTO users (user_id, chat_id, language, language_chosen, is_alive, registered_at, updated_at)
             VALUES ($1, $2, $3, $4, TRUE, $5, $5)
             ON CONFLICT (user_id) DO UPDATE
             SET chat_id = EXCLUDED.chat_id,
                 language = CASE WHEN users.language_chosen AND NOT EXCLUDED.language_chosen
                                 THEN users.language ELSE EXCLUDED.language END,
                 language_chosen = users.language_chosen OR EXCLUDED.language_chosen,
                 is_alive = TRUE, updated_at = EXCLUDED.updated_at",
            &[
                &registered.user_id,
                &registered.chat_id,
                &language,
                &registered.language_chosen,
                &event.at,
            ],
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
