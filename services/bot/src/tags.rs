//! `/tag <user_id> <tag>...` and `/untag <user_id> <tag>...`: owners put
//! tags on users (and take them off), for audiences such as `tag:vip`.

use courier_core::audience::{self, Tagging};
use courier_core::event::EventPublisher;
use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::{Message, User};

use crate::handlers::{HandlerResult, publish};
use crate::roles::Roles;
use crate::storage::Store;

const USAGE: &str = "Usage: /tag <user id> <tag> [<tag>...] or /untag <user id> <tag> [<tag>...]";

/// What `/tag` or `/untag` asked for, or the reply explaining why not.
fn parse(args: &str) -> Result<(i64, Vec<String>), String> {
    let mut words = args.split_whitespace();
    let user = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| USAGE.to_owned())?;
    let tags = words.map(audience::tag).collect::<Result<Vec<_>, _>>()?;
    if tags.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok((user, tags))
}

/// `/tag` or `/untag`, as `tagging` says.
#[expect(
    clippy::too_many_arguments,
    reason = "a handler's injected dependencies"
)]
pub async fn change(
    bot: Bot,
    message: Message,
    from: User,
    args: String,
    tagging: Tagging,
    roles: Roles,
    store: Store,
    events: EventPublisher,
) -> HandlerResult {
    let by = from.id.0 as i64;
    let reply = if !roles.of(from.id).await.manages_admins() {
        "Only owners tag users.".to_owned()
    } else {
        match parse(&args) {
            Err(usage) => usage,
            Ok((user, _)) if !store.is_registered(user).await? => {
                format!("{user} is not a user of this bot.")
            }
            Ok((user_id, tags)) => {
                let mut failed = false;
                for tag in &tags {
                    let event = tagging.event(store.bot_id(), user_id, tag.clone(), by);
                    failed |= publish(&events, event).await.is_err();
                }
                match (failed, tagging) {
                    (true, _) => "Something went wrong; send the command again.".to_owned(),
                    (false, Tagging::Put) => format!("Tagged {user_id}: {}.", tags.join(", ")),
                    (false, Tagging::TakeOff) => {
                        format!("Took {} off {user_id}.", tags.join(", "))
                    }
                }
            }
        }
    };
    bot.send_message(message.chat.id, reply).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_tags_are_read_and_checked() {
        assert_eq!(
            parse("42 VIP gold"),
            Ok((42, vec!["vip".into(), "gold".into()]))
        );
        assert_eq!(parse("42"), Err(USAGE.into()));
        assert_eq!(parse("ann vip"), Err(USAGE.into()));
        assert!(parse("42 not!ok").unwrap_err().contains("is not a tag"));
    }
}
