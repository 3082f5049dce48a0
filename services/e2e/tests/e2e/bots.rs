//! Several bots through one deployment: the default bot (the senders'
//! `TELEGRAM_BOT_TOKEN`) and bots added to the bots bucket, each served
//! from its own consumer at its own limit (courier_sender::added_bots).

use std::collections::HashMap;
use std::time::Duration;

use courier_core::proto::v1::{Audience, Language};
use courier_core::topology::DEFAULT_BOT;
use courier_e2e::{BOT_ID, BOT_TOKEN, Setup, Stack, add_bot, sender_serving_added_bots};
use courier_testing::campaigns::{
    campaign_row, start_text_campaign_of, wait_for_status, wait_for_users,
};
use courier_testing::read_model::assert_replays_identically;
use courier_testing::wait_until;
use telegram_sandbox::{ChatState, Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);
/// The sandbox's limit per token, and the senders' rate.
const RATE: u32 = 20;
const SECOND_BOT: i64 = 222;
const SECOND_TOKEN: &str = "222:AAF-second_secret_0123456789";
const SECOND_TOKEN_ROTATED: &str = "222:AAF-rotated_secret_0123456789";
const THIRD_BOT: i64 = 333;
const THIRD_TOKEN: &str = "333:AAF-third_secret_0123456789";

/// Users are per bot. The default and the second bot each have 200 en
/// users (for a big campaign) and 20 ru ones, 201-220 (for a small one);
/// the third bot only 20 ru users of its own, 301-320.
async fn setup() -> Setup {
    let users: Vec<(i64, Language, bool)> = (1..=220)
        .map(|id| match id <= 200 {
            true => (id, Language::En, true),
            false => (id, Language::Ru, true),
        })
        .collect();
    let sandbox = SandboxConfig {
        rate_limit: RATE,
        chat_rate_limit: 0,
        ..SandboxConfig::default()
    };
    let s = Setup::on(courier_testing::TestEnv::new().await, &users, sandbox).await;
    s.register_users_of(SECOND_BOT, &users).await;
    let third: Vec<_> = (301..=320).map(|id| (id, Language::Ru, true)).collect();
    s.register_users_of(THIRD_BOT, &third).await;
    s
}

/// Every bot's users, as [`setup`] registers them.
const USERS: i64 = 220 + 220 + 20;

/// The services of a test: projector, loader, and two senders serving
/// the default bot and every added one, each working on at most
/// `max_in_flight` items of a bot at once.
struct Running {
    stack: Stack,
    stop: CancellationToken,
    senders: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    client: deadpool_postgres::Client,
}

impl Running {
    async fn start(s: &Setup, max_in_flight: u16) -> Running {
        let stack = s.stack(f64::from(RATE), 0);
        let stop = CancellationToken::new();
        let senders = (0..2)
            .map(|_| {
                let config = courier_sender::SenderConfig {
                    chat_rate_limit: 1000.0,
                    max_in_flight,
                    ..sender_serving_added_bots(&s.env, &s.sandbox.url(), f64::from(RATE))
                };
                tokio::spawn(courier_sender::run(config, stop.clone()))
            })
            .collect();
        let client = s.pool.get().await.unwrap();
        wait_for_users(&client, USERS, DEADLINE).await;
        Running {
            stack,
            stop,
            senders,
            client,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        for sender in self.senders {
            sender.await.unwrap().unwrap();
        }
        self.stack.stop().await.unwrap();
    }
}

async fn start(s: &Setup, bot_id: i64, audience: Audience, text: &str) -> uuid::Uuid {
    start_text_campaign_of(&s.commands, bot_id, audience, text).await
}

/// Deliveries per (bot, chat), as the sandbox recorded them.
fn receipts(sandbox: &Sandbox) -> HashMap<(i64, i64), usize> {
    let mut received = HashMap::new();
    for delivery in sandbox.deliveries() {
        *received
            .entry((delivery.bot_id, delivery.chat_id))
            .or_default() += 1;
    }
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn small_campaigns_of_other_bots_are_not_kept_behind_a_big_one() {
    let s = setup().await;
    add_bot(&s.env, SECOND_TOKEN).await;
    add_bot(&s.env, THIRD_TOKEN).await;
    let running = Running::start(&s, courier_sender::DEFAULT_MAX_IN_FLIGHT).await;
    let client = &running.client;

    // The default bot's 200 take 10 s at 20/s; the second and third bots'
    // 20 each (each bot's own ru users), put behind them in the work
    // stream, about one second.
    let big = start(&s, DEFAULT_BOT, Audience::En, "big").await;
    wait_until("the big campaign sending", DEADLINE, || async {
        (s.sandbox.deliveries().len() >= 20).then_some(())
    })
    .await;
    let small = start(&s, SECOND_BOT, Audience::Ru, "small").await;
    let third = start(&s, THIRD_BOT, Audience::Ru, "third").await;
    wait_for_status(client, small, "completed", DEADLINE).await;
    wait_for_status(client, third, "completed", DEADLINE).await;
    let big_then = campaign_row(client, big).await.unwrap();
    assert_eq!(
        big_then.status, "sending",
        "the small campaign finished while the big one still sent: {big_then:?}"
    );
    let big_row = wait_for_status(client, big, "completed", DEADLINE).await;
    assert_eq!(big_row.delivered, 200, "{big_row:?}");
    for campaign in [small, third] {
        let row = campaign_row(client, campaign).await.unwrap();
        assert_eq!(row.delivered, 20, "{row:?}");
    }

    // Each campaign went out under its own bot, once per recipient (the
    // sandbox accepts nothing over a bot's limit; how many sends it
    // refused with a 429 depends on the machine's timing, so the bench
    // counts them: `courier-bench --only bots`, README measurement 8).
    let received = receipts(&s.sandbox);
    assert_eq!(received.len(), 240);
    assert!(received.values().all(|&count| count == 1), "{received:?}");
    assert!((1..=200).all(|chat| received.contains_key(&(BOT_ID, chat))));
    assert!((201..=220).all(|chat| received.contains_key(&(SECOND_BOT, chat))));
    assert!((301..=320).all(|chat| received.contains_key(&(THIRD_BOT, chat))));
    // The three bots' campaigns, rebuilt from the streams: the same read
    // model.
    let bots: Vec<i64> = client
        .query("SELECT DISTINCT bot_id FROM campaigns ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(bots, [DEFAULT_BOT, SECOND_BOT, THIRD_BOT]);
    assert_replays_identically(&s.env, client, DEADLINE).await;

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_stops_only_its_bot_until_it_is_replaced() {
    let s = setup().await;
    add_bot(&s.env, SECOND_TOKEN).await;
    // Telegram takes the default bot's token and not the second bot's.
    s.sandbox.configure(|c| c.tokens = vec![BOT_TOKEN.into()]);
    let running = Running::start(&s, courier_sender::DEFAULT_MAX_IN_FLIGHT).await;
    let client = &running.client;

    let refused = start(&s, SECOND_BOT, Audience::Ru, "refused").await;
    let other = start(&s, DEFAULT_BOT, Audience::Ru, "goes on").await;
    let row = wait_for_status(client, other, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 20, "{row:?}");
    let waiting = campaign_row(client, refused).await.unwrap();
    assert_eq!(
        (waiting.status.as_str(), waiting.delivered, waiting.failed),
        ("sending", 0, 0),
        "the refused bot's recipients wait, none lost: {waiting:?}"
    );

    // The token is replaced (`courierctl bots add` with the new one): the
    // senders take it and the waiting campaign is delivered.
    s.sandbox
        .configure(|c| c.tokens = vec![BOT_TOKEN.into(), SECOND_TOKEN_ROTATED.into()]);
    add_bot(&s.env, SECOND_TOKEN_ROTATED).await;
    let row = wait_for_status(client, refused, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 20, "{row:?}");
    let received = receipts(&s.sandbox);
    assert!((201..=220).all(|chat| received.get(&(SECOND_BOT, chat)) == Some(&1)));

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_added_while_its_campaign_waits_or_removed_midway_loses_nobody() {
    let s = setup().await;
    // No bot added yet: the senders find no bucket and look again. Few
    // items in flight, so most of the big campaign is still unpulled when
    // the bot is removed.
    let running = Running::start(&s, 4).await;
    let client = &running.client;
    let early = start(&s, SECOND_BOT, Audience::Ru, "before the bot").await;
    wait_for_status(client, early, "sending", DEADLINE).await;
    add_bot(&s.env, SECOND_TOKEN).await;
    let row = wait_for_status(client, early, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 20, "{row:?}");

    // Removed while its 200 go out: the items in hand finish, the rest
    // wait in the bot's consumer, nobody pulling.
    let big = start(&s, SECOND_BOT, Audience::En, "removed midway").await;
    wait_until("the big campaign sending", DEADLINE, || async {
        (s.sandbox.deliveries().len() >= 60).then_some(())
    })
    .await;
    let bucket = s
        .env
        .topology()
        .ensure_bots_bucket(&s.env.jetstream().await)
        .await
        .unwrap();
    bucket.delete(SECOND_BOT.to_string()).await.unwrap();
    let consumer = s
        .env
        .jetstream()
        .await
        .get_stream(s.env.topology().work_stream())
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
            &s.env.topology().senders_consumer_of(SECOND_BOT),
        )
        .await
        .unwrap();
    wait_until("nobody pulling the removed bot's items", DEADLINE, || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.ok()?;
            (info.num_waiting == 0 && info.num_pending > 0).then_some(())
        }
    })
    .await;
    let stopped = campaign_row(client, big).await.unwrap();
    assert_eq!(stopped.status, "sending", "{stopped:?}");
    assert!(stopped.delivered < 200, "{stopped:?}");

    // Added again: the rest goes out, once each.
    add_bot(&s.env, SECOND_TOKEN).await;
    let row = wait_for_status(client, big, "completed", DEADLINE).await;
    assert_eq!((row.delivered, row.failed), (200, 0), "{row:?}");
    let received = receipts(&s.sandbox);
    assert!((1..=220).all(|chat| received.get(&(SECOND_BOT, chat)) == Some(&1)));

    running.stop().await;
}

/// An added bot's consumer is pulled only while the bot has work, a
/// campaign sending or items in the work stream
/// (courier_sender::bots_with_work): an idle bot costs no pull requests.
#[tokio::test(flavor = "multi_thread")]
async fn an_added_bot_is_pulled_only_while_it_has_work() {
    let s = setup().await;
    add_bot(&s.env, SECOND_TOKEN).await;
    let running = Running::start(&s, courier_sender::DEFAULT_MAX_IN_FLIGHT).await;
    let client = &running.client;
    let work = s
        .env
        .jetstream()
        .await
        .get_stream(s.env.topology().work_stream())
        .await
        .unwrap();
    let consumer = s.env.topology().senders_consumer_of(SECOND_BOT);
    // Pull requests held on the second bot's consumer (none without one).
    let pulls = || async {
        match work
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&consumer)
            .await
        {
            Ok(mut consumer) => consumer.info().await.unwrap().num_waiting,
            Err(_) => 0,
        }
    };

    // The default bot's campaign goes out: the senders are serving, and
    // have asked which bots have work. Nobody pulls the idle second bot.
    let first = start(&s, DEFAULT_BOT, Audience::Ru, "default bot").await;
    wait_for_status(client, first, "completed", DEADLINE).await;
    assert_eq!(pulls().await, 0);

    // Its campaign wakes it; done, it is left alone again.
    let campaign = start(&s, SECOND_BOT, Audience::Ru, "second bot").await;
    let row = wait_for_status(client, campaign, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 20, "{row:?}");
    wait_until("nobody pulling the idle bot", DEADLINE, || async {
        (pulls().await == 0).then_some(())
    })
    .await;

    // A recall's items come while none of its campaigns sends: the work
    // stream shows them, and the bot is pulled again.
    s.commands.recall(campaign, 1).await.unwrap();
    wait_until("every message recalled", DEADLINE, || async {
        (201..=220)
            .all(|chat| s.sandbox.messages_of(SECOND_BOT, chat).is_empty())
            .then_some(())
    })
    .await;

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_pauses_only_the_bot_that_got_it() {
    let s = setup().await;
    add_bot(&s.env, SECOND_TOKEN).await;
    let running = Running::start(&s, courier_sender::DEFAULT_MAX_IN_FLIGHT).await;
    let client = &running.client;

    // The second bot's first send gets a 429 with retry_after 30: its
    // token is paused for half a minute, at Telegram and in its budget.
    s.sandbox.inject_429(30);
    let paused = start(&s, SECOND_BOT, Audience::Ru, "paused bot").await;
    wait_until("the second bot's 429", DEADLINE, || async {
        (s.sandbox.stats().too_many_requests >= 1).then_some(())
    })
    .await;
    // The default bot is not paused: its campaign goes out meanwhile.
    let other = start(&s, DEFAULT_BOT, Audience::Ru, "unpaused bot").await;
    let row = wait_for_status(client, other, "completed", DEADLINE).await;
    assert_eq!(row.delivered, 20, "{row:?}");
    let waiting = campaign_row(client, paused).await.unwrap();
    assert_eq!(
        (waiting.status.as_str(), waiting.delivered),
        ("sending", 0),
        "{waiting:?}"
    );

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_who_blocked_one_bot_stays_in_the_others_audience() {
    const BLOCKED: i64 = 201;
    let s = setup().await;
    add_bot(&s.env, SECOND_TOKEN).await;
    s.sandbox
        .set_bot_chat_state(SECOND_BOT, BLOCKED, ChatState::Blocked);
    let running = Running::start(&s, courier_sender::DEFAULT_MAX_IN_FLIGHT).await;
    let client = &running.client;

    let campaign = start(&s, SECOND_BOT, Audience::Ru, "not for everyone").await;
    let row = wait_for_status(client, campaign, "completed", DEADLINE).await;
    assert_eq!((row.delivered, row.not_alive), (19, 1), "{row:?}");
    let alive = |bot: i64| async move {
        client
            .query_one(
                "SELECT is_alive FROM users WHERE bot_id = $1 AND user_id = $2",
                &[&bot, &BLOCKED],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    };
    wait_until("the second bot's user not alive", DEADLINE, || async {
        (!alive(SECOND_BOT).await).then_some(())
    })
    .await;
    assert!(alive(DEFAULT_BOT).await, "blocked for the default bot too");

    // Each bot's next campaign: the second bot's leaves the user out, the
    // default bot's (whose chat Telegram still delivers to) reaches them.
    let again = start(&s, SECOND_BOT, Audience::Ru, "again").await;
    let row = wait_for_status(client, again, "completed", DEADLINE).await;
    assert_eq!(
        (row.audience_size, row.delivered),
        (Some(19), 19),
        "{row:?}"
    );
    let other = start(&s, DEFAULT_BOT, Audience::Ru, "the other bot").await;
    let row = wait_for_status(client, other, "completed", DEADLINE).await;
    assert_eq!(
        (row.audience_size, row.delivered),
        (Some(20), 20),
        "{row:?}"
    );
    let received = receipts(&s.sandbox);
    assert_eq!(received.get(&(BOT_ID, BLOCKED)), Some(&1));
    assert_eq!(received.get(&(SECOND_BOT, BLOCKED)), None);

    running.stop().await;
}
