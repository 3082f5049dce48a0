//! The message an admin sends to /broadcast, turned into the
//! `courier.v1.Content` a campaign stores: its kind, text or caption,
//! entities (Telegram's type names, UTF-16 offsets), the file_id of the
//! media, and the URL buttons of a forwarded channel post. Everything
//! Telegram would refuse to send to recipients is refused here, with the
//! reason, before any campaign exists. Pure: the handlers do the I/O.

use courier_core::greeting;
use courier_core::proto::v1::{Button, ButtonRow, Content, ContentKind, InlineKeyboard, button};
use teloxide::types::{
    InlineKeyboardButtonKind, InlineKeyboardMarkup, MediaKind, Message, MessageEntity, MessageKind,
};

/// Telegram's limits on what a bot sends, in UTF-16 code units as it counts.
pub const MAX_TEXT_LEN: usize = 4096;
pub const MAX_CAPTION_LEN: usize = 1024;

/// What can be broadcast, for replies that list it.
pub const SUPPORTED: &str = "text (with its formatting), a photo, a video, an animation (GIF), \
                             a document, an audio file or a voice message, each with a caption \
                             if you like";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("I can't broadcast {0}. What works: {SUPPORTED}.")]
    Unsupported(&'static str),
    #[error(
        "The text is {0} characters long; Telegram lets bots send at most {MAX_TEXT_LEN}. \
         Shorten it and send it again."
    )]
    TextTooLong(usize),
    #[error(
        "The caption is {0} characters long; Telegram lets bots send at most {MAX_CAPTION_LEN} \
         with media. Shorten it, or send the text as a separate text message."
    )]
    CaptionTooLong(usize),
    #[error(
        "{} is not a placeholder. Greetings use {{first_name}}, {{last_name}}, {{username}} or \
         {{name}} (the fullest name known), with a fallback for a missing value: \
         {{first_name|friend}}. Fix it and send the message again.",
        .0.iter().map(|name| format!("{{{name}}}")).collect::<Vec<_>>().join(", ")
    )]
    UnknownPlaceholders(Vec<String>),
    #[error(
        "With the longest names Telegram allows, this message would be {length} characters \
         long; Telegram lets bots send at most {limit}. Shorten it and send it again."
    )]
    GreetingTooLong { length: usize, limit: usize },
}

/// The content of `message`, or why it cannot be broadcast.
pub fn capture(message: &Message) -> Result<Content, ContentError> {
    // Each item of an album arrives as its own message; sending only one
    // of them would surprise the admin.
    if message.media_group_id().is_some() {
        return Err(ContentError::Unsupported("an album"));
    }
    let MessageKind::Common(common) = &message.kind else {
        return Err(ContentError::Unsupported("this kind of message"));
    };
    let (kind, file_id) = match &common.media_kind {
        MediaKind::Text(_) => (ContentKind::Text, None),
        MediaKind::Photo(photo) => {
            // Telegram lists several sizes of one photo; send the largest.
            let largest = photo
                .photo
                .iter()
                .max_by_key(|size| size.width * size.height);
            (ContentKind::Photo, largest.map(|size| &size.file.id))
        }
        MediaKind::Video(video) => (ContentKind::Video, Some(&video.video.file.id)),
        MediaKind::Animation(animation) => {
            (ContentKind::Animation, Some(&animation.animation.file.id))
        }
        MediaKind::Document(document) => (ContentKind::Document, Some(&document.document.file.id)),
        MediaKind::Audio(audio) => (ContentKind::Audio, Some(&audio.audio.file.id)),
        MediaKind::Voice(voice) => (ContentKind::Voice, Some(&voice.voice.file.id)),
        other => return Err(ContentError::Unsupported(describe(other))),
    };
    let (text, entities) = if kind == ContentKind::Text {
        (message.text(), message.entities())
    } else {
        (message.caption(), message.caption_entities())
    };
    let text = text.unwrap_or_default();
    let length = utf16_len(text);
    let limit = match kind {
        ContentKind::Text => MAX_TEXT_LEN,
        _ => MAX_CAPTION_LEN,
    };
    if length > limit {
        return Err(match kind {
            ContentKind::Text => ContentError::TextTooLong(length),
            _ => ContentError::CaptionTooLong(length),
        });
    }
    let unknown = greeting::unknown_placeholders(text);
    if !unknown.is_empty() {
        return Err(ContentError::UnknownPlaceholders(unknown));
    }
    let longest = greeting::longest_filled(text);
    if longest > limit {
        return Err(ContentError::GreetingTooLong {
            length: longest,
            limit,
        });
    }
    Ok(Content {
        kind: kind.into(),
        text: text.to_owned(),
        entities: entities.unwrap_or_default().iter().map(entity).collect(),
        file_id: file_id.map(|id| id.0.clone()).unwrap_or_default(),
        keyboard: message.reply_markup().and_then(url_buttons),
    })
}

/// Lengths as Telegram counts them (and as entity offsets are given).
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn describe(media: &MediaKind) -> &'static str {
    match media {
        MediaKind::Sticker(_) => "a sticker",
        MediaKind::Poll(_) => "a poll",
        MediaKind::Location(_) => "a location",
        MediaKind::Venue(_) => "a venue",
        MediaKind::Contact(_) => "a contact",
        MediaKind::VideoNote(_) => "a video message (round video)",
        MediaKind::Game(_) => "a game",
        MediaKind::Story(_) => "a story",
        MediaKind::PaidMedia(_) => "paid media",
        MediaKind::Checklist(_) => "a checklist",
        _ => "this kind of message",
    }
}

/// Telegram's entity, field for field, through its own JSON form, so the
/// type stays Telegram's name and new fields need no code here.
fn entity(entity: &MessageEntity) -> courier_core::proto::v1::MessageEntity {
    let json = serde_json::to_value(entity).unwrap_or_default();
    let text = |field: &str| json[field].as_str().unwrap_or_default().to_owned();
    courier_core::proto::v1::MessageEntity {
        r#type: text("type"),
        offset: entity.offset as i64,
        length: entity.length as i64,
        url: text("url"),
        user_id: json["user"]["id"].as_i64().unwrap_or_default(),
        language: text("language"),
        custom_emoji_id: text("custom_emoji_id"),
    }
}

/// The URL buttons of a keyboard (a forwarded channel post keeps them);
/// other buttons only make sense in their original chat.
fn url_buttons(markup: &InlineKeyboardMarkup) -> Option<InlineKeyboard> {
    let rows: Vec<ButtonRow> = markup
        .inline_keyboard
        .iter()
        .map(|row| ButtonRow {
            buttons: row
                .iter()
                .filter_map(|b| match &b.kind {
                    InlineKeyboardButtonKind::Url(url) => Some(Button {
                        text: b.text.clone(),
                        action: Some(button::Action::Url(url.to_string())),
                    }),
                    _ => None,
                })
                .collect(),
        })
        .filter(|row| !row.buttons.is_empty())
        .collect();
    (!rows.is_empty()).then_some(InlineKeyboard { rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn message(fields: Value) -> Message {
        let mut message = json!({
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": { "id": 7, "type": "private", "first_name": "Ann" },
            "from": { "id": 7, "is_bot": false, "first_name": "Ann" },
        });
        message
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::from_value(message).expect("a valid Message")
    }

    /// A file object as Telegram sends it (teloxide wants `mime_type`).
    fn file(id: &str) -> Value {
        json!({ "file_id": id, "file_unique_id": format!("u-{id}"), "mime_type": "application/octet-stream" })
    }

    #[test]
    fn text_keeps_entities_in_utf16_units_with_telegrams_type_names() {
        let content = capture(&message(json!({
            "text": "😀 Hi there",
            "entities": [
                { "type": "bold", "offset": 3, "length": 2 },
                { "type": "text_link", "offset": 6, "length": 5, "url": "https://example.com/a" },
                { "type": "pre", "offset": 0, "length": 2, "language": "rust" },
                { "type": "custom_emoji", "offset": 0, "length": 2, "custom_emoji_id": "5368" },
            ],
        })))
        .unwrap();
        assert_eq!(content.kind(), ContentKind::Text);
        assert_eq!(content.text, "😀 Hi there");
        let entities: Vec<_> = content
            .entities
            .iter()
            .map(|e| (e.r#type.as_str(), e.offset, e.length))
            .collect();
        assert_eq!(
            entities,
            [
                ("bold", 3, 2),
                ("text_link", 6, 5),
                ("pre", 0, 2),
                ("custom_emoji", 0, 2)
            ]
        );
        assert_eq!(content.entities[1].url, "https://example.com/a");
        assert_eq!(content.entities[2].language, "rust");
        assert_eq!(content.entities[3].custom_emoji_id, "5368");
        assert!(content.file_id.is_empty() && content.keyboard.is_none());
    }

    #[test]
    fn a_text_mention_keeps_the_user() {
        let content = capture(&message(json!({
            "text": "Ann",
            "entities": [{ "type": "text_mention", "offset": 0, "length": 3,
                           "user": { "id": 99, "is_bot": false, "first_name": "Ann" } }],
        })))
        .unwrap();
        assert_eq!(content.entities[0].user_id, 99);
    }

    #[test]
    fn a_photo_is_sent_by_its_largest_size_with_the_caption() {
        let sizes = json!([
            { "file_id": "small", "file_unique_id": "s", "width": 90, "height": 90 },
            { "file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960 },
            { "file_id": "medium", "file_unique_id": "m", "width": 320, "height": 240 },
        ]);
        let content = capture(&message(json!({
            "photo": sizes,
            "caption": "Look",
            "caption_entities": [{ "type": "italic", "offset": 0, "length": 4 }],
        })))
        .unwrap();
        assert_eq!(content.kind(), ContentKind::Photo);
        assert_eq!(
            (content.file_id.as_str(), content.text.as_str()),
            ("large", "Look")
        );
        assert_eq!(content.entities[0].r#type, "italic");
    }

    #[test]
    fn every_media_kind_keeps_its_file_id() {
        let video = json!({ "width": 1, "height": 1, "duration": 1 });
        let cases = [
            ("video", ContentKind::Video, video.clone()),
            ("animation", ContentKind::Animation, video),
            ("document", ContentKind::Document, json!({})),
            ("audio", ContentKind::Audio, json!({ "duration": 1 })),
            ("voice", ContentKind::Voice, json!({ "duration": 1 })),
        ];
        for (field, kind, details) in cases {
            let mut media = file(&format!("{field}-id"));
            media
                .as_object_mut()
                .unwrap()
                .extend(details.as_object().unwrap().clone());
            let mut fields = json!({ field: media, "caption": "c" });
            if field == "animation" {
                // Telegram also sends an animation as a document.
                fields["document"] = file("animation-id");
            }
            let content = capture(&message(fields)).unwrap();
            assert_eq!(content.kind(), kind, "{field}");
            assert_eq!(content.file_id, format!("{field}-id"));
            assert_eq!(content.text, "c");
        }
    }

    #[test]
    fn a_forwarded_channel_post_keeps_only_its_url_buttons() {
        let content = capture(&message(json!({
            "text": "News",
            "forward_origin": {
                "type": "channel", "date": 1_700_000_000, "message_id": 3,
                "chat": { "id": -1_001_234, "type": "channel", "title": "News" },
            },
            "reply_markup": { "inline_keyboard": [
                [{ "text": "Read", "url": "https://example.com/read" },
                 { "text": "Vote", "callback_data": "v:1" }],
                [{ "text": "Like", "callback_data": "like" }],
            ]},
        })))
        .unwrap();
        let keyboard = content.keyboard.unwrap();
        assert_eq!(keyboard.rows.len(), 1);
        assert_eq!(
            keyboard.rows[0].buttons,
            [Button {
                text: "Read".into(),
                action: Some(button::Action::Url("https://example.com/read".into())),
            }]
        );
    }

    #[test]
    fn unsupported_kinds_say_what_works() {
        let sticker = json!({ "sticker": {
            "file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
            "is_animated": false, "is_video": false,
        }});
        let location = json!({ "location": { "latitude": 1.0, "longitude": 2.0 } });
        let contact = json!({ "contact": { "phone_number": "+1", "first_name": "Bo" } });
        let album = json!({ "media_group_id": "g1", "photo": [
            { "file_id": "p", "file_unique_id": "p", "width": 1, "height": 1 },
        ]});
        for (fields, what) in [
            (sticker, "a sticker"),
            (location, "a location"),
            (contact, "a contact"),
            (album, "an album"),
        ] {
            let error = capture(&message(fields)).unwrap_err();
            assert_eq!(error, ContentError::Unsupported(what));
            assert!(error.to_string().contains("a voice message"), "{error}");
        }
    }

    #[test]
    fn oversize_text_and_captions_are_refused_with_the_reason() {
        let text = "a".repeat(MAX_TEXT_LEN);
        assert!(capture(&message(json!({ "text": text }))).is_ok());
        // 2,049 emoji are 4,098 UTF-16 units: Telegram counts those.
        let emoji = "😀".repeat(2049);
        assert_eq!(
            capture(&message(json!({ "text": emoji }))),
            Err(ContentError::TextTooLong(4098))
        );
        let caption = "b".repeat(MAX_CAPTION_LEN + 1);
        let mut voice = file("v");
        voice["duration"] = json!(1);
        let error = capture(&message(json!({ "voice": voice, "caption": caption }))).unwrap_err();
        assert_eq!(error, ContentError::CaptionTooLong(1025));
        assert!(error.to_string().contains("at most 1024"), "{error}");
    }

    #[test]
    fn a_greeting_that_could_outgrow_telegrams_limit_is_refused() {
        let fits = format!("{}{{first_name}}", "a".repeat(MAX_TEXT_LEN - 64));
        assert!(capture(&message(json!({ "text": fits }))).is_ok());
        let too_long = format!("{}{{first_name}}", "a".repeat(MAX_TEXT_LEN - 63));
        assert_eq!(
            capture(&message(json!({ "text": too_long }))),
            Err(ContentError::GreetingTooLong {
                length: MAX_TEXT_LEN + 1,
                limit: MAX_TEXT_LEN
            })
        );
    }

    #[test]
    fn a_placeholder_that_does_not_exist_is_named_with_the_ones_that_do() {
        assert!(
            capture(&message(
                json!({ "text": "Hi {first_name|friend}, {name}!" })
            ))
            .is_ok()
        );
        let error = capture(&message(json!({ "text": "Hi {frist_name} {nmae} {1}" }))).unwrap_err();
        assert_eq!(
            error,
            ContentError::UnknownPlaceholders(vec!["frist_name".into(), "nmae".into()])
        );
        let reply = error.to_string();
        assert!(
            reply.starts_with("{frist_name}, {nmae} is not a placeholder."),
            "{reply}"
        );
        assert!(reply.contains("{first_name|friend}"), "{reply}");
    }
}
