//! The campaign state machine: which status follows which command.
//!
//! Pure and I/O-free so every service (the bot deciding what to offer, the
//! projector applying events, courierctl validating a command) agrees on it.

use std::fmt;
use std::str::FromStr;

/// Where a campaign is in its life. Stored in Postgres as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignStatus {
    /// Created, not started yet.
    Pending,
    /// To start at a set time (a timer NATS holds).
    Scheduled,
    /// Waiting for a second admin's approval before it starts.
    AwaitingApproval,
    /// Started: work items are being enqueued and sent.
    Sending,
    /// Sends stopped by an admin or by courier itself (broken content).
    Paused,
    /// Every recipient has an outcome.
    Completed,
    /// Stopped for good; recipients without an outcome are cancelled.
    Cancelled,
}

/// Something that moves a campaign from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Ask another admin to approve the start.
    RequestApproval,
    /// Set or move the time a campaign starts at.
    Schedule,
    Start,
    Pause,
    Resume,
    Cancel,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition} a campaign that is {from}")]
pub struct TransitionError {
    pub from: CampaignStatus,
    pub transition: Transition,
}

impl CampaignStatus {
    /// The status after `transition`, or why it is not allowed.
    pub fn apply(self, transition: Transition) -> Result<CampaignStatus, TransitionError> {
        use CampaignStatus::*;
        use Transition::*;
        let next = match (self, transition) {
            (Pending, RequestApproval) => AwaitingApproval,
            (Pending | Scheduled | AwaitingApproval, Schedule) => Scheduled,
            (Pending | Scheduled | AwaitingApproval, Start) => Sending,
            (Sending, Pause) => Paused,
            (Paused, Resume) => Sending,
            (Pending | Scheduled | AwaitingApproval | Sending | Paused, Cancel) => Cancelled,
            (Sending, Complete) => Completed,
            _ => {
                return Err(TransitionError {
                    from: self,
                    transition,
                });
            }
        };
        Ok(next)
    }

    /// Completed and cancelled campaigns never change again.
    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Pending => "pending",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::AwaitingApproval => "awaiting_approval",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self {
            Transition::RequestApproval => "request approval for",
            Transition::Schedule => "schedule",
            Transition::Start => "start",
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Cancel => "cancel",
            Transition::Complete => "complete",
        };
        f.write_str(verb)
    }
}

/// `42s`, `3m 05s`, `2h 04m`: a campaign's duration or estimate, as
/// precise as a person needs.
pub fn duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown campaign status {0:?}")]
pub struct UnknownStatus(String);

impl FromStr for CampaignStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => CampaignStatus::Pending,
            "scheduled" => CampaignStatus::Scheduled,
            "awaiting_approval" => CampaignStatus::AwaitingApproval,
            "sending" => CampaignStatus::Sending,
            "paused" => CampaignStatus::Paused,
            "completed" => CampaignStatus::Completed,
            "cancelled" => CampaignStatus::Cancelled,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;
    use super::Transition::*;
    use super::*;

    #[test]
    fn a_campaign_runs_its_normal_course() {
        let status = Pending.apply(Start).unwrap();
        let status = status.apply(Pause).unwrap();
        let status = status.apply(Resume).unwrap();
        assert_eq!(status.apply(Complete), Ok(Completed));
    }

    #[test]
    fn a_scheduled_campaign_is_moved_then_started_or_cancelled() {
        let status = Pending.apply(Schedule).unwrap();
        assert_eq!(status, Scheduled);
        assert_eq!(status.apply(Schedule), Ok(Scheduled), "a new time");
        assert_eq!(status.apply(Start), Ok(Sending));
        assert_eq!(status.apply(Cancel), Ok(Cancelled));
        for refused in [Pause, Resume, Complete] {
            assert!(status.apply(refused).is_err(), "{refused}");
        }
        for started in [Sending, Paused] {
            assert!(
                started.apply(Schedule).is_err(),
                "too late to schedule: {started}"
            );
        }
    }

    #[test]
    fn a_campaign_awaiting_approval_starts_is_scheduled_or_cancelled() {
        let status = Pending.apply(RequestApproval).unwrap();
        assert_eq!(status, AwaitingApproval);
        assert_eq!(status.apply(Start), Ok(Sending));
        assert_eq!(status.apply(Schedule), Ok(Scheduled));
        assert_eq!(status.apply(Cancel), Ok(Cancelled));
        for refused in [RequestApproval, Pause, Resume, Complete] {
            assert!(status.apply(refused).is_err(), "{refused}");
        }
        assert!(Sending.apply(RequestApproval).is_err());
    }

    #[test]
    fn final_statuses_refuse_everything() {
        for from in [Completed, Cancelled] {
            for transition in [
                RequestApproval,
                Schedule,
                Start,
                Pause,
                Resume,
                Cancel,
                Complete,
            ] {
                assert_eq!(
                    from.apply(transition),
                    Err(TransitionError { from, transition })
                );
            }
        }
    }

    #[test]
    fn only_a_sending_campaign_completes_or_pauses() {
        assert!(Pending.apply(Complete).is_err());
        assert!(Paused.apply(Complete).is_err());
        assert!(Pending.apply(Pause).is_err());
        assert!(Sending.apply(Resume).is_err());
        assert!(Sending.apply(Start).is_err());
    }

    #[test]
    fn any_unfinished_campaign_can_be_cancelled() {
        for from in [Pending, Scheduled, AwaitingApproval, Sending, Paused] {
            assert_eq!(from.apply(Cancel), Ok(Cancelled));
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            Pending,
            Scheduled,
            AwaitingApproval,
            Sending,
            Paused,
            Completed,
            Cancelled,
        ] {
            assert_eq!(status.as_str().parse::<CampaignStatus>().unwrap(), status);
        }
        assert!("sent".parse::<CampaignStatus>().is_err());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(std::time::Duration::from_secs(0)), "0s");
        assert_eq!(duration(std::time::Duration::from_secs(59)), "59s");
        assert_eq!(duration(std::time::Duration::from_secs(65)), "1m 05s");
        assert_eq!(duration(std::time::Duration::from_secs(7440)), "2h 04m");
    }

    #[test]
    fn refusals_read_as_sentences() {
        let error = Completed.apply(Resume).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot resume a campaign that is completed"
        );
    }
}
