//! The Bot API call that delivers a campaign's content to one chat, built
//! from the stored `courier.v1.Content`: the original entities (never
//! re-rendered through parse_mode), the file_id, the inline keyboard and the
//! campaign's options.

use courier_core::greeting;
use courier_core::proto::v1::{
    CampaignOptions, Content, ContentKind, LinkPreviewOptions, MessageEntity, Names, button,
};
use serde_json::{Map, Value, json};

/// One Bot API method call, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: &'static str,
    /// The parameters, as JSON.
    pub body: bytes::Bytes,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("content of kind {0:?} cannot be sent")]
pub struct UnsendableContent(ContentKind);

/// The parts of a call that are the same for every recipient; built once
/// per campaign, then stamped with each chat id (and, for an edit, the
/// message id). Content that greets by name ([`courier_core::greeting`])
/// is filled and built per recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    method: &'static str,
    /// The JSON body without its opening brace: each call only writes
    /// `{"chat_id":N,` in front instead of building and encoding it again.
    rest_of_body: String,
    /// Kept only for content with placeholders, to fill per recipient.
    personal: Option<(Content, Purpose)>,
    /// Messages each call delivers, as Telegram counts them for its limits.
    messages: u32,
}

/// What a template's calls do with the content.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Purpose {
    /// Send it, with the campaign's options.
    Send(CampaignOptions),
    /// Edit a delivered message to it: its text or caption and buttons, or
    /// (`markup_only`) its buttons alone. The file and options stay.
    Edit { markup_only: bool },
}

/// Every kind of content a campaign can send: its Bot API method and the
/// parameter that carries its file_id (none for text and albums). The
/// parameter is also the `type` of the kind's `InputMedia` in an album.
const KINDS: [(ContentKind, &str, Option<&str>); 8] = [
    (ContentKind::Text, "sendMessage", None),
    (ContentKind::Photo, "sendPhoto", Some("photo")),
    (ContentKind::Video, "sendVideo", Some("video")),
    (ContentKind::Animation, "sendAnimation", Some("animation")),
    (ContentKind::Document, "sendDocument", Some("document")),
    (ContentKind::Audio, "sendAudio", Some("audio")),
    (ContentKind::Voice, "sendVoice", Some("voice")),
    (ContentKind::Album, "sendMediaGroup", None),
];

/// The methods that amend a delivered message (an album's, all at once).
const AMEND_METHODS: [&str; 5] = [
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "deleteMessages",
];

/// The Bot API methods a campaign may call.
pub fn methods() -> impl Iterator<Item = &'static str> {
    KINDS
        .iter()
        .map(|(_, method, _)| *method)
        .chain(AMEND_METHODS)
}

/// The call that deletes message `message_id` of `chat_id`, or, for an
/// album, every message of it (`album`, its items' ids).
pub fn delete(chat_id: i64, message_id: i64, album: &[i64]) -> Call {
    match album {
        [] | [_] => Call {
            method: "deleteMessage",
            body: format!("{{\"chat_id\":{chat_id},\"message_id\":{message_id}}}").into(),
        },
        ids => Call {
            method: "deleteMessages",
            body: json!({ "chat_id": chat_id, "message_ids": ids })
                .to_string()
                .into(),
        },
    }
}

/// How many messages a send of `content` is, as Telegram counts them for
/// its limits: one per item of an album.
fn messages_in(content: &Content) -> u32 {
    match content.kind() {
        ContentKind::Album => u32::try_from(content.album.len())
            .unwrap_or(u32::MAX)
            .max(1),
        _ => 1,
    }
}

impl Template {
    /// Sends `content` with `options`.
    pub fn new(
        content: &Content,
        options: &CampaignOptions,
    ) -> Result<Template, UnsendableContent> {
        Template::for_purpose(content, Purpose::Send(*options))
    }

    /// Edits a message delivered earlier to `content`: editMessageText for
    /// text, editMessageCaption for media, editMessageReplyMarkup when only
    /// the buttons changed (`markup_only`).
    pub fn edit(content: &Content, markup_only: bool) -> Result<Template, UnsendableContent> {
        Template::for_purpose(content, Purpose::Edit { markup_only })
    }

    fn for_purpose(content: &Content, purpose: Purpose) -> Result<Template, UnsendableContent> {
        let kind = content.kind();
        let Some(&(_, send, _)) = KINDS.iter().find(|(k, _, _)| *k == kind) else {
            return Err(UnsendableContent(kind));
        };
        let method = match purpose {
            Purpose::Send(_) => send,
            Purpose::Edit { markup_only: true } => "editMessageReplyMarkup",
            Purpose::Edit { .. } if kind == ContentKind::Text => "editMessageText",
            Purpose::Edit { .. } => "editMessageCaption",
        };
        let personal = match purpose {
            Purpose::Edit { markup_only: true } => false,
            _ => greeting::is_personal(&content.text),
        };
        let messages = match purpose {
            Purpose::Send(_) => messages_in(content),
            Purpose::Edit { .. } => 1,
        };
        Ok(Template {
            method,
            rest_of_body: rest_of_body(content, &purpose),
            personal: personal.then(|| (content.clone(), purpose)),
            messages,
        })
    }

    /// Messages each call delivers, as Telegram counts them for its limits:
    /// an album's items, else one.
    pub fn messages(&self) -> u32 {
        self.messages
    }

    /// The call that delivers the content to `chat_id`, greeting `names`
    /// (the recipient's; unknown ones take the placeholders' fallbacks).
    pub fn call(&self, chat_id: i64, names: Option<&Names>) -> Call {
        self.stamp(format!("{{\"chat_id\":{chat_id},"), names)
    }

    /// The call that edits message `message_id` of `chat_id` (a template
    /// made by [`Template::edit`]).
    pub fn edit_call(&self, chat_id: i64, message_id: i64, names: Option<&Names>) -> Call {
        self.stamp(
            format!("{{\"chat_id\":{chat_id},\"message_id\":{message_id},"),
            names,
        )
    }

    fn stamp(&self, mut head: String, names: Option<&Names>) -> Call {
        let filled;
        let rest = match &self.personal {
            None => &self.rest_of_body,
            Some((content, purpose)) => {
                let (text, entities) = greeting::fill(
                    &content.text,
                    &content.entities,
                    names.unwrap_or(&Names::default()),
                );
                let content = Content {
                    text,
                    entities,
                    ..content.clone()
                };
                filled = rest_of_body(&content, purpose);
                &filled
            }
        };
        // Nothing after the ids (buttons removed): no comma before `}`.
        if rest == "}" {
            head.pop();
        }
        head.push_str(rest);
        Call {
            method: self.method,
            body: head.into(),
        }
    }
}

/// The JSON body of a call for `content` (of a kind in [`KINDS`]), without
/// its chat id and opening brace.
fn rest_of_body(content: &Content, purpose: &Purpose) -> String {
    let media_field = KINDS
        .iter()
        .find(|(kind, _, _)| *kind == content.kind())
        .and_then(|(_, _, field)| *field);
    let mut body = Map::new();
    let entities: Vec<Value> = content.entities.iter().map(entity).collect();
    match (media_field, purpose) {
        (_, Purpose::Edit { markup_only: true }) => {}
        (None, Purpose::Send(_)) if content.kind() == ContentKind::Album => {
            body.insert("media".into(), album(content, entities).into());
        }
        // An album's caption is its first message's.
        (None, Purpose::Edit { .. }) if content.kind() == ContentKind::Album => {
            caption_fields(&mut body, content, entities);
        }
        (None, _) => {
            body.insert("text".into(), content.text.clone().into());
            if !entities.is_empty() {
                body.insert("entities".into(), entities.into());
            }
            if let Some(options) = &content.link_preview_options {
                body.insert("link_preview_options".into(), link_preview(options));
            }
        }
        (Some(field), _) => {
            if let Purpose::Send(_) = purpose {
                body.insert(field.into(), content.file_id.clone().into());
            }
            caption_fields(&mut body, content, entities);
            if content.has_spoiler
                && SPOILABLE.contains(&content.kind())
                && matches!(purpose, Purpose::Send(_))
            {
                body.insert("has_spoiler".into(), true.into());
            }
        }
    }
    // sendMediaGroup takes no buttons.
    if let Some(keyboard) = &content.keyboard
        && !keyboard.rows.is_empty()
        && content.kind() != ContentKind::Album
    {
        let rows: Vec<Value> = keyboard
            .rows
            .iter()
            .map(|row| {
                row.buttons
                    .iter()
                    .map(button_json)
                    .collect::<Vec<_>>()
                    .into()
            })
            .collect();
        body.insert("reply_markup".into(), json!({ "inline_keyboard": rows }));
    }
    if let Purpose::Send(options) = purpose {
        set_flags(
            &mut body,
            [
                ("disable_notification", options.disable_notification),
                ("protect_content", options.protect_content),
                ("allow_paid_broadcast", options.paid_broadcast),
            ],
        );
        if !content.message_effect_id.is_empty() {
            body.insert(
                "message_effect_id".into(),
                content.message_effect_id.clone().into(),
            );
        }
    }
    // Without its opening brace: the ids are written in front.
    let body = Value::Object(body).to_string();
    body[1..].to_owned()
}

/// A media message's caption, its entities and, for what shows its media
/// beside it (a photo, video or animation, or an album), its placement.
fn caption_fields(body: &mut Map<String, Value>, content: &Content, entities: Vec<Value>) {
    if !content.text.is_empty() {
        body.insert("caption".into(), content.text.clone().into());
    }
    if !entities.is_empty() {
        body.insert("caption_entities".into(), entities.into());
    }
    let beside = SPOILABLE.contains(&content.kind()) || content.kind() == ContentKind::Album;
    if beside && content.show_caption_above_media {
        body.insert("show_caption_above_media".into(), true.into());
    }
}

/// sendMediaGroup's `media`: one `InputMedia` per item, the caption on the
/// first.
fn album(content: &Content, entities: Vec<Value>) -> Vec<Value> {
    content
        .album
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let kind = KINDS
                .iter()
                .find(|(kind, _, _)| *kind == item.kind())
                .and_then(|(_, _, field)| *field)
                .unwrap_or("photo");
            let mut media = Map::new();
            media.insert("type".into(), kind.into());
            media.insert("media".into(), item.file_id.clone().into());
            if index == 0 {
                caption_fields(&mut media, content, entities.clone());
            }
            if item.has_spoiler && SPOILABLE.contains(&item.kind()) {
                media.insert("has_spoiler".into(), true.into());
            }
            Value::Object(media)
        })
        .collect()
}

/// The kinds whose media can sit under a spoiler or below the caption.
const SPOILABLE: [ContentKind; 3] = [
    ContentKind::Photo,
    ContentKind::Video,
    ContentKind::Animation,
];

/// Telegram's entity from the stored one: the fields courier knows, then
/// every other field it was sent with, unchanged.
fn entity(e: &MessageEntity) -> Value {
    let mut out =
        serde_json::from_str::<Map<String, Value>>(&e.other_fields_json).unwrap_or_default();
    out.insert("type".into(), e.r#type.clone().into());
    out.insert("offset".into(), e.offset.into());
    out.insert("length".into(), e.length.into());
    let optional = [
        ("url", (!e.url.is_empty()).then(|| e.url.clone().into())),
        (
            "user",
            (e.user_id != 0).then(|| json!({ "id": e.user_id, "is_bot": false, "first_name": "" })),
        ),
        (
            "language",
            (!e.language.is_empty()).then(|| e.language.clone().into()),
        ),
        (
            "custom_emoji_id",
            (!e.custom_emoji_id.is_empty()).then(|| e.custom_emoji_id.clone().into()),
        ),
        ("unix_time", (e.unix_time != 0).then(|| e.unix_time.into())),
        (
            "date_time_format",
            (!e.date_time_format.is_empty()).then(|| e.date_time_format.clone().into()),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            out.insert(key.into(), value);
        }
    }
    Value::Object(out)
}

/// Adds each flag that is set as `true`; the Bot API's default is false.
fn set_flags<const N: usize>(out: &mut Map<String, Value>, flags: [(&str, bool); N]) {
    for (flag, set) in flags {
        if set {
            out.insert(flag.into(), true.into());
        }
    }
}

fn link_preview(options: &LinkPreviewOptions) -> Value {
    let mut out = Map::new();
    set_flags(
        &mut out,
        [
            ("is_disabled", options.is_disabled),
            ("prefer_small_media", options.prefer_small_media),
            ("prefer_large_media", options.prefer_large_media),
            ("show_above_text", options.show_above_text),
        ],
    );
    if !options.url.is_empty() {
        out.insert("url".into(), options.url.clone().into());
    }
    Value::Object(out)
}

fn button_json(b: &courier_core::proto::v1::Button) -> Value {
    let mut out = Map::new();
    out.insert("text".into(), b.text.clone().into());
    match &b.action {
        Some(button::Action::Url(url)) => {
            out.insert("url".into(), url.clone().into());
        }
        Some(button::Action::CallbackData(data)) => {
            out.insert("callback_data".into(), data.clone().into());
        }
        Some(button::Action::CopyText(text)) => {
            out.insert("copy_text".into(), json!({ "text": text }));
        }
        None => {}
    }
    for (field, value) in [
        ("style", &b.style),
        ("icon_custom_emoji_id", &b.icon_custom_emoji_id),
    ] {
        if !value.is_empty() {
            out.insert(field.into(), value.clone().into());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::proto::v1::{Button, ButtonRow, InlineKeyboard};

    fn body(call: &Call) -> Value {
        serde_json::from_slice(&call.body).expect("the body is JSON")
    }

    fn bold(offset: i64, length: i64) -> MessageEntity {
        MessageEntity {
            r#type: "bold".into(),
            offset,
            length,
            ..Default::default()
        }
    }

    #[test]
    fn text_keeps_its_entities_and_buttons() {
        let content = Content {
            kind: ContentKind::Text.into(),
            text: "Hello world".into(),
            entities: vec![bold(0, 5)],
            keyboard: Some(InlineKeyboard {
                rows: vec![ButtonRow {
                    buttons: vec![Button {
                        text: "Open".into(),
                        action: Some(button::Action::Url("https://example.com".into())),
                        ..Default::default()
                    }],
                }],
            }),
            ..Default::default()
        };
        let call = Template::new(&content, &CampaignOptions::default())
            .unwrap()
            .call(42, None);
        assert_eq!(call.method, "sendMessage");
        assert_eq!(
            body(&call),
            json!({
                "chat_id": 42,
                "text": "Hello world",
                "entities": [{ "type": "bold", "offset": 0, "length": 5 }],
                "reply_markup": { "inline_keyboard": [[{ "text": "Open", "url": "https://example.com" }]] },
            })
        );
    }

    #[test]
    fn media_goes_by_file_id_with_caption_entities_and_options() {
        let content = Content {
            kind: ContentKind::Photo.into(),
            text: "Look".into(),
            entities: vec![bold(0, 4)],
            file_id: "AgACAgIAAxk".into(),
            ..Default::default()
        };
        let options = CampaignOptions {
            disable_notification: true,
            protect_content: true,
            paid_broadcast: true,
        };
        let call = Template::new(&content, &options).unwrap().call(7, None);
        assert_eq!(call.method, "sendPhoto");
        assert_eq!(
            body(&call),
            json!({
                "chat_id": 7,
                "photo": "AgACAgIAAxk",
                "caption": "Look",
                "caption_entities": [{ "type": "bold", "offset": 0, "length": 4 }],
                "disable_notification": true,
                "protect_content": true,
                "allow_paid_broadcast": true,
            })
        );
    }

    #[test]
    fn every_media_kind_has_its_method() {
        for (kind, method, field) in [
            (ContentKind::Video, "sendVideo", "video"),
            (ContentKind::Animation, "sendAnimation", "animation"),
            (ContentKind::Document, "sendDocument", "document"),
            (ContentKind::Audio, "sendAudio", "audio"),
            (ContentKind::Voice, "sendVoice", "voice"),
        ] {
            let content = Content {
                kind: kind.into(),
                file_id: "F".into(),
                ..Default::default()
            };
            let call = Template::new(&content, &CampaignOptions::default())
                .unwrap()
                .call(1, None);
            assert_eq!(call.method, method);
            assert_eq!(body(&call)[field], "F");
            assert!(body(&call).get("caption").is_none());
        }
    }

    #[test]
    fn content_without_a_kind_is_refused() {
        assert!(Template::new(&Content::default(), &CampaignOptions::default()).is_err());
    }

    #[test]
    fn a_greeting_is_filled_per_recipient_with_its_entities_moved() {
        let names = |first: &str| Names {
            first_name: first.into(),
            ..Names::default()
        };
        let text = Content {
            kind: ContentKind::Text.into(),
            text: "Hi {first_name|there}! News".into(),
            entities: vec![bold(3, 18), bold(23, 4)],
            ..Default::default()
        };
        let template = Template::new(&text, &CampaignOptions::default()).unwrap();
        let call = template.call(5, Some(&names("Анна")));
        assert_eq!(
            body(&call),
            json!({
                "chat_id": 5,
                "text": "Hi Анна! News",
                "entities": [
                    { "type": "bold", "offset": 3, "length": 4 },
                    { "type": "bold", "offset": 9, "length": 4 },
                ],
            })
        );
        assert_eq!(body(&template.call(6, None))["text"], "Hi there! News");
        let photo = Content {
            kind: ContentKind::Photo.into(),
            file_id: "P".into(),
            text: "{name}, look".into(),
            entities: vec![bold(0, 6)],
            ..Default::default()
        };
        let call = Template::new(&photo, &CampaignOptions::default())
            .unwrap()
            .call(7, Some(&names("🦊")));
        assert_eq!(body(&call)["caption"], "🦊, look");
        assert_eq!(
            body(&call)["caption_entities"],
            json!([{ "type": "bold", "offset": 0, "length": 2 }])
        );
    }

    #[test]
    fn content_without_a_greeting_ignores_names() {
        let content = Content {
            kind: ContentKind::Text.into(),
            text: "Hello {world}".into(),
            ..Default::default()
        };
        let template = Template::new(&content, &CampaignOptions::default()).unwrap();
        let names = Names {
            first_name: "Ann".into(),
            ..Names::default()
        };
        assert_eq!(template.call(1, Some(&names)), template.call(1, None));
        assert_eq!(body(&template.call(1, None))["text"], "Hello {world}");
    }

    fn keyboard() -> InlineKeyboard {
        InlineKeyboard {
            rows: vec![ButtonRow {
                buttons: vec![Button {
                    text: "Open".into(),
                    action: Some(button::Action::Url("https://example.com".into())),
                    ..Default::default()
                }],
            }],
        }
    }

    #[test]
    fn an_edit_names_the_message_and_carries_no_file_or_send_options() {
        let text = Content {
            kind: ContentKind::Text.into(),
            text: "Sale tomorrow".into(),
            entities: vec![bold(0, 4)],
            keyboard: Some(keyboard()),
            ..Default::default()
        };
        let call = Template::edit(&text, false).unwrap().edit_call(3, 77, None);
        assert_eq!(call.method, "editMessageText");
        let sent = body(&call);
        assert_eq!(
            (sent["chat_id"].clone(), sent["message_id"].clone()),
            (json!(3), json!(77))
        );
        assert_eq!(sent["text"], "Sale tomorrow");
        assert_eq!(sent["entities"][0]["type"], "bold");
        assert_eq!(
            sent["reply_markup"]["inline_keyboard"][0][0]["text"],
            "Open"
        );

        let photo = Content {
            kind: ContentKind::Photo.into(),
            text: "New caption".into(),
            file_id: "file-1".into(),
            ..Default::default()
        };
        let call = Template::edit(&photo, false)
            .unwrap()
            .edit_call(3, 78, None);
        assert_eq!(call.method, "editMessageCaption");
        let sent = body(&call);
        assert_eq!(sent["caption"], "New caption");
        assert!(sent.get("photo").is_none() && sent.get("protect_content").is_none());
        assert!(
            sent.get("reply_markup").is_none(),
            "no buttons: the edit removes them"
        );
    }

    #[test]
    fn a_buttons_only_edit_sends_only_the_markup_even_when_it_is_empty() {
        let mut text = Content {
            kind: ContentKind::Text.into(),
            text: "Hi {first_name}".into(),
            keyboard: Some(keyboard()),
            ..Default::default()
        };
        let call = Template::edit(&text, true).unwrap().edit_call(1, 2, None);
        assert_eq!(call.method, "editMessageReplyMarkup");
        let sent = body(&call);
        assert!(sent.get("text").is_none());
        assert_eq!(
            sent["reply_markup"]["inline_keyboard"][0][0]["text"],
            "Open"
        );
        text.keyboard = None;
        let call = Template::edit(&text, true).unwrap().edit_call(1, 2, None);
        assert_eq!(body(&call), json!({"chat_id": 1, "message_id": 2}));
        assert_eq!(
            body(&delete(5, 6, &[])),
            json!({"chat_id": 5, "message_id": 6})
        );
    }

    fn album() -> Content {
        use courier_core::proto::v1::AlbumItem;
        let item = |kind: ContentKind, file_id: &str, has_spoiler| AlbumItem {
            kind: kind.into(),
            file_id: file_id.into(),
            has_spoiler,
        };
        Content {
            kind: ContentKind::Album.into(),
            text: "Look".into(),
            entities: vec![bold(0, 4)],
            album: vec![
                item(ContentKind::Photo, "p1", true),
                item(ContentKind::Video, "v1", false),
                item(ContentKind::Photo, "p2", false),
            ],
            show_caption_above_media: true,
            // Albums carry no buttons, even the unsubscribe one.
            keyboard: Some(keyboard()),
            ..Default::default()
        }
    }

    #[test]
    fn an_album_goes_in_one_call_with_the_caption_on_its_first_item() {
        let options = CampaignOptions {
            disable_notification: true,
            ..Default::default()
        };
        let template = Template::new(&album(), &options).unwrap();
        assert_eq!(template.messages(), 3);
        let call = template.call(7, None);
        assert_eq!(call.method, "sendMediaGroup");
        assert_eq!(
            body(&call),
            json!({
                "chat_id": 7,
                "media": [
                    { "type": "photo", "media": "p1", "caption": "Look", "has_spoiler": true,
                      "caption_entities": [{ "type": "bold", "offset": 0, "length": 4 }],
                      "show_caption_above_media": true },
                    { "type": "video", "media": "v1" },
                    { "type": "photo", "media": "p2" },
                ],
                "disable_notification": true,
            })
        );
        // An edit changes the caption, on the first item's message.
        let edit = Template::edit(&album(), false).unwrap();
        assert_eq!(edit.messages(), 1);
        let call = edit.edit_call(7, 40, None);
        assert_eq!(call.method, "editMessageCaption");
        assert_eq!(body(&call)["caption"], "Look");
        assert!(body(&call).get("reply_markup").is_none());
        // A recall deletes every item.
        let call = delete(7, 40, &[40, 41, 42]);
        assert_eq!(call.method, "deleteMessages");
        assert_eq!(
            body(&call),
            json!({"chat_id": 7, "message_ids": [40, 41, 42]})
        );
    }
}
