//! Waiting for a dependency (NATS, Postgres) at start-up, with capped
//! exponential backoff and a log line saying what is awaited.
//!
//! Only for start-up and reconnects: work items are retried through
//! JetStream redelivery, never here.

use std::future::Future;
use std::time::Duration;

/// Delay before attempt `attempt` (0-based): 100 ms doubling up to `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let millis = 100u64.saturating_mul(1u64 << attempt.min(20));
    Duration::from_millis(millis).min(max)
}

/// Runs `op` until it succeeds, sleeping with backoff between failures and
/// logging each one with `what`. Gives up only when `shutdown` fires.
pub async fn until_ready<T, E, F, Fut>(
    what: &str,
    shutdown: &tokio_util::sync::CancellationToken,
    mut op: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => {
                if attempt > 0 {
                    tracing::info!(what, attempts = attempt + 1, "ready");
                }
                return Some(value);
            }
            Err(error) => {
                let delay = backoff(attempt, Duration::from_secs(10));
                tracing::warn!(what, %error, retry_in_ms = delay.as_millis() as u64, "waiting");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let max = Duration::from_secs(10);
        assert_eq!(backoff(0, max), Duration::from_millis(100));
        assert_eq!(backoff(1, max), Duration::from_millis(200));
        assert_eq!(backoff(4, max), Duration::from_millis(1600));
        assert_eq!(backoff(10, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
