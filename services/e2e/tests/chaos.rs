//! Faults mid-campaign: NATS restarts, Postgres goes away. Afterwards the
//! campaign completes, every live recipient got the message, and the
//! Postgres counters equal the sandbox's own record of deliveries.
//! (`just chaos` runs these alone; sender SIGKILL is in the sender crate.)

use std::collections::HashMap;
use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, Language};
use courier_e2e::{SenderSettings, Stack};
use courier_testing::campaigns::{
    register_users, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::nats_server::NatsServer;
use courier_testing::{TestEnv, wait_until};
use telegram_sandbox::{Sandbox, SandboxConfig};

const USERS: i64 = 200;
const DEADLINE: Duration = Duration::from_secs(120);

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        rate_limit: 0,
        chat_rate_limit: 0,
        latency_ms: 5,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Registers the users and starts a campaign to all of them.
async fn campaign(env: &TestEnv, pool: &deadpool_postgres::Pool) -> uuid::Uuid {
    let js = env.jetstream().await;
    let population: Vec<_> = (1..=USERS).map(|id| (id, Language::En, true)).collect();
    register_users(
        &EventPublisher::new(js.clone(), env.topology()),
        &population,
    )
    .await;
    wait_for_users(&pool.get().await.unwrap(), USERS, DEADLINE).await;
    let commands = CampaignCommands::new(js, env.topology()).await.unwrap();
    start_text_campaign(&commands, Audience::All, "weather the storm").await
}

/// Every user received it; returns how many got it more than once.
fn duplicates(sandbox: &Sandbox) -> usize {
    let mut received: HashMap<i64, usize> = HashMap::new();
    for delivery in sandbox.deliveries() {
        *received.entry(delivery.chat_id).or_default() += 1;
    }
    assert_eq!(
        received.len(),
        USERS as usize,
        "every live recipient got the message"
    );
    received.values().map(|n| n - 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_nats_restart_mid_campaign() {
    let mut nats = NatsServer::start();
    let env = TestEnv::with_nats(&nats.url()).await;
    let sandbox = sandbox().await;
    let stack = Stack::start(
        &env,
        &sandbox.url(),
        SenderSettings {
            rate_limit: 50.0,
            replicas: 2,
        },
    );
    let pool = env.pool().await;
    let campaign = campaign(&env, &pool).await;
    wait_until("a quarter delivered", DEADLINE, || async {
        (sandbox.deliveries().len() >= USERS as usize / 4).then_some(())
    })
    .await;
    nats.restart();
    let row = wait_for_status(&pool.get().await.unwrap(), campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, USERS as i32, "{row:?}");
    assert_eq!(
        duplicates(&sandbox),
        0,
        "a NATS restart sends nobody anything twice"
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_postgres_outage_mid_campaign() {
    let env = TestEnv::new().await;
    let sandbox = sandbox().await;
    let stack = Stack::start(
        &env,
        &sandbox.url(),
        SenderSettings {
            rate_limit: 50.0,
            replicas: 2,
        },
    );
    let pool = env.pool().await;
    let campaign = campaign(&env, &pool).await;
    wait_until("a quarter delivered", DEADLINE, || async {
        (sandbox.deliveries().len() >= USERS as usize / 4).then_some(())
    })
    .await;
    env.cut_postgres().await;
    let during = sandbox.deliveries().len();
    wait_until("sends continue without Postgres", DEADLINE, || async {
        (sandbox.deliveries().len() >= during + 20).then_some(())
    })
    .await;
    env.restore_postgres().await;
    let row = wait_for_status(&pool.get().await.unwrap(), campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, USERS as i32, "{row:?}");
    assert_eq!(duplicates(&sandbox), 0);
    stack.stop().await.unwrap();
}
