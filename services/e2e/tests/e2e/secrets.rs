//! Bot tokens never appear in what a sender prints: run the real binary
//! with debug logs through connection failures, sends and refused tokens,
//! its own and an added bot's, and search everything it wrote for the
//! secrets.

use std::process::Stdio;
use std::time::Duration;

use courier_core::proto::v1::Audience;
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::TestEnv;
use courier_testing::campaigns::{start_text_campaign, wait_for_status, wait_for_users};
use courier_testing::process;
use telegram_sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SECRET: &str = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a sender with debug logs (and `vars`) until it exits or prints a
/// line containing `until`; returns everything it printed.
async fn sender_output(env: &TestEnv, api_url: &str, vars: &[(&str, &str)], until: &str) -> String {
    let mut child = Command::new(process::binary("courier-sender"))
        .env_clear()
        .envs(env.service_env())
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .env("TELEGRAM_BOT_TOKEN", format!("123456789:{SECRET}"))
        .env("TELEGRAM_API_URL", api_url)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting courier-sender");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut output = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            output.push_str(&line);
            output.push('\n');
            if line.contains(until) {
                break;
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the sender printed what was awaited");
    let _ = child.kill().await;
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_never_appears_in_a_senders_output() {
    let Setup {
        env,
        commands,
        pool,
        ..
    } = Setup::new(1, unlimited_sandbox()).await;
    let stack = Stack::start(
        &env,
        "http://127.0.0.1:9",
        SenderSettings {
            rate_limit: 10.0,
            replicas: 0,
        },
    );
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 1, DEADLINE).await;
    let campaign = start_text_campaign(&commands, Audience::All, "secret-free").await;
    wait_for_status(&client, campaign, "sending", DEADLINE).await;
    // Nothing listens on this port: connection errors, with the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable =
        sender_output(&env, &format!("http://{closed}"), &[], "transient failure").await;
    // A Bot API that refuses the token: the sender stops with an error.
    // (A second campaign: the first one's item waits out its ack deadline.)
    start_text_campaign(&commands, Audience::All, "secret-free again").await;
    let sandbox = Sandbox::start(SandboxConfig {
        tokens: vec!["42:another-bots-secret-0000".into()],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let refused = sender_output(&env, &sandbox.url(), &[], "TELEGRAM_BOT_TOKEN").await;

    for (case, output) in [
        ("unreachable API", &unreachable),
        ("refused token", &refused),
    ] {
        assert!(
            !output.contains(SECRET),
            "{case}: the secret leaked:\n{output}"
        );
        assert!(
            output.contains("123456789"),
            "{case}: the bot id is fine to show:\n{output}"
        );
    }
    assert!(unreachable.contains("transient failure"), "{unreachable}");
    assert!(
        refused.contains("Telegram refused TELEGRAM_BOT_TOKEN"),
        "{refused}"
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_added_bots_token_never_appears_in_a_senders_output() {
    const ADDED_SECRET: &str = "AAF-added_bots_secret_0123456789";
    let s = Setup::new(1, unlimited_sandbox()).await;
    courier_e2e::add_bot(&s.env, &format!("222:{ADDED_SECRET}")).await;
    s.register_users_of(222, &courier_e2e::en_users(1)).await;
    let stack = s.stack(10.0, 0);
    let client = s.pool.get().await.unwrap();
    wait_for_users(&client, 2, DEADLINE).await;
    let start = async |text: &str| {
        courier_testing::campaigns::start_text_campaign_of(&s.commands, 222, Audience::All, text)
            .await
    };
    // The added bot sends one campaign; then Telegram stops taking its
    // token and the next campaign's send is refused.
    let first = start("sent with the added bot").await;
    let api_url = s.sandbox.url();
    let (output, ()) = tokio::join!(
        sender_output(
            &s.env,
            &api_url,
            &[("COURIER_TOKEN_KEY", courier_e2e::TOKEN_KEY)],
            "Telegram refused the bot's token",
        ),
        async {
            wait_for_status(&client, first, "completed", DEADLINE).await;
            s.sandbox
                .configure(|c| c.tokens = vec![format!("123456789:{SECRET}")]);
            start("refused").await;
        }
    );
    assert_eq!(
        s.sandbox
            .deliveries()
            .iter()
            .filter(|d| d.bot_id == 222)
            .count(),
        1
    );
    for secret in [SECRET, ADDED_SECRET] {
        assert!(!output.contains(secret), "a secret leaked:\n{output}");
    }
    assert!(
        output.contains("bot=222"),
        "the bot id is fine to show:\n{output}"
    );
    stack.stop().await.unwrap();
}
