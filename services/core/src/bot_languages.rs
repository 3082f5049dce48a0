//! The languages a bot offers its users: some of those courier speaks, in
//! the bot's order. A bot per country offers one; its users are not asked
//! to choose, a broadcast asks for no other version, and a new user whose
//! app speaks another language gets the bot's first.

use std::str::FromStr;

use crate::proto::v1::Language;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotLanguages(Vec<Language>);

impl Default for BotLanguages {
    /// Every language courier speaks.
    fn default() -> Self {
        BotLanguages(Language::SPOKEN.to_vec())
    }
}

impl BotLanguages {
    /// From codes as typed (`ru`, `en`): each one courier speaks, at least
    /// one, a repeat ignored.
    pub fn parse<S: AsRef<str>>(codes: &[S]) -> Result<BotLanguages, String> {
        let mut languages = Vec::new();
        for code in codes {
            let code = code.as_ref().trim();
            let language = Language::from_code(code)
                .ok_or_else(|| format!("unknown language {code:?}: courier speaks {}", spoken()))?;
            if !languages.contains(&language) {
                languages.push(language);
            }
        }
        if languages.is_empty() {
            return Err(format!("no language given: courier speaks {}", spoken()));
        }
        Ok(BotLanguages(languages))
    }

    /// From the languages of a `BotLanguagesSet`; none (never set, or only
    /// unknown values) is every language.
    pub fn from_event(languages: impl IntoIterator<Item = Language>) -> BotLanguages {
        let known: Vec<_> = languages
            .into_iter()
            .filter(|language| Language::SPOKEN.contains(language))
            .collect();
        if known.is_empty() {
            BotLanguages::default()
        } else {
            BotLanguages(known)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Language> + '_ {
        self.0.iter().copied()
    }

    pub fn offers(&self, language: Language) -> bool {
        self.0.contains(&language)
    }

    /// More than one: users are asked which they want.
    pub fn is_a_choice(&self) -> bool {
        self.0.len() > 1
    }

    /// The bot's first language (its only one, if it has one).
    pub fn first(&self) -> Language {
        self.0[0]
    }

    /// A new user's language: their app's, if the bot offers it, else the
    /// bot's first.
    pub fn for_new_user(&self, app_language: Option<&str>) -> Language {
        let guess = Language::guess_from_telegram(app_language);
        if self.offers(guess) {
            guess
        } else {
            self.first()
        }
    }

    /// The codes, comma-separated, as `BOT_LANGUAGES` takes them.
    pub fn codes(&self) -> String {
        self.iter()
            .filter_map(Language::code)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for BotLanguages {
    type Err = String;

    fn from_str(codes: &str) -> Result<Self, Self::Err> {
        BotLanguages::parse(&codes.split(',').collect::<Vec<_>>())
    }
}

fn spoken() -> String {
    BotLanguages::default().codes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_in_the_bots_order_and_an_unknown_one_is_named() {
        let english_first: BotLanguages = "en, ru,en".parse().unwrap();
        assert_eq!(
            english_first.iter().collect::<Vec<_>>(),
            [Language::En, Language::Ru]
        );
        assert_eq!(english_first.codes(), "en,ru");
        assert_eq!(
            "en,de".parse::<BotLanguages>(),
            Err(r#"unknown language "de": courier speaks ru,en"#.to_owned())
        );
        assert!(BotLanguages::parse::<&str>(&[]).is_err());
    }

    #[test]
    fn a_new_user_gets_their_apps_language_if_offered_else_the_bots_first() {
        let english_only = BotLanguages::parse(&["en"]).unwrap();
        assert_eq!(english_only.for_new_user(Some("ru")), Language::En);
        assert!(!english_only.is_a_choice());
        let both = BotLanguages::default();
        assert_eq!(both.for_new_user(Some("ru-RU")), Language::Ru);
        assert_eq!(both.for_new_user(None), Language::En);
        assert!(both.is_a_choice());
        let russian_only = BotLanguages::parse(&["ru"]).unwrap();
        assert_eq!(russian_only.for_new_user(None), Language::Ru);
    }

    #[test]
    fn a_bot_whose_languages_were_never_set_offers_every_language() {
        assert_eq!(BotLanguages::from_event([]), BotLanguages::default());
        assert_eq!(
            BotLanguages::from_event([Language::Unspecified]),
            BotLanguages::default()
        );
        assert_eq!(
            BotLanguages::from_event([Language::Ru]),
            BotLanguages::parse(&["ru"]).unwrap()
        );
    }
}
