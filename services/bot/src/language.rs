//! Choosing a language with inline buttons: the keyboard `/language` shows
//! and the callback data its buttons carry (`lang:ru`, `lang:en`), which
//! comes back from Telegram untrusted and is parsed here.

use courier_core::proto::v1::Language;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

/// Marks callback data as a language choice, leaving room for other buttons.
const CALLBACK_PREFIX: &str = "lang:";

/// The languages a user can choose, with their buttons' labels (each in its
/// own language, so anyone can find theirs).
const CHOICES: [(Language, &str); 2] = [(Language::Ru, "Русский"), (Language::En, "English")];

/// One row with a button per language.
pub fn keyboard() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([CHOICES
        .map(|(language, label)| InlineKeyboardButton::callback(label, callback_data(language)))])
}

fn callback_data(language: Language) -> String {
    let code = language.code().unwrap_or_default();
    format!("{CALLBACK_PREFIX}{code}")
}

/// The language a pressed button chose; `None` for any other data.
pub fn from_callback_data(data: &str) -> Option<Language> {
    let code = data.strip_prefix(CALLBACK_PREFIX)?;
    CHOICES
        .into_iter()
        .map(|(language, _)| language)
        .find(|language| language.code() == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::InlineKeyboardButtonKind;

    #[test]
    fn every_button_parses_back_to_its_language() {
        let keyboard = keyboard();
        let buttons: Vec<_> = keyboard.inline_keyboard.iter().flatten().collect();
        assert_eq!(buttons.len(), 2);
        let chosen: Vec<_> = buttons
            .iter()
            .map(|button| match &button.kind {
                InlineKeyboardButtonKind::CallbackData(data) => {
                    (button.text.as_str(), from_callback_data(data))
                }
                other => panic!("not a callback button: {other:?}"),
            })
            .collect();
        assert_eq!(
            chosen,
            [
                ("Русский", Some(Language::Ru)),
                ("English", Some(Language::En))
            ]
        );
    }

    #[test]
    fn callback_data_is_compact_and_stable() {
        assert_eq!(callback_data(Language::Ru), "lang:ru");
        assert_eq!(callback_data(Language::En), "lang:en");
    }

    #[test]
    fn other_data_is_not_a_language() {
        for data in [
            "", "lang:", "lang:de", "lang:RU", "ru", "xlang:ru", "lang:ru ",
        ] {
            assert_eq!(from_callback_data(data), None, "{data:?}");
        }
    }
}
