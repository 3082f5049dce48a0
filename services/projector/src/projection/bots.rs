//! Bot events: the `bots` table `courierctl bots list` reads, and the bot
//! service reads for an added bot's owners and languages. A second add of
//! the same bot is a rotation when its token's fingerprint differs.

use courier_core::bot_languages::BotLanguages;
use courier_core::proto::v1::{BotAdded, BotLanguagesSet, BotOwnersSet, BotRemoved};

use super::{ApplyError, Applying};

/// An add of a removed bot brings it back, as a fresh add.
pub(super) async fn added(event: &Applying<'_>, added: BotAdded) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "INSERT INTO bots (bot_id, username, first_name, token_fingerprint, added_at, token_changed_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (bot_id) DO UPDATE SET
               username = EXCLUDED.username,
               first_name = EXCLUDED.first_name,
               added_at = CASE WHEN bots.removed_at IS NULL THEN bots.added_at ELSE EXCLUDED.added_at END,
               token_changed_at = CASE
                 WHEN bots.token_fingerprint = EXCLUDED.token_fingerprint AND bots.removed_at IS NULL
                 THEN bots.token_changed_at ELSE EXCLUDED.token_changed_at END,
               token_fingerprint = EXCLUDED.token_fingerprint,
               removed_at = NULL",
            &[
                &added.bot_id,
                &added.username,
                &added.first_name,
                &added.token_fingerprint,
                &event.at,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn removed(event: &Applying<'_>, removed: BotRemoved) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "UPDATE bots SET removed_at = $2 WHERE bot_id = $1 AND removed_at IS NULL",
            &[&removed.bot_id, &event.at],
        )
        .await?;
    Ok(())
}

/// Owners set before the bot was added (the events of two commands) wait
/// for it: the row is made with placeholders the add fills in.
pub(super) async fn owners_set(
    event: &Applying<'_>,
    owners: BotOwnersSet,
) -> Result<(), ApplyError> {
    set_before_or_after_added(event, owners.bot_id, "owner_ids", &owners.owner_ids).await
}

/// Stored as codes; a list with none courier speaks is every language.
pub(super) async fn languages_set(
    event: &Applying<'_>,
    set: BotLanguagesSet,
) -> Result<(), ApplyError> {
    let languages = BotLanguages::from_event(set.languages());
    let codes: Vec<&str> = languages.iter().filter_map(|l| l.code()).collect();
    set_before_or_after_added(event, set.bot_id, "languages", &codes).await
}

/// Sets `column` of bot `bot_id`, making the row with placeholders the add
/// fills in if the bot is not added yet.
async fn set_before_or_after_added(
    event: &Applying<'_>,
    bot_id: i64,
    column: &'static str,
    value: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<(), ApplyError> {
    let statement = format!(
        "INSERT INTO bots (bot_id, username, first_name, token_fingerprint, added_at,
                           token_changed_at, removed_at, {column})
         VALUES ($1, '', '', '', $2, $2, $2, $3)
         ON CONFLICT (bot_id) DO UPDATE SET {column} = EXCLUDED.{column}"
    );
    event
        .tx
        .execute(&statement, &[&bot_id, &event.at, value])
        .await?;
    Ok(())
}
