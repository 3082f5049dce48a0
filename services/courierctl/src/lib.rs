//! courierctl's commands, as a library so tests drive them without a shell.

pub mod operations;
pub mod users;

use courier_core::proto::v1::{Content, ContentKind};

/// Telegram's limit on a text message, in UTF-16 code units.
pub const MAX_TEXT_LEN: usize = 4096;

/// A plain text message, checked against Telegram's limits.
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
    Ok(Content {
        kind: ContentKind::Text.into(),
        text: text.to_owned(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
