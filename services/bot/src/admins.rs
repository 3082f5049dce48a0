//! `/admins`: owners list, grant and revoke admins. Owners come from
//! `OWNER_IDS` and cannot be changed here; a grant or revoke is an event,
//! answered once the projector has applied it (so the new admin's next
//! command already finds the rights).

use courier_core::event::EventPublisher;
use courier_core::proto::v1::event::Payload;
use courier_core::proto::v1::{AdminGranted, AdminRevoked};
use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::{Message, User};

use crate::handlers::{HandlerResult, publish};
use crate::menu;
use crate::roles::{AdminsRequest, Role, Roles};
use crate::storage::{Store, wait_for_projection};

pub async fn manage(
    bot: Bot,
    message: Message,
    from: User,
    args: String,
    roles: Roles,
    store: Store,
    events: EventPublisher,
) -> HandlerResult {
    let by = from.id.0 as i64;
    let reply = if !roles.of(from.id).await.manages_admins() {
        "Only owners manage admins.".to_owned()
    } else {
        match AdminsRequest::parse(&args) {
            Err(usage) => usage.to_owned(),
            Ok(AdminsRequest::List) => list(&roles, &store.admins().await?).await,
            Ok(AdminsRequest::Grant(user)) if roles.owners().await.contains(&user) => {
                format!(
                    "{user} is an owner already (from {}).",
                    roles.owners_set_by()
                )
            }
            Ok(AdminsRequest::Grant(user)) if store.is_admin(user).await? => {
                format!("{user} is an admin already.")
            }
            Ok(AdminsRequest::Grant(user)) => {
                let granted = Payload::AdminGranted(AdminGranted {
                    user_id: user,
                    granted_by: by,
                    ..Default::default()
                });
                let done =
                    format!("{user} is an admin now: they can /broadcast and control campaigns.");
                change(&bot, &events, &store, granted, user, true, done).await
            }
            Ok(AdminsRequest::Revoke(user)) if roles.owners().await.contains(&user) => format!(
                "{user} is an owner; owners are set by {}.",
                roles.owners_set_by()
            ),
            Ok(AdminsRequest::Revoke(user)) if !store.is_admin(user).await? => {
                format!("{user} was not an admin.")
            }
            Ok(AdminsRequest::Revoke(user)) => {
                let revoked = Payload::AdminRevoked(AdminRevoked {
                    user_id: user,
                    revoked_by: by,
                    ..Default::default()
                });
                let done = format!("{user} is no longer an admin.");
                change(&bot, &events, &store, revoked, user, false, done).await
            }
        }
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

/// Publishes a grant or revoke of `user` and waits for the read model to
/// show them as `admin`; answers what to tell the owner.
async fn change(
    bot: &Bot,
    events: &EventPublisher,
    store: &Store,
    payload: Payload,
    user: i64,
    admin: bool,
    done: String,
) -> String {
    if publish(events, payload).await.is_err() {
        return "Courier could not record that right now; try again in a moment.".into();
    }
    let role = match admin {
        true => Role::Admin,
        false => Role::User,
    };
    menu::set_for(bot, user, role).await;
    let shown = wait_for_projection(|| async { Ok(store.is_admin(user).await? == admin) }).await;
    match shown {
        true => done,
        false => format!("Recorded; it takes effect for {user} in a moment."),
    }
}

async fn list(roles: &Roles, admins: &[i64]) -> String {
    let ids = |ids: &[i64]| match ids {
        [] => "none".to_owned(),
        ids => ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!(
        "Owners ({}): {}\nAdmins: {}\n\nGrant with /admins add <user id>, revoke with /admins remove <user id>.",
        roles.owners_set_by(),
        ids(&roles.owners().await),
        ids(admins)
    )
}
