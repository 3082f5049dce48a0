//! /broadcast step 1, building a segment with buttons: each press changes
//! one part of the filter ([`refine`]), and the card shows the filter, the
//! audience it reaches now and the buttons to change it ([`card`]). Pure:
//! the handlers in [`crate::broadcast`] count and edit the message.

use courier_core::audience::{self, AudienceSize};
use courier_core::bot_languages::BotLanguages;
use courier_core::proto::v1::AudienceFilter;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::actions::{Action, Refinement};
use crate::storage::Popular;

/// The "active within" choices offered; 0 is any time.
const ACTIVE_DAYS: [u32; 4] = [0, 7, 30, 90];

/// Shown with every card: typing is the way to everything buttons lack.
pub const TYPE_HINT: &str = "Tap to refine, or type a filter, e.g. \
     lang:ru tag:vip -tag:churned +tag:paid source:ad_spring joined:2026-01-01.. active:30d";

/// `filter` after one press.
pub fn refine(mut filter: AudienceFilter, press: Refinement) -> AudienceFilter {
    match press {
        Refinement::Language(language) => {
            toggle(&mut filter.languages, language.code().unwrap_or_default())
        }
        Refinement::Tag(tag) => {
            if remove(&mut filter.tags_any, &tag) {
                filter.tags_none.push(tag);
            } else if !remove(&mut filter.tags_none, &tag) && !remove(&mut filter.tags_all, &tag) {
                filter.tags_any.push(tag);
            }
        }
        Refinement::Active(days) => filter.active_within_days = days,
        Refinement::Source(source) => toggle(&mut filter.sources, &source),
        Refinement::Everyone => filter = AudienceFilter::default(),
    }
    filter
}

fn toggle(values: &mut Vec<String>, value: &str) {
    if !remove(values, value) {
        values.push(value.to_owned());
    }
}

fn remove(values: &mut Vec<String>, value: &str) -> bool {
    let before = values.len();
    values.retain(|v| v != value);
    values.len() != before
}

/// What the builder knows besides the filter: the audience it reaches now
/// and the tags and sources worth a button.
pub struct Choices<'a> {
    pub size: AudienceSize,
    pub tags: &'a [Popular],
    pub sources: &'a [Popular],
    /// Tags the filter names that no user has (typed, most likely a typo).
    pub unknown_tags: &'a [String],
    /// The bot's languages: with one, no language to pick.
    pub languages: &'a BotLanguages,
}

/// The builder's card: its text and buttons.
pub fn card(filter: &AudienceFilter, choices: &Choices) -> (String, InlineKeyboardMarkup) {
    (text(filter, choices), keyboard(filter, choices))
}

fn text(filter: &AudienceFilter, choices: &Choices) -> String {
    let size = choices.size;
    let mut text = format!(
        "New broadcast, step 1 of 4: build the audience.\n\n\
         Audience: {} · {} recipients now",
        audience::to_text(filter),
        size.recipients
    );
    if size.opted_out > 0 {
        text.push_str(&format!(
            "\n{} more match but opted out with /stop.",
            size.opted_out
        ));
    }
    if !choices.unknown_tags.is_empty() {
        text.push_str(&format!(
            "\n⚠️ No user has the tag(s) {}: check the spelling.",
            choices.unknown_tags.join(", ")
        ));
    }
    if size.recipients == 0 {
        text.push_str("\n⚠️ Nobody matches this audience now: change it to go on.");
    }
    text.push_str("\n\n");
    text.push_str(TYPE_HINT);
    text
}

fn keyboard(filter: &AudienceFilter, choices: &Choices) -> InlineKeyboardMarkup {
    let mark = |on: bool| if on { "✅" } else { "⬜" };
    let mut rows: Vec<Vec<InlineKeyboardButton>> = Vec::new();
    if choices.languages.is_a_choice() {
        rows.push(
            choices
                .languages
                .iter()
                .map(|language| {
                    let code = language.code().unwrap_or_default();
                    let on = filter.languages.iter().any(|l| l == code);
                    Action::Refine(Refinement::Language(language))
                        .button(format!("{} {code}", mark(on)))
                })
                .collect(),
        );
    }
    // The popular ones, and any the filter uses that are not among them,
    // so every part can be taken back with a tap.
    let tags = offered(
        choices.tags,
        [&filter.tags_any, &filter.tags_all, &filter.tags_none],
    );
    let tag_buttons = tags.into_iter().map(|(tag, users)| {
        let state = if filter.tags_any.contains(&tag) {
            "✅"
        } else if filter.tags_none.contains(&tag) {
            "🚫"
        } else if filter.tags_all.contains(&tag) {
            "➕"
        } else {
            "⬜"
        };
        let label = format!("{state} #{tag}{}", count(users));
        Action::Refine(Refinement::Tag(tag)).button(label)
    });
    rows.extend(pairs(tag_buttons.collect()));
    rows.push(
        ACTIVE_DAYS
            .into_iter()
            .map(|days| {
                let label = match days {
                    0 => "any time".to_owned(),
                    days => format!("active {days}d"),
                };
                let on = filter.active_within_days == days;
                Action::Refine(Refinement::Active(days)).button(format!("{} {label}", mark(on)))
            })
            .collect(),
    );
    let sources = offered(choices.sources, [&filter.sources]);
    let source_buttons = sources
        .into_iter()
        .map(|(source, users)| {
            let on = filter.sources.contains(&source);
            let label = format!("{} from {source}{}", mark(on), count(users));
            (Action::Refine(Refinement::Source(source)), label)
        })
        .filter(|(action, _)| action.fits())
        .map(|(action, label)| action.button(label));
    rows.extend(pairs(source_buttons.collect()));
    let mut last = Vec::new();
    if choices.size.recipients > 0 {
        last.push(Action::UseSegment.button(format!("✅ Use · {}", choices.size.recipients)));
    }
    last.push(Action::Refine(Refinement::Everyone).button("↺ Everyone"));
    last.push(Action::Abort.button("✖️ Cancel"));
    rows.push(last);
    InlineKeyboardMarkup::new(rows)
}

/// The popular values with their counts, then those `used` that are not
/// popular (no count known).
fn offered<const N: usize>(
    popular: &[Popular],
    used: [&Vec<String>; N],
) -> Vec<(String, Option<i64>)> {
    let mut offered: Vec<(String, Option<i64>)> = popular
        .iter()
        .map(|p| (p.value.clone(), Some(p.users)))
        .collect();
    for value in used.into_iter().flatten() {
        if !offered.iter().any(|(v, _)| v == value) {
            offered.push((value.clone(), None));
        }
    }
    offered
}

fn count(users: Option<i64>) -> String {
    users.map(|n| format!(" · {n}")).unwrap_or_default()
}

fn pairs(buttons: Vec<InlineKeyboardButton>) -> Vec<Vec<InlineKeyboardButton>> {
    buttons.chunks(2).map(<[_]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::proto::v1::Language;
    use teloxide::types::InlineKeyboardButtonKind;

    fn popular(value: &str, users: i64) -> Popular {
        Popular {
            value: value.into(),
            users,
        }
    }

    fn labels(keyboard: &InlineKeyboardMarkup) -> Vec<String> {
        keyboard
            .inline_keyboard
            .iter()
            .flatten()
            .map(|b| b.text.clone())
            .collect()
    }

    fn data(keyboard: &InlineKeyboardMarkup) -> Vec<String> {
        keyboard
            .inline_keyboard
            .iter()
            .flatten()
            .filter_map(|b| match &b.kind {
                InlineKeyboardButtonKind::CallbackData(data) => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn presses_build_a_filter() {
        let mut filter = AudienceFilter::default();
        for press in [
            Refinement::Language(Language::Ru),
            Refinement::Tag("vip".into()),
            Refinement::Tag("churned".into()),
            Refinement::Tag("churned".into()),
            Refinement::Active(30),
            Refinement::Source("ad_spring".into()),
        ] {
            filter = refine(filter, press);
        }
        assert_eq!(
            audience::to_text(&filter),
            "lang:ru tag:vip -tag:churned source:ad_spring active:30d"
        );
        // Each part comes back off with more presses.
        for press in [
            Refinement::Language(Language::Ru),
            Refinement::Tag("vip".into()),
            Refinement::Tag("vip".into()),
            Refinement::Tag("churned".into()),
            Refinement::Active(0),
            Refinement::Source("ad_spring".into()),
        ] {
            filter = refine(filter, press);
        }
        assert_eq!(filter, AudienceFilter::default());
    }

    #[test]
    fn a_typed_all_of_tag_comes_off_with_a_press() {
        let filter = audience::parse("+tag:paid").unwrap();
        assert_eq!(
            refine(filter, Refinement::Tag("paid".into())),
            AudienceFilter::default()
        );
        let filter = audience::parse("lang:en tag:vip").unwrap();
        assert_eq!(
            refine(filter, Refinement::Everyone),
            AudienceFilter::default()
        );
    }

    #[test]
    fn the_card_shows_the_count_the_choices_and_their_state() {
        let filter = audience::parse("lang:ru tag:vip -tag:churned +tag:paid active:30d").unwrap();
        let tags = [
            popular("vip", 120),
            popular("churned", 40),
            popular("gold", 7),
        ];
        let sources = [popular("ad_spring", 300), popular(&"s".repeat(64), 1)];
        let choices = Choices {
            size: AudienceSize {
                recipients: 95,
                opted_out: 3,
            },
            tags: &tags,
            sources: &sources,
            unknown_tags: &[],
            languages: &BotLanguages::default(),
        };
        let (text, keyboard) = card(&filter, &choices);
        assert!(
            text.contains(
                "Audience: lang:ru tag:vip +tag:paid -tag:churned active:30d · 95 recipients now"
            ),
            "{text}"
        );
        assert!(text.contains("3 more match but opted out"), "{text}");
        let labels = labels(&keyboard);
        for expected in [
            "✅ ru",
            "⬜ en",
            "✅ #vip · 120",
            "🚫 #churned · 40",
            "⬜ #gold · 7",
            "➕ #paid",
            "✅ active 30d",
            "⬜ any time",
            "⬜ from ad_spring · 300",
            "✅ Use · 95",
        ] {
            assert!(
                labels.iter().any(|l| l == expected),
                "{expected} in {labels:?}"
            );
        }
        // The 64-character source does not fit in callback data.
        assert!(data(&keyboard).iter().all(|d| d.len() <= 64));
        assert!(!labels.iter().any(|l| l.contains("sss")));
        for data in data(&keyboard) {
            assert!(Action::parse(&data).is_some(), "{data}");
        }
    }

    #[test]
    fn an_audience_of_nobody_cannot_be_used_and_says_why() {
        let choices = Choices {
            size: AudienceSize {
                recipients: 0,
                opted_out: 0,
            },
            tags: &[],
            sources: &[],
            unknown_tags: &["vpi".to_owned()],
            languages: &BotLanguages::default(),
        };
        let (text, keyboard) = card(&audience::parse("tag:vpi").unwrap(), &choices);
        assert!(text.contains("Nobody matches this audience now"), "{text}");
        assert!(text.contains("No user has the tag(s) vpi"), "{text}");
        assert!(!labels(&keyboard).iter().any(|l| l.starts_with("✅ Use")));
        assert!(
            labels(&keyboard).iter().any(|l| l == "✅ #vpi"),
            "a used tag can be taken off"
        );
    }
}
