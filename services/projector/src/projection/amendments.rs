//! Amendments of a campaign's messages: an edit makes its content the new
//! revision (what the bot shows, and what the loader edits delivered
//! messages to); a recall is noted once. Neither moves the campaign's
//! status nor its `last_event_seq`, which follow its own subject.

use courier_core::greeting;
use courier_core::proto::v1::{CampaignEdited, CampaignRecalled};
use prost::Message as _;
use uuid::Uuid;

use super::{ApplyError, Applying, campaign_uuid};

pub(super) async fn edited(
    event: &Applying<'_>,
    edited: CampaignEdited,
) -> Result<Uuid, ApplyError> {
    let id = campaign_uuid(&edited.campaign_id)?;
    let content = edited.content.unwrap_or_default();
    // A greeting added by the edit: sends not made yet need names.
    let personal = std::iter::once(&content)
        .chain(edited.variants.iter().filter_map(|v| v.content.as_ref()))
        .any(|content| greeting::is_personal(&content.text));
    let revision = i32::try_from(edited.revision)
        .map_err(|_| ApplyError::Poison(format!("campaign {id}: revision out of range")))?;
    // An older revision than the row's (a replay of a stream with
    // revisions out of order cannot happen: commands publish in order).
    event
        .tx
        .execute(
            "UPDATE campaigns SET revision = $2, content = $3, personal = personal OR $4,
                 edited_by = $5, edited_at = $6
             WHERE campaign_id = $1 AND revision < $2",
            &[
                &id,
                &revision,
                &content.encode_to_vec(),
                &personal,
                &edited.edited_by,
                &event.at,
            ],
        )
        .await?;
    exists(event, id).await
}

pub(super) async fn recalled(
    event: &Applying<'_>,
    recalled: CampaignRecalled,
) -> Result<Uuid, ApplyError> {
    let id = campaign_uuid(&recalled.campaign_id)?;
    event
        .tx
        .execute(
            "UPDATE campaigns SET recalled_by = $2, recalled_at = $3
             WHERE campaign_id = $1 AND recalled_at IS NULL",
            &[&id, &recalled.recalled_by, &event.at],
        )
        .await?;
    exists(event, id).await
}

/// An amendment of a campaign never created parks.
async fn exists(event: &Applying<'_>, id: Uuid) -> Result<Uuid, ApplyError> {
    let found = event
        .tx
        .query_opt("SELECT 1 FROM campaigns WHERE campaign_id = $1", &[&id])
        .await?;
    match found {
        Some(_) => Ok(id),
        None => Err(ApplyError::Poison(format!(
            "campaign {id} was never created"
        ))),
    }
}
