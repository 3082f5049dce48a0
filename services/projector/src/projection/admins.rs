//! Admin events: the `admins` table the bot reads to decide who may
//! broadcast, per bot (an admin of one bot is not one of another). An owner's `/admins` publishes them; owners themselves come
//! from the bot's configuration, not from here.

use courier_core::proto::v1::{AdminGranted, AdminRevoked};

use super::{ApplyError, Applying};

/// A second grant keeps the first one's granter and time.
pub(super) async fn granted(event: &Applying<'_>, granted: AdminGranted) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "INSERT INTO admins (bot_id, user_id, granted_by, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[
                &granted.bot_id,
                &granted.user_id,
                &granted.granted_by,
                &event.at,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn revoked(event: &Applying<'_>, revoked: AdminRevoked) -> Result<(), ApplyError> {
    event
        .tx
        .execute(
            "DELETE FROM admins WHERE bot_id = $1 AND user_id = $2",
            &[&revoked.bot_id, &revoked.user_id],
        )
        .await?;
    Ok(())
}
