//! What a message carries (text or media, entities, keyboard), checked and rendered as Telegram
//! does.
//!
//! A broadcast's content is the same for every recipient, so Telegram refusing it (too long,
//! broken entities, a bad button) means the whole campaign is broken: these checks must refuse
//! exactly what Telegram refuses, with its words. Lengths count UTF-16 code units, like
//! Telegram's entity offsets. With `parse_mode` the text is kept as sent (markup is not parsed),
//! which is why the project sends `entities` instead.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::envelope::ApiError;
use crate::params::Params;
use crate::uploads::Upload;

const MAX_TEXT_LEN: usize = 4096;
const MAX_CAPTION_LEN: usize = 1024;
const MAX_CALLBACK_DATA_BYTES: usize = 64;
const PARSE_MODES: [&str; 3] = ["HTML", "Markdown", "MarkdownV2"];
/// The text a copy button copies: 1 to 256 characters.
const MAX_COPY_TEXT_LEN: usize = 256;
/// A button's `style` (Bot API 9.4); without one the app chooses.
const BUTTON_STYLES: [&str; 3] = ["danger", "success", "primary"];
/// Inline button fields other than `url` and `callback_data` that make a button do something.
const OTHER_BUTTON_ACTIONS: [&str; 7] = [
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
];

/// The media a `send*` method sends, each named after its parameter and message field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Photo,
    Video,
    Animation,
    Document,
    Audio,
    Voice,
}

impl MediaKind {
    pub const ALL: [Self; 6] = [
        Self::Photo,
        Self::Video,
        Self::Animation,
        Self::Document,
        Self::Audio,
        Self::Voice,
    ];

    /// The parameter that carries the file_id, and the message field that shows the media.
    pub fn field(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Video => "video",
            Self::Animation => "animation",
            Self::Document => "document",
            Self::Audio => "audio",
            Self::Voice => "voice",
        }
    }

    /// A photo, video or animation: shown beside its caption, and it can hide under a spoiler.
    pub fn shows_beside_caption(self) -> bool {
        matches!(self, Self::Photo | Self::Video | Self::Animation)
    }

    pub fn method(self) -> &'static str {
        match self {
            Self::Photo => "sendPhoto",
            Self::Video => "sendVideo",
            Self::Animation => "sendAnimation",
            Self::Document => "sendDocument",
            Self::Audio => "sendAudio",
            Self::Voice => "sendVoice",
        }
    }

    /// The media object a message shows, with the fields the Bot API documents as required;
    /// an uploaded file's own size, dimensions, name and type where it has them.
    fn render(self, file_id: &str, upload: Option<&Upload>) -> Value {
        let details = match self {
            Self::Photo => {
                // Telegram lists sizes smallest first, each scaled to fit a square: the largest
                // one to 1280 pixels.
                let (width, height) = upload
                    .and_then(|u| u.photo_size().ok())
                    .unwrap_or((1280, 720));
                let fit = |side: u32| {
                    let scale = (f64::from(side) / f64::from(width.max(height))).min(1.0);
                    // Whole pixels, at least one.
                    let scaled = |length: u32| ((f64::from(length) * scale).round() as u32).max(1);
                    json!({"width": scaled(width), "height": scaled(height)})
                };
                let thumbnail = format!("{file_id}-thumb");
                let size = upload.map_or(120_000, |u| u.bytes.len());
                return json!([
                    file(&thumbnail, 1_500, fit(90)),
                    file(file_id, size, fit(1280)),
                ]);
            }
            Self::Video => {
                json!({"width": 1280, "height": 720, "duration": 10, "mime_type": "video/mp4"})
            }
            Self::Animation => json!({
                "width": 480, "height": 270, "duration": 3,
                "file_name": "animation.mp4", "mime_type": "video/mp4",
            }),
            Self::Document => json!({"file_name": "document.pdf", "mime_type": "application/pdf"}),
            Self::Audio => json!({"duration": 180, "title": "Audio", "mime_type": "audio/mpeg"}),
            Self::Voice => json!({"duration": 5, "mime_type": "audio/ogg"}),
        };
        let Some(upload) = upload else {
            return file(file_id, 250_000, details);
        };
        let mut details = details;
        if let Some(name) = &upload.file_name {
            details["file_name"] = json!(name);
        }
        if let Some(mime_type) = &upload.mime_type {
            details["mime_type"] = json!(mime_type);
        }
        file(file_id, upload.bytes.len(), details)
    }
}

/// A file object: `details` plus the id fields every file has.
fn file(file_id: &str, size: usize, mut details: Value) -> Value {
    let mut hasher = DefaultHasher::new();
    file_id.hash(&mut hasher);
    details["file_id"] = json!(file_id);
    details["file_unique_id"] = json!(format!("AgAD{:016x}", hasher.finish()));
    details["file_size"] = json!(size);
    details
}

#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub kind: MediaKind,
    pub file_id: String,
    /// The file, when it was uploaded with this send rather than named by its id.
    pub upload: Option<Upload>,
}

/// A message's content, as it was accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    /// The text, or the media's caption.
    pub text: Option<String>,
    /// `entities`, or `caption_entities` for media, as the client sent them.
    pub entities: Vec<Value>,
    pub media: Option<Media>,
    pub reply_markup: Option<Value>,
    /// Text only: `link_preview_options` as sent.
    pub link_preview_options: Option<Value>,
    /// A photo, video or animation only: the caption above it, the media under a spoiler.
    pub show_caption_above_media: bool,
    pub has_spoiler: bool,
    /// `message_effect_id`, shown as the message's `effect_id`.
    pub effect_id: Option<String>,
    /// An album's items share it.
    pub media_group_id: Option<String>,
}

impl Content {
    /// `sendMessage` and `editMessageText`.
    pub fn text(params: &Params) -> Result<Self, ApiError> {
        let text = params.text("text").filter(|t| !t.trim().is_empty());
        let text = text.ok_or_else(|| ApiError::bad_request("message text is empty"))?;
        if utf16_len(text) > MAX_TEXT_LEN {
            return Err(ApiError::bad_request("message is too long"));
        }
        let link_preview_options = match params.json::<Value>("link_preview_options") {
            None => None,
            Some(Ok(options)) if options.is_object() => Some(options),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "can't parse link preview options JSON object",
                ));
            }
        };
        Ok(Self {
            entities: entities(params, "entities", text)?,
            text: Some(text.to_owned()),
            media: None,
            reply_markup: reply_markup(params)?,
            link_preview_options,
            show_caption_above_media: false,
            has_spoiler: false,
            effect_id: effect_id(params)?,
            media_group_id: None,
        })
    }

    /// `send<Kind>` with a file_id in the parameter named after the kind, or the file uploaded
    /// there.
    pub fn media(kind: MediaKind, params: &Params) -> Result<Self, ApiError> {
        let media = match params.upload(kind.field()) {
            Some(upload) => {
                if kind == MediaKind::Photo {
                    upload.photo_size()?;
                }
                Media {
                    kind,
                    file_id: upload.file_id(),
                    upload: Some(upload.clone()),
                }
            }
            None => Media {
                kind,
                file_id: params
                    .text(kind.field())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "there is no {} in the request",
                            kind.field()
                        ))
                    })?
                    .to_owned(),
                upload: None,
            },
        };
        let (text, entities) = caption(params)?;
        let beside_caption = kind.shows_beside_caption();
        let media = Some(media);
        Ok(Self {
            text,
            entities,
            media,
            reply_markup: reply_markup(params)?,
            link_preview_options: None,
            show_caption_above_media: beside_caption && params.flag("show_caption_above_media"),
            has_spoiler: beside_caption && params.flag("has_spoiler"),
            effect_id: effect_id(params)?,
            media_group_id: None,
        })
    }

    /// `copyMessage`: the source's content, with the caption replaced if one is given and only
    /// the keyboard passed along.
    pub fn copied(source: &Self, params: &Params) -> Result<Self, ApiError> {
        let mut copy = Self {
            reply_markup: reply_markup(params)?,
            ..source.clone()
        };
        if copy.media.is_some() && params.text("caption").is_some() {
            (copy.text, copy.entities) = caption(params)?;
        }
        Ok(copy)
    }

    /// Adds the content's fields to a `Message` object.
    pub fn render_into(&self, message: &mut Map<String, Value>) {
        let (text_field, entities_field) = match &self.media {
            None => ("text", "entities"),
            Some(Media {
                kind,
                file_id,
                upload,
            }) => {
                message.insert(kind.field().into(), kind.render(file_id, upload.as_ref()));
                if *kind == MediaKind::Animation {
                    // Telegram also shows an animation as a document, for older clients.
                    let document = MediaKind::Document.render(file_id, upload.as_ref());
                    message.insert("document".into(), document);
                }
                ("caption", "caption_entities")
            }
        };
        if let Some(text) = &self.text {
            message.insert(text_field.into(), json!(text));
        }
        for (field, set) in [
            ("show_caption_above_media", self.show_caption_above_media),
            ("has_media_spoiler", self.has_spoiler),
        ] {
            if set {
                message.insert(field.into(), json!(true));
            }
        }
        if let Some(options) = &self.link_preview_options {
            message.insert("link_preview_options".into(), options.clone());
        }
        if let Some(effect_id) = &self.effect_id {
            message.insert("effect_id".into(), json!(effect_id));
        }
        if let Some(group) = &self.media_group_id {
            message.insert("media_group_id".into(), json!(group));
        }
        if !self.entities.is_empty() {
            message.insert(entities_field.into(), json!(self.entities));
        }
        // A message shows only an inline keyboard; reply keyboards live in the client.
        if let Some(markup) = self
            .reply_markup
            .as_ref()
            .filter(|m| m.get("inline_keyboard").is_some())
        {
            message.insert("reply_markup".into(), markup.clone());
        }
    }
}

pub fn caption(params: &Params) -> Result<(Option<String>, Vec<Value>), ApiError> {
    let caption = params.text("caption").unwrap_or_default();
    if utf16_len(caption) > MAX_CAPTION_LEN {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    let entities = entities(params, "caption_entities", caption)?;
    Ok(((!caption.is_empty()).then(|| caption.to_owned()), entities))
}

/// Reads `entities`-like parameter `name`, each entity checked against `text`. Telegram ignores
/// explicit entities when a parse_mode is given, and so does this.
fn entities(params: &Params, name: &str, text: &str) -> Result<Vec<Value>, ApiError> {
    if let Some(mode) = params.text("parse_mode") {
        return match PARSE_MODES.iter().any(|m| m.eq_ignore_ascii_case(mode)) {
            true => Ok(Vec::new()),
            false => Err(ApiError::bad_request("unsupported parse_mode")),
        };
    }
    let Some(parsed) = params.json::<Vec<Value>>(name) else {
        return Ok(Vec::new());
    };
    let unreadable = || ApiError::bad_request("can't parse entities JSON object");
    let entities = parsed.map_err(|_| unreadable())?;
    let text_len = utf16_len(text) as u64;
    for entity in &entities {
        let number = |field: &str| entity.get(field).and_then(Value::as_u64);
        let (Some(offset), Some(length), Some(_)) = (
            number("offset"),
            number("length"),
            entity.get("type").and_then(Value::as_str),
        ) else {
            return Err(unreadable());
        };
        if offset + length > text_len {
            return Err(ApiError::bad_request(format!(
                "can't parse entities: Entity with offset {offset} and length {length} ends after \
                 the end of the text ({text_len} UTF-16 code units)"
            )));
        }
        if entity["type"] == "date_time" {
            check_date_time(entity)?;
        }
    }
    Ok(entities)
}

/// The longest a `date_time` entity may look ahead: Telegram's 1,098 days.
const DATE_TIME_HORIZON_SECS: i64 = 1098 * 86_400;

/// A `date_time` entity (Bot API 9.5) needs its `unix_time`, within Telegram's range, and a
/// `date_time_format` that is "r" (relative) or, in this order, any of "w" (weekday), "t" or "T"
/// (short or long time), "d" or "D" (short or long date).
fn check_date_time(entity: &Value) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::bad_request(format!("can't parse entities: {why}"));
    let unix_time = entity.get("unix_time").and_then(Value::as_i64);
    let latest = crate::chats::unix_now() + DATE_TIME_HORIZON_SECS;
    if !unix_time.is_some_and(|time| (0..=latest).contains(&time)) {
        return Err(refused("date_time entity has an invalid unix_time"));
    }
    let format = entity
        .get("date_time_format")
        .map(|f| f.as_str().unwrap_or("?"));
    let well_formed = |format: &str| {
        let mut rest = format;
        for options in ["w", "tT", "dD"] {
            if let Some(first) = rest.chars().next()
                && options.contains(first)
            {
                rest = &rest[1..];
            }
        }
        !format.is_empty() && rest.is_empty()
    };
    match format {
        None | Some("r") => Ok(()),
        Some(format) if well_formed(format) => Ok(()),
        Some(_) => Err(refused("date_time entity has an invalid date_time_format")),
    }
}

/// `message_effect_id`: an effect's numeric id.
pub fn effect_id(params: &Params) -> Result<Option<String>, ApiError> {
    match params.text("message_effect_id") {
        None => Ok(None),
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(id.to_owned()))
        }
        Some(_) => Err(ApiError::bad_request("EFFECT_ID_INVALID")),
    }
}

/// Reads and checks `reply_markup`; inline keyboards get Telegram's button checks.
pub fn reply_markup(params: &Params) -> Result<Option<Value>, ApiError> {
    let Some(parsed) = params.json::<Value>("reply_markup") else {
        return Ok(None);
    };
    let markup = parsed
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request("can't parse reply keyboard markup JSON object"))?;
    if let Some(rows) = markup.get("inline_keyboard") {
        let not_rows = || {
            ApiError::bad_request(
                "field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays",
            )
        };
        for row in rows.as_array().ok_or_else(not_rows)? {
            for button in row.as_array().ok_or_else(not_rows)? {
                check_button(button)?;
            }
        }
    }
    Ok(Some(markup))
}

fn check_button(button: &Value) -> Result<(), ApiError> {
    let unreadable =
        |why: &str| ApiError::bad_request(format!("can't parse inline keyboard button: {why}"));
    let button = button
        .as_object()
        .ok_or_else(|| unreadable("InlineKeyboardButton should be an object"))?;
    if !button.get("text").is_some_and(Value::is_string) {
        return Err(unreadable("Field \"text\" must be of type String"));
    }
    if let Some(style) = button.get("style")
        && !style.as_str().is_some_and(|s| BUTTON_STYLES.contains(&s))
    {
        return Err(ApiError::bad_request("BUTTON_STYLE_INVALID"));
    }
    if let Some(url) = button.get("url") {
        if !url.as_str().is_some_and(is_button_url) {
            return Err(ApiError::bad_request("BUTTON_URL_INVALID"));
        }
    } else if let Some(data) = button.get("callback_data") {
        let fits = data
            .as_str()
            .is_some_and(|d| (1..=MAX_CALLBACK_DATA_BYTES).contains(&d.len()));
        if !fits {
            return Err(ApiError::bad_request("BUTTON_DATA_INVALID"));
        }
    } else if let Some(copied) = button.get("copy_text") {
        let fits = copied["text"]
            .as_str()
            .is_some_and(|text| (1..=MAX_COPY_TEXT_LEN).contains(&text.chars().count()));
        if !fits {
            return Err(ApiError::bad_request("BUTTON_COPY_TEXT_INVALID"));
        }
    } else if !OTHER_BUTTON_ACTIONS
        .iter()
        .any(|&action| button.contains_key(action))
    {
        return Err(unreadable(
            "Text buttons are unallowed in the inline keyboard",
        ));
    }
    Ok(())
}

/// An http(s) or tg link with something after the scheme and no whitespace.
fn is_button_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = ["http://", "https://", "tg://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_error(pairs: &[(&str, &str)]) -> String {
        let params = Params::from_iter(pairs.iter().copied());
        Content::text(&params).expect_err("refused").description
    }

    #[test]
    fn text_limits_count_utf16_units() {
        // "😀" is one char but two UTF-16 units.
        let fits = "😀".repeat(2048);
        assert!(Content::text(&Params::from_iter([("text", fits.as_str())])).is_ok());
        let over = format!("{fits}a");
        assert_eq!(
            text_error(&[("text", &over)]),
            "Bad Request: message is too long"
        );
        assert_eq!(
            text_error(&[("text", " \n ")]),
            "Bad Request: message text is empty"
        );
        assert_eq!(text_error(&[]), "Bad Request: message text is empty");
    }

    #[test]
    fn a_date_time_entity_needs_a_time_in_range_and_a_known_format() {
        let with = |entity: &str| {
            let entities = format!("[{entity}]");
            Content::text(&Params::from_iter([
                ("text", "at 10:00"),
                ("entities", &entities),
            ]))
        };
        for good in [
            r#"{"type":"date_time","offset":3,"length":5,"unix_time":1790000000}"#,
            r#"{"type":"date_time","offset":3,"length":5,"unix_time":1790000000,"date_time_format":"r"}"#,
            r#"{"type":"date_time","offset":3,"length":5,"unix_time":1790000000,"date_time_format":"wTD"}"#,
            r#"{"type":"date_time","offset":3,"length":5,"unix_time":1790000000,"date_time_format":"d"}"#,
        ] {
            assert!(with(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            (r#"{"type":"date_time","offset":3,"length":5}"#, "unix_time"),
            (
                r#"{"type":"date_time","offset":3,"length":5,"unix_time":99999999999}"#,
                "unix_time",
            ),
            (
                r#"{"type":"date_time","offset":3,"length":5,"unix_time":1,"date_time_format":"tw"}"#,
                "date_time_format",
            ),
            (
                r#"{"type":"date_time","offset":3,"length":5,"unix_time":1,"date_time_format":"rt"}"#,
                "date_time_format",
            ),
            (
                r#"{"type":"date_time","offset":3,"length":5,"unix_time":1,"date_time_format":""}"#,
                "date_time_format",
            ),
        ] {
            let refusal = with(bad).expect_err(bad).description;
            assert!(
                refusal.starts_with("Bad Request: can't parse entities:") && refusal.contains(why),
                "{bad}: {refusal}"
            );
        }
    }

    #[test]
    fn copy_buttons_styles_and_effects_are_checked_and_shown_as_sent() {
        let keyboard = r#"{"inline_keyboard":[[{"text":"Code","copy_text":{"text":"SPRING26"},"style":"success","icon_custom_emoji_id":"5370"}]]}"#;
        let preview = r#"{"is_disabled":true}"#;
        let params = Params::from_iter([
            ("text", "Hi"),
            ("reply_markup", keyboard),
            ("link_preview_options", preview),
            ("message_effect_id", "5104841245755180586"),
        ]);
        let mut message = Map::new();
        Content::text(&params)
            .expect("accepted")
            .render_into(&mut message);
        assert_eq!(
            message["reply_markup"],
            serde_json::from_str::<Value>(keyboard).unwrap()
        );
        assert_eq!(
            message["link_preview_options"],
            json!({ "is_disabled": true })
        );
        assert_eq!(message["effect_id"], "5104841245755180586");

        for (field, value, refusal) in [
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"C","copy_text":{"text":""}}]]}"#,
                "BUTTON_COPY_TEXT_INVALID",
            ),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"C","url":"https://a.b","style":"red"}]]}"#,
                "BUTTON_STYLE_INVALID",
            ),
            ("message_effect_id", "fire", "EFFECT_ID_INVALID"),
            (
                "link_preview_options",
                "[]",
                "can't parse link preview options JSON object",
            ),
        ] {
            assert_eq!(
                text_error(&[("text", "Hi"), (field, value)]),
                format!("Bad Request: {refusal}")
            );
        }
    }

    #[test]
    fn a_spoiler_and_the_caption_above_belong_to_photos_videos_and_animations() {
        let params = Params::from_iter([
            ("photo", "p"),
            ("caption", "Look"),
            ("has_spoiler", "true"),
            ("show_caption_above_media", "true"),
        ]);
        let mut message = Map::new();
        Content::media(MediaKind::Photo, &params)
            .expect("accepted")
            .render_into(&mut message);
        assert_eq!(
            (
                &message["has_media_spoiler"],
                &message["show_caption_above_media"]
            ),
            (&json!(true), &json!(true))
        );
        let params = Params::from_iter([("document", "d"), ("has_spoiler", "true")]);
        let document = Content::media(MediaKind::Document, &params).expect("accepted");
        assert!(!document.has_spoiler);
    }

    #[test]
    fn entities_must_stay_inside_the_text() {
        let ok = [
            ("text", "😀 hi"),
            ("entities", r#"[{"type":"bold","offset":3,"length":2}]"#),
        ];
        assert_eq!(
            Content::text(&Params::from_iter(ok))
                .expect("fits")
                .entities
                .len(),
            1
        );
        let past = [
            ("text", "😀 hi"),
            ("entities", r#"[{"type":"bold","offset":3,"length":3}]"#),
        ];
        assert!(text_error(&past).starts_with("Bad Request: can't parse entities: "));
        let junk = [("text", "hi"), ("entities", r#"[{"type":"bold"}]"#)];
        assert_eq!(
            text_error(&junk),
            "Bad Request: can't parse entities JSON object"
        );
        let parse_mode = [
            ("text", "<b>hi</b>"),
            ("parse_mode", "html"),
            ("entities", "junk"),
        ];
        assert!(Content::text(&Params::from_iter(parse_mode)).is_ok());
        assert_eq!(
            text_error(&[("text", "hi"), ("parse_mode", "bbcode")]),
            "Bad Request: unsupported parse_mode"
        );
    }

    #[test]
    fn buttons_are_checked_like_telegram() {
        let keyboard = |button: &str| format!(r#"{{"inline_keyboard":[[{button}]]}}"#);
        let cases = [
            (r#"{"text":"a","url":"https://example.com"}"#, None),
            (r#"{"text":"a","url":"tg://user?id=1"}"#, None),
            (r#"{"text":"a","callback_data":"x"}"#, None),
            (r#"{"text":"a","pay":true}"#, None),
            (
                r#"{"text":"a","url":"ftp://example.com"}"#,
                Some("Bad Request: BUTTON_URL_INVALID"),
            ),
            (
                r#"{"text":"a","url":"https://"}"#,
                Some("Bad Request: BUTTON_URL_INVALID"),
            ),
            (
                r#"{"text":"a","callback_data":""}"#,
                Some("Bad Request: BUTTON_DATA_INVALID"),
            ),
            (
                r#"{"text":"a"}"#,
                Some(
                    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ),
            ),
        ];
        for (button, expected) in cases {
            let markup = keyboard(button);
            let params = Params::from_iter([("reply_markup", markup.as_str())]);
            let got = reply_markup(&params).err().map(|e| e.description);
            assert_eq!(got.as_deref(), expected, "{button}");
        }
        let long_data = format!(r#"{{"text":"a","callback_data":"{}"}}"#, "x".repeat(65));
        let params = Params::from_iter([("reply_markup", keyboard(&long_data).as_str())]);
        assert_eq!(
            reply_markup(&params).expect_err("too long").description,
            "Bad Request: BUTTON_DATA_INVALID"
        );
        let params = Params::from_iter([("reply_markup", "{not json")]);
        let error = reply_markup(&params).expect_err("unreadable");
        assert_eq!(
            error.description,
            "Bad Request: can't parse reply keyboard markup JSON object"
        );
    }

    #[test]
    fn media_needs_its_file_and_a_short_caption() {
        let error = Content::media(MediaKind::Video, &Params::from_iter([("photo", "x")]))
            .expect_err("no video");
        assert_eq!(
            error.description,
            "Bad Request: there is no video in the request"
        );
        let long = "a".repeat(1025);
        let error = Content::media(
            MediaKind::Photo,
            &Params::from_iter([("photo", "x"), ("caption", long.as_str())]),
        )
        .expect_err("too long");
        assert_eq!(
            error.description,
            "Bad Request: message caption is too long"
        );
    }
}
