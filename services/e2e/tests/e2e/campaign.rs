//! A campaign flows end to end: user events → projector → loader → senders
//! → the Telegram sandbox → outcomes → a completed campaign with exact
//! counts; and the read model is rebuilt identically from the streams.

use std::collections::HashMap;
use std::time::Duration;

use courier_core::proto::v1::{Audience, Language};
use courier_e2e::{SenderSettings, Setup, Stack, unlimited_sandbox};
use courier_testing::campaigns::{
    CampaignRow, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::read_model::assert_replays_identically;
use courier_testing::{TestEnv, wait_until};
use telegram_sandbox::ChatState;

const DEADLINE: Duration = Duration::from_secs(90);

/// 1,000 users: odd ids speak ru, even ids en; every 10th user blocked the
/// bot (known to courier), and 5 ru users blocked it without courier knowing
/// yet (Telegram will say so).
fn population() -> Vec<(i64, Language, bool)> {
    (1..=1000)
        .map(|id| {
            let language = if id % 2 == 1 {
                Language::Ru
            } else {
                Language::En
            };
            (id, language, id % 10 != 0)
        })
        .collect()
}

const SECRETLY_BLOCKED: [i64; 5] = [3, 33, 333, 555, 777];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_reaches_every_live_ru_user_exactly_once_and_replays_identically() {
    let users = population();
    let Setup {
        env,
        sandbox,
        commands,
        pool,
    } = Setup::on(TestEnv::new().await, &users, unlimited_sandbox()).await;
    for chat in SECRETLY_BLOCKED {
        sandbox.set_chat_state(chat, ChatState::Blocked);
    }
    let stack = Stack::start(
        &env,
        &sandbox.url(),
        SenderSettings {
            rate_limit: 500.0,
            replicas: 2,
        },
    );
    let client = pool.get().await.expect("a connection");

    // The loader must see every registration: wait for the projector first.
    wait_for_users(&client, 1000, DEADLINE).await;
    let text = "Привет! Новости недели.";
    let campaign = start_text_campaign(&commands, Audience::Ru, text).await;
    let row = wait_for_status(&client, campaign, "completed", DEADLINE).await;

    let live_ru: Vec<i64> = users
        .iter()
        .filter(|(_, language, alive)| *language == Language::Ru && *alive)
        .map(|(id, _, _)| *id)
        .collect();
    let reachable: Vec<i64> = live_ru
        .iter()
        .copied()
        .filter(|id| !SECRETLY_BLOCKED.contains(id))
        .collect();
    assert_eq!(
        row,
        CampaignRow {
            status: "completed".into(),
            audience_size: Some(live_ru.len() as i32),
            delivered: reachable.len() as i32,
            not_alive: SECRETLY_BLOCKED.len() as i32,
            failed: 0,
        }
    );

    let mut received: HashMap<i64, usize> = HashMap::new();
    for delivery in sandbox.deliveries() {
        assert_eq!(delivery.text.as_deref(), Some(text), "{delivery:?}");
        *received.entry(delivery.chat_id).or_default() += 1;
    }
    let mut recipients: Vec<i64> = received.keys().copied().collect();
    recipients.sort();
    assert_eq!(
        recipients, reachable,
        "exactly the reachable live ru users got it"
    );
    assert!(received.values().all(|&n| n == 1), "nobody got it twice");

    // Telegram said the secretly blocked users are gone: they are not alive now.
    wait_until(
        "secretly blocked users marked not alive",
        DEADLINE,
        || async {
            let row = client
                .query_one(
                    "SELECT count(*) FROM users WHERE NOT is_alive AND user_id = ANY($1)",
                    &[&SECRETLY_BLOCKED.to_vec()],
                )
                .await
                .ok()?;
            (row.get::<_, i64>(0) == SECRETLY_BLOCKED.len() as i64).then_some(())
        },
    )
    .await;

    // Replay both streams into an empty database: identical tables.
    assert_replays_identically(&env, &client, DEADLINE).await;
    stack.stop().await.expect("services stopped cleanly");
}
