//! Where an admin's /broadcast dialog stands, and where that is kept: one
//! row per chat in Postgres (`bot_dialogues`), as JSON, behind teloxide's
//! [`Storage`] trait. Not in process memory, so a restarted bot, or
//! another replica, takes the next step where the last one left off.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use courier_core::audience;
use courier_core::proto::v1::{AudienceFilter, CampaignOptions, Content, Variant};
use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use teloxide::dispatching::dialogue::{self, Storage};
use teloxide::types::ChatId;
use uuid::Uuid;

use crate::actions::Toggle;

/// The dialog's steps, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum State {
    #[default]
    Idle,
    /// Step 1: the audience buttons are shown; `filter` is the segment
    /// built so far, if the admin builds one.
    ChoosingAudience {
        #[serde(default, with = "filter_text")]
        filter: AudienceFilter,
    },
    /// Step 2: waiting for the message to broadcast.
    AwaitingContent {
        #[serde(with = "filter_text")]
        audience: AudienceFilter,
    },
    /// An album's items arriving (at step 2, or as a draft's replacement or
    /// language version) until ➡️ Use this album.
    CollectingAlbum(AlbumInProgress),
    /// Step 3: waiting for button lines, or Skip.
    AwaitingButtons { draft: Draft },
    /// Step 4: the preview and the summary are shown; `summary` is the id
    /// of the message with Start, so presses on older ones are told apart.
    Confirming { draft: Draft, summary: i32 },
    /// Step 4: waiting for the message users of `language` get instead.
    AwaitingVariant { draft: Draft, language: String },
    /// Waiting for the admin's time zone, asked once before their first
    /// start time.
    AwaitingTimeZone { timing: Timing },
    /// Waiting for a start time (typed, or a preset pressed).
    AwaitingStart { timing: Timing },
    /// Step 4, 🏷 Name: waiting for the campaign's name.
    AwaitingTitle { draft: Draft },
    /// Step 4, ✏️ Message: waiting for the message to send instead.
    AwaitingReplacement { draft: Draft },
    /// ✏️ Edit on a card: waiting for the corrected message (of the
    /// version in `language`, if set).
    AwaitingCorrection {
        campaign: Uuid,
        #[serde(default)]
        language: Option<String>,
    },
    /// ✏️ Edit, then 🔗: waiting for the campaign's corrected buttons.
    AwaitingCorrectedButtons { campaign: Uuid },
    /// The corrected message is previewed; `prompt` is the id of the
    /// message asking to confirm.
    ConfirmingCorrection {
        campaign: Uuid,
        #[serde(with = "protobuf")]
        content: Content,
        #[serde(default, with = "protobufs")]
        variants: Vec<Variant>,
        prompt: i32,
    },
}

/// An album being gathered (Telegram sends each item as its own message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlbumInProgress {
    /// Its `media_group_id`: the items that share it.
    pub group: String,
    /// The items so far (a `ContentKind::Album`).
    #[serde(with = "protobuf")]
    pub album: Content,
    /// The message counting them (0 until the first is counted).
    pub prompt: i32,
    /// What the album is for.
    pub into: AlbumInto,
}

/// Where an album goes once complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum AlbumInto {
    /// Step 2: a new draft's message.
    NewDraft {
        #[serde(with = "filter_text")]
        audience: AudienceFilter,
    },
    /// ✏️ Message… on the summary: the draft's message instead.
    Replacement { draft: Box<Draft> },
    /// 🌐 on the summary: the draft's message for users of `language`.
    Version { draft: Box<Draft>, language: String },
}

impl AlbumInto {
    /// The question the album answers, to ask again when it is refused.
    pub fn before(self) -> State {
        match self {
            AlbumInto::NewDraft { audience } => State::AwaitingContent { audience },
            AlbumInto::Replacement { draft } => State::AwaitingReplacement { draft: *draft },
            AlbumInto::Version { draft, language } => State::AwaitingVariant {
                draft: *draft,
                language,
            },
        }
    }

    /// The draft with `album` where it goes.
    pub fn with(self, album: Content) -> Draft {
        match self {
            AlbumInto::NewDraft { audience } => Draft::new(audience, album),
            AlbumInto::Replacement { mut draft } => {
                draft.content = album;
                *draft
            }
            AlbumInto::Version {
                mut draft,
                language,
            } => {
                draft.variants.push(Variant {
                    language,
                    content: Some(album),
                });
                *draft
            }
        }
    }
}

/// What a start time is being chosen for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Timing {
    /// The draft on the summary `summary` (step 4).
    Draft { draft: Box<Draft>, summary: i32 },
    /// A scheduled campaign, to move.
    Move { campaign: Uuid },
}

/// When a draft is to start, as the admin chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub at: DateTime<Utc>,
    /// The time zone it was chosen in (IANA), to show it back the same way.
    pub zone: String,
}

impl Start {
    /// `2026-12-05 10:00 MSK (Europe/Moscow)`.
    pub fn describe(&self) -> String {
        crate::progress::moment(self.at, self.zone.parse().unwrap_or(chrono_tz::Tz::UTC))
    }
}

/// The campaign as the admin has put it together so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// Fixed when the content arrives, so a Start that failed halfway and
    /// is pressed again starts this campaign rather than a second one.
    #[serde(default = "Uuid::now_v7")]
    pub campaign_id: Uuid,
    #[serde(with = "filter_text")]
    pub audience: AudienceFilter,
    #[serde(with = "protobuf")]
    pub content: Content,
    /// The message in other languages, for users of each.
    #[serde(default, with = "protobufs")]
    pub variants: Vec<Variant>,
    pub silent: bool,
    pub protected: bool,
    pub paid: bool,
    /// Each version gets an Unsubscribe button below its own.
    #[serde(default)]
    pub unsubscribe: bool,
    /// Start at a set time rather than when Start is pressed.
    #[serde(default)]
    pub start: Option<Start>,
    /// What admins call it; empty: the first words of the message.
    #[serde(default)]
    pub title: String,
}

impl Draft {
    pub fn new(audience: AudienceFilter, content: Content) -> Draft {
        Draft {
            campaign_id: Uuid::now_v7(),
            audience,
            content,
            variants: Vec::new(),
            silent: false,
            protected: false,
            paid: false,
            unsubscribe: false,
            start: None,
            title: String::new(),
        }
    }

    pub fn options(&self) -> CampaignOptions {
        CampaignOptions {
            disable_notification: self.silent,
            protect_content: self.protected,
            paid_broadcast: self.paid,
        }
    }

    /// The content and its versions as recipients get them: with an
    /// Unsubscribe button in each version's language, when asked for.
    pub fn to_send(&self) -> (Content, Vec<Variant>) {
        let (content, variants) = (self.content.clone(), self.variants.clone());
        match self.unsubscribe {
            true => audience::with_unsubscribe_buttons(content, variants),
            false => (content, variants),
        }
    }

    pub fn toggle(&mut self, toggle: Toggle) {
        let flag = match toggle {
            Toggle::Silent => &mut self.silent,
            Toggle::Protected => &mut self.protected,
            Toggle::Paid => &mut self.paid,
            Toggle::Unsubscribe => &mut self.unsubscribe,
        };
        *flag = !*flag;
    }
}

/// The dialogue handle handlers receive.
pub type Dialogue = dialogue::Dialogue<State, Dialogues>;

#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("a stored dialogue is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    /// Removing a dialogue that is not there (the trait's contract).
    #[error("the dialogue has already ended")]
    Ended,
}

/// One bot's dialogues in `bot_dialogues`: an admin may compose in two
/// bots at once.
pub struct Dialogues {
    pool: Pool,
    bot_id: i64,
}

impl Dialogues {
    pub fn new(pool: Pool, bot_id: i64) -> Arc<Dialogues> {
        Arc::new(Dialogues { pool, bot_id })
    }

    /// Puts back a confirming step that [`Self::take_confirmed`] took, when
    /// starting the campaign failed, so Start can be pressed again.
    pub async fn put_back(
        &self,
        chat: ChatId,
        draft: Draft,
        summary: i32,
    ) -> Result<(), DialogueError> {
        let state = serde_json::to_value(State::Confirming { draft, summary })?;
        self.upsert(&*self.pool.get().await?, chat, &state).await
    }

    /// Ends the dialog in `chat` if it is confirming the summary `summary`,
    /// and hands over its draft. Atomic: of two presses of Start (double
    /// taps, two replicas), exactly one gets the draft.
    pub async fn take_confirmed(
        &self,
        chat: ChatId,
        summary: i32,
    ) -> Result<Option<Draft>, DialogueError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "DELETE FROM bot_dialogues
                 WHERE bot_id = $3 AND chat_id = $1 AND state->>'step' = 'confirming'
                   AND (state->>'summary')::integer = $2
                 RETURNING state",
                &[&chat.0, &summary, &self.bot_id],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        match serde_json::from_value(row.get(0))? {
            State::Confirming { draft, .. } => Ok(Some(draft)),
            // The query only matches confirming dialogues.
            _ => Ok(None),
        }
    }
}

impl Storage<State> for Dialogues {
    type Error = DialogueError;

    fn remove_dialogue(
        self: Arc<Self>,
        chat: ChatId,
    ) -> BoxFuture<'static, Result<(), Self::Error>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let removed = client
                .execute(
                    "DELETE FROM bot_dialogues WHERE bot_id = $2 AND chat_id = $1",
                    &[&chat.0, &self.bot_id],
                )
                .await?;
            match removed {
                0 => Err(DialogueError::Ended),
                _ => Ok(()),
            }
        })
    }

    fn update_dialogue(
        self: Arc<Self>,
        chat: ChatId,
        state: State,
    ) -> BoxFuture<'static, Result<(), Self::Error>> {
        Box::pin(async move {
            let confirming = matches!(state, State::Confirming { .. });
            let state = serde_json::to_value(&state)?;
            let client = self.pool.get().await?;
            if confirming {
                // Only a dialog still at step 3 or 4 (or an album at step
                // 2, which has no step 3; or adding a version,
                // naming it, changing its message or choosing a start time
                // there) may (still) confirm:
                // a toggle pressed as Start ended the dialog on another
                // replica must not bring its Start button back.
                let updated = client
                    .execute(
                        "UPDATE bot_dialogues SET state = $2, updated_at = now()
                         WHERE bot_id = $3 AND chat_id = $1
                           AND state->>'step' IN ('collecting_album', 'awaiting_buttons',
                                                  'confirming', 'awaiting_variant',
                                                  'awaiting_time_zone', 'awaiting_start',
                                                  'awaiting_title', 'awaiting_replacement')",
                        &[&chat.0, &state, &self.bot_id],
                    )
                    .await?;
                return match updated {
                    0 => Err(DialogueError::Ended),
                    _ => Ok(()),
                };
            }
            self.upsert(&client, chat, &state).await
        })
    }

    fn get_dialogue(
        self: Arc<Self>,
        chat: ChatId,
    ) -> BoxFuture<'static, Result<Option<State>, Self::Error>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT state FROM bot_dialogues WHERE bot_id = $2 AND chat_id = $1",
                    &[&chat.0, &self.bot_id],
                )
                .await?;
            match row {
                Some(row) => Ok(Some(serde_json::from_value(row.get(0))?)),
                None => Ok(None),
            }
        })
    }
}

impl Dialogues {
    async fn upsert(
        &self,
        client: &tokio_postgres::Client,
        chat: ChatId,
        state: &serde_json::Value,
    ) -> Result<(), DialogueError> {
        client
            .execute(
                "INSERT INTO bot_dialogues (bot_id, chat_id, state) VALUES ($3, $1, $2)
                 ON CONFLICT (bot_id, chat_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
                &[&chat.0, state, &self.bot_id],
            )
            .await?;
        Ok(())
    }
}

/// An audience as its filter's text (`lang:ru tag:vip`). Dialogs stored
/// before filters hold the seed's codes (`ru`, `en`, `all`): read as theirs.
mod filter_text {
    use courier_core::audience;
    use courier_core::proto::v1::{Audience, AudienceFilter};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(filter: &AudienceFilter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&audience::to_text(filter))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AudienceFilter, D::Error> {
        let text = String::deserialize(d)?;
        match Audience::from_code(&text) {
            Some(legacy) => Ok(audience::from_legacy(legacy)),
            None => audience::parse(&text).map_err(D::Error::custom),
        }
    }
}

/// Content as its protobuf bytes: the campaign's own encoding, so nothing
/// of it is lost between the steps.
mod protobuf {
    use prost::Message;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<M: Message, S: Serializer>(message: &M, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&message.encode_to_vec())
    }

    pub fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        M::decode(bytes.as_slice()).map_err(D::Error::custom)
    }
}

/// A list of messages, each as [`protobuf`] stores one.
mod protobufs {
    use prost::Message;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<M: Message, S: Serializer>(messages: &[M], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(messages.len()))?;
        for message in messages {
            seq.serialize_element(&message.encode_to_vec())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<M>, D::Error> {
        let list = Vec::<Vec<u8>>::deserialize(d)?;
        list.iter()
            .map(|bytes| M::decode(bytes.as_slice()).map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::proto::v1::{Audience, ContentKind, MessageEntity};

    #[tokio::test]
    async fn a_dialog_ended_by_start_is_not_brought_back_by_a_late_toggle() {
        let env = courier_testing::TestEnv::new().await;
        let dialogues = Dialogues::new(env.pool().await, courier_core::topology::DEFAULT_BOT);
        let chat = ChatId(7);
        let draft = Draft::new(audience::from_legacy(Audience::Ru), Content::default());
        let confirming = State::Confirming {
            draft: draft.clone(),
            summary: 10,
        };
        dialogues
            .clone()
            .update_dialogue(chat, State::AwaitingButtons { draft })
            .await
            .unwrap();
        dialogues
            .clone()
            .update_dialogue(chat, confirming.clone())
            .await
            .unwrap();
        assert!(dialogues.take_confirmed(chat, 10).await.unwrap().is_some());
        // The toggle read the dialog before Start took it.
        let late = dialogues.clone().update_dialogue(chat, confirming).await;
        assert!(matches!(late, Err(DialogueError::Ended)), "{late:?}");
        assert_eq!(dialogues.clone().get_dialogue(chat).await.unwrap(), None);
        // Starting failed: the draft goes back, and Start works again.
        let draft = Draft::new(audience::from_legacy(Audience::Ru), Content::default());
        dialogues.put_back(chat, draft.clone(), 10).await.unwrap();
        assert_eq!(
            dialogues.take_confirmed(chat, 10).await.unwrap(),
            Some(draft)
        );
    }

    #[test]
    fn every_state_survives_its_json() {
        let content = Content {
            kind: ContentKind::Photo.into(),
            text: "Hi 😀".into(),
            entities: vec![MessageEntity {
                r#type: "bold".into(),
                offset: 0,
                length: 2,
                ..Default::default()
            }],
            file_id: "AgAC".into(),
            keyboard: None,
            ..Default::default()
        };
        let mut draft = Draft::new(
            audience::parse("lang:ru tag:vip active:30d").unwrap(),
            content,
        );
        draft.toggle(Toggle::Protected);
        for state in [
            State::Idle,
            State::ChoosingAudience {
                filter: audience::parse("-tag:churned").unwrap(),
            },
            State::AwaitingContent {
                audience: AudienceFilter::default(),
            },
            State::AwaitingButtons {
                draft: draft.clone(),
            },
            State::Confirming {
                draft: draft.clone(),
                summary: 12,
            },
            State::AwaitingVariant {
                draft,
                language: "en".into(),
            },
        ] {
            let json = serde_json::to_value(&state).unwrap();
            assert_eq!(serde_json::from_value::<State>(json).unwrap(), state);
        }
    }

    #[test]
    fn the_stored_form_is_readable() {
        let json = serde_json::to_value(State::AwaitingContent {
            audience: audience::parse("lang:en tag:vip").unwrap(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "step": "awaiting_content", "audience": "lang:en tag:vip" })
        );
    }

    #[test]
    fn dialogs_stored_before_filters_read_as_theirs() {
        let old = serde_json::json!({ "step": "awaiting_content", "audience": "en" });
        assert_eq!(
            serde_json::from_value::<State>(old).unwrap(),
            State::AwaitingContent {
                audience: audience::from_legacy(Audience::En),
            }
        );
        let old = serde_json::json!({ "step": "choosing_audience" });
        assert_eq!(
            serde_json::from_value::<State>(old).unwrap(),
            State::ChoosingAudience {
                filter: AudienceFilter::default(),
            }
        );
    }

    #[test]
    fn toggles_flip_their_option() {
        let mut draft = Draft::new(AudienceFilter::default(), Content::default());
        draft.toggle(Toggle::Silent);
        draft.toggle(Toggle::Paid);
        draft.toggle(Toggle::Paid);
        assert_eq!(
            draft.options(),
            CampaignOptions {
                disable_notification: true,
                protect_content: false,
                paid_broadcast: false,
            }
        );
    }
}
