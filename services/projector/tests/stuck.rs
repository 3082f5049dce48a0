//! A stuck projector shows: with its Postgres session waiting on a lock
//! another session holds, its lag rises and `/readyz` turns 503; once the
//! lock is released it catches up and is ready again, by itself.
//!
//! One test per binary: it serves the process's global metrics and
//! readiness.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::time::Duration;

use courier_core::event::EventPublisher;
use courier_core::health::{self, HealthConfig};
use courier_core::proto::v1::Language;
use courier_testing::campaigns::{register_users, wait_for_users};
use courier_testing::{TestEnv, wait_until};

/// Status and body of a GET to the operations endpoint.
async fn get(base: &str, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("{base}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// `courier_projector_lag{stream="events"}` as `/metrics` shows it.
async fn events_lag(base: &str) -> Option<u64> {
    let (_, metrics) = get(base, "/metrics").await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("courier_projector_lag{stream=\"events\"} "))?
        .parse::<f64>()
        .ok()
        .map(|lag| lag as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_waiting_on_a_lock_shows_rising_lag_and_is_not_ready_until_it_moves() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let base = format!("http://{address}");
    let shutdown = tokio_util::sync::CancellationToken::new();
    health::start(
        &HealthConfig {
            metrics_addr: address,
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let env = TestEnv::new().await;
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    register_users(&publisher, &[(1, Language::En, true)]).await;
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 1, Duration::from_secs(30)).await;
    wait_until("ready, lag 0", Duration::from_secs(30), || async {
        let ready = get(&base, "/readyz").await?.0 == 200;
        (ready && events_lag(&base).await == Some(0)).then_some(())
    })
    .await;

    let mut locker = pool.get().await.unwrap();
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let more: Vec<_> = (2..=51).map(|id| (id, Language::En, true)).collect();
    register_users(&publisher, &more).await;
    wait_until("the lag rising", Duration::from_secs(10), || async {
        (events_lag(&base).await? >= 50).then_some(())
    })
    .await;
    let (status, reason) = wait_until("not ready", Duration::from_secs(30), || async {
        get(&base, "/readyz")
            .await
            .filter(|(status, _)| *status != 200)
    })
    .await;
    assert_eq!(status, 503);
    assert!(reason.contains("a batch has been applying"), "{reason}");

    lock.rollback().await.unwrap();
    wait_until(
        "ready again, caught up",
        Duration::from_secs(30),
        || async {
            let ready = get(&base, "/readyz").await?.0 == 200;
            (ready && events_lag(&base).await == Some(0)).then_some(())
        },
    )
    .await;
    wait_for_users(&client, 51, Duration::from_secs(30)).await;
    projector.stop().await;
    shutdown.cancel();
}
