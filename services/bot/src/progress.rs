//! What admins read about a running campaign: the progress card (bar,
//! counts, rate, ETA and the buttons that fit its status), the line in
//! `/campaigns`, and the final report. Pure: built from a [`Snapshot`] of
//! the read model; [`crate::cards`] does the sending and editing.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use courier_core::campaign::{CampaignStatus, duration};
use courier_core::proto::v1::Content;
use teloxide::types::InlineKeyboardMarkup;
use uuid::Uuid;

use crate::actions::{Action, Control};

/// Cells in the progress bar.
const BAR_WIDTH: usize = 20;

/// A campaign's row in the read model.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: Uuid,
    pub status: CampaignStatus,
    /// Why courier paused the campaign itself, if it did.
    pub reason: Option<String>,
    pub audience: String,
    pub content_kind: String,
    /// Fixed when the campaign starts; `None` until the start is applied.
    pub recipients: Option<i32>,
    pub delivered: i32,
    pub not_alive: i32,
    pub failed: i32,
    pub cancelled: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When a scheduled campaign starts.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Per version, for a campaign with variants by language (else empty).
    pub versions: Vec<VersionCount>,
    /// The content's revision: one more per edit.
    pub revision: i32,
    pub recalled: bool,
    /// How its edit and recall went, a line each ([`storage::read_amendments`]).
    pub amendments: Vec<String>,
    /// An edit or recall still has messages to go.
    pub amending: bool,
    /// What admins call it (empty for a campaign projected before names).
    pub name: String,
    /// A line of its message ([`preview`]).
    pub preview: String,
    /// The admin who paused, resumed or cancelled it last (None: courier,
    /// or nobody yet).
    pub status_by: Option<Who>,
    /// On the paid broadcast lane.
    pub paid: bool,
    /// A paid campaign sending on the free lane because the bot's Stars ran
    /// out at this time ([`courier_core::send_limits::STARS_RECHECK`]).
    pub stars_out: Option<DateTime<Utc>>,
    /// A paid campaign's messages Telegram billed while it ran, by its own
    /// record (getStarTransactions), once it ended.
    pub stars_billed: Option<i64>,
}

/// An admin, as a card names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub id: i64,
    /// @username, or first and last name, when the bot knows them.
    pub name: Option<String>,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "admin {}", self.id),
        }
    }
}

/// How one version of a campaign's message is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    /// A language, or `default`.
    pub version: String,
    pub delivered: i64,
    pub recipients: i64,
}

impl VersionCount {
    /// Reads the read model's `"<variant> <delivered> <recipients>"`, the
    /// empty variant being the default.
    pub fn parse(text: &str) -> Option<VersionCount> {
        let mut parts = text.split(' ');
        let (version, delivered, recipients) = (parts.next()?, parts.next()?, parts.next()?);
        Some(VersionCount {
            version: if version.is_empty() {
                "default"
            } else {
                version
            }
            .to_owned(),
            delivered: delivered.parse().ok()?,
            recipients: recipients.parse().ok()?,
        })
    }
}

/// `By version: ru 70/70 · default 28/30 delivered`, or nothing.
fn versions_line(snapshot: &Snapshot) -> Option<String> {
    (!snapshot.versions.is_empty()).then(|| {
        let each: Vec<String> = snapshot
            .versions
            .iter()
            .map(|v| format!("{} {}/{}", v.version, v.delivered, v.recipients))
            .collect();
        format!("By version: {} delivered", each.join(" · "))
    })
}

impl Snapshot {
    /// A campaign just started, before the projector applied it.
    pub fn starting(id: Uuid) -> Snapshot {
        Snapshot {
            id,
            status: CampaignStatus::Sending,
            reason: None,
            audience: String::new(),
            content_kind: String::new(),
            recipients: None,
            delivered: 0,
            not_alive: 0,
            failed: 0,
            cancelled: 0,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            scheduled_at: None,
            versions: Vec::new(),
            revision: 0,
            recalled: false,
            amendments: Vec::new(),
            amending: false,
            name: String::new(),
            preview: String::new(),
            paid: false,
            stars_out: None,
            stars_billed: None,
            status_by: None,
        }
    }

    /// Its name in quotes, as cards and reports call it; a campaign from
    /// before names by its id.
    pub fn title(&self) -> String {
        match self.name.is_empty() {
            true => format!("Campaign {}", self.id),
            false => format!("“{}”", self.name),
        }
    }

    /// Recipients with an outcome.
    pub fn done(&self) -> i32 {
        self.delivered + self.not_alive + self.failed + self.cancelled
    }

    pub fn remaining(&self) -> i32 {
        (self.recipients.unwrap_or(0) - self.done()).max(0)
    }
}

/// A report sent once when a campaign ends or courier pauses it; `key`
/// tells reports apart so each is sent once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub key: String,
    pub text: String,
}

/// `▓▓▓▓░░░░ 50%` (a campaign without recipients is complete).
pub fn bar(done: i32, total: i32) -> String {
    let fraction = if total <= 0 {
        1.0
    } else {
        (f64::from(done) / f64::from(total)).clamp(0.0, 1.0)
    };
    let filled = (fraction * BAR_WIDTH as f64).floor() as usize;
    format!(
        "{}{} {}%",
        "▓".repeat(filled),
        "░".repeat(BAR_WIDTH - filled),
        (fraction * 100.0).floor()
    )
}

/// How long `count` messages take at `rate` per second.
pub fn estimate(count: i64, rate: f64) -> Duration {
    if rate <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(count.max(0) as f64 / rate)
}

/// The card's text. `rate`: recipients per second lately, when known;
/// times are shown in `zone`, the reader's. The id comes last, for
/// courierctl.
pub fn card(snapshot: &Snapshot, rate: Option<f64>, zone: Tz) -> String {
    format!("{}\nid {}", card_body(snapshot, rate, zone), snapshot.id)
}

fn card_body(snapshot: &Snapshot, rate: Option<f64>, zone: Tz) -> String {
    let mut text = format!(
        "{} {}\n{} · audience {} · {}\n",
        status_icon(snapshot.status),
        snapshot.title(),
        snapshot.status,
        snapshot.audience,
        snapshot.content_kind,
    );
    if let (CampaignStatus::Scheduled, Some(at)) = (snapshot.status, snapshot.scheduled_at) {
        let _ = write!(text, "Starts {}", moment(at, zone));
        return text;
    }
    if snapshot.status == CampaignStatus::AwaitingApproval {
        text.push_str("Waiting for another admin to approve it: ✅ Approve below.");
        if let Some(at) = snapshot.scheduled_at {
            let _ = write!(text, "\nTo start {}", moment(at, zone));
        }
        return text;
    }
    let Some(recipients) = snapshot.recipients else {
        text.push_str("Starting: fixing the audience…");
        return text;
    };
    let done = snapshot.done();
    let _ = writeln!(text, "{}", bar(done, recipients));
    let _ = writeln!(
        text,
        "Delivered {} · not alive {} · failed {}",
        snapshot.delivered, snapshot.not_alive, snapshot.failed
    );
    if let Some(versions) = versions_line(snapshot) {
        let _ = writeln!(text, "{versions}");
    }
    if snapshot.cancelled > 0 {
        let _ = writeln!(text, "Cancelled before sending: {}", snapshot.cancelled);
    }
    let _ = write!(text, "Remaining {} of {recipients}", snapshot.remaining());
    match snapshot.status {
        CampaignStatus::Sending => {
            let rate = rate.unwrap_or(0.0);
            let eta = match rate > 0.0 {
                true => duration(estimate(snapshot.remaining().into(), rate)),
                false => "unknown yet".into(),
            };
            let _ = write!(text, "\nRate {rate:.1}/s · ETA {eta}");
            if let Some(at) = snapshot.stars_out {
                let _ = write!(
                    text,
                    "\n⭐ The bot's Stars ran out {}: sending on the free lane ({}/s, free) \
                     until they are topped up",
                    moment(at, zone),
                    courier_core::stars::FREE_PER_SECOND
                );
            }
        }
        CampaignStatus::Paused => {
            let _ = write!(
                text,
                "\n{}",
                match (&snapshot.reason, &snapshot.status_by) {
                    (Some(reason), _) => format!("Paused by courier: {reason}"),
                    (None, Some(who)) => format!("Paused by {who}"),
                    (None, None) => "Paused by an admin".into(),
                }
            );
        }
        CampaignStatus::Completed => {
            if let Some(took) = took(snapshot) {
                let _ = write!(text, "\nTook {}", duration(took));
            }
        }
        CampaignStatus::Cancelled => {
            if let Some(who) = &snapshot.status_by {
                let _ = write!(text, "\nCancelled by {who}");
            }
        }
        CampaignStatus::Pending | CampaignStatus::Scheduled | CampaignStatus::AwaitingApproval => {}
    }
    for line in &snapshot.amendments {
        let _ = write!(text, "\n{line}");
    }
    text
}

/// `2026-12-05 10:00 MSK (Europe/Moscow)`, or `2026-12-05 10:00 UTC`: a
/// start time as an admin in `zone` reads it, to the minute.
pub fn moment(at: DateTime<Utc>, zone: Tz) -> String {
    match zone {
        Tz::UTC => at.format("%Y-%m-%d %H:%M UTC").to_string(),
        zone => format!(
            "{} ({})",
            at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z"),
            zone.name()
        ),
    }
}

/// The buttons that make sense now: pause or resume (or, scheduled, move),
/// and cancel, until the campaign ends; once it sent anything, edit and
/// delete everywhere, until it is recalled.
pub fn card_keyboard(snapshot: &Snapshot) -> InlineKeyboardMarkup {
    let (id, status) = (snapshot.id, snapshot.status);
    let first = match status {
        CampaignStatus::Sending => Some((Control::Pause, "⏸ Pause")),
        CampaignStatus::Paused => Some((Control::Resume, "▶️ Resume")),
        CampaignStatus::Scheduled => Some((Control::Move, "🕑 Move")),
        CampaignStatus::AwaitingApproval => Some((Control::Approve, "✅ Approve")),
        // Not started yet: only a cancel is a change it can take.
        CampaignStatus::Pending | CampaignStatus::Completed | CampaignStatus::Cancelled => None,
    };
    let button = |(control, label)| Action::Control(id, control).button(label);
    let controls: Vec<_> = first
        .into_iter()
        .chain((!status.is_final()).then_some((Control::Cancel, "✖️ Cancel")))
        .map(button)
        .collect();
    let sent_some = snapshot.recipients.is_some() && snapshot.delivered > 0;
    let amendments: Vec<_> = match sent_some && !snapshot.recalled {
        true => vec![
            button((Control::Edit, "✏️ Edit")),
            button((Control::Recall, "🗑 Delete everywhere")),
        ],
        false => Vec::new(),
    };
    InlineKeyboardMarkup::new(
        [controls, amendments]
            .into_iter()
            .filter(|row| !row.is_empty()),
    )
}

/// The longest line of a message `/campaigns` shows.
const PREVIEW_CHARS: usize = 60;

/// A line of a campaign's message, for `/campaigns`: its kind and the
/// start of its text.
pub fn preview(content: &Content) -> String {
    let kind = content.kind().admin_name();
    let text: String = content
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.chars().count() {
        0 => kind.to_owned(),
        n if n > PREVIEW_CHARS => {
            let cut: String = text.chars().take(PREVIEW_CHARS).collect();
            format!("{kind}: {cut}…")
        }
        _ => format!("{kind}: {text}"),
    }
}

/// One line of `/campaigns`, times in `zone`.
pub fn list_line(snapshot: &Snapshot, zone: Tz) -> String {
    let recipients = snapshot
        .recipients
        .map_or_else(|| "?".into(), |r| r.to_string());
    let progress = match (snapshot.status, snapshot.scheduled_at) {
        (CampaignStatus::Scheduled, Some(at)) => format!("starts {}", moment(at, zone)),
        (CampaignStatus::AwaitingApproval, _) => "waits for a second admin".to_owned(),
        _ => format!(
            "{}/{recipients} done, {} delivered",
            snapshot.done(),
            snapshot.delivered
        ),
    };
    format!(
        "{} {} · {} · {} · {} · {progress}",
        status_icon(snapshot.status),
        snapshot.title(),
        snapshot.created_at.format("%Y-%m-%d %H:%M"),
        snapshot.status,
        snapshot.audience,
    )
}

/// The report this status calls for: at the end, or when courier paused
/// the campaign itself (an admin who paused it knows already).
pub fn report(snapshot: &Snapshot) -> Option<Report> {
    let (id, name) = (snapshot.id, snapshot.title());
    let mut counts = format!(
        "Recipients {} · delivered {} · not alive {} · failed {}",
        snapshot.recipients.unwrap_or(0),
        snapshot.delivered,
        snapshot.not_alive,
        snapshot.failed
    );
    if let Some(versions) = versions_line(snapshot) {
        counts = format!("{counts}\n{versions}");
    }
    if let Some(billed) = snapshot.stars_billed {
        counts = format!(
            "{counts}\nPaid lane: Telegram billed {billed} message(s) above the free {}/s, {} \
             (its own record, for all the bot's paid sends while this one ran)",
            courier_core::stars::FREE_PER_SECOND,
            courier_core::stars::describe(billed * courier_core::stars::NANOSTARS_PER_PAID_MESSAGE)
        );
    }
    let (key, text) = match (snapshot.status, &snapshot.reason) {
        (CampaignStatus::Completed, _) => {
            let took = took(snapshot).map(|t| format!(" in {}", duration(t)));
            (
                "completed".to_owned(),
                format!(
                    "✅ {name} completed{}.\n{counts}\nid {id}",
                    took.unwrap_or_default()
                ),
            )
        }
        (CampaignStatus::Cancelled, _) => (
            "cancelled".to_owned(),
            format!(
                "⛔ {name} was cancelled{}.\n{counts} · not sent {}\nid {id}",
                snapshot
                    .status_by
                    .as_ref()
                    .map(|who| format!(" by {who}"))
                    .unwrap_or_default(),
                snapshot.cancelled
            ),
        ),
        (CampaignStatus::Paused, Some(reason)) => (
            format!("paused: {reason}"),
            format!(
                "⚠️ Courier paused {name}: {reason}\n{counts}\n\
                 Fix the cause, then Resume or Cancel it from its card.\nid {id}"
            ),
        ),
        _ => return None,
    };
    Some(Report { key, text })
}

fn took(snapshot: &Snapshot) -> Option<Duration> {
    let (started, finished) = (snapshot.started_at?, snapshot.finished_at?);
    (finished - started).to_std().ok()
}

fn status_icon(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Pending => "⏳",
        CampaignStatus::Scheduled => "🗓",
        CampaignStatus::AwaitingApproval => "🔐",
        CampaignStatus::Sending => "📤",
        CampaignStatus::Paused => "⏸",
        CampaignStatus::Completed => "✅",
        CampaignStatus::Cancelled => "⛔",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use teloxide::types::InlineKeyboardButtonKind;

    fn snapshot(status: CampaignStatus) -> Snapshot {
        let started = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        Snapshot {
            status,
            audience: "ru".into(),
            content_kind: "photo".into(),
            recipients: Some(1000),
            delivered: 300,
            not_alive: 40,
            failed: 10,
            created_at: started,
            started_at: Some(started),
            name: "Spring sale".into(),
            ..Snapshot::starting(Uuid::nil())
        }
    }

    fn labels(keyboard: &InlineKeyboardMarkup) -> Vec<(String, String)> {
        keyboard
            .inline_keyboard
            .iter()
            .flatten()
            .map(|b| match &b.kind {
                InlineKeyboardButtonKind::CallbackData(data) => (b.text.clone(), data.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_bar_fills_in_twentieths() {
        assert_eq!(bar(0, 10), format!("{} 0%", "░".repeat(20)));
        assert_eq!(
            bar(5, 10),
            format!("{}{} 50%", "▓".repeat(10), "░".repeat(10))
        );
        assert_eq!(bar(999, 1000), format!("{}░ 99%", "▓".repeat(19)));
        assert_eq!(bar(12, 10), format!("{} 100%", "▓".repeat(20)));
        assert_eq!(bar(0, 0), format!("{} 100%", "▓".repeat(20)));
    }

    #[test]
    fn estimates_divide_by_the_rate() {
        assert_eq!(estimate(900, 30.0), Duration::from_secs(30));
        assert_eq!(estimate(10, 0.0), Duration::ZERO);
        assert_eq!(estimate(-5, 30.0), Duration::ZERO);
    }

    #[test]
    fn a_sending_card_shows_counts_rate_and_eta() {
        let text = card(&snapshot(CampaignStatus::Sending), Some(50.0), Tz::UTC);
        assert!(text.contains("sending · audience ru · photo"), "{text}");
        assert!(text.contains("▓▓▓▓▓▓▓░░░░░░░░░░░░░ 35%"), "{text}");
        assert!(
            text.contains("Delivered 300 · not alive 40 · failed 10"),
            "{text}"
        );
        assert!(text.contains("Remaining 650 of 1000"), "{text}");
        assert!(text.contains("Rate 50.0/s · ETA 13s"), "{text}");
        let unknown = card(&snapshot(CampaignStatus::Sending), None, Tz::UTC);
        assert!(unknown.contains("ETA unknown yet"), "{unknown}");
    }

    #[test]
    fn a_card_before_the_start_is_applied_says_so() {
        let starting = Snapshot {
            recipients: None,
            ..snapshot(CampaignStatus::Pending)
        };
        assert!(card(&starting, None, Tz::UTC).contains("Starting: fixing the audience…\nid "));
    }

    #[test]
    fn buttons_follow_the_status() {
        let id = Uuid::nil();
        let pause = format!("cc:pause:{id}");
        let resume = format!("cc:resume:{id}");
        let cancel = format!("cc:cancel:{id}");
        let not_started = |status| Snapshot {
            recipients: None,
            delivered: 0,
            ..snapshot(status)
        };
        let scheduled = labels(&card_keyboard(&not_started(CampaignStatus::Scheduled)));
        assert_eq!(
            scheduled,
            [
                ("🕑 Move".into(), format!("cc:move:{id}")),
                ("✖️ Cancel".into(), cancel.clone())
            ]
        );
        let pending = labels(&card_keyboard(&not_started(CampaignStatus::Pending)));
        assert_eq!(pending, [("✖️ Cancel".into(), cancel.clone())]);

        // Once it sent something: edit and delete everywhere, until recalled.
        let edit = ("✏️ Edit".to_owned(), format!("cc:edit:{id}"));
        let recall = ("🗑 Delete everywhere".to_owned(), format!("cc:recall:{id}"));
        let sending = labels(&card_keyboard(&snapshot(CampaignStatus::Sending)));
        assert_eq!(
            sending,
            [
                ("⏸ Pause".into(), pause),
                ("✖️ Cancel".into(), cancel.clone()),
                edit.clone(),
                recall.clone(),
            ]
        );
        let paused = labels(&card_keyboard(&snapshot(CampaignStatus::Paused)));
        assert_eq!(
            paused,
            [
                ("▶️ Resume".into(), resume),
                ("✖️ Cancel".into(), cancel),
                edit.clone(),
                recall.clone(),
            ]
        );
        let completed = labels(&card_keyboard(&snapshot(CampaignStatus::Completed)));
        assert_eq!(completed, [edit, recall]);
        let recalled = Snapshot {
            recalled: true,
            ..snapshot(CampaignStatus::Cancelled)
        };
        assert!(labels(&card_keyboard(&recalled)).is_empty());
    }

    #[test]
    fn a_card_shows_how_its_amendments_go() {
        let edited = Snapshot {
            revision: 1,
            amendments: vec!["✏️ Edited (version 2): 300 edited".into()],
            ..snapshot(CampaignStatus::Completed)
        };
        let card = card(&edited, None, Tz::UTC);
        assert!(
            card.starts_with("✅ “Spring sale”\ncompleted · audience ru · photo\n"),
            "{card}"
        );
        assert!(
            card.ends_with(
                "\n✏️ Edited (version 2): 300 edited\nid 00000000-0000-0000-0000-000000000000"
            ),
            "{card}"
        );
    }

    #[test]
    fn reports_come_at_the_end_or_when_courier_pauses() {
        assert_eq!(report(&snapshot(CampaignStatus::Sending)), None);
        assert_eq!(report(&snapshot(CampaignStatus::Paused)), None);
        let completed = Snapshot {
            delivered: 950,
            finished_at: Some(Utc.with_ymd_and_hms(2025, 3, 1, 12, 2, 5).unwrap()),
            ..snapshot(CampaignStatus::Completed)
        };
        let report_ = report(&completed).unwrap();
        assert_eq!(report_.key, "completed");
        assert_eq!(
            report_.text,
            format!(
                "✅ “Spring sale” completed in 2m 05s.\nRecipients 1000 · delivered 950 · not alive 40 · failed 10\nid {}",
                Uuid::nil()
            )
        );
        let paused = Snapshot {
            reason: Some("Bad Request: wrong file identifier".into()),
            ..snapshot(CampaignStatus::Paused)
        };
        let report_ = report(&paused).unwrap();
        assert_eq!(report_.key, "paused: Bad Request: wrong file identifier");
        assert!(
            report_.text.contains("Resume or Cancel"),
            "{}",
            report_.text
        );
        let cancelled = Snapshot {
            cancelled: 650,
            status_by: Some(Who {
                id: 7,
                name: Some("@anna".into()),
            }),
            ..snapshot(CampaignStatus::Cancelled)
        };
        let text = report(&cancelled).unwrap().text;
        assert!(
            text.starts_with("⛔ “Spring sale” was cancelled by @anna."),
            "{text}"
        );
        assert!(text.contains("not sent 650"), "{text}");
        assert!(card(&cancelled, None, Tz::UTC).contains("\nCancelled by @anna\n"));
        let paused = Snapshot {
            status_by: Some(Who { id: 7, name: None }),
            ..snapshot(CampaignStatus::Paused)
        };
        assert!(card(&paused, None, Tz::UTC).contains("\nPaused by admin 7\n"));
    }

    #[test]
    fn list_lines_are_compact() {
        assert_eq!(
            list_line(&snapshot(CampaignStatus::Paused), Tz::UTC),
            "⏸ “Spring sale” · 2025-03-01 12:00 · paused · ru · 350/1000 done, 300 delivered"
        );
    }

    #[test]
    fn a_scheduled_campaign_says_when_it_starts() {
        let scheduled = Snapshot {
            recipients: None,
            scheduled_at: Some(Utc.with_ymd_and_hms(2025, 3, 2, 7, 0, 0).unwrap()),
            ..snapshot(CampaignStatus::Scheduled)
        };
        assert!(
            card(&scheduled, None, Tz::UTC).contains("Starts 2025-03-02 07:00 UTC\nid "),
            "{}",
            card(&scheduled, None, Tz::UTC)
        );
        assert_eq!(
            list_line(&scheduled, Tz::UTC),
            "🗓 “Spring sale” · 2025-03-01 12:00 · scheduled · ru · starts 2025-03-02 07:00 UTC"
        );
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        assert!(
            card(&scheduled, None, moscow)
                .contains("Starts 2025-03-02 10:00 MSK (Europe/Moscow)\n"),
            "{}",
            card(&scheduled, None, moscow)
        );
    }

    #[test]
    fn a_campaign_with_versions_counts_each() {
        assert_eq!(
            VersionCount::parse(" 28 30"),
            Some(VersionCount {
                version: "default".into(),
                delivered: 28,
                recipients: 30
            })
        );
        assert_eq!(VersionCount::parse("ru x 3"), None);
        let mut completed = snapshot(CampaignStatus::Completed);
        completed.versions = ["ru 70 70", " 28 30"]
            .iter()
            .filter_map(|text| VersionCount::parse(text))
            .collect();
        let line = "By version: ru 70/70 · default 28/30 delivered";
        assert!(
            card(&completed, None, Tz::UTC).contains(line),
            "{}",
            card(&completed, None, Tz::UTC)
        );
        let report = report(&completed).unwrap();
        assert!(report.text.contains(line), "{}", report.text);
        assert!(!card(&snapshot(CampaignStatus::Sending), None, Tz::UTC).contains("By version"));
    }
}
