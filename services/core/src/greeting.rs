//! Personal greetings: `{first_name}`, `{last_name}`, `{username}` and
//! `{name}` in a campaign's text or caption, filled per recipient from the
//! names the registry holds, with `{first_name|friend}` for a value that is
//! missing. The bot checks an admin's text with [`unknown_placeholders`];
//! the senders (and the bot's preview) fill it with [`fill`].
//!
//! Telegram counts entity offsets and lengths in UTF-16 code units, so a
//! name of another length than its placeholder moves every entity after it
//! and resizes one around it: [`fill`] moves them, in those units.

use crate::proto::v1::{MessageEntity, Names};

/// The placeholders a text may use.
pub const PLACEHOLDERS: [&str; 4] = ["first_name", "last_name", "username", "name"];

/// One `{...}` in a text: where it is (bytes), its name and its fallback.
struct Placeholder<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    fallback: Option<&'a str>,
}

/// Every `{identifier}` or `{identifier|fallback}` in `text`, known or not.
/// Other braces (`{ }`, `{1}`, `{Hello}`) are text.
fn placeholders(text: &str) -> impl Iterator<Item = Placeholder<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(open) = text[from..].find('{').map(|i| from + i) {
            from = open + 1;
            // No closing brace after this one: none after any later one.
            let close = text[open..].find('}').map(|i| open + i)?;
            let inside = &text[open + 1..close];
            let (name, fallback) = match inside.split_once('|') {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inside, None),
            };
            let identifier =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if identifier && !fallback.is_some_and(|f| f.contains('{')) {
                from = close + 1;
                return Some(Placeholder {
                    start: open,
                    end: close + 1,
                    name,
                    fallback,
                });
            }
        }
        None
    })
}

/// Placeholder names in `text` that courier does not know (a typo such as
/// `{frist_name}`), each once.
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for placeholder in placeholders(text) {
        if !PLACEHOLDERS.contains(&placeholder.name)
            && !unknown.iter().any(|u| u == placeholder.name)
        {
            unknown.push(placeholder.name.to_owned());
        }
    }
    unknown
}

/// Whether `text` greets anyone by name: its recipients' names must travel
/// with their work items.
pub fn is_personal(text: &str) -> bool {
    placeholders(text).any(|p| PLACEHOLDERS.contains(&p.name))
}

/// What `name` stands for with `names`; empty when unknown.
fn value<'a>(name: &str, names: &'a Names) -> std::borrow::Cow<'a, str> {
    let known = |s: &'a str| (!s.is_empty()).then_some(s);
    match name {
        "first_name" => names.first_name.as_str().into(),
        "last_name" => names.last_name.as_str().into(),
        "username" => names.username.as_str().into(),
        // The fullest name known: "first last", first, last, @username.
        _ => match (known(&names.first_name), known(&names.last_name)) {
            (Some(first), Some(last)) => format!("{first} {last}").into(),
            (Some(one), None) | (None, Some(one)) => one.into(),
            (None, None) => match known(&names.username) {
                Some(username) => format!("@{username}").into(),
                None => "".into(),
            },
        },
    }
}

/// How long `text` can get once filled, in UTF-16 units: with the longest
/// names Telegram allows (64 for first and last names, 32 for usernames),
/// so a text that fits Telegram's limit this way fits it for everyone.
pub fn longest_filled(text: &str) -> usize {
    let longest = Names {
        first_name: "W".repeat(64),
        last_name: "W".repeat(64),
        username: "w".repeat(32),
    };
    utf16(&fill(text, &[], &longest).0) as usize
}

fn utf16(text: &str) -> i64 {
    text.encode_utf16().count() as i64
}

/// `text` with every known placeholder replaced for `names`, and
/// `entities` moved to cover the same text as before: shifted after a
/// placeholder, grown or shrunk around one; a boundary inside a placeholder
/// snaps to its replacement. Entities left empty are dropped (Telegram
/// refuses them).
pub fn fill(text: &str, entities: &[MessageEntity], names: &Names) -> (String, Vec<MessageEntity>) {
    let mut filled = String::with_capacity(text.len());
    // (start, end) of each placeholder in UTF-16 units of `text`, and how
    // long its replacement is.
    let mut moves: Vec<(i64, i64, i64)> = Vec::new();
    let mut copied = 0;
    for placeholder in placeholders(text).filter(|p| PLACEHOLDERS.contains(&p.name)) {
        filled.push_str(&text[copied..placeholder.start]);
        let value = value(placeholder.name, names);
        let replacement = match (value.is_empty(), placeholder.fallback) {
            (true, Some(fallback)) => fallback,
            _ => value.as_ref(),
        };
        filled.push_str(replacement);
        let start = utf16(&text[..placeholder.start]);
        moves.push((start, utf16(&text[..placeholder.end]), utf16(replacement)));
        copied = placeholder.end;
    }
    filled.push_str(&text[copied..]);
    // Where a position of `text` lands in `filled`; `end` says whether it
    // ends an entity (a boundary inside a placeholder snaps outward).
    let position = |at: i64, end: bool| {
        let mut shift = 0;
        for &(start, stop, length) in &moves {
            if at <= start {
                break;
            }
            if at < stop {
                return start + shift + if end { length } else { 0 };
            }
            shift += length - (stop - start);
        }
        at + shift
    };
    let entities = entities
        .iter()
        .filter_map(|entity| {
            let start = position(entity.offset, false);
            let end = position(entity.offset + entity.length, true);
            (end > start).then(|| MessageEntity {
                offset: start,
                length: end - start,
                ..entity.clone()
            })
        })
        .collect();
    (filled, entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(first: &str, last: &str, username: &str) -> Names {
        Names {
            first_name: first.into(),
            last_name: last.into(),
            username: username.into(),
        }
    }

    fn entity(kind: &str, offset: i64, length: i64) -> MessageEntity {
        MessageEntity {
            r#type: kind.into(),
            offset,
            length,
            ..Default::default()
        }
    }

    /// The part of `text` an entity covers, by UTF-16 units as Telegram
    /// reads it.
    fn covered(text: &str, entity: &MessageEntity) -> String {
        let units: Vec<u16> = text.encode_utf16().collect();
        let (start, end) = (
            entity.offset as usize,
            (entity.offset + entity.length) as usize,
        );
        String::from_utf16(&units[start..end]).expect("whole characters")
    }

    /// `text`'s entity over `part` (its first occurrence).
    fn over(text: &str, kind: &str, part: &str) -> MessageEntity {
        let at = text.find(part).expect("the part is in the text");
        entity(kind, utf16(&text[..at]), utf16(part))
    }

    #[test]
    fn cyrillic_and_emoji_names_keep_bold_and_links_on_their_words() {
        let text = "Привет, {first_name}! Читайте новости";
        let entities = [
            over(text, "bold", "{first_name}"),
            over(text, "text_link", "новости"),
        ];
        for (first, greeting) in [
            ("Анна", "Привет, Анна! Читайте новости"),
            ("🦊 Лиса", "Привет, 🦊 Лиса! Читайте новости"),
        ] {
            let (filled, moved) = fill(text, &entities, &names(first, "", ""));
            assert_eq!(filled, greeting);
            assert_eq!(covered(&filled, &moved[0]), first);
            assert_eq!(covered(&filled, &moved[1]), "новости");
            assert_eq!(moved[1].r#type, "text_link");
        }
    }

    #[test]
    fn an_entity_around_a_placeholder_grows_and_one_inside_text_only_shifts() {
        let text = "🎉 Dear {name}, welcome back!";
        let entities = [
            over(text, "italic", "Dear {name}, welcome"),
            over(text, "bold", "back"),
            over(text, "bold", "🎉"),
        ];
        let (filled, moved) = fill(text, &entities, &names("Ann", "Lee", ""));
        assert_eq!(filled, "🎉 Dear Ann Lee, welcome back!");
        assert_eq!(covered(&filled, &moved[0]), "Dear Ann Lee, welcome");
        assert_eq!(covered(&filled, &moved[1]), "back");
        assert_eq!(covered(&filled, &moved[2]), "🎉");
    }

    #[test]
    fn a_boundary_inside_a_placeholder_snaps_to_its_replacement() {
        let text = "Hi {first_name} there";
        // Starts inside `{first_name}` and ends inside it, or past it.
        let inside = entity("bold", 5, 4);
        let across = entity("italic", 6, 15);
        let (filled, moved) = fill(text, &[inside, across], &names("Анна", "", ""));
        assert_eq!(filled, "Hi Анна there");
        assert_eq!(covered(&filled, &moved[0]), "Анна");
        assert_eq!(covered(&filled, &moved[1]), "Анна there");
    }

    #[test]
    fn an_entity_that_covered_only_an_empty_value_is_dropped() {
        let text = "Hi {last_name}!";
        let (filled, moved) = fill(
            text,
            &[over(text, "bold", "{last_name}")],
            &names("Ann", "", ""),
        );
        assert_eq!(filled, "Hi !");
        assert!(moved.is_empty());
    }

    #[test]
    fn missing_values_take_the_fallback_or_nothing() {
        let nobody = names("", "", "");
        assert_eq!(fill("Hi {username|друг}!", &[], &nobody).0, "Hi друг!");
        assert_eq!(
            fill("Hi {username|друг}!", &[], &names("", "", "ann")).0,
            "Hi ann!"
        );
        assert_eq!(fill("Hi {first_name}!", &[], &nobody).0, "Hi !");
        assert_eq!(fill("Hi {name|there}!", &[], &nobody).0, "Hi there!");
    }

    #[test]
    fn name_is_the_fullest_known() {
        for (names, expected) in [
            (names("Ann", "Lee", "ann"), "Ann Lee"),
            (names("Ann", "", "ann"), "Ann"),
            (names("", "Lee", "ann"), "Lee"),
            (names("", "", "ann"), "@ann"),
            (names("", "", ""), ""),
        ] {
            assert_eq!(fill("{name}", &[], &names).0, expected);
        }
    }

    #[test]
    fn the_longest_filling_uses_the_longest_names_telegram_allows() {
        assert_eq!(longest_filled("Hi {first_name}!"), 3 + 64 + 1);
        assert_eq!(longest_filled("{name}"), 64 + 1 + 64);
        assert_eq!(longest_filled("@{username}"), 33);
        assert_eq!(longest_filled("Привет"), 6);
    }

    #[test]
    fn other_braces_are_text_and_typos_are_named() {
        let text = "{ } {1} {Hello} {frist_name} {first_name} {frist_name|x} {a";
        assert_eq!(unknown_placeholders(text), ["frist_name"]);
        assert_eq!(
            fill(text, &[], &names("Ann", "", "")).0,
            "{ } {1} {Hello} {frist_name} Ann {frist_name|x} {a"
        );
        assert!(is_personal("Hi {name}"));
        assert!(!is_personal("Hi {frist_name} {1}"));
        assert!(unknown_placeholders("Hi {name}").is_empty());
    }
}
