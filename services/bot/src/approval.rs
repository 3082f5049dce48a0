//! The two-person rule: a campaign above `APPROVAL_MIN_RECIPIENTS`, or on
//! the paid lane with `APPROVAL_FOR_PAID`, waits until another admin
//! approves it (`CampaignApprovalRequested`, then ✅ Approve on its card:
//! `CampaignCommands::approve`, which refuses the one who asked). Every
//! other owner and admin is asked here: what recipients would get, and the
//! campaign's card with the button.

use courier_core::proto::v1::{Content, Names};
use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::ChatId;
use uuid::Uuid;

use crate::cards::Cards;
use crate::preview::Preview;
use crate::roles::Roles;
use crate::storage::Store;

/// A campaign waiting for approval, as approvers are told of it.
pub struct Request {
    pub campaign: Uuid,
    /// Who asked.
    pub by: Names,
    pub recipients: i64,
    /// Why it needs approval.
    pub why: String,
    pub content: Content,
    /// What admins call it.
    pub name: String,
}

/// Asks every owner and admin but `asker` to approve. One who cannot be
/// reached (never started the bot) is skipped, and logged.
pub async fn ask_others(
    bot: &Bot,
    roles: &Roles,
    store: &Store,
    preview: &Preview,
    cards: &Cards,
    request: &Request,
    asker: i64,
) {
    let admins = match store.admins().await {
        Ok(admins) => admins,
        Err(error) => {
            tracing::warn!(%error, "listing the admins to ask for an approval failed");
            Vec::new()
        }
    };
    let mut approvers: Vec<i64> = roles.owners().await.into_iter().chain(admins).collect();
    approvers.sort_unstable();
    approvers.dedup();
    for approver in approvers.into_iter().filter(|&staff| staff != asker) {
        if let Err(error) = ask(bot, preview, cards, request, ChatId(approver)).await {
            tracing::warn!(%error, approver, campaign = %request.campaign, "asking for an approval failed");
        }
    }
}

async fn ask(
    bot: &Bot,
    preview: &Preview,
    cards: &Cards,
    request: &Request,
    chat: ChatId,
) -> anyhow::Result<()> {
    let asker = match request.by.username.as_str() {
        "" => request.by.first_name.clone(),
        username => format!("{} (@{username})", request.by.first_name),
    };
    bot.send_message(
        chat,
        format!(
            "🔐 {asker} asks you to approve “{}” to {} recipients ({}). \
             What they would get:",
            request.name, request.recipients, request.why
        ),
    )
    .await?;
    preview
        .send(chat, &request.content, &Names::default())
        .await?;
    cards.show(chat, request.campaign).await?;
    Ok(())
}
