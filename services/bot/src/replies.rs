//! What the bot says, in the user's language. English is the fallback for
//! an unset language, as it is for Telegram clients in other languages.

use courier_core::proto::v1::Language;

/// The answer to `/start`.
pub fn greeting(language: Language) -> &'static str {
    match language {
        Language::Ru => {
            "Привет! Теперь вы будете получать наши новости. Сменить язык: /language, отписаться: /stop"
        }
        Language::En | Language::Unspecified => {
            "Hi! You will now receive our news. To change the language, send /language; to stop them, /stop"
        }
    }
}

/// Shown with the language buttons. In both languages: the user may not
/// read the one Telegram's app language suggests.
pub const CHOOSE_LANGUAGE: &str = "Выберите язык · Choose your language";

/// The answer to `/language` in a bot that offers one language.
pub fn only_language(language: Language) -> &'static str {
    match language {
        Language::Ru => "Этот бот пишет только на русском.",
        Language::En | Language::Unspecified => "This bot speaks English only.",
    }
}

/// Replaces the language buttons once a choice is saved.
pub fn language_set(language: Language) -> &'static str {
    match language {
        Language::Ru => "Готово: новости будут приходить на русском.",
        Language::En | Language::Unspecified => "Done: you will receive news in English.",
    }
}

/// The answer to `/stop`.
pub fn stopped(language: Language) -> &'static str {
    match language {
        Language::Ru => {
            "Готово: рассылки больше не придут. Бот по-прежнему работает; вернуть рассылки: /subscribe"
        }
        Language::En | Language::Unspecified => {
            "Done: no more news from us. The bot still works; to get the news again, send /subscribe"
        }
    }
}

/// The answer to `/subscribe`.
pub fn subscribed(language: Language) -> &'static str {
    match language {
        Language::Ru => "Готово: вы снова будете получать наши новости. Отписаться: /stop",
        Language::En | Language::Unspecified => {
            "Done: you will receive our news again. To stop, send /stop"
        }
    }
}

/// When the bot could not record what the user did.
pub fn failure(language: Language) -> &'static str {
    match language {
        Language::Ru => "Что-то пошло не так. Попробуйте ещё раз чуть позже.",
        Language::En | Language::Unspecified => {
            "Something went wrong. Please try again in a moment."
        }
    }
}
