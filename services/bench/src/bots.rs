//! Measurement 8: many bots through one deployment.
//!
//! An agency's deployment serves many bots, each with Telegram's limit of
//! its own; one bot's big campaign must not hold another's small one back.
//! So: `bots` bots added to the bots bucket (the sandbox limits each token
//! to 30/s), two `courier-sender` processes, and every bot but one with a
//! campaign of 30 × `seconds` items, all enqueued at once. A third of the
//! way through, the last bot (a fresh one) gets a 100-recipient campaign.
//! Figures, from the sandbox's side: each busy bot's achieved rate against
//! its limit (the lowest bot) and its most sends in any one second (the
//! highest), their aggregate against the sum of their limits, 429s, and
//! how long after its enqueueing the fresh bot's last message went out
//! against the ideal (100 / 30 s).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use courier_core::bot_tokens::TokenKey;
use courier_core::config::BotToken;
use telegram_sandbox::{Sandbox, SandboxConfig, most_in_any_window};

use crate::fixtures;
use crate::process::{Launcher, ensure_running};
use crate::rate::steady_rate;
use crate::report::{Section, Table, percent, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub bots: usize,
    /// How long each busy bot's campaign takes at its limit.
    pub seconds: f64,
    pub latency_ms: u64,
}

/// Each bot's limit in the sandbox, and its senders' rate.
const LIMIT: u32 = 30;
/// Recipients of the fresh bot's campaign.
const FRESH_RECIPIENTS: u64 = 100;
/// How late the fresh bot's campaign may end after its ideal time.
const FRESH_SLACK: Duration = Duration::from_secs(5);
/// Each busy bot, and all together, must reach this fraction of the limit.
const TARGET_RATIO: f64 = 0.95;
/// The key the bench seals its bots' tokens with.
const TOKEN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The start-up span left out of the steady-state rates.
const WARM_UP: Duration = Duration::from_secs(1);

/// Bot `n`'s (1-based) Telegram id.
fn bot_id(n: usize) -> i64 {
    7_000_000 + n as i64
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    anyhow::ensure!(
        options.bots >= 2,
        "--bots: at least one busy bot and the fresh one"
    );
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let sandbox = Sandbox::start(SandboxConfig {
        rate_limit: LIMIT,
        chat_rate_limit: 1,
        latency_ms: options.latency_ms,
        ..SandboxConfig::default()
    })
    .await?;
    let key: TokenKey = TOKEN_KEY.parse().map_err(anyhow::Error::msg)?;
    let bucket = topology.ensure_bots_bucket(&js).await?;
    let mut campaigns = HashMap::new();
    for n in 1..=options.bots {
        let token: BotToken = format!("{}:AAF-bench_bot_{n:05}_secret", bot_id(n))
            .parse()
            .map_err(anyhow::Error::msg)?;
        bucket.put(token.bot_id(), key.seal(&token).into()).await?;
        let campaign = fixtures::sending_campaign(&env, &js, &client, bot_id(n), false).await?;
        campaigns.insert(bot_id(n), campaign);
    }
    let mut vars = fixtures::sender_vars(
        &sandbox.url(),
        f64::from(LIMIT),
        1000.0,
        courier_sender::DEFAULT_MAX_IN_FLIGHT,
    );
    vars.push(("COURIER_TOKEN_KEY", TOKEN_KEY.to_owned()));
    let services = fixtures::start_senders(launcher, &env, &js, &vars, 2, "bots").await?;

    let busy = options.bots - 1;
    let per_bot = (f64::from(LIMIT) * options.seconds).ceil() as u64;
    let busy_items = per_bot * busy as u64;
    // Interleaved, as campaigns started together would fill the stream.
    fixtures::publish_windowed(&js, busy_items, 1000, |i| {
        let bot = bot_id(i as usize % busy + 1);
        fixtures::work_item_of(
            &topology,
            bot,
            campaigns[&bot],
            (i / busy as u64) as i64 + 1,
        )
    })
    .await?;
    let enqueued = Instant::now();
    let cap = Duration::from_secs_f64(options.seconds * 1.5 + 10.0);
    let outcomes = topology.outcomes_stream();
    // Counted in NATS, not asked of the sandbox: its statistics go over
    // every send under the lock its requests take, so polling them could
    // hold up the sends measured.
    fixtures::wait_for("a third of the busy bots' sends", cap, || async {
        ensure_running(&services)?;
        let done = fixtures::stream_messages(&js, &outcomes).await?;
        Ok((done >= busy_items / 3).then_some(()))
    })
    .await?;
    let fresh = bot_id(options.bots);
    fixtures::publish_windowed(&js, FRESH_RECIPIENTS, 1000, |i| {
        fixtures::work_item_of(&topology, fresh, campaigns[&fresh], i as i64 + 1)
    })
    .await?;
    let fresh_enqueued = Instant::now();
    let total = busy_items + FRESH_RECIPIENTS;
    fixtures::wait_for("every outcome", cap + Duration::from_secs(10), || async {
        ensure_running(&services)?;
        let done = fixtures::stream_messages(&js, &outcomes).await?;
        Ok((done >= total || enqueued.elapsed() >= cap).then_some(()))
    })
    .await?;

    let mut sends: HashMap<i64, Vec<Instant>> = HashMap::new();
    for delivery in sandbox.deliveries() {
        sends
            .entry(delivery.bot_id)
            .or_default()
            .push(delivery.accepted_at);
    }
    let empty = Vec::new();
    let of = |bot: i64| sends.get(&bot).unwrap_or(&empty);
    let lowest = (1..=busy)
        .map(|n| steady_rate(of(bot_id(n)), WARM_UP).unwrap_or(0.0))
        .fold(f64::INFINITY, f64::min);
    let highest_window = (1..=options.bots)
        .map(|n| most_in_any_window(of(bot_id(n)), Duration::from_secs(1)))
        .max()
        .unwrap_or(0);
    let mut all_busy: Vec<Instant> = (1..=busy).flat_map(|n| of(bot_id(n)).clone()).collect();
    all_busy.sort();
    let aggregate = steady_rate(&all_busy, WARM_UP).unwrap_or(0.0);
    let fresh_sends = of(fresh);
    let fresh_took = fresh_sends
        .iter()
        .max()
        .map(|last| last.duration_since(fresh_enqueued));
    let fresh_ideal = Duration::from_secs_f64(FRESH_RECIPIENTS as f64 / f64::from(LIMIT));
    let stats = sandbox.stats();
    let sent = stats.accepted_sends;

    let lowest_ratio = lowest / f64::from(LIMIT);
    let aggregate_ratio = aggregate / (f64::from(LIMIT) * busy as f64);
    let mut missed = Vec::new();
    if lowest_ratio < TARGET_RATIO {
        missed.push(format!("a bot < {}", percent(TARGET_RATIO)));
    }
    if aggregate_ratio < TARGET_RATIO {
        missed.push(format!("aggregate < {}", percent(TARGET_RATIO)));
    }
    if highest_window > LIMIT as usize {
        missed.push("a bot over its limit".to_owned());
    }
    if stats.too_many_requests > 0 {
        missed.push("429s".to_owned());
    }
    let fresh_in_time = fresh_sends.len() as u64 == FRESH_RECIPIENTS
        && fresh_took.is_some_and(|took| took <= fresh_ideal + FRESH_SLACK);
    if !fresh_in_time {
        missed.push("the fresh bot late".to_owned());
    }
    let mut table = Table::new(&[
        "bots",
        "senders",
        "sent / enqueued",
        "lowest bot: achieved / 30/s",
        "most of one bot in any 1 s",
        "aggregate: achieved / limits",
        "429s",
        "fresh bot's 100: last sent after",
        "verdict",
    ]);
    table.row([
        options.bots.to_string(),
        "2".to_owned(),
        format!("{sent} / {total}"),
        format!("{:.1}%", lowest_ratio * 100.0),
        highest_window.to_string(),
        format!(
            "{aggregate:.0}/s of {}/s = {:.1}%",
            LIMIT as usize * busy,
            aggregate_ratio * 100.0
        ),
        stats.too_many_requests.to_string(),
        match fresh_took {
            Some(took) => format!(
                "{:.2} s ({} sent; ideal {:.2} s)",
                took.as_secs_f64(),
                fresh_sends.len(),
                fresh_ideal.as_secs_f64()
            ),
            None => "never".to_owned(),
        },
        if missed.is_empty() {
            verdict(true).to_owned()
        } else {
            format!("{} ({})", verdict(false), missed.join(", "))
        },
    ]);
    let mut section = Section::new(
        "8. Many bots",
        format!(
            "{bots} bots added to the bots bucket (sealed tokens; the sandbox limits each to \
             {LIMIT}/s, one message per chat per second, {latency} ms latency), two \
             `courier-sender` processes with `COURIER_TOKEN_KEY`, `SENDER_RATE_LIMIT`={LIMIT}. \
             {busy} bots get {per_bot} items each ({seconds} s at their limit), enqueued \
             interleaved at once; when a third are sent, the last bot gets a campaign of \
             {FRESH_RECIPIENTS}. Rates: sends the sandbox accepted from 1 s after a bot's \
             (or all busy bots') first to the last. Targets: every busy bot and their \
             aggregate ≥ {target} of the limit, never over the limit in any 1 s window, no \
             429, the fresh bot's last message within {slack} s of its ideal time.",
            bots = options.bots,
            latency = options.latency_ms,
            seconds = options.seconds,
            target = percent(TARGET_RATIO),
            slack = FRESH_SLACK.as_secs(),
        ),
    );
    section.tables.push(table);
    Ok(section)
}
