//! Commands on campaigns, as the bot and courierctl issue them: each one
//! becomes events on the campaign's subject. Kept here so both publish
//! exactly the same facts the same way.

use uuid::Uuid;

use crate::event::{EventPublisher, PublishError};
use crate::proto::v1::{
    Audience, CampaignCreated, CampaignOptions, CampaignStarted, Content, Event, event::Payload,
};

/// A campaign as an admin confirmed it.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub created_by: i64,
    pub audience: Audience,
    pub content: Content,
    pub options: CampaignOptions,
}

/// Publishes `CampaignCreated` then `CampaignStarted` for a new campaign and
/// returns its id. The created event must be the first on the subject, so a
/// second campaign can never reuse an id.
pub async fn create_and_start(
    publisher: &EventPublisher,
    campaign: NewCampaign,
) -> Result<Uuid, PublishError> {
    let id = Uuid::now_v7();
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: id.to_string(),
        created_by: campaign.created_by,
        audience: campaign.audience.into(),
        content: Some(campaign.content),
        options: Some(campaign.options),
    }));
    let created_seq = publisher.publish_expecting(&created, 0).await?;
    let started = Event::new(Payload::CampaignStarted(CampaignStarted {
        campaign_id: id.to_string(),
        started_by: campaign.created_by,
    }));
    publisher.publish_expecting(&started, created_seq).await?;
    Ok(id)
}
