//! Start timers of scheduled campaigns, held by NATS rather than by any
//! process: a message on the campaign's timer subject with a `Nats-Schedule:
//! @at <time>` header (nats-server's message schedules, 2.12+). When the
//! time comes, the server publishes the message's body (the campaign id) to
//! the campaign's due subject, where a loader's durable consumer picks it up
//! and starts the campaign ([`crate::commands::CampaignCommands::start_due`]).
//!
//! So a schedule survives restarts of every courier service and of NATS
//! (the timer is a stored message), and fires once whatever the number of
//! loader replicas: the due message goes to one of them, and the start is
//! published with optimistic concurrency, so a redelivered or stale due
//! message finds the campaign started (or cancelled) and does nothing.
//!
//! A timer subject holds one timer: arming it again replaces the old one
//! (the server keeps only the latest schedule per subject), which is how a
//! campaign is rescheduled.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, SecondsFormat, TimeZone as _, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::topology::Topology;

const SCHEDULE_HEADER: &str = "Nats-Schedule";
const TARGET_HEADER: &str = "Nats-Schedule-Target";

/// The `Nats-Schedule` value that fires once at `at` (whole seconds: the
/// server's resolution; a time in the past fires at once).
pub fn at_spec(at: DateTime<Utc>) -> String {
    format!("@at {}", at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// How a start time may be written, for error messages and help.
pub const START_FORMATS: &str = "in 45m, in 2h, in 1d, 18:30, tomorrow 10:00, 2026-12-24 09:00, \
     or 2026-12-24T09:00:00+03:00";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartTimeError {
    #[error("{0:?} is not a time courier understands; write it like {START_FORMATS}")]
    Unreadable(String),
    #[error("{0} has passed already")]
    Passed(String),
    #[error("{0:?} is not a time zone; write it like Europe/Moscow, Asia/Dubai or UTC")]
    UnknownZone(String),
}

/// An IANA time zone as an admin writes it (`Europe/Moscow`, `utc`).
pub fn parse_zone(text: &str) -> Result<Tz, StartTimeError> {
    let text = text.trim();
    text.parse::<Tz>()
        .or_else(|_| Tz::from_str_insensitive(text))
        .map_err(|_| StartTimeError::UnknownZone(text.to_owned()))
}

/// When to start, as written by an admin in `zone` at `now`: relative (`in
/// 2h`), a time of day (the next one: today or tomorrow), `tomorrow HH:MM`,
/// a date and time, or RFC 3339 with its own offset. Must be in the future.
pub fn parse_start(
    text: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StartTimeError> {
    let written = text.trim();
    let unreadable = || StartTimeError::Unreadable(written.to_owned());
    let lower = written.to_lowercase();
    let local_now = now.with_timezone(&zone);
    let at_local = |date: NaiveDate, time: NaiveTime| {
        // A time a DST change skips does not exist; an ambiguous one takes
        // its earlier instant.
        zone.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|at| at.with_timezone(&Utc))
            .ok_or_else(unreadable)
    };
    let time_of_day =
        |text: &str| NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| unreadable());
    let at = if let Some(amount) = lower
        .strip_prefix("in ")
        .or_else(|| lower.strip_prefix('+'))
    {
        let amount = amount.trim();
        let split = amount
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(unreadable)?;
        let (count, unit) = amount.split_at(split);
        let count: i64 = count.parse().map_err(|_| unreadable())?;
        let seconds = match unit.trim() {
            "s" | "sec" | "seconds" => 1,
            "m" | "min" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(unreadable()),
        };
        now + chrono::Duration::seconds(count.checked_mul(seconds).ok_or_else(unreadable)?)
    } else if let Some(time) = lower.strip_prefix("tomorrow") {
        let tomorrow = local_now
            .date_naive()
            .checked_add_days(Days::new(1))
            .ok_or_else(unreadable)?;
        at_local(tomorrow, time_of_day(time)?)?
    } else if let Ok(time) = time_of_day(&lower) {
        let today = at_local(local_now.date_naive(), time)?;
        match today > now {
            true => today,
            false => at_local(
                local_now
                    .date_naive()
                    .checked_add_days(Days::new(1))
                    .ok_or_else(unreadable)?,
                time,
            )?,
        }
    } else if let Ok(at) = DateTime::parse_from_rfc3339(written) {
        at.with_timezone(&Utc)
    } else {
        let local = chrono::NaiveDateTime::parse_from_str(written, "%Y-%m-%d %H:%M")
            .map_err(|_| unreadable())?;
        at_local(local.date(), local.time())?
    };
    match at > now {
        true => Ok(at),
        false => Err(StartTimeError::Passed(
            at.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string(),
        )),
    }
}

#[derive(Clone)]
pub struct Timers {
    js: jetstream::Context,
    topology: Topology,
}

impl Timers {
    pub fn new(js: jetstream::Context, topology: Topology) -> Timers {
        Timers { js, topology }
    }

    /// Sets `campaign`'s timer to `at`, replacing any earlier one.
    pub async fn arm(&self, campaign: Uuid, at: DateTime<Utc>) -> Result<(), async_nats::Error> {
        let id = campaign.to_string();
        let mut headers = HeaderMap::new();
        headers.insert(SCHEDULE_HEADER, at_spec(at).as_str());
        headers.insert(TARGET_HEADER, self.topology.due_subject(&id).as_str());
        crate::trace_context::inject(&mut headers);
        let timer = PublishMessage::build()
            .headers(headers)
            .payload(id.clone().into());
        self.js
            .send_publish(self.topology.schedule_subject(&id), timer)
            .await?
            .await?;
        Ok(())
    }

    /// Removes `campaign`'s timer, if it has one.
    pub async fn disarm(&self, campaign: Uuid) -> Result<(), async_nats::Error> {
        let schedules = self.js.get_stream(self.topology.schedules_stream()).await?;
        schedules
            .purge()
            .filter(self.topology.schedule_subject(&campaign.to_string()))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn admins_write_start_times_in_their_own_zone() {
        let moscow = parse_zone("europe/moscow").unwrap();
        // 14:20 in Moscow.
        let now = utc("2026-12-04T11:20:00Z");
        for (written, expected) in [
            ("in 45m", "2026-12-04T12:05:00Z"),
            ("+2h", "2026-12-04T13:20:00Z"),
            ("in 1d", "2026-12-05T11:20:00Z"),
            ("18:30", "2026-12-04T15:30:00Z"),
            ("09:00", "2026-12-05T06:00:00Z"),
            ("tomorrow 10:00", "2026-12-05T07:00:00Z"),
            ("2026-12-24 09:00", "2026-12-24T06:00:00Z"),
            ("2026-12-24T09:00:00+01:00", "2026-12-24T08:00:00Z"),
        ] {
            assert_eq!(
                parse_start(written, moscow, now),
                Ok(utc(expected)),
                "{written}"
            );
        }
    }

    #[test]
    fn a_time_that_passed_or_cannot_be_read_is_refused_plainly() {
        let now = utc("2026-12-04T11:20:00Z");
        assert_eq!(
            parse_start("2026-12-01 09:00", Tz::UTC, now),
            Err(StartTimeError::Passed("2026-12-01 09:00 UTC".into()))
        );
        for unreadable in [
            "soon",
            "in two hours",
            "25:00",
            "2026-13-01 09:00",
            "in 5 fortnights",
        ] {
            let error = parse_start(unreadable, Tz::UTC, now).unwrap_err();
            assert_eq!(error, StartTimeError::Unreadable(unreadable.into()));
            assert!(error.to_string().contains("tomorrow 10:00"), "{error}");
        }
        assert_eq!(
            parse_zone("Mars/Olympus"),
            Err(StartTimeError::UnknownZone("Mars/Olympus".into()))
        );
    }

    #[test]
    fn a_timer_fires_at_a_utc_second() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00.750+03:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(at_spec(at), "@at 2026-12-05T07:00:00Z");
    }
}
