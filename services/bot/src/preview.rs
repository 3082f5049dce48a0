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
use courier_core::config::TelegramConfig;
use courier_core::proto::v1::{CampaignOptions, Content, ContentKind, button};
use courier_core::send_limits::{Lane, PublishedLimits};
use courier_telegram::bot_api::BotApi;
use courier_telegram::classify::ApiFailure;
use courier_telegram::payload::Template;
use teloxide::types::{ChatId, InlineKeyboardMarkup};

use crate::actions::{Action, Toggle};
use crate::dialogue::Draft;
use crate::progress;
use crate::storage::{Store, StoreError};

/// A preview is one message: an answer takes well under this.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(20);

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
    api: BotApi,
    limits: PublishedLimits,
    store: Store,
}

impl Preview {
    pub fn new(
        telegram: &TelegramConfig,
        limits: PublishedLimits,
        store: Store,
    ) -> anyhow::Result<Preview> {
        Ok(Preview {
            api: BotApi::new(telegram, PREVIEW_TIMEOUT, 1)?,
            limits,
            store,
        })
    }

    /// The [`summary`] of `draft` as things stand: the users live now, at
    /// the rate the senders published.
    pub async fn summarize(&self, draft: &Draft, paid_enabled: bool) -> Result<String, StoreError> {
        let size = self.store.audience(&draft.audience).await?;
        let rate = self.limits.rate(lane(draft)).await;
        Ok(summary(draft, size, paid_enabled, rate))
    }

    /// Sends `content` to `chat` as a campaign would send it to a recipient.
    pub async fn send(&self, chat: ChatId, content: &Content) -> Result<(), PreviewError> {
        // The options are left out: silent and protected do not change how
        // the message looks, and one message never needs the paid lane.
        let call = Template::new(content, &CampaignOptions::default())?.call(chat.0);
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

/// The senders' budget `draft` will draw from.
pub fn lane(draft: &Draft) -> Lane {
    if draft.paid { Lane::Paid } else { Lane::Free }
}

/// What Start will do, `rate` messages per second.
pub fn summary(draft: &Draft, size: AudienceSize, paid_enabled: bool, rate: f64) -> String {
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
         Audience: {} · {recipients} recipients now{excluded}\n\
         Content: {}{}\n",
        audience::to_text(&draft.audience),
        content.kind().admin_name(),
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
            _ => b.text.clone(),
        })
        .collect();
    match labels.is_empty() {
        true => text.push_str("Buttons: none\n"),
        false => {
            let _ = writeln!(text, "Buttons: {}", labels.join("; "));
        }
    }
    let _ = write!(
        text,
        "Silent: {} · Protected: {}",
        on_off(draft.silent),
        on_off(draft.protected)
    );
    if paid_enabled {
        let _ = write!(text, " · Paid lane: {}", on_off(draft.paid));
    }
    let _ = write!(
        text,
        "\nEstimated duration: about {} at {rate}/s\n\n\
         Recipients are fixed when you press Start.",
        progress::duration(progress::estimate(recipients, rate))
    );
    text
}

/// The toggles, then Start and Cancel.
pub fn keyboard(draft: &Draft, paid_enabled: bool) -> InlineKeyboardMarkup {
    let toggle = |on: bool, label: &str, toggle: Toggle| {
        let mark = if on { "✅" } else { "⬜" };
        Action::Toggle(toggle).button(format!("{mark} {label}"))
    };
    let mut rows = vec![vec![
        toggle(draft.silent, "Silent", Toggle::Silent),
        toggle(draft.protected, "Protected", Toggle::Protected),
    ]];
    if paid_enabled {
        rows.push(vec![toggle(draft.paid, "Paid lane", Toggle::Paid)]);
    }
    rows.push(vec![
        Action::Start.button("🚀 Start"),
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
                        }],
                    }],
                }),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_summary_says_everything_start_will_do() {
        let text = summary(&draft(), size(1800, 0), false, 30.0);
        assert!(
            text.contains("Audience: lang:ru · 1800 recipients now\n"),
            "{text}"
        );
        assert!(text.contains("Content: photo with caption"), "{text}");
        assert!(
            text.contains("Buttons: Open → https://example.com"),
            "{text}"
        );
        assert!(text.contains("Silent: off · Protected: off\n"), "{text}");
        assert!(text.contains("about 1m 00s at 30/s"), "{text}");
        assert!(!text.contains("Paid"), "{text}");
    }

    #[test]
    fn the_paid_lane_shows_only_when_enabled_and_draws_on_the_paid_budget() {
        assert_eq!(lane(&draft()), Lane::Free);
        let mut paid = draft();
        paid.toggle(Toggle::Paid);
        assert_eq!(lane(&paid), Lane::Paid);
        let text = summary(&paid, size(10_000, 0), true, 1000.0);
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
        let text = summary(&draft(), size(40, 2), false, 30.0);
        assert!(
            text.contains("40 recipients now (2 more opted out with /stop)"),
            "{text}"
        );
        assert!(!text.contains("Nobody"), "{text}");
        let text = summary(&draft(), size(0, 0), false, 30.0);
        assert!(text.contains("Nobody matches this audience now"), "{text}");
    }

    #[test]
    fn the_keyboard_marks_toggles_and_offers_start() {
        let mut silent = draft();
        silent.toggle(Toggle::Silent);
        let buttons: Vec<(String, String)> = keyboard(&silent, true)
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
                ("⬜ Paid lane".into(), "bc:opt:paid".into()),
                ("🚀 Start".into(), "bc:start".into()),
                ("✖️ Cancel".into(), "bc:abort".into()),
            ]
        );
        assert_eq!(keyboard(&silent, false).inline_keyboard.len(), 2);
    }
}
