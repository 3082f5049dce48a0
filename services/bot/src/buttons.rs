//! The URL buttons an admin may add under a broadcast, written one per line
//! as `Text - https://...`. Parsed here, every line checked the way
//! Telegram checks button URLs, so a bad line is refused with its number
//! instead of breaking the campaign for every recipient. Pure.

use std::fmt;

use courier_core::proto::v1::{Button, ButtonRow, button};

/// What separates a button's text from its URL.
const SEPARATOR: &str = " - ";
/// Telegram allows at most 100 buttons in one keyboard.
const MAX_BUTTONS: usize = 100;

pub const FORMAT_HINT: &str = "one button per line, as: Text - https://example.com";

/// A line that is not a button, numbered from 1 as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// One row per non-blank line, or every bad line.
pub fn parse(text: &str) -> Result<Vec<ButtonRow>, Vec<LineError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    for (index, line) in lines {
        match parse_line(line) {
            Ok(button) => rows.push(ButtonRow {
                buttons: vec![button],
            }),
            Err(reason) => errors.push(LineError {
                line: index + 1,
                reason,
            }),
        }
    }
    if rows.len() > MAX_BUTTONS {
        errors.push(LineError {
            line: text.lines().count(),
            reason: "Telegram allows at most 100 buttons",
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(LineError {
            line: 1,
            reason: "no buttons found",
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn parse_line(line: &str) -> Result<Button, &'static str> {
    // The last separator: a button's text may contain " - " itself.
    let (text, url) = line
        .rsplit_once(SEPARATOR)
        .ok_or("expected: Text - https://...")?;
    let (text, url) = (text.trim(), url.trim());
    if text.is_empty() {
        return Err("the button has no text before ` - `");
    }
    if !is_button_url(url) {
        return Err("the URL must start with https://, http:// or tg:// and have no spaces");
    }
    Ok(Button {
        text: text.to_owned(),
        action: Some(button::Action::Url(url.to_owned())),
        ..Default::default()
    })
}

/// What Telegram accepts in a URL button: http(s) or tg with something
/// after the scheme and no whitespace.
fn is_button_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = ["https://", "http://", "tg://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_button(text: &str, url: &str) -> ButtonRow {
        ButtonRow {
            buttons: vec![Button {
                text: text.into(),
                action: Some(button::Action::Url(url.into())),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn each_line_is_a_row_of_one_button() {
        let rows =
            parse("Open site - https://example.com/a?b=1\n\n  Chat - tg://resolve?domain=x  ");
        assert_eq!(
            rows,
            Ok(vec![
                url_button("Open site", "https://example.com/a?b=1"),
                url_button("Chat", "tg://resolve?domain=x"),
            ])
        );
    }

    #[test]
    fn the_text_may_contain_the_separator() {
        assert_eq!(
            parse("Q&A - live - http://example.com"),
            Ok(vec![url_button("Q&A - live", "http://example.com")])
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_numbers() {
        let errors = parse("Good - https://example.com\nno separator\n\n - https://x.org\nBad - ftp://x.org\nSpace - https://a b")
            .unwrap_err();
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 4, 5, 6]);
        assert_eq!(
            errors[0].to_string(),
            "line 2: expected: Text - https://..."
        );
        assert_eq!(
            errors[1].to_string(),
            "line 4: the button has no text before ` - `"
        );
        assert!(errors[2].reason.contains("https://"));
    }

    #[test]
    fn nothing_or_too_much_is_refused() {
        assert_eq!(parse(" \n ").unwrap_err()[0].reason, "no buttons found");
        let many = "B - https://example.com\n".repeat(101);
        assert_eq!(
            parse(&many).unwrap_err()[0].reason,
            "Telegram allows at most 100 buttons"
        );
    }
}
