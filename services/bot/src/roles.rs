//! Who may do what. Owners (the default bot's from configuration,
//! `OWNER_IDS`; an added bot's from `courierctl bots owners`) grant or
//! revoke admins with `/admins`; admins and owners broadcast and control
//! campaigns; everyone else is a user and is never told the admin commands
//! exist.
//!
//! Grants are events (`AdminGranted`, `AdminRevoked`) like every other
//! fact; the projector keeps the current admins in the read model.

use std::sync::Arc;

use courier_core::topology::DEFAULT_BOT;
use teloxide::types::UserId;

use crate::storage::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    User,
}

impl Role {
    /// `is_admin`: whether an owner granted the user admin rights.
    pub fn of(user: i64, owners: &[i64], is_admin: bool) -> Role {
        if owners.contains(&user) {
            Role::Owner
        } else if is_admin {
            Role::Admin
        } else {
            Role::User
        }
    }

    /// Broadcasting, and controlling any campaign.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn manages_admins(self) -> bool {
        self == Role::Owner
    }
}

/// What an owner asked `/admins` to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminsRequest {
    List,
    Grant(i64),
    Revoke(i64),
}

pub const ADMINS_USAGE: &str = "Usage:\n\
    /admins: list owners and admins\n\
    /admins add <user id>: grant admin rights\n\
    /admins remove <user id>: revoke them\n\
    The user id is the person's numeric Telegram id (bots like @userinfobot show it).";

impl AdminsRequest {
    /// Reads the arguments of `/admins`; on anything else, the usage.
    pub fn parse(args: &str) -> Result<AdminsRequest, &'static str> {
        let words: Vec<&str> = args.split_whitespace().collect();
        let user = |id: &str| {
            id.parse::<i64>()
                .ok()
                .filter(|&id| id > 0)
                .ok_or(ADMINS_USAGE)
        };
        match words.as_slice() {
            [] => Ok(AdminsRequest::List),
            ["add", id] => Ok(AdminsRequest::Grant(user(id)?)),
            ["remove", id] => Ok(AdminsRequest::Revoke(user(id)?)),
            _ => Err(ADMINS_USAGE),
        }
    }
}

/// Looks up one bot's roles: owners from configuration or the read model,
/// admins from the read model.
#[derive(Clone)]
pub struct Roles {
    /// `OWNER_IDS`: the default bot's owners.
    configured: Arc<[i64]>,
    store: Store,
}

impl Roles {
    pub fn new(configured: &[i64], store: Store) -> Roles {
        Roles {
            configured: configured.into(),
            store,
        }
    }

    /// The bot's owners. When the store cannot say, an added bot has none:
    /// failing closed never hands out owner rights.
    pub async fn owners(&self) -> Vec<i64> {
        if self.store.bot_id() == DEFAULT_BOT {
            return self.configured.to_vec();
        }
        self.store.owners().await.unwrap_or_else(|error| {
            tracing::error!(%error, "looking up the bot's owners failed");
            Vec::new()
        })
    }

    /// Where the bot's owners are set, for admins' replies.
    pub fn owners_set_by(&self) -> &'static str {
        match self.store.bot_id() {
            DEFAULT_BOT => "OWNER_IDS",
            _ => "courierctl bots owners",
        }
    }

    /// A user's role. When the store cannot say, the user is treated as
    /// nobody special: failing closed never hands out admin rights.
    pub async fn of(&self, user: UserId) -> Role {
        let user = user.0 as i64;
        let owners = self.owners().await;
        if owners.contains(&user) {
            return Role::Owner;
        }
        match self.store.is_admin(user).await {
            Ok(is_admin) => Role::of(user, &owners, is_admin),
            Err(error) => {
                tracing::error!(%error, user, "looking up the user's role failed");
                Role::User
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_come_first_then_granted_admins() {
        let owners = [1, 2];
        assert_eq!(Role::of(1, &owners, false), Role::Owner);
        assert_eq!(Role::of(2, &owners, true), Role::Owner);
        assert_eq!(Role::of(3, &owners, true), Role::Admin);
        assert_eq!(Role::of(3, &owners, false), Role::User);
        assert_eq!(Role::of(3, &[], false), Role::User);
    }

    #[test]
    fn only_owners_manage_admins_and_only_staff_broadcasts() {
        assert!(Role::Owner.is_staff() && Role::Owner.manages_admins());
        assert!(Role::Admin.is_staff() && !Role::Admin.manages_admins());
        assert!(!Role::User.is_staff() && !Role::User.manages_admins());
    }

    #[test]
    fn admins_requests_parse_or_show_the_usage() {
        assert_eq!(AdminsRequest::parse(""), Ok(AdminsRequest::List));
        assert_eq!(
            AdminsRequest::parse(" add 42 "),
            Ok(AdminsRequest::Grant(42))
        );
        assert_eq!(
            AdminsRequest::parse("remove 7"),
            Ok(AdminsRequest::Revoke(7))
        );
        for bad in ["add", "add x", "add -5", "remove 1 2", "grant 3", "add 0"] {
            assert_eq!(AdminsRequest::parse(bad), Err(ADMINS_USAGE), "{bad:?}");
        }
    }
}
