//! Whether the active projector is moving, for `/readyz`. A batch still
//! applying after [`STALLED_AFTER`] (its Postgres session waits on a lock,
//! or Postgres stopped answering) or a runner restarting after an error
//! makes the process not ready; it is ready again as soon as it moves.
//! A standby waiting for the projector lock is ready: it has nothing to
//! apply.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longer than any batch takes when Postgres answers (the largest: a
/// campaign start inserting a delivery row per recipient).
pub const STALLED_AFTER: Duration = Duration::from_secs(10);

/// Shared by the runners of one process and the readiness check.
#[derive(Default)]
pub struct Progress {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Since when the runner has been applying what it holds.
    working_since: Option<Instant>,
    /// Why the last runner stopped, until a new one reaches Postgres.
    failure: Option<String>,
}

/// Work under way; it ends when this is dropped, however the work ended.
pub struct Working(Arc<Progress>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.state().working_since = None;
    }
}

impl Progress {
    /// Starts timing a piece of work (a batch, the settling at start-up).
    pub fn working(self: &Arc<Self>) -> Working {
        self.state().working_since = Some(Instant::now());
        Working(self.clone())
    }

    /// The runner stopped with `error` and is restarting.
    pub fn failed(&self, error: &anyhow::Error) {
        self.state().failure = Some(format!("{error:#}"));
    }

    /// A new runner reached Postgres.
    pub fn connected(&self) {
        self.state().failure = None;
    }

    /// Why the projector is not ready at `now`, if it is not.
    pub fn not_ready(&self, now: Instant) -> Option<String> {
        let state = self.state();
        verdict(state.working_since, state.failure.as_deref(), now)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("progress lock")
    }
}

fn verdict(working_since: Option<Instant>, failure: Option<&str>, now: Instant) -> Option<String> {
    if let Some(error) = failure {
        return Some(format!("restarting after an error: {error}"));
    }
    let working = now.saturating_duration_since(working_since?);
    (working >= STALLED_AFTER).then(|| {
        format!(
            "a batch has been applying for {} s (Postgres waits on a lock, or does not answer)",
            working.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_or_working_briefly_is_ready() {
        let now = Instant::now();
        assert_eq!(verdict(None, None, now), None);
        let started = now - (STALLED_AFTER - Duration::from_millis(1));
        assert_eq!(verdict(Some(started), None, now), None);
    }

    #[test]
    fn a_batch_applying_too_long_is_not_ready() {
        let now = Instant::now();
        let started = now - STALLED_AFTER - Duration::from_secs(2);
        let reason = verdict(Some(started), None, now).unwrap();
        assert!(reason.contains("applying for 12 s"), "{reason}");
    }

    #[test]
    fn a_runner_restarting_after_an_error_is_not_ready() {
        let reason = verdict(None, Some("connection refused"), Instant::now()).unwrap();
        assert!(reason.contains("connection refused"), "{reason}");
    }

    #[test]
    fn readiness_returns_when_the_work_ends_and_postgres_answers() {
        let progress = Arc::new(Progress::default());
        progress.failed(&anyhow::anyhow!("connection refused"));
        let later = Instant::now() + STALLED_AFTER * 2;
        assert!(progress.not_ready(later).is_some());
        progress.connected();
        let working = progress.working();
        assert!(progress.not_ready(later).is_some(), "stalled");
        drop(working);
        assert_eq!(progress.not_ready(later), None);
    }
}
