//! The message an admin sends to /broadcast, turned into the
//! `courier.v1.Content` a campaign stores: its kind, text or caption,
//! entities (every field, UTF-16 offsets), the file_id of the media, the
//! link preview, spoiler, caption placement and effect, and the link and
//! copy buttons of a forwarded channel post. It reads the message's JSON
//! as Telegram sent it, not teloxide's types: those predate Bot API 9
//! (a date_time entity, a button's style) and would drop what they lack. Everything
//! Telegram would refuse to send to recipients is refused here, with the
//! reason, before any campaign exists. Pure: the handlers do the I/O.

use courier_core::greeting;
use courier_core::proto::v1::{
    AlbumItem, Button, ButtonRow, Content, ContentKind, InlineKeyboard, LinkPreviewOptions, button,
};
use serde_json::Value;

/// Telegram's limits on what a bot sends, in UTF-16 code units as it counts.
pub const MAX_TEXT_LEN: usize = 4096;
pub const MAX_CAPTION_LEN: usize = 1024;

/// What can be broadcast, for replies that list it.
pub const SUPPORTED: &str = "text (with its formatting), a photo, a video, an animation (GIF), \
                             a document, an audio file or a voice message, each with a caption \
                             if you like, or (at step 2) an album of photos and videos";

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
    #[error(
        "An album holds 2 to 10 photos and videos (or documents, or audio files); this one has \
         {0}. Send it again."
    )]
    AlbumSize(usize),
    #[error(
        "Telegram sends documents only with documents, and audio files only with audio files, \
         in an album. Send it again without mixing them."
    )]
    AlbumMix,
    #[error(
        "Only one item of an album may have a caption (it shows under the album). Send it again \
         with one caption."
    )]
    AlbumCaptions,
}

/// The content of `message` (its JSON as Telegram sent it, see
/// [`crate::incoming`]), or why it cannot be broadcast.
pub fn capture(message: &Value) -> Result<Content, ContentError> {
    // Each item of an album arrives as its own message: step 2 gathers
    // them ([`add_to_album`]); elsewhere sending only one would surprise.
    if album_of(message).is_some() {
        return Err(ContentError::Unsupported("an album here"));
    }
    let Some((kind, file_id)) = media(message)? else {
        return Err(ContentError::Unsupported("this kind of message"));
    };
    let (text, entities) = match kind {
        ContentKind::Text => (&message["text"], &message["entities"]),
        _ => (&message["caption"], &message["caption_entities"]),
    };
    let text = text.as_str().unwrap_or_default();
    check_text(kind, text)?;
    let flag = |field: &str| message[field].as_bool().unwrap_or_default();
    Ok(Content {
        kind: kind.into(),
        text: text.to_owned(),
        entities: entities
            .as_array()
            .map(|all| all.iter().filter_map(entity).collect())
            .unwrap_or_default(),
        file_id: file_id.to_owned(),
        keyboard: message["reply_markup"]["inline_keyboard"]
            .as_array()
            .and_then(|rows| portable_buttons(rows)),
        link_preview_options: message
            .get("link_preview_options")
            .map(link_preview_options),
        show_caption_above_media: flag("show_caption_above_media"),
        has_spoiler: flag("has_media_spoiler"),
        message_effect_id: message["effect_id"].as_str().unwrap_or_default().to_owned(),
        album: Vec::new(),
    })
}

/// Telegram's limit on a message's text or a media caption, and the
/// greeting's placeholders.
fn check_text(kind: ContentKind, text: &str) -> Result<(), ContentError> {
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
    Ok(())
}

/// The album `message` is an item of (its `media_group_id`), if it is one.
pub fn album_of(message: &Value) -> Option<&str> {
    message["media_group_id"].as_str()
}

/// The most items Telegram takes in an album, and the fewest.
pub const ALBUM_ITEMS: std::ops::RangeInclusive<usize> = 2..=10;

/// Adds the item `message` to `album` (Telegram sends each item of an
/// album as its own message): its media, spoiler and, on the one item
/// that has it, the caption.
pub fn add_to_album(album: &mut Content, message: &Value) -> Result<(), ContentError> {
    let (kind, file_id) = match media(message)? {
        Some((
            kind @ (ContentKind::Photo
            | ContentKind::Video
            | ContentKind::Document
            | ContentKind::Audio),
            file_id,
        )) => (kind, file_id),
        _ => return Err(ContentError::Unsupported("this kind of album")),
    };
    let caption = message["caption"].as_str().unwrap_or_default();
    if !caption.is_empty() {
        if !album.text.is_empty() {
            return Err(ContentError::AlbumCaptions);
        }
        check_text(ContentKind::Album, caption)?;
        album.text = caption.to_owned();
        album.entities = message["caption_entities"]
            .as_array()
            .map(|all| all.iter().filter_map(entity).collect())
            .unwrap_or_default();
        album.show_caption_above_media = message["show_caption_above_media"]
            .as_bool()
            .unwrap_or_default();
    }
    if album.message_effect_id.is_empty() {
        album.message_effect_id = message["effect_id"].as_str().unwrap_or_default().to_owned();
    }
    album.kind = ContentKind::Album.into();
    album.album.push(AlbumItem {
        kind: kind.into(),
        file_id: file_id.to_owned(),
        has_spoiler: message["has_media_spoiler"].as_bool().unwrap_or_default(),
    });
    Ok(())
}

/// The album as it will be sent, or why Telegram would refuse it: 2 to 10
/// items, documents only with documents and audio only with audio.
pub fn finish_album(album: Content) -> Result<Content, ContentError> {
    if !ALBUM_ITEMS.contains(&album.album.len()) {
        return Err(ContentError::AlbumSize(album.album.len()));
    }
    for alone in [ContentKind::Document, ContentKind::Audio] {
        let kinds: Vec<ContentKind> = album.album.iter().map(AlbumItem::kind).collect();
        if kinds.contains(&alone) && kinds.iter().any(|kind| *kind != alone) {
            return Err(ContentError::AlbumMix);
        }
    }
    Ok(album)
}

/// Lengths as Telegram counts them (and as entity offsets are given).
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The message fields that hold media a campaign can send, by kind. An
/// animation also carries a `document` (for old clients), so it comes
/// first.
const MEDIA_FIELDS: [(&str, ContentKind); 6] = [
    ("animation", ContentKind::Animation),
    ("photo", ContentKind::Photo),
    ("video", ContentKind::Video),
    ("document", ContentKind::Document),
    ("audio", ContentKind::Audio),
    ("voice", ContentKind::Voice),
];

/// Message fields of what cannot be broadcast, and how replies name it.
const UNSUPPORTED_FIELDS: [(&str, &str); 11] = [
    ("sticker", "a sticker"),
    ("poll", "a poll"),
    ("location", "a location"),
    ("venue", "a venue"),
    ("contact", "a contact"),
    ("video_note", "a video message (round video)"),
    ("game", "a game"),
    ("story", "a story"),
    ("paid_media", "paid media"),
    ("checklist", "a checklist"),
    ("dice", "a dice"),
];

/// The kind of `message` and its file_id (empty for text); `None` for a
/// message with nothing to broadcast.
fn media(message: &Value) -> Result<Option<(ContentKind, &str)>, ContentError> {
    // A venue also carries its location: what is unsupported is named first.
    if let Some((_, what)) = UNSUPPORTED_FIELDS
        .iter()
        .filter(|(field, _)| message.get(*field).is_some())
        .min_by_key(|(field, _)| *field != "venue")
    {
        return Err(ContentError::Unsupported(what));
    }
    for (field, kind) in MEDIA_FIELDS {
        let media = &message[field];
        // Telegram lists several sizes of one photo; send the largest.
        let file = match media.as_array() {
            Some(sizes) => sizes.iter().max_by_key(|size| {
                size["width"].as_u64().unwrap_or(0) * size["height"].as_u64().unwrap_or(0)
            }),
            None => Some(media),
        };
        if let Some(id) = file.and_then(|f| f["file_id"].as_str()) {
            return Ok(Some((kind, id)));
        }
    }
    Ok(message["text"]
        .is_string()
        .then_some((ContentKind::Text, "")))
}

/// Telegram's entity, field for field: the fields courier reads by name,
/// and every other one kept as JSON, so new fields and types pass through.
fn entity(json: &Value) -> Option<courier_core::proto::v1::MessageEntity> {
    let mut other = json.as_object()?.clone();
    let mut text = |field: &str| match other.remove(field) {
        Some(Value::String(value)) => value,
        _ => String::new(),
    };
    let r#type = text("type");
    let (url, language, custom_emoji_id, date_time_format) = (
        text("url"),
        text("language"),
        text("custom_emoji_id"),
        text("date_time_format"),
    );
    let mut number = |field: &str| other.remove(field).and_then(|v| v.as_i64());
    let (offset, length, unix_time) = (number("offset")?, number("length")?, number("unix_time"));
    // Only the user's id is needed to mention them.
    let user_id = other.remove("user").and_then(|user| user["id"].as_i64());
    Some(courier_core::proto::v1::MessageEntity {
        r#type,
        offset,
        length,
        url,
        user_id: user_id.unwrap_or_default(),
        language,
        custom_emoji_id,
        unix_time: unix_time.unwrap_or_default(),
        date_time_format,
        other_fields_json: if other.is_empty() {
            String::new()
        } else {
            Value::Object(other).to_string()
        },
    })
}

fn link_preview_options(json: &Value) -> LinkPreviewOptions {
    let flag = |field: &str| json[field].as_bool().unwrap_or_default();
    LinkPreviewOptions {
        is_disabled: flag("is_disabled"),
        url: json["url"].as_str().unwrap_or_default().to_owned(),
        prefer_small_media: flag("prefer_small_media"),
        prefer_large_media: flag("prefer_large_media"),
        show_above_text: flag("show_above_text"),
    }
}

/// The buttons of a keyboard that work in any chat (a forwarded channel
/// post keeps them): links and copy-to-clipboard, with their style and
/// icon. Callback buttons only make sense in their original chat.
fn portable_buttons(rows: &[Value]) -> Option<InlineKeyboard> {
    let rows: Vec<ButtonRow> = rows
        .iter()
        .map(|row| ButtonRow {
            buttons: row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(portable_button)
                .collect(),
        })
        .filter(|row| !row.buttons.is_empty())
        .collect();
    (!rows.is_empty()).then_some(InlineKeyboard { rows })
}

fn portable_button(json: &Value) -> Option<Button> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let action = match (text(&json["url"]), text(&json["copy_text"]["text"])) {
        (Some(url), _) => button::Action::Url(url),
        (None, Some(copied)) => button::Action::CopyText(copied),
        (None, None) => return None,
    };
    Some(Button {
        text: text(&json["text"])?,
        action: Some(action),
        style: text(&json["style"]).unwrap_or_default(),
        icon_custom_emoji_id: text(&json["icon_custom_emoji_id"]).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn message(fields: Value) -> Value {
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
        message
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
                ..Default::default()
            }]
        );
    }

    /// Every field Bot API 9.x added that an admin can compose, as
    /// Telegram sends it: what the call to each recipient carries.
    #[test]
    fn what_the_admin_composed_reaches_the_call_field_for_field() {
        use courier_core::proto::v1::CampaignOptions;
        use courier_telegram::payload::Template;

        let entities = json!([
            { "type": "date_time", "offset": 8, "length": 5,
              "unix_time": 1_790_000_000, "date_time_format": "wDt" },
            { "type": "expandable_blockquote", "offset": 0, "length": 7 },
            { "type": "custom_emoji", "offset": 14, "length": 2, "custom_emoji_id": "5368" },
            // A type and a field from a later Bot API pass through as sent.
            { "type": "future_kind", "offset": 0, "length": 2, "future_field": { "a": 1 } },
        ]);
        let buttons = json!([[
            { "text": "Open", "url": "https://example.com", "style": "success",
              "icon_custom_emoji_id": "5370" },
            { "text": "Code", "copy_text": { "text": "SPRING26" }, "style": "primary" },
        ]]);
        let preview = json!({ "url": "https://example.com/a", "prefer_large_media": true,
                              "show_above_text": true });
        let text = message(json!({
            "text": "Meet at 10:00 😀",
            "entities": entities,
            "reply_markup": { "inline_keyboard": buttons },
            "link_preview_options": preview,
            "effect_id": "5104841245755180586",
        }));
        let content = capture(&text).unwrap();
        let call = Template::new(&content, &CampaignOptions::default())
            .unwrap()
            .call(42, None);
        let sent: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(sent["entities"], entities);
        assert_eq!(sent["reply_markup"]["inline_keyboard"], buttons);
        assert_eq!(sent["link_preview_options"], preview);
        assert_eq!(sent["message_effect_id"], "5104841245755180586");

        let mut photo = file("photo-id");
        photo["width"] = json!(1280);
        photo["height"] = json!(720);
        let media = message(json!({
            "photo": [photo],
            "caption": "Look",
            "show_caption_above_media": true,
            "has_media_spoiler": true,
        }));
        let content = capture(&media).unwrap();
        let call = Template::new(&content, &CampaignOptions::default())
            .unwrap()
            .call(42, None);
        let sent: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(call.method, "sendPhoto");
        assert_eq!(sent["show_caption_above_media"], true);
        assert_eq!(sent["has_spoiler"], true);
    }

    #[test]
    fn an_albums_items_make_one_album_with_one_caption() {
        let photo = |id: &str, extra: Value| {
            let mut fields = json!({ "media_group_id": "g1", "photo": [
                { "file_id": id, "file_unique_id": id, "width": 1280, "height": 720 },
            ]});
            fields
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            message(fields)
        };
        let video = message(json!({ "media_group_id": "g1", "video": file("v1") }));
        assert_eq!(album_of(&video), Some("g1"));
        let mut album = Content::default();
        add_to_album(
            &mut album,
            &photo("p1", json!({ "has_media_spoiler": true })),
        )
        .unwrap();
        assert_eq!(finish_album(album.clone()), Err(ContentError::AlbumSize(1)));
        add_to_album(&mut album, &video).unwrap();
        let captioned = photo(
            "p2",
            json!({ "caption": "Look", "show_caption_above_media": true,
            "caption_entities": [{ "type": "bold", "offset": 0, "length": 4 }] }),
        );
        add_to_album(&mut album, &captioned).unwrap();
        let album = finish_album(album).unwrap();
        assert_eq!(album.kind(), ContentKind::Album);
        let items: Vec<_> = album
            .album
            .iter()
            .map(|i| (i.kind(), i.file_id.as_str(), i.has_spoiler))
            .collect();
        assert_eq!(
            items,
            [
                (ContentKind::Photo, "p1", true),
                (ContentKind::Video, "v1", false),
                (ContentKind::Photo, "p2", false)
            ]
        );
        assert_eq!((album.text.as_str(), album.entities.len()), ("Look", 1));
        assert!(album.show_caption_above_media);

        let mut twice = album.clone();
        assert_eq!(
            add_to_album(&mut twice, &photo("p3", json!({ "caption": "Again" }))),
            Err(ContentError::AlbumCaptions)
        );
        let document = message(json!({ "media_group_id": "g1", "document": file("d1") }));
        let mut mixed = album;
        add_to_album(&mut mixed, &document).unwrap();
        assert_eq!(finish_album(mixed), Err(ContentError::AlbumMix));
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
            (album, "an album here"),
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
