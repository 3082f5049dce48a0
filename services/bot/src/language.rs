//! Choosing a language with inline buttons: the keyboard `/language` shows
//! (the languages the bot offers) and the callback data its buttons carry
//! (`lang:ru`, `lang:en`), which comes back from Telegram untrusted and is
//! parsed here.

use courier_core::bot_languages::BotLanguages;
use courier_core::proto::v1::Language;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

/// Marks callback data as a language choice, leaving room for other buttons.
const CALLBACK_PREFIX: &str = "lang:";

/// The languages a user can choose, with their buttons' labels (each in its
/// own language, so anyone can find theirs).
const CHOICES: [(Language, &str); 2] = [(Language::Ru, "Русский"), (Language::En, "English")];

/// One row with a button per language the bot offers, in its order.
pub fn keyboard(languages: &BotLanguages) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([languages
        .iter()
        .filter_map(|language| CHOICES.iter().find(|(l, _)| *l == language))
        .map(|&(language, label)| InlineKeyboardButton::callback(label, callback_data(language)))
        .collect::<Vec<_>>()])
}

fn callback_data(language: Language) -> String {
    let code = language.code().unwrap_or_default();
    format!("{CALLBACK_PREFIX}{code}")
}

/// The language a pressed button chose; `None` for any other data.
pub fn from_callback_data(data: &str) -> Option<Language> {
    data.strip_prefix(CALLBACK_PREFIX)
        .and_then(Language::from_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::InlineKeyboardButtonKind;

    #[test]
    fn every_button_parses_back_to_its_language() {
        let keyboard = keyboard(&BotLanguages::default());
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
    fn the_buttons_are_the_bots_languages_in_its_order() {
        let labels = |codes: &str| -> Vec<String> {
            keyboard(&codes.parse().unwrap()).inline_keyboard[0]
                .iter()
                .map(|button| button.text.clone())
                .collect()
        };
        assert_eq!(labels("en,ru"), ["English", "Русский"]);
        assert_eq!(labels("ru"), ["Русский"]);
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
