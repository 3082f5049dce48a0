//! Senders as real processes: SIGKILL one of three mid-campaign and every
//! recipient is still delivered, each at most once more than documented
//! (the killed process's sends that Telegram accepted but it never
//! recorded).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, Language};
use courier_testing::campaigns::{
    register_users, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::{TestEnv, wait_until};
use telegram_sandbox::{Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const USERS: i64 = 600;
const MAX_IN_FLIGHT: usize = 16;

/// A sender process; killed on drop so a failing test leaves none behind.
struct SenderProcess(Child);

impl SenderProcess {
    fn spawn(env: &TestEnv, sandbox_url: &str) -> SenderProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_courier-sender"))
            .env_clear()
            .envs(env.service_env())
            .env("TELEGRAM_BOT_TOKEN", TOKEN)
            .env("TELEGRAM_API_URL", sandbox_url)
            .env("SENDER_RATE_LIMIT", "200")
            .env("SENDER_MAX_IN_FLIGHT", MAX_IN_FLIGHT.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting courier-sender");
        SenderProcess(child)
    }
}

impl Drop for SenderProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_three_senders_loses_no_recipient() {
    let env = TestEnv::new().await;
    let sandbox = Sandbox::start(SandboxConfig {
        rate_limit: 0,
        chat_rate_limit: 0,
        latency_ms: 20,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let js = env.jetstream().await;
    let population: Vec<_> = (1..=USERS).map(|id| (id, Language::Ru, true)).collect();
    register_users(
        &EventPublisher::new(js.clone(), env.topology()),
        &population,
    )
    .await;
    let commands = CampaignCommands::new(js, env.topology()).await.unwrap();

    let shutdown = CancellationToken::new();
    let projector = tokio::spawn(courier_projector::run(
        courier_projector::ProjectorConfig {
            nats: env.nats.clone(),
            database: env.database.clone(),
        },
        shutdown.clone(),
    ));
    let loader = tokio::spawn(courier_loader::run(
        courier_loader::LoaderConfig {
            nats: env.nats.clone(),
            database: env.database.clone(),
            batch_size: 100,
        },
        shutdown.clone(),
    ));
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, USERS, Duration::from_secs(30)).await;
    let mut senders: Vec<SenderProcess> = (0..3)
        .map(|_| SenderProcess::spawn(&env, &sandbox.url()))
        .collect();
    let campaign = start_text_campaign(&commands, Audience::Ru, "survive a crash").await;

    wait_until("a quarter delivered", Duration::from_secs(60), || async {
        (sandbox.deliveries().len() >= USERS as usize / 4).then_some(())
    })
    .await;
    let mut victim = senders.remove(0);
    victim.0.kill().expect("SIGKILL");
    victim.0.wait().unwrap();

    // Its unacked items come back after ack_wait (30 s) to the others.
    let row = wait_for_status(&client, campaign, "completed", Duration::from_secs(120)).await;
    assert_eq!(row.delivered, USERS as i32, "{row:?}");
    let mut received: HashMap<i64, usize> = HashMap::new();
    for delivery in sandbox.deliveries() {
        *received.entry(delivery.chat_id).or_default() += 1;
    }
    assert_eq!(
        received.len(),
        USERS as usize,
        "every recipient got the message"
    );
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= MAX_IN_FLIGHT,
        "{duplicates} duplicates: more than the killed sender had in flight"
    );
    println!("duplicates after SIGKILL: {duplicates}");
    shutdown.cancel();
    projector.await.unwrap().unwrap();
    loader.await.unwrap().unwrap();
}
