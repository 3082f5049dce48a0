//! Step 4 of /broadcast: the preview and the summary. The preview is sent
//! with the senders' own payload code (`courier_telegram::payload`) and Bot
//! API client, so the admin sees byte for byte what recipients will get,
//! and content Telegram refuses is caught before a campaign exists. The
//! summary says what Start will do, with toggles for the options, and how
//! long it will take at the limit the senders published
//! ([`courier_core::send_limits`]).

use std::fmt::Write as _;
use std::time::Duration;

use courier_core::audience::{self, AudienceSize};
use courier_core::bot_languages::BotLanguages;
use courier_core::campaign;
use courier_core::config::TelegramConfig;
use courier_core::proto::campaign_name;
use courier_core::proto::v1::{
    AudienceFilter, CampaignOptions, Content, ContentKind, Names, button,
};
use courier_core::send_limits::{self, Lane, PublishedLimits};
use courier_core::stars;
use courier_telegram::bot_api::BotApi;
use courier_telegram::classify::ApiFailure;
use courier_telegram::payload::Template;
use teloxide::Bot;
use teloxide::types::{ChatId, InlineKeyboardMarkup};

use crate::actions::{Action, Toggle};
use crate::dialogue::Draft;
use crate::progress;
use crate::storage::{Store, StoreError};
use crate::telegram_stars;

/// A preview is one message: an answer takes well under this.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(20);
/// Idle connections the previews of every bot keep open.
const PREVIEW_CONNECTIONS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("this content cannot be sent: {0}")]
    Unsendable(#[from] courier_telegram::payload::UnsendableContent),
    /// Telegram's own words, e.g. `Bad Request: BUTTON_URL_INVALID`.
    #[error("Telegram refused it: {0}")]
    Refused(String),
    #[error("Telegram did not answer ({0}); try again")]
    NoAnswer(String),
}

#[derive(Clone)]
pub struct Preview {
    bot: Bot,
    api: BotApi,
    limits: PublishedLimits,
    store: Store,
}

impl Preview {
    /// The Bot API client for previews, made once: each bot's preview
    /// takes it [`BotApi::for_bot`], sharing its connections.
    pub fn client(telegram: &TelegramConfig) -> anyhow::Result<BotApi> {
        BotApi::new(telegram, PREVIEW_TIMEOUT, PREVIEW_CONNECTIONS)
    }

    /// `api` is `bot`'s client for previews ([`Preview::client`]).
    pub fn new(bot: Bot, api: BotApi, limits: PublishedLimits, store: Store) -> Preview {
        Preview {
            bot,
            api,
            limits,
            store,
        }
    }

    /// The [`summary`] of `draft` as things stand (the users live now, at
    /// the rate the senders published) and its [`keyboard`] (the bot's
    /// languages now).
    pub async fn summarize(
        &self,
        draft: &Draft,
        paid_enabled: bool,
    ) -> Result<(String, InlineKeyboardMarkup), StoreError> {
        let size = self.store.audience(&draft.audience).await?;
        let mut versions = Vec::new();
        for variant in &draft.variants {
            let recipients = match only_language(&draft.audience, &variant.language) {
                Some(filter) => self.store.audience(&filter).await?.recipients,
                None => 0,
            };
            versions.push((variant.language.clone(), recipients));
        }
        let rate = self.limits.rate(lane(draft)).await;
        let balance = match paid_enabled && draft.paid {
            true => telegram_stars::balance(&self.bot).await,
            false => None,
        };
        let text = summary(draft, size, &versions, paid_enabled, rate, balance);
        let languages = self.store.languages().await;
        Ok((text, keyboard(draft, paid_enabled, &languages)))
    }

    /// Sends `content` to `chat` as a campaign would send it to a
    /// recipient named `names`.
    pub async fn send(
        &self,
        chat: ChatId,
        content: &Content,
        names: &Names,
    ) -> Result<(), PreviewError> {
        // The options are left out: silent and protected do not change how
        // the message looks, and one message never needs the paid lane.
        let call = Template::new(content, &CampaignOptions::default())?.call(chat.0, Some(names));
        match self.api.send(&call).await {
            Ok(_) => Ok(()),
            Err(ApiFailure::Api { description, .. }) => Err(PreviewError::Refused(description)),
            Err(ApiFailure::NotSent(why) | ApiFailure::NoAnswer(why)) => {
                Err(PreviewError::NoAnswer(why))
            }
            Err(ApiFailure::BadAnswer { status }) => {
                Err(PreviewError::NoAnswer(format!("HTTP {status}")))
            }
        }
    }
}

/// `filter` narrowed to users of `language`: who a variant in that
/// language reaches. `None` when the filter leaves that language out.
pub fn only_language(filter: &AudienceFilter, language: &str) -> Option<AudienceFilter> {
    let speaks = filter.languages.is_empty() || filter.languages.iter().any(|l| l == language);
    speaks.then(|| AudienceFilter {
        languages: vec![language.to_owned()],
        ..filter.clone()
    })
}

/// The senders' budget `draft` will draw from.
pub fn lane(draft: &Draft) -> Lane {
    Lane::of_paid(draft.paid)
}

/// What Start will do, `rate` messages per second; `versions` are the
/// recipients of each variant; `balance` the bot's Stars (in nanostars),
/// when the paid lane is on and Telegram said.
pub fn summary(
    draft: &Draft,
    size: AudienceSize,
    versions: &[(String, i64)],
    paid_enabled: bool,
    rate: f64,
    balance: Option<i64>,
) -> String {
    let on_off = |on: bool| if on { "on" } else { "off" };
    let content = &draft.content;
    let recipients = size.recipients;
    let mut excluded = String::new();
    if size.opted_out > 0 {
        excluded = format!(" ({} more opted out with /stop)", size.opted_out);
    }
    if recipients == 0 {
        excluded.push_str("\n⚠️ Nobody matches this audience now: Start would send nothing.");
    }
    let mut text = format!(
        "Ready to broadcast (the message above is exactly what recipients get).\n\n\
         Name: {}\n\
         Audience: {} · {recipients} recipients now{excluded}\n\
         Content: {}{}\n",
        campaign_name(&draft.title, content),
        audience::to_text(&draft.audience),
        match content.kind() {
            ContentKind::Album => format!("album of {} items", content.album.len()),
            kind => kind.admin_name().to_owned(),
        },
        if content.text.is_empty() || content.kind() == ContentKind::Text {
            ""
        } else {
            " with caption"
        },
    );
    let labels: Vec<String> = content
        .keyboard
        .iter()
        .flat_map(|k| &k.rows)
        .flat_map(|row| &row.buttons)
        .map(|b| match &b.action {
            Some(button::Action::Url(url)) => format!("{} → {url}", b.text),
            Some(button::Action::CopyText(copied)) => format!("{} (copies “{copied}”)", b.text),
            _ => b.text.clone(),
        })
        .collect();
    match labels.is_empty() {
        true => text.push_str("Buttons: none\n"),
        false => {
            let _ = writeln!(text, "Buttons: {}", labels.join("; "));
        }
    }
    if !versions.is_empty() {
        let in_variants: i64 = versions.iter().map(|(_, n)| n).sum();
        let each: Vec<String> = versions
            .iter()
            .map(|(language, n)| format!("{language} · {n}"))
            .chain([format!("default · {}", (recipients - in_variants).max(0))])
            .collect();
        let _ = writeln!(text, "Versions: {}", each.join("; "));
    }
    let _ = write!(
        text,
        "Silent: {} · Protected: {} · Unsubscribe button: {}",
        on_off(draft.silent),
        on_off(draft.protected),
        match content.kind() {
            ContentKind::Album => "not on albums",
            _ => on_off(draft.unsubscribe),
        }
    );
    if paid_enabled {
        let _ = write!(text, " · Paid lane: {}", on_off(draft.paid));
    }
    // An album is a message per item to each recipient, and a send takes
    // more than one slot of the schedule (`send_limits::slots_per_send`).
    let per_send = match content.kind() {
        ContentKind::Album => u32::try_from(content.album.len()).unwrap_or(1),
        _ => 1,
    };
    let sends_per_second = rate / f64::from(send_limits::slots_per_send(per_send));
    if paid_enabled && draft.paid {
        let messages = recipients * i64::from(per_send);
        let cost = stars::paid_lane_cost(messages, sends_per_second * f64::from(per_send));
        let balance_text =
            balance.map_or("unknown (Telegram did not say)".to_owned(), stars::describe);
        let _ = write!(
            text,
            "\nPaid lane cost: about {} (0.1 Star a message above {}/s) · the bot's balance: {balance_text}",
            stars::describe(cost),
            stars::FREE_PER_SECOND,
        );
        if balance.is_some_and(|balance| balance < cost) {
            let _ = write!(
                text,
                "\n⚠️ The balance cannot cover it. Press ✅ Paid lane to send on the free lane \
                 ({}/s, free) instead, or top up the bot's Stars first. If it runs out while \
                 sending, the rest goes on the free lane.",
                stars::FREE_PER_SECOND
            );
        } else if balance.is_some_and(|balance| balance < stars::PAID_BROADCAST_MIN_BALANCE) {
            let _ = write!(
                text,
                "\n⚠️ Telegram allows paid broadcasts only to bots with at least {} (and 10000 \
                 monthly users); below that it may refuse them, and the campaign goes on the \
                 free lane.",
                stars::describe(stars::PAID_BROADCAST_MIN_BALANCE)
            );
        }
    }
    let starts = match &draft.start {
        Some(start) => format!(
            "Starts: {} (recipients are fixed then; until then Cancel or Move it from its card)",
            start.describe()
        ),
        None => "Starts: when you press Start (recipients are fixed then)".to_owned(),
    };
    let _ = write!(
        text,
        "\nEstimated duration: about {} at {rate}/s\n\n{starts}.",
        campaign::duration(progress::estimate(recipients, sends_per_second))
    );
    text
}

/// The toggles, a version per language the audience speaks, then Start
/// and Cancel.
pub fn keyboard(
    draft: &Draft,
    paid_enabled: bool,
    languages: &BotLanguages,
) -> InlineKeyboardMarkup {
    let toggle = |on: bool, label: &str, toggle: Toggle| {
        let mark = if on { "✅" } else { "⬜" };
        Action::Toggle(toggle).button(format!("{mark} {label}"))
    };
    let mut rows = vec![vec![
        toggle(draft.silent, "Silent", Toggle::Silent),
        toggle(draft.protected, "Protected", Toggle::Protected),
    ]];
    // An album takes no buttons (sendMediaGroup has no reply_markup).
    let album = draft.content.kind() == ContentKind::Album;
    if !album {
        rows.push(vec![toggle(
            draft.unsubscribe,
            "Unsubscribe button",
            Toggle::Unsubscribe,
        )]);
    }
    if paid_enabled {
        rows.push(vec![toggle(draft.paid, "Paid lane", Toggle::Paid)]);
    }
    // A bot of one language asks for no other version.
    let versions: Vec<_> = languages
        .iter()
        .filter(|_| languages.is_a_choice())
        .filter_map(|language| {
            let code = language.code()?;
            only_language(&draft.audience, code)?;
            let label = match draft.variants.iter().any(|v| v.language == code) {
                true => format!("🗑 {code} version"),
                false => format!("🌐 Add {code} version"),
            };
            Some(Action::Variant(language).button(label))
        })
        .collect();
    if !versions.is_empty() {
        rows.push(versions);
    }
    let mut changes = vec![
        Action::Rename.button("🏷 Name…"),
        Action::ChangeMessage.button("✏️ Message…"),
    ];
    if !album {
        changes.push(Action::ChangeButtons.button("🔗 Buttons…"));
    }
    rows.push(changes);
    rows.push(vec![Action::TestSend.button("📨 Send to me")]);
    let when = match &draft.start {
        Some(start) => format!("🕑 Starts {}", start.describe()),
        None => "🕑 Starts now: schedule…".to_owned(),
    };
    rows.push(vec![Action::When.button(when)]);
    let start = match draft.start {
        Some(_) => "🗓 Schedule",
        None => "🚀 Start",
    };
    rows.push(vec![
        Action::Start.button(start),
        Action::Abort.button("✖️ Cancel"),
    ]);
    InlineKeyboardMarkup::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::proto::v1::{Button, ButtonRow, InlineKeyboard};
    use teloxide::types::InlineKeyboardButtonKind;

    fn draft() -> Draft {
        Draft::new(
            audience::parse("lang:ru").unwrap(),
            Content {
                kind: ContentKind::Photo.into(),
                text: "Look".into(),
                file_id: "F".into(),
                keyboard: Some(InlineKeyboard {
                    rows: vec![ButtonRow {
                        buttons: vec![Button {
                            text: "Open".into(),
                            action: Some(button::Action::Url("https://example.com".into())),
                            ..Default::default()
                        }],
                    }],
                }),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_summary_says_everything_start_will_do() {
        let text = summary(&draft(), size(1800, 0), &[], false, 30.0, None);
        assert!(
            text.contains("Audience: lang:ru · 1800 recipients now\n"),
            "{text}"
        );
        assert!(text.contains("Content: photo with caption"), "{text}");
        assert!(
            text.contains("Buttons: Open → https://example.com"),
            "{text}"
        );
        assert!(
            text.contains("Silent: off · Protected: off · Unsubscribe button: off\n"),
            "{text}"
        );
        assert!(text.contains("about 1m 00s at 30/s"), "{text}");
        assert!(!text.contains("Paid"), "{text}");
    }

    #[test]
    fn the_paid_lane_shows_its_cost_beside_the_balance_and_says_when_it_cannot_pay() {
        use courier_core::stars::NANOSTARS_PER_STAR;
        let mut paid = draft();
        paid.toggle(Toggle::Paid);
        // 10,000 at 1,000/s: ten seconds, 300 free, 9,700 × 0.1 Star.
        let enough = summary(
            &paid,
            size(10_000, 0),
            &[],
            true,
            1000.0,
            Some(10_000 * NANOSTARS_PER_STAR),
        );
        assert!(
            enough.contains("Paid lane cost: about 970 Stars (0.1 Star a message above 30/s) · the bot's balance: 10000 Stars"),
            "{enough}"
        );
        assert!(!enough.contains("⚠️"), "{enough}");
        // Enough for this campaign, not for Telegram's threshold.
        let under_threshold = summary(
            &paid,
            size(10_000, 0),
            &[],
            true,
            1000.0,
            Some(5_000 * NANOSTARS_PER_STAR),
        );
        assert!(
            under_threshold
                .contains("Telegram allows paid broadcasts only to bots with at least 10000 Stars"),
            "{under_threshold}"
        );
        let short = summary(
            &paid,
            size(10_000, 0),
            &[],
            true,
            1000.0,
            Some(969 * NANOSTARS_PER_STAR),
        );
        assert!(
            short.contains("⚠️ The balance cannot cover it. Press ✅ Paid lane"),
            "{short}"
        );
        let unknown = summary(&paid, size(10_000, 0), &[], true, 1000.0, None);
        assert!(unknown.contains("balance: unknown"), "{unknown}");
        // The free lane costs nothing and says nothing of Stars.
        let free = summary(&draft(), size(10_000, 0), &[], true, 30.0, None);
        assert!(!free.contains("Stars"), "{free}");
    }

    #[test]
    fn an_album_takes_longer_and_costs_a_message_per_item() {
        use courier_core::proto::v1::AlbumItem;
        let photo = AlbumItem {
            kind: ContentKind::Photo.into(),
            file_id: "p".into(),
            has_spoiler: false,
        };
        let mut album = Draft::new(
            audience::parse("lang:ru").unwrap(),
            Content {
                kind: ContentKind::Album.into(),
                album: vec![photo; 3],
                ..Default::default()
            },
        );
        // Each send of 3 takes 5 slots: 1,800 recipients at 30/s take 5 minutes.
        let text = summary(&album, size(1800, 0), &[], false, 30.0, None);
        assert!(text.contains("Content: album of 3 items\n"), "{text}");
        assert!(text.contains("about 5m 00s at 30/s"), "{text}");
        assert!(
            !keyboard(&album, false, &BotLanguages::default())
                .inline_keyboard
                .iter()
                .flatten()
                .any(|b| b.text.contains("Unsubscribe") || b.text.contains("Buttons"))
        );
        // 1,000 albums at 1,000/s: 200 sends, 600 messages a second; 30 of
        // each second free over five seconds, 2,850 × 0.1 Star.
        album.toggle(Toggle::Paid);
        let paid = summary(&album, size(1000, 0), &[], true, 1000.0, None);
        assert!(paid.contains("Paid lane cost: about 285 Stars"), "{paid}");
    }

    #[test]
    fn the_paid_lane_shows_only_when_enabled_and_draws_on_the_paid_budget() {
        assert_eq!(lane(&draft()), Lane::Free);
        let mut paid = draft();
        paid.toggle(Toggle::Paid);
        assert_eq!(lane(&paid), Lane::Paid);
        let text = summary(&paid, size(10_000, 0), &[], true, 1000.0, None);
        assert!(text.contains("Paid lane: on"), "{text}");
        assert!(text.contains("about 10s at 1000/s"), "{text}");
    }

    fn size(recipients: i64, opted_out: i64) -> AudienceSize {
        AudienceSize {
            recipients,
            opted_out,
        }
    }

    #[test]
    fn the_summary_counts_who_opted_out_and_warns_of_nobody() {
        let text = summary(&draft(), size(40, 2), &[], false, 30.0, None);
        assert!(
            text.contains("40 recipients now (2 more opted out with /stop)"),
            "{text}"
        );
        assert!(!text.contains("Nobody"), "{text}");
        let text = summary(&draft(), size(0, 0), &[], false, 30.0, None);
        assert!(text.contains("Nobody matches this audience now"), "{text}");
    }

    #[test]
    fn versions_count_their_language_and_the_default_the_rest() {
        let mut everyone = draft();
        everyone.audience = AudienceFilter::default();
        everyone.variants.push(courier_core::proto::v1::Variant {
            language: "ru".into(),
            content: Some(Content::default()),
        });
        let text = summary(
            &everyone,
            size(100, 0),
            &[("ru".into(), 70)],
            false,
            30.0,
            None,
        );
        assert!(text.contains("Versions: ru · 70; default · 30\n"), "{text}");
        let labels: Vec<String> = keyboard(&everyone, false, &BotLanguages::default())
            .inline_keyboard
            .into_iter()
            .flatten()
            .map(|b| b.text)
            .collect();
        assert!(labels.contains(&"🗑 ru version".to_owned()), "{labels:?}");
        assert!(
            labels.contains(&"🌐 Add en version".to_owned()),
            "{labels:?}"
        );
        // A bot of one language asks for no other version.
        let russian_only = BotLanguages::parse(&["ru"]).unwrap();
        let labels: Vec<String> = keyboard(&everyone, false, &russian_only)
            .inline_keyboard
            .into_iter()
            .flatten()
            .map(|b| b.text)
            .collect();
        assert!(!labels.iter().any(|l| l.contains("version")), "{labels:?}");
    }

    #[test]
    fn a_variant_reaches_its_language_within_the_audience() {
        let filter = audience::parse("lang:ru,en tag:vip").unwrap();
        let ru = only_language(&filter, "ru").unwrap();
        assert_eq!(audience::to_text(&ru), "lang:ru tag:vip");
        assert_eq!(
            only_language(&audience::parse("lang:en").unwrap(), "ru"),
            None
        );
        let everyone = only_language(&AudienceFilter::default(), "en").unwrap();
        assert_eq!(audience::to_text(&everyone), "lang:en");
    }

    #[test]
    fn the_keyboard_marks_toggles_and_offers_start() {
        let mut silent = draft();
        silent.toggle(Toggle::Silent);
        let buttons: Vec<(String, String)> = keyboard(&silent, true, &BotLanguages::default())
            .inline_keyboard
            .into_iter()
            .flatten()
            .map(|b| match b.kind {
                InlineKeyboardButtonKind::CallbackData(data) => (b.text, data),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            buttons,
            [
                ("✅ Silent".to_owned(), "bc:opt:silent".to_owned()),
                ("⬜ Protected".into(), "bc:opt:protected".into()),
                ("⬜ Unsubscribe button".into(), "bc:opt:unsub".into()),
                ("⬜ Paid lane".into(), "bc:opt:paid".into()),
                // lang:ru: an en version would reach nobody.
                ("🌐 Add ru version".into(), "bc:var:ru".into()),
                ("🏷 Name…".into(), "bc:name".into()),
                ("✏️ Message…".into(), "bc:msg".into()),
                ("🔗 Buttons…".into(), "bc:btn".into()),
                ("📨 Send to me".into(), "bc:test".into()),
                ("🕑 Starts now: schedule…".into(), "bc:when".into()),
                ("🚀 Start".into(), "bc:start".into()),
                ("✖️ Cancel".into(), "bc:abort".into()),
            ]
        );
        // Without the paid lane: toggles, unsubscribe, versions, changes,
        // test, when, Start.
        assert_eq!(
            keyboard(&silent, false, &BotLanguages::default())
                .inline_keyboard
                .len(),
            7
        );
    }

    #[test]
    fn a_draft_with_a_start_time_says_so_and_offers_schedule() {
        let mut later = draft();
        later.start = Some(crate::dialogue::Start {
            at: "2026-12-05T07:00:00Z".parse().unwrap(),
            zone: "Europe/Moscow".into(),
        });
        let labels: Vec<String> = keyboard(&later, false, &BotLanguages::default())
            .inline_keyboard
            .into_iter()
            .flatten()
            .map(|b| b.text)
            .collect();
        assert!(
            labels.contains(&"🕑 Starts 2026-12-05 10:00 MSK (Europe/Moscow)".to_owned()),
            "{labels:?}"
        );
        assert!(labels.contains(&"🗓 Schedule".to_owned()), "{labels:?}");
    }
}
