//! Who a campaign is for. An [`AudienceFilter`] (languages, tags, source,
//! when users joined, how recently they were active) has one text form,
//! which admins type in courierctl and the read model stores:
//!
//! ```text
//! lang:ru,en tag:vip,gold +tag:paid -tag:churned source:ad_spring joined:2026-01-01..2026-03-31 active:30d
//! ```
//!
//! - `lang:a,b` speaks any of these languages;
//! - `tag:a,b` has at least one of these tags, `+tag:a,b` has all of them,
//!   `-tag:a,b` has none of them;
//! - `source:a,b` came from any of these `/start` deep links;
//! - `joined:FROM..TO` was first seen between these UTC days (inclusive; either
//!   end may be left out);
//! - `active:Nd` wrote or pressed a button within N days of the start;
//! - nothing (or `all`): everyone.
//!
//! Users who blocked the bot or opted out of broadcasts are never in an
//! audience, whatever the filter. The filter becomes SQL in one place
//! ([`Recipients`]), used both to count an audience for an admin and to fix
//! it when a campaign starts, so the two cannot disagree.

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::proto::v1::event::Payload;
use crate::proto::v1::{
    Audience, AudienceFilter, Button, ButtonRow, Content, InlineKeyboard, Language, UserTagged,
    UserUntagged, Variant, button,
};

/// A tag: lower-case letters, digits, `_` and `-`, at most this long.
pub const MAX_TAG_LEN: usize = 32;

/// Telegram's own limit on a `/start` parameter.
pub const MAX_SOURCE_LEN: usize = 64;

/// What the filter's text form says everyone is.
const EVERYONE: &str = "all";

const LANGUAGES: [Language; 2] = [Language::Ru, Language::En];

/// A filter's text that could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", .at + 1)]
pub struct ParseError {
    /// Where the problem starts, in characters from 0.
    pub at: usize,
    pub message: String,
}

impl ParseError {
    /// The input with a caret under the problem, then the message: what
    /// courierctl prints and the bot replies.
    pub fn pointing_into(&self, input: &str) -> String {
        format!("{input}\n{}^ {}", " ".repeat(self.at), self.message)
    }
}

/// The filter for the seed's one-tap audiences (ru, en, all), which
/// campaigns created before filters existed carry.
pub fn from_legacy(audience: Audience) -> AudienceFilter {
    AudienceFilter {
        languages: match audience {
            Audience::Ru => vec!["ru".into()],
            Audience::En => vec!["en".into()],
            Audience::All | Audience::Unspecified => Vec::new(),
        },
        ..AudienceFilter::default()
    }
}

/// A language's filter: the seed's one-tap choice.
pub fn language(language: Language) -> AudienceFilter {
    AudienceFilter {
        languages: language.code().map(String::from).into_iter().collect(),
        ..AudienceFilter::default()
    }
}

/// The callback data of the Unsubscribe button a campaign may carry: a
/// press opts the user out of broadcasts (the bot answers it).
pub const UNSUBSCRIBE: &str = "unsubscribe";

/// A campaign's default content and its variants, each with an
/// Unsubscribe button below its own buttons, labelled in its language.
pub fn with_unsubscribe_buttons(
    content: Content,
    variants: Vec<Variant>,
) -> (Content, Vec<Variant>) {
    let variants = variants
        .into_iter()
        .map(|variant| Variant {
            content: variant
                .content
                .map(|content| with_unsubscribe_button(content, &variant.language)),
            language: variant.language,
        })
        .collect();
    (with_unsubscribe_button(content, ""), variants)
}

/// `content` with an Unsubscribe button below its own, labelled in
/// `language` (a `Language` code; English otherwise).
fn with_unsubscribe_button(mut content: Content, language: &str) -> Content {
    let label = match language {
        "ru" => "Отписаться от рассылки",
        _ => "Unsubscribe",
    };
    let row = ButtonRow {
        buttons: vec![Button {
            text: label.to_owned(),
            action: Some(button::Action::CallbackData(UNSUBSCRIBE.to_owned())),
            ..Default::default()
        }],
    };
    content
        .keyboard
        .get_or_insert_with(InlineKeyboard::default)
        .rows
        .push(row);
    content
}

/// Putting tags on a user, or taking them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    Put,
    TakeOff,
}

impl Tagging {
    /// The event that records it on bot `bot_id`'s user; `by` is the
    /// Telegram user who did it, 0 for an operator (courierctl, an import).
    pub fn event(self, bot_id: i64, user_id: i64, tag: String, by: i64) -> Payload {
        match self {
            Tagging::Put => Payload::UserTagged(UserTagged {
                user_id,
                tag,
                tagged_by: by,
                bot_id,
            }),
            Tagging::TakeOff => Payload::UserUntagged(UserUntagged {
                user_id,
                tag,
                untagged_by: by,
                bot_id,
            }),
        }
    }
}

/// A tag as stored: trimmed and lower-cased, or why it cannot be one.
pub fn tag(raw: &str) -> Result<String, String> {
    let tag = raw.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if tag.is_empty() || tag.len() > MAX_TAG_LEN || !tag.chars().all(allowed) {
        return Err(format!(
            "{raw:?} is not a tag: use 1 to {MAX_TAG_LEN} letters a-z, digits, '_' or '-'"
        ));
    }
    Ok(tag)
}

/// A deep-link source as Telegram allows it (A-Z, a-z, 0-9, `_`, `-`).
pub fn source(raw: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if raw.is_empty() || raw.len() > MAX_SOURCE_LEN || !raw.chars().all(allowed) {
        return Err(format!(
            "{raw:?} is not a source: deep links carry 1 to {MAX_SOURCE_LEN} of A-Z, a-z, 0-9, '_' or '-'"
        ));
    }
    Ok(raw.to_owned())
}

/// Reads a filter's text form (see the module's doc).
pub fn parse(input: &str) -> Result<AudienceFilter, ParseError> {
    let mut filter = AudienceFilter::default();
    let mut seen: Vec<&str> = Vec::new();
    for (at, term) in terms(input) {
        if term == EVERYONE {
            continue;
        }
        let error = |offset: usize, message: String| ParseError {
            at: at + offset,
            message,
        };
        let Some((key, value)) = term.split_once(':') else {
            return Err(error(0, format!("{term:?} is not a term: {}", TERMS_HELP)));
        };
        if seen.contains(&key) {
            return Err(error(
                0,
                format!("{key}: appears twice; list its values with commas"),
            ));
        }
        seen.push(key);
        let value_at = key.chars().count() + 1;
        let list = || -> Result<Vec<(usize, &str)>, ParseError> {
            let mut items = Vec::new();
            let mut offset = value_at;
            for item in value.split(',') {
                if item.is_empty() {
                    return Err(error(
                        offset,
                        format!("{key}: needs a value after ':' and each ','"),
                    ));
                }
                items.push((offset, item));
                offset += item.chars().count() + 1;
            }
            Ok(items)
        };
        let tags = || -> Result<Vec<String>, ParseError> {
            list()?
                .into_iter()
                .map(|(offset, item)| tag(item).map_err(|m| error(offset, m)))
                .collect()
        };
        match key {
            "lang" => {
                for (offset, item) in list()? {
                    if !LANGUAGES.iter().any(|l| l.code() == Some(item)) {
                        return Err(error(
                            offset,
                            format!("{item:?} is not a language courier knows: use ru or en"),
                        ));
                    }
                    filter.languages.push(item.to_owned());
                }
            }
            "tag" => filter.tags_any = tags()?,
            "+tag" => filter.tags_all = tags()?,
            "-tag" => filter.tags_none = tags()?,
            "source" => {
                for (offset, item) in list()? {
                    filter
                        .sources
                        .push(source(item).map_err(|m| error(offset, m))?);
                }
            }
            "joined" => {
                let (from, to) = value.split_once("..").ok_or_else(|| {
                    error(value_at, "joined: takes FROM..TO, e.g. joined:2026-01-01..2026-03-31 or joined:2026-01-01..".into())
                })?;
                let day = |text: &str, offset: usize| -> Result<i64, ParseError> {
                    if text.is_empty() {
                        return Ok(0);
                    }
                    NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .ok()
                        .and_then(unix_day)
                        .ok_or_else(|| {
                            error(offset, format!("{text:?} is not a day like 2026-03-31"))
                        })
                };
                filter.joined_from_day = day(from, value_at)?;
                filter.joined_to_day = day(to, value_at + from.chars().count() + 2)?;
                if from.is_empty() && to.is_empty() {
                    return Err(error(value_at, "joined: needs at least one day".into()));
                }
                if filter.joined_to_day != 0 && filter.joined_from_day > filter.joined_to_day {
                    return Err(error(
                        value_at,
                        "joined: the first day is after the last".into(),
                    ));
                }
            }
            "active" => {
                filter.active_within_days = value
                    .strip_suffix('d')
                    .and_then(|days| days.parse().ok())
                    .filter(|&days| days > 0)
                    .ok_or_else(|| {
                        error(
                            value_at,
                            format!("{value:?} is not a number of days like 30d"),
                        )
                    })?;
            }
            _ => return Err(error(0, format!("{key:?} is not a term: {}", TERMS_HELP))),
        }
    }
    dedup(&mut filter.languages);
    for list in [
        &mut filter.tags_any,
        &mut filter.tags_all,
        &mut filter.tags_none,
        &mut filter.sources,
    ] {
        dedup(list);
    }
    Ok(filter)
}

const TERMS_HELP: &str = "use lang:, tag:, +tag:, -tag:, source:, joined:FROM..TO or active:Nd";

/// The filter's text form, which [`parse`] reads back as the same filter.
/// Every user is `all`.
pub fn to_text(filter: &AudienceFilter) -> String {
    let mut terms = Vec::new();
    for (key, values) in [
        ("lang", &filter.languages),
        ("tag", &filter.tags_any),
        ("+tag", &filter.tags_all),
        ("-tag", &filter.tags_none),
        ("source", &filter.sources),
    ] {
        if !values.is_empty() {
            terms.push(format!("{key}:{}", values.join(",")));
        }
    }
    if filter.joined_from_day != 0 || filter.joined_to_day != 0 {
        let day = |d: i64| {
            (d != 0)
                .then(|| from_unix_day(d))
                .flatten()
                .unwrap_or_default()
        };
        terms.push(format!(
            "joined:{}..{}",
            day(filter.joined_from_day),
            day(filter.joined_to_day)
        ));
    }
    if filter.active_within_days != 0 {
        terms.push(format!("active:{}d", filter.active_within_days));
    }
    if terms.is_empty() {
        EVERYONE.to_owned()
    } else {
        terms.join(" ")
    }
}

/// Whitespace-separated terms (spaces, or lines as typed in a chat) with
/// the character index each starts at.
fn terms(input: &str) -> Vec<(usize, &str)> {
    let mut terms = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (at, (byte, c)) in input.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some((from, from_byte))) => {
                terms.push((from, &input[from_byte..byte]));
                start = None;
            }
            (false, None) => start = Some((at, byte)),
            _ => {}
        }
    }
    if let Some((from, from_byte)) = start {
        terms.push((from, &input[from_byte..]));
    }
    terms
}

fn dedup(values: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    values.retain(|v| seen.insert(v.clone()));
}

fn unix_day(date: NaiveDate) -> Option<i64> {
    let day = (date - NaiveDate::default()).num_days();
    (day > 0).then_some(day)
}

fn from_unix_day(day: i64) -> Option<String> {
    NaiveDate::default()
        .checked_add_days(Days::new(u64::try_from(day).ok()?))
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// The filter's bounds as instants, for a campaign starting (or an
/// audience counted) `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub joined_from: Option<DateTime<Utc>>,
    /// Exclusive: the start of the day after the filter's last day.
    pub joined_before: Option<DateTime<Utc>>,
    pub active_since: Option<DateTime<Utc>>,
}

impl Bounds {
    pub fn new(filter: &AudienceFilter, now: DateTime<Utc>) -> Bounds {
        let day_start = |day: i64| {
            (day != 0)
                .then(|| DateTime::<Utc>::UNIX_EPOCH.checked_add_days(Days::new(day as u64)))
                .flatten()
        };
        Bounds {
            joined_from: day_start(filter.joined_from_day),
            joined_before: day_start(filter.joined_to_day)
                .and_then(|d| d.checked_add_days(Days::new(1))),
            active_since: (filter.active_within_days != 0)
                .then(|| now.checked_sub_days(Days::new(filter.active_within_days.into())))
                .flatten(),
        }
    }
}

#[cfg(feature = "postgres")]
pub use recipients::{AudienceSize, Recipients};

#[cfg(feature = "postgres")]
mod recipients {
    use chrono::{DateTime, Utc};
    use tokio_postgres::types::ToSql;

    use super::Bounds;
    use crate::proto::v1::AudienceFilter;

    /// A filter as a condition on the `users` table: only the parts that are
    /// set, so Postgres can use the index of each (GIN on tags, b-trees on
    /// source and the times).
    pub struct Recipients {
        /// Users are per bot: a campaign's audience is its bot's users.
        bot_id: i64,
        filter: AudienceFilter,
        bounds: Bounds,
    }

    /// An audience as an admin sees it before confirming.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AudienceSize {
        pub recipients: i64,
        /// Would match but opted out of broadcasts (/stop).
        pub opted_out: i64,
    }

    /// Live users only, always: blocked users are nobody's audience.
    const LIVE: &str = "is_alive";
    /// The bot's users, by the first parameter.
    const OF_THE_BOT: &str = "bot_id = $";
    /// And never those who opted out.
    const SUBSCRIBED: &str = "NOT opted_out";

    impl Recipients {
        pub fn new(bot_id: i64, filter: &AudienceFilter, now: DateTime<Utc>) -> Recipients {
            Recipients {
                bot_id,
                filter: filter.clone(),
                bounds: Bounds::new(filter, now),
            }
        }

        /// The condition on `users` that picks the audience, with
        /// parameters numbered from `$first`, and the values to bind.
        pub fn condition(&self, first: usize) -> (String, Vec<&(dyn ToSql + Sync)>) {
            let (matching, params) = self.matching(first);
            (format!("{matching} AND {SUBSCRIBED}"), params)
        }

        /// Counts the audience as it would be fixed now.
        pub async fn size(
            &self,
            client: &tokio_postgres::Client,
        ) -> Result<AudienceSize, tokio_postgres::Error> {
            let (matching, params) = self.matching(1);
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*) FILTER (WHERE {SUBSCRIBED}), count(*) FILTER (WHERE opted_out)
                         FROM users WHERE {matching}"
                    ),
                    &params,
                )
                .await?;
            Ok(AudienceSize {
                recipients: row.get(0),
                opted_out: row.get(1),
            })
        }

        /// Tags the filter names that no user of the bot has: most likely a
        /// typo.
        pub async fn unknown_tags(
            &self,
            client: &tokio_postgres::Client,
        ) -> Result<Vec<String>, tokio_postgres::Error> {
            let named: Vec<&String> = [
                &self.filter.tags_any,
                &self.filter.tags_all,
                &self.filter.tags_none,
            ]
            .into_iter()
            .flatten()
            .collect();
            let rows = client
                .query(
                    "SELECT tag FROM unnest($1::text[]) AS tag
                     WHERE NOT EXISTS (SELECT 1 FROM users WHERE bot_id = $2 AND tags @> ARRAY[tag])",
                    &[&named, &self.bot_id],
                )
                .await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        }

        /// The filter's own parts, the bot's live users only, opted out or
        /// not.
        fn matching(&self, first: usize) -> (String, Vec<&(dyn ToSql + Sync)>) {
            let f = &self.filter;
            let b = &self.bounds;
            let parts: [(bool, &str, &(dyn ToSql + Sync)); 8] = [
                (!f.languages.is_empty(), "language = ANY($)", &f.languages),
                (!f.tags_any.is_empty(), "tags && $::text[]", &f.tags_any),
                (!f.tags_all.is_empty(), "tags @> $::text[]", &f.tags_all),
                (
                    !f.tags_none.is_empty(),
                    "NOT tags && $::text[]",
                    &f.tags_none,
                ),
                (!f.sources.is_empty(), "source = ANY($)", &f.sources),
                (
                    b.joined_from.is_some(),
                    "registered_at >= $",
                    &b.joined_from,
                ),
                (
                    b.joined_before.is_some(),
                    "registered_at < $",
                    &b.joined_before,
                ),
                (
                    b.active_since.is_some(),
                    "last_active_at >= $",
                    &b.active_since,
                ),
            ];
            let mut sql = format!("{OF_THE_BOT}{first} AND {LIVE}");
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.bot_id];
            for (set, condition, param) in parts {
                if set {
                    let number = format!("${}", first + params.len());
                    sql.push_str(" AND ");
                    sql.push_str(&condition.replace('$', &number));
                    params.push(param);
                }
            }
            (sql, params)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> AudienceFilter {
        parse(text).unwrap_or_else(|e| panic!("{}", e.pointing_into(text)))
    }

    #[test]
    fn every_part_reads_and_writes_back() {
        let text = "lang:ru,en tag:vip,gold +tag:paid -tag:churned source:ad_spring \
                    joined:2026-01-01..2026-03-31 active:30d";
        let filter = parsed(text);
        assert_eq!(filter.languages, ["ru", "en"]);
        assert_eq!(filter.tags_any, ["vip", "gold"]);
        assert_eq!(filter.tags_all, ["paid"]);
        assert_eq!(filter.tags_none, ["churned"]);
        assert_eq!(filter.sources, ["ad_spring"]);
        assert_eq!(filter.joined_from_day, 20_454);
        assert_eq!(filter.joined_to_day, 20_543);
        assert_eq!(filter.active_within_days, 30);
        assert_eq!(
            to_text(&filter),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    #[test]
    fn nothing_and_all_are_everyone() {
        assert_eq!(parsed(""), AudienceFilter::default());
        assert_eq!(parsed("  all "), AudienceFilter::default());
        assert_eq!(to_text(&AudienceFilter::default()), "all");
    }

    #[test]
    fn open_ended_joins_and_repeats_are_tidied() {
        let filter = parsed("joined:2026-01-01.. lang:en,en");
        assert_eq!(filter.joined_to_day, 0);
        assert_eq!(filter.languages, ["en"]);
        assert_eq!(to_text(&filter), "lang:en joined:2026-01-01..");
        assert!(parse("TAG:VIP").is_err(), "keys are lower-case");
        assert_eq!(parsed("tag:VIP").tags_any, ["vip"]);
        assert_eq!(parsed("joined:..2026-03-31").joined_from_day, 0);
    }

    #[test]
    fn the_seed_audiences_are_language_filters() {
        assert_eq!(to_text(&from_legacy(Audience::Ru)), "lang:ru");
        assert_eq!(to_text(&from_legacy(Audience::En)), "lang:en");
        assert_eq!(to_text(&from_legacy(Audience::All)), "all");
        assert_eq!(language(Language::Ru), from_legacy(Audience::Ru));
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (input, at, says) in [
            ("lang:ru tga:vip", 8, "\"tga\" is not a term"),
            ("lang:ru,de", 8, "\"de\" is not a language"),
            ("tag:vip,,gold", 8, "needs a value"),
            ("tag:vip tag:gold", 8, "tag: appears twice"),
            ("-tag:ok,bad!", 8, "\"bad!\" is not a tag"),
            ("active:30", 7, "not a number of days"),
            ("active:0d", 7, "not a number of days"),
            ("joined:2026-13-01..", 7, "not a day"),
            (
                "joined:2026-01-01..2025-01-01",
                7,
                "first day is after the last",
            ),
            ("joined:..2026-02-30", 9, "\"2026-02-30\" is not a day"),
            ("joined:..", 7, "at least one day"),
            ("vip", 0, "\"vip\" is not a term"),
            ("source:a/b", 7, "is not a source"),
        ] {
            let error = parse(input).expect_err(input);
            assert_eq!(error.at, at, "{input}: {error}");
            assert!(error.message.contains(says), "{input}: {error}");
        }
        let error = parse("lang:ru tga:vip").unwrap_err();
        assert_eq!(
            error.pointing_into("lang:ru tga:vip"),
            "lang:ru tga:vip\n        ^ \"tga\" is not a term: use lang:, tag:, +tag:, -tag:, source:, joined:FROM..TO or active:Nd"
        );
    }

    #[test]
    fn terms_may_stand_on_lines_of_their_own() {
        assert_eq!(
            to_text(&parsed("lang:ru\n\ttag:vip\r\n")),
            "lang:ru tag:vip"
        );
        assert_eq!(parse("lang:ru\ntga:x").unwrap_err().at, 8);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let error = parse("tag:вип").unwrap_err();
        assert_eq!(error.at, 4);
        let error = parse("tag:ok tag:x").unwrap_err();
        assert_eq!(error.at, 7);
    }

    #[test]
    fn bounds_are_instants_from_the_start() {
        let now = DateTime::parse_from_rfc3339("2026-04-10T12:00:00Z")
            .unwrap()
            .to_utc();
        let bounds = Bounds::new(&parsed("joined:2026-01-01..2026-03-31 active:7d"), now);
        assert_eq!(
            bounds.joined_from.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            bounds.joined_before.unwrap().to_rfc3339(),
            "2026-04-01T00:00:00+00:00"
        );
        assert_eq!(
            bounds.active_since.unwrap().to_rfc3339(),
            "2026-04-03T12:00:00+00:00"
        );
        assert_eq!(
            Bounds::new(&AudienceFilter::default(), now),
            Bounds {
                joined_from: None,
                joined_before: None,
                active_since: None
            }
        );
    }

    #[test]
    fn the_unsubscribe_button_goes_below_each_version_s_own_in_its_language() {
        let own = InlineKeyboard {
            rows: vec![ButtonRow::default()],
        };
        let default = Content {
            keyboard: Some(own),
            ..Content::default()
        };
        let ru = Variant {
            language: "ru".into(),
            content: Some(Content::default()),
        };
        let (default, variants) = with_unsubscribe_buttons(default, vec![ru]);
        let rows = default.keyboard.unwrap().rows;
        assert_eq!(rows.len(), 2, "below the content's own");
        assert_eq!(rows[1].buttons[0].text, "Unsubscribe");
        assert_eq!(
            rows[1].buttons[0].action,
            Some(button::Action::CallbackData(UNSUBSCRIBE.into()))
        );
        let ru = variants[0].content.clone().unwrap().keyboard.unwrap().rows;
        assert_eq!(ru[0].buttons[0].text, "Отписаться от рассылки");
    }

    #[test]
    fn tags_and_sources_are_checked() {
        assert_eq!(tag(" VIP-2026 ").unwrap(), "vip-2026");
        assert!(tag("").is_err());
        assert!(tag(&"a".repeat(MAX_TAG_LEN + 1)).is_err());
        assert!(tag("два").is_err());
        assert_eq!(source("Ad_Spring-1").unwrap(), "Ad_Spring-1");
        assert!(source("a b").is_err());
    }
}
