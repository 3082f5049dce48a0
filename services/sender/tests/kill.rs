//! Senders as real processes: SIGKILL one of three mid-campaign and every
//! recipient is still delivered, each at most once more than documented
//! (the killed process's sends that Telegram accepted but it never
//! recorded).

use std::collections::HashMap;
use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, Language};
use courier_testing::campaigns::{
    register_users, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::process::ServiceProcess;
use courier_testing::{TestEnv, wait_until};
use telegram_sandbox::{Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const USERS: i64 = 600;
const MAX_IN_FLIGHT: usize = 16;

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
    let sandbox_url = sandbox.url();
    let max_in_flight = MAX_IN_FLIGHT.to_string();
    let sender_env = [
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", sandbox_url.as_str()),
        ("SENDER_RATE_LIMIT", "200"),
        ("SENDER_MAX_IN_FLIGHT", max_in_flight.as_str()),
    ];
    let mut senders: Vec<ServiceProcess> = (0..3)
        .map(|_| ServiceProcess::start("courier-sender", &env, &sender_env))
        .collect();
    let campaign = start_text_campaign(&commands, Audience::Ru, "survive a crash").await;

    wait_until("a quarter delivered", Duration::from_secs(60), || async {
        (sandbox.deliveries().len() >= USERS as usize / 4).then_some(())
    })
    .await;
    senders[0].kill();

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
