//! Amending what a campaign already delivered: an edit (a new revision of
//! its content, carried to every delivered message) or a recall (every
//! delivered message deleted). Both are facts on the campaign's amend
//! subject ([`Topology::amend_subject`]); the loader turns each into work
//! items for the delivered recipients and senders carry them out at the
//! token's budget, like sends.
//!
//! [`decide_edit`] and [`decide_recall`] are the rules, pure; the commands
//! ([`CampaignCommands::edit`], [`CampaignCommands::recall`]) read the
//! campaign, decide, and publish with optimistic concurrency on the amend
//! subject, so two edits at once get consecutive revisions or one refusal.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use uuid::Uuid;

use crate::campaign::CampaignStatus;
use crate::commands::{CampaignCommands, Change, CommandError};
use crate::event::{self, PublishError};
use crate::proto::v1::{
    CampaignCreated, CampaignEdited, CampaignRecalled, Content, ContentKind, Event, Variant,
    event::Payload,
};
use crate::topology::Topology;

/// Telegram lets a bot delete its messages in private chats only within
/// this long of sending them.
pub const DELETABLE_FOR: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

/// Why an amendment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmendRefused {
    #[error("the campaign is {0}: nothing was sent yet")]
    NotStarted(CampaignStatus),
    #[error("the campaign was recalled: its messages are deleted")]
    Recalled,
    #[error("a {was} message can only be edited into a {was} message, not a {now}")]
    KindChanged {
        was: &'static str,
        now: &'static str,
    },
    #[error("a text message cannot be edited into an empty one")]
    Empty,
    #[error("the corrected message is the same as the one sent")]
    Unchanged,
    #[error("the corrected message names a {0} version the campaign does not have")]
    UnknownVariant(String),
    #[error("an album carries no buttons: Telegram sends albums without them")]
    AlbumButtons,
}

/// A campaign's content as it stands: as created, or as last edited.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// 0 as created, then 1, 2... with each edit.
    pub number: u32,
    pub content: Content,
    pub variants: Vec<Variant>,
}

impl Revision {
    /// The content `created` sent, as later edited by `edit` if any.
    pub fn of(created: &CampaignCreated, edit: Option<&CampaignEdited>) -> Revision {
        match edit {
            Some(edit) => Revision {
                number: edit.revision,
                content: edit.content.clone().unwrap_or_default(),
                variants: edit.variants.clone(),
            },
            None => Revision {
                number: 0,
                content: created.content.clone().unwrap_or_default(),
                variants: created.variants.clone(),
            },
        }
    }
}

/// What the amend subject says of a campaign so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Amended {
    /// The last edit, if any.
    pub edit: Option<CampaignEdited>,
    pub recalled: bool,
    /// The amend subject's last sequence (0: none), for the next publish.
    pub last_seq: u64,
}

/// The edit `by` asks for, or why not: the same kinds of message, the
/// original's files (only text, caption and buttons change), and
/// something changed. Every version keeps its language; one left out of
/// `variants` keeps its current content.
pub fn decide_edit(
    status: CampaignStatus,
    amended: &Amended,
    current: &Revision,
    mut content: Content,
    mut variants: Vec<Variant>,
) -> Result<(Content, Vec<Variant>, bool), AmendRefused> {
    if !started(status) {
        return Err(AmendRefused::NotStarted(status));
    }
    if amended.recalled {
        return Err(AmendRefused::Recalled);
    }
    keep_the_original(&current.content, &mut content)?;
    for variant in &mut variants {
        let was = current
            .variants
            .iter()
            .find(|v| v.language == variant.language)
            .and_then(|v| v.content.as_ref())
            .ok_or_else(|| AmendRefused::UnknownVariant(variant.language.clone()))?;
        keep_the_original(was, variant.content.get_or_insert_with(Content::default))?;
    }
    for was in &current.variants {
        if !variants.iter().any(|v| v.language == was.language) {
            variants.push(was.clone());
        }
    }
    variants.sort_by(|a, b| a.language.cmp(&b.language));
    let mut before = current.variants.clone();
    before.sort_by(|a, b| a.language.cmp(&b.language));
    if content == current.content && variants == before {
        return Err(AmendRefused::Unchanged);
    }
    let words = |c: &Content| (c.text.clone(), c.entities.clone());
    let markup_only = words(&content) == words(&current.content)
        && variants.iter().zip(&before).all(|(now, was)| {
            words(now.content.as_ref().unwrap_or(&Content::default()))
                == words(was.content.as_ref().unwrap_or(&Content::default()))
        });
    Ok((content, variants, markup_only))
}

/// A corrected content keeps the original's kind and file (an album's
/// items); only its text, entities and buttons change.
fn keep_the_original(was: &Content, now: &mut Content) -> Result<(), AmendRefused> {
    if now.kind() != was.kind() {
        return Err(AmendRefused::KindChanged {
            was: was.kind().code(),
            now: now.kind().code(),
        });
    }
    if now.kind() == ContentKind::Text && now.text.trim().is_empty() {
        return Err(AmendRefused::Empty);
    }
    if now.kind() == ContentKind::Album && now.keyboard.as_ref().is_some_and(|k| !k.rows.is_empty())
    {
        return Err(AmendRefused::AlbumButtons);
    }
    now.file_id.clone_from(&was.file_id);
    now.album.clone_from(&was.album);
    Ok(())
}

/// Whether a recall may be asked for: the campaign sent something and was
/// not recalled before. A campaign still sending or paused is cancelled
/// first (`true`).
pub fn decide_recall(status: CampaignStatus, amended: &Amended) -> Result<bool, AmendRefused> {
    if !started(status) {
        return Err(AmendRefused::NotStarted(status));
    }
    if amended.recalled {
        return Err(AmendRefused::Recalled);
    }
    Ok(!status.is_final())
}

fn started(status: CampaignStatus) -> bool {
    matches!(
        status,
        CampaignStatus::Sending
            | CampaignStatus::Paused
            | CampaignStatus::Completed
            | CampaignStatus::Cancelled
    )
}

/// Reads what the amend subject holds of `campaign`: its last event
/// decides (a recall is final; otherwise the last edit is the revision).
pub async fn read_amended(
    events: &jetstream::stream::Stream,
    topology: &Topology,
    campaign: Uuid,
) -> Result<Amended, CommandError> {
    let subject = topology.amend_subject(&campaign.to_string());
    let last = match events.direct_get_last_for_subject(subject).await {
        Ok(last) => last,
        Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
            return Ok(Amended::default());
        }
        Err(error) => return Err(CommandError::Read(error.into())),
    };
    let (_, _, payload) =
        event::decode(&last.payload).map_err(|_| CommandError::Unreadable(campaign))?;
    Ok(match payload {
        Payload::CampaignEdited(edit) => Amended {
            edit: Some(edit),
            recalled: false,
            last_seq: last.sequence,
        },
        // Nothing is edited after a recall: no revision matters any more.
        Payload::CampaignRecalled(_) => Amended {
            edit: None,
            recalled: true,
            last_seq: last.sequence,
        },
        _ => return Err(CommandError::Unreadable(campaign)),
    })
}

/// A campaign's `CampaignCreated`: the first event on its subject.
pub async fn read_created(
    events: &jetstream::stream::Stream,
    topology: &Topology,
    campaign: Uuid,
) -> Result<CampaignCreated, CommandError> {
    let subject = topology.campaign_subject(&campaign.to_string());
    let first = match events.direct_get_next_for_subject(subject, Some(1)).await {
        Ok(first) => first,
        Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
            return Err(CommandError::NotFound(campaign));
        }
        Err(error) => return Err(CommandError::Read(error.into())),
    };
    match event::decode(&first.payload) {
        Ok((_, _, Payload::CampaignCreated(created))) => Ok(created),
        _ => Err(CommandError::Unreadable(campaign)),
    }
}

impl CampaignCommands {
    /// The campaign's content as it stands, and what amended it so far.
    pub async fn revision(&self, campaign: Uuid) -> Result<(Revision, Amended), CommandError> {
        let created = read_created(self.events(), self.topology(), campaign).await?;
        let amended = read_amended(self.events(), self.topology(), campaign).await?;
        Ok((Revision::of(&created, amended.edit.as_ref()), amended))
    }

    /// Publishes `CampaignEdited` with the next revision of the campaign's
    /// content; returns that revision's number.
    pub async fn edit(
        &self,
        campaign: Uuid,
        by: i64,
        content: Content,
        variants: Vec<Variant>,
    ) -> Result<u32, CommandError> {
        let (status, _) = self.status(campaign).await?;
        let (current, amended) = self.revision(campaign).await?;
        let (content, variants, markup_only) =
            decide_edit(status, &amended, &current, content, variants)?;
        let revision = current.number + 1;
        let edited = Event::with_id(
            format!("{campaign}.edit.{revision}"),
            Payload::CampaignEdited(CampaignEdited {
                campaign_id: campaign.to_string(),
                edited_by: by,
                revision,
                content: Some(content),
                variants,
                markup_only,
            }),
        );
        self.publish_amendment(campaign, &edited, amended.last_seq)
            .await?;
        Ok(revision)
    }

    /// Cancels the campaign if it still sends, then publishes
    /// `CampaignRecalled`: every delivered message is to be deleted.
    pub async fn recall(&self, campaign: Uuid, by: i64) -> Result<(), CommandError> {
        let (status, _) = self.status(campaign).await?;
        let amended = read_amended(self.events(), self.topology(), campaign).await?;
        if decide_recall(status, &amended)? {
            match self.change(campaign, Change::Cancel, by).await {
                // Finished meanwhile: recalled all the same.
                Ok(_) | Err(CommandError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let recalled = Event::with_id(
            format!("{campaign}.recall"),
            Payload::CampaignRecalled(CampaignRecalled {
                campaign_id: campaign.to_string(),
                recalled_by: by,
            }),
        );
        self.publish_amendment(campaign, &recalled, amended.last_seq)
            .await
    }

    async fn publish_amendment(
        &self,
        campaign: Uuid,
        event: &Event,
        last_seq: u64,
    ) -> Result<(), CommandError> {
        match self.publisher().publish_expecting(event, last_seq).await {
            Ok(_) => Ok(()),
            Err(PublishError::Conflict) => {
                let (status, _) = self.status(campaign).await?;
                Err(CommandError::Conflict(status))
            }
            Err(error) => Err(CommandError::Publish(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{Button, ButtonRow, InlineKeyboard, MessageEntity, button};

    fn text(words: &str) -> Content {
        Content {
            kind: ContentKind::Text.into(),
            text: words.into(),
            ..Default::default()
        }
    }

    fn photo(caption: &str, file: &str) -> Content {
        Content {
            kind: ContentKind::Photo.into(),
            text: caption.into(),
            file_id: file.into(),
            ..Default::default()
        }
    }

    fn revision(content: Content) -> Revision {
        Revision {
            number: 0,
            content,
            variants: vec![],
        }
    }

    fn with_button(mut content: Content) -> Content {
        content.keyboard = Some(InlineKeyboard {
            rows: vec![ButtonRow {
                buttons: vec![Button {
                    text: "Open".into(),
                    action: Some(button::Action::Url("https://example.com".into())),
                    ..Default::default()
                }],
            }],
        });
        content
    }

    fn decide(
        current: Content,
        edited: Content,
    ) -> Result<(Content, Vec<Variant>, bool), AmendRefused> {
        decide_edit(
            CampaignStatus::Completed,
            &Amended::default(),
            &revision(current),
            edited,
            vec![],
        )
    }

    #[test]
    fn given_a_sent_text_when_its_words_change_then_it_is_edited_as_text() {
        let (content, _, markup_only) =
            decide(text("Sale tomorow"), text("Sale tomorrow")).unwrap();
        assert_eq!(content.text, "Sale tomorrow");
        assert!(!markup_only);
    }

    #[test]
    fn given_a_sent_text_when_only_buttons_change_then_only_the_markup_is_edited() {
        let (_, _, markup_only) = decide(text("Sale"), with_button(text("Sale"))).unwrap();
        assert!(markup_only);
        let mut bold = text("Sale");
        bold.entities.push(MessageEntity {
            r#type: "bold".into(),
            offset: 0,
            length: 4,
            ..Default::default()
        });
        let (_, _, markup_only) = decide(text("Sale"), bold).unwrap();
        assert!(!markup_only, "formatting is part of the text");
    }

    #[test]
    fn given_a_photo_when_a_new_caption_comes_with_another_file_then_the_original_file_stays() {
        let (content, _, _) = decide(photo("Old", "file-1"), photo("New", "file-2")).unwrap();
        assert_eq!(
            (content.text.as_str(), content.file_id.as_str()),
            ("New", "file-1")
        );
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            decide(text("Sale"), photo("Sale", "f")),
            Err(AmendRefused::KindChanged {
                was: "text",
                now: "photo"
            })
        );
        assert_eq!(decide(text("Sale"), text("  ")), Err(AmendRefused::Empty));
        assert_eq!(
            decide(text("Sale"), text("Sale")),
            Err(AmendRefused::Unchanged)
        );
        for status in [
            CampaignStatus::Pending,
            CampaignStatus::Scheduled,
            CampaignStatus::AwaitingApproval,
        ] {
            assert_eq!(
                decide_edit(
                    status,
                    &Amended::default(),
                    &revision(text("a")),
                    text("b"),
                    vec![]
                ),
                Err(AmendRefused::NotStarted(status))
            );
            assert_eq!(
                decide_recall(status, &Amended::default()),
                Err(AmendRefused::NotStarted(status))
            );
        }
        let recalled = Amended {
            recalled: true,
            ..Amended::default()
        };
        assert_eq!(
            decide_edit(
                CampaignStatus::Completed,
                &recalled,
                &revision(text("a")),
                text("b"),
                vec![]
            ),
            Err(AmendRefused::Recalled)
        );
        assert_eq!(
            decide_recall(CampaignStatus::Cancelled, &recalled),
            Err(AmendRefused::Recalled)
        );
        let variant = Variant {
            language: "ru".into(),
            content: Some(text("Привет")),
        };
        assert_eq!(
            decide_edit(
                CampaignStatus::Completed,
                &Amended::default(),
                &revision(text("a")),
                text("b"),
                vec![variant]
            ),
            Err(AmendRefused::UnknownVariant("ru".into()))
        );
    }

    #[test]
    fn a_version_left_out_of_an_edit_keeps_its_content() {
        let ru = Variant {
            language: "ru".into(),
            content: Some(text("Распродажа")),
        };
        let current = Revision {
            number: 2,
            content: text("Sale"),
            variants: vec![ru.clone()],
        };
        let (_, variants, _) = decide_edit(
            CampaignStatus::Sending,
            &Amended::default(),
            &current,
            text("Big sale"),
            vec![],
        )
        .unwrap();
        assert_eq!(variants, vec![ru]);
    }

    #[test]
    fn a_campaign_still_sending_is_cancelled_before_its_recall() {
        for (status, cancel_first) in [
            (CampaignStatus::Sending, true),
            (CampaignStatus::Paused, true),
            (CampaignStatus::Completed, false),
            (CampaignStatus::Cancelled, false),
        ] {
            assert_eq!(decide_recall(status, &Amended::default()), Ok(cancel_first));
        }
    }
}
