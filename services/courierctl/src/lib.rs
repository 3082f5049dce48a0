//! courierctl's commands, as a library so tests drive them without a shell.

pub mod bots;
pub mod operations;
pub mod users;

use courier_core::amend::Revision;
use courier_core::proto::v1::{Audience, AudienceFilter, Content, ContentKind, Event, Variant};
use courier_core::{audience, greeting};

/// `--audience`: a filter's text form, or one of the seed's ru / en / all.
/// An error shows the text with a caret under the problem.
pub fn audience_filter(text: &str) -> Result<AudienceFilter, String> {
    if let Some(legacy) = Audience::from_code(text) {
        return Ok(audience::from_legacy(legacy));
    }
    audience::parse(text).map_err(|error| format!("\n{}", error.pointing_into(text)))
}

/// `--variant`: `LANGUAGE=TEXT`, the text users of one language get.
pub fn variant(arg: &str) -> Result<Variant, String> {
    let (language, text) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not LANGUAGE=TEXT, e.g. 'ru=Привет'"))?;
    if !["ru", "en"].contains(&language) {
        return Err(format!(
            "{language:?} is not a language courier knows: use ru or en"
        ));
    }
    Ok(Variant {
        language: language.to_owned(),
        content: Some(text_content(text)?),
    })
}

/// Telegram's limit on a text message, in UTF-16 code units.
pub const MAX_TEXT_LEN: usize = 4096;

/// A plain text message, checked against Telegram's limits.
/// The content of `current` with its text (or caption) replaced by
/// `text`, and each given variant's likewise, for an edit: formatting goes
/// (the text is plain), buttons and files stay.
pub fn corrected(
    current: &Revision,
    text: Option<&str>,
    variants: Vec<Variant>,
) -> Result<(Content, Vec<Variant>), String> {
    if text.is_none() && variants.is_empty() {
        return Err("give the corrected --text, or a --variant".into());
    }
    let replaced = |was: &Content, text: &str| -> Result<Content, String> {
        let checked = text_content(text)?;
        Ok(Content {
            text: checked.text,
            entities: Vec::new(),
            ..was.clone()
        })
    };
    let content = match text {
        Some(text) => replaced(&current.content, text)?,
        None => current.content.clone(),
    };
    let variants = variants
        .into_iter()
        .map(|variant| {
            let was = current
                .variants
                .iter()
                .find(|v| v.language == variant.language)
                .and_then(|v| v.content.as_ref())
                .ok_or_else(|| format!("the campaign has no {} version", variant.language))?;
            let text = variant.content.map(|c| c.text).unwrap_or_default();
            Ok(Variant {
                language: variant.language,
                content: Some(replaced(was, &text)?),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((content, variants))
}

pub fn text_content(text: &str) -> Result<Content, String> {
    let length = text.encode_utf16().count();
    if text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    if length > MAX_TEXT_LEN {
        return Err(format!(
            "the text is {length} characters; Telegram allows {MAX_TEXT_LEN}"
        ));
    }
    let unknown = greeting::unknown_placeholders(text);
    if !unknown.is_empty() {
        return Err(format!(
            "{{{}}} is not a placeholder: use {{first_name}}, {{last_name}}, {{username}} or {{name}}, \
             with a fallback if you like ({{first_name|friend}})",
            unknown.join("}, {")
        ));
    }
    let longest = greeting::longest_filled(text);
    if longest > MAX_TEXT_LEN {
        return Err(format!(
            "with the longest names Telegram allows the text is {longest} characters; \
             Telegram allows {MAX_TEXT_LEN}"
        ));
    }
    Ok(Content {
        kind: ContentKind::Text.into(),
        text: text.to_owned(),
        ..Default::default()
    })
}

/// `--tz`: an IANA time zone.
pub fn time_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    courier_core::schedule::parse_zone(text).map_err(|error| error.to_string())
}

/// One line of `campaign history`: when, what, who, and what it set.
pub fn history_line(event: &Event) -> String {
    use courier_core::proto::v1::event::Payload;
    let at = chrono::DateTime::from_timestamp_millis(event.occurred_at_ms)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| "?".to_owned());
    let by = |id: i64| match id {
        0 => "courier".to_owned(),
        id => format!("user {id}"),
    };
    let (what, detail) = match &event.payload {
        Some(Payload::CampaignCreated(e)) => (
            "created",
            format!(
                "by {}, audience {}{}",
                by(e.created_by),
                e.filter
                    .as_ref()
                    .map_or_else(|| "all".to_owned(), audience::to_text),
                match e.variants.len() {
                    0 => String::new(),
                    n => format!(", {n} language version(s)"),
                }
            ),
        ),
        Some(Payload::CampaignScheduled(e)) => (
            "scheduled",
            format!(
                "by {}, to start {}",
                by(e.scheduled_by),
                chrono::DateTime::from_timestamp_millis(e.start_at_ms)
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default()
            ),
        ),
        Some(Payload::CampaignApprovalRequested(e)) => (
            "awaiting approval",
            format!("asked by {}", by(e.requested_by)),
        ),
        Some(Payload::CampaignStarted(e)) => (
            "started",
            match e.started_by {
                0 => "by its schedule".to_owned(),
                id => format!("by {}", by(id)),
            },
        ),
        Some(Payload::CampaignPaused(e)) if e.reason.is_empty() => {
            ("paused", format!("by {}", by(e.paused_by)))
        }
        Some(Payload::CampaignPaused(e)) => {
            ("paused", format!("by {}: {}", by(e.paused_by), e.reason))
        }
        Some(Payload::CampaignResumed(e)) => ("resumed", format!("by {}", by(e.resumed_by))),
        Some(Payload::CampaignCancelled(e)) => ("cancelled", format!("by {}", by(e.cancelled_by))),
        Some(Payload::CampaignCompleted(_)) => {
            ("completed", "every recipient has an outcome".to_owned())
        }
        Some(Payload::CampaignEdited(e)) => (
            "edited",
            format!(
                "by {}, to version {}{}",
                by(e.edited_by),
                e.revision + 1,
                if e.markup_only { " (buttons only)" } else { "" }
            ),
        ),
        Some(Payload::CampaignRecalled(e)) => (
            "recalled",
            format!("by {}: delivered messages deleted", by(e.recalled_by)),
        ),
        _ => ("(not a campaign event)", String::new()),
    };
    format!("{at}  {what:<17} {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_filters_or_the_seed_codes() {
        assert_eq!(
            audience_filter("ru"),
            Ok(audience::from_legacy(Audience::Ru))
        );
        assert_eq!(audience_filter("all"), Ok(AudienceFilter::default()));
        let filter = audience_filter("lang:ru tag:vip -tag:churned active:30d").unwrap();
        assert_eq!(
            audience::to_text(&filter),
            "lang:ru tag:vip -tag:churned active:30d"
        );
        assert_eq!(
            audience_filter("lang:ru tga:vip").unwrap_err(),
            "\nlang:ru tga:vip\n        ^ \"tga\" is not a term: use lang:, tag:, +tag:, -tag:, source:, joined:FROM..TO or active:Nd"
        );
    }

    #[test]
    fn variants_name_a_language_and_its_text() {
        let variant = variant("ru=Привет = мир").unwrap();
        assert_eq!(variant.language, "ru");
        assert_eq!(variant.content.unwrap().text, "Привет = мир");
        assert!(
            super::variant("Привет")
                .unwrap_err()
                .contains("LANGUAGE=TEXT")
        );
        assert!(super::variant("de=Hallo").unwrap_err().contains("\"de\""));
        assert!(super::variant("en=").unwrap_err().contains("empty"));
    }

    #[test]
    fn texts_are_checked_against_telegram_limits() {
        assert!(text_content("hello").is_ok());
        assert!(text_content("  ").is_err());
        assert!(text_content(&"я".repeat(4096)).is_ok());
        assert!(
            text_content(&"я".repeat(4097))
                .unwrap_err()
                .contains("4097")
        );
        assert!(
            text_content("Hi {frist_name}")
                .unwrap_err()
                .contains("{frist_name}")
        );
        let greeting = format!("{}{{name}}", "я".repeat(4000));
        assert!(text_content(&greeting).unwrap_err().contains("4129"));
        assert!(text_content("Hi {name|friend}").is_ok());
    }
}
