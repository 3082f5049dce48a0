//! `/admins`: owners list, grant and revoke admins. Owners come from
//! `OWNER_IDS` and cannot be changed here; admins are kept by
//! [`crate::storage::Store`] (see [`crate::roles`] for why not as events).

use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::{Message, User};

use crate::handlers::HandlerResult;
use crate::roles::{AdminsRequest, Roles};
use crate::storage::Store;

pub async fn manage(
    bot: Bot,
    message: Message,
    from: User,
    args: String,
    roles: Roles,
    store: Store,
) -> HandlerResult {
    let reply = if !roles.of(from.id).await.manages_admins() {
        "Only owners manage admins.".to_owned()
    } else {
        match AdminsRequest::parse(&args) {
            Err(usage) => usage.to_owned(),
            Ok(AdminsRequest::List) => list(&roles, &store.admins().await?),
            Ok(AdminsRequest::Grant(user)) if roles.owners().contains(&user) => {
                format!("{user} is an owner already (from OWNER_IDS).")
            }
            Ok(AdminsRequest::Grant(user)) => {
                match store.grant_admin(user, from.id.0 as i64).await? {
                    true => format!(
                        "{user} is an admin now: they can /broadcast and control campaigns."
                    ),
                    false => format!("{user} is an admin already."),
                }
            }
            Ok(AdminsRequest::Revoke(user)) if roles.owners().contains(&user) => format!(
                "{user} is an owner; owners are set by OWNER_IDS in the bot's configuration."
            ),
            Ok(AdminsRequest::Revoke(user)) => match store.revoke_admin(user).await? {
                true => format!("{user} is no longer an admin."),
                false => format!("{user} was not an admin."),
            },
        }
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

fn list(roles: &Roles, admins: &[i64]) -> String {
    let ids = |ids: &[i64]| match ids {
        [] => "none".to_owned(),
        ids => ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!(
        "Owners (OWNER_IDS): {}\nAdmins: {}\n\nGrant with /admins add <user id>, revoke with /admins remove <user id>.",
        ids(roles.owners()),
        ids(admins)
    )
}
