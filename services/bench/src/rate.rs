//! Measurement 3: do senders use the rate budget fully without ever
//! going over it, alone and as several replicas sharing one budget?
//!
//! Telegram punishes a bot that goes over its limit (429 and a pause of
//! the whole token), and a sender that stays far below it wastes the
//! budget the campaign's duration is computed from. So the figures are the
//! achieved rate as a fraction of the budget in steady state (the first
//! second after the first send is excluded: processes have just started
//! pulling), the most sends the sandbox accepted in any one-second window,
//! and the 429s it answered. The sandbox enforces the same budgets as
//! Telegram would and answers after 50 ms, like a nearby Bot API server.
//!
//! Both lanes are measured: the free 30/s budget and the paid-broadcast
//! 1000/s budget (a campaign with `paid_broadcast`, which senders pace
//! with `SENDER_PAID_RATE_LIMIT`), each on a quiet machine and on a busy
//! one (a [`Hog`] burning one core for the run).

use std::time::{Duration, Instant};

use telegram_sandbox::{Sandbox, SandboxConfig};

use courier_core::topology::DEFAULT_BOT;

use crate::fixtures;
use crate::hog::Hog;
use crate::process::{Launcher, ensure_running};
use crate::report::{Section, Table, median, percent, thousands, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    /// How long each run should send for; sets the number of items.
    pub seconds: f64,
    pub latency_ms: u64,
    pub processes: Vec<usize>,
    pub conditions: Vec<Condition>,
    pub runs: usize,
}

/// How busy the machine is during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Condition {
    /// Only courier, NATS, Postgres and the sandbox.
    Quiet,
    /// The same, and one core burned by a [`Hog`].
    Busy,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Condition::Quiet => "quiet",
            Condition::Busy => "busy (1 core burned)",
        }
    }
}

/// The least achieved / budget accepted in `lane` on a machine in
/// `condition`: the free lane's 30/s leaves a burned core no excuse.
fn target(lane: Lane, condition: Condition) -> f64 {
    match (lane.paid, condition) {
        (true, Condition::Busy) => BUSY_PAID_TARGET_RATIO,
        _ => TARGET_RATIO,
    }
}

/// The achieved rate must be at least this fraction of the budget.
const TARGET_RATIO: f64 = 0.97;
/// The same for the paid lane with one core burned.
const BUSY_PAID_TARGET_RATIO: f64 = 0.95;
/// The start-up span left out of the steady-state rate.
const WARM_UP: Duration = Duration::from_secs(1);

/// One rate budget of a bot token.
#[derive(Debug, Clone, Copy)]
struct Lane {
    name: &'static str,
    budget: u32,
    paid: bool,
}

const LANES: [Lane; 2] = [
    Lane {
        name: "free",
        budget: 30,
        paid: false,
    },
    Lane {
        name: "paid",
        budget: 1000,
        paid: true,
    },
];

struct RateRun {
    /// Sends the sandbox accepted (all items, unless the time cap hit first).
    sent: u64,
    steady_rate: f64,
    max_in_window: usize,
    too_many_requests: u64,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut table = Table::new(&[
        "lane",
        "budget",
        "senders",
        "machine",
        "sent / enqueued",
        "steady rate",
        "achieved / budget",
        "achieved / pacing ceiling",
        "max in any 1 s",
        "429s",
        "verdict",
    ]);
    let mut notes = Vec::new();
    let mut capped = Vec::new();
    for lane in LANES {
        for (&processes, &condition) in options
            .processes
            .iter()
            .flat_map(|p| options.conditions.iter().map(move |c| (p, c)))
        {
            let mut results = Vec::new();
            for run in 1..=options.runs {
                eprintln!(
                    "rate {} {}/s, {processes} sender(s), {}, run {run}/{}",
                    lane.name,
                    lane.budget,
                    condition.name(),
                    options.runs
                );
                let hog = (condition == Condition::Busy).then(Hog::start);
                results.push(one_run(launcher, options, lane, processes, run).await?);
                drop(hog);
            }
            let rate = median(&results.iter().map(|r| r.steady_rate).collect::<Vec<_>>());
            let ratio = rate / f64::from(lane.budget);
            // The worst run counts for the limits.
            let max_in_window = results.iter().map(|r| r.max_in_window).max().unwrap_or(0);
            let too_many: u64 = results.iter().map(|r| r.too_many_requests).sum();
            let mut missed = Vec::new();
            let target = target(lane, condition);
            if ratio < target {
                missed.push(format!("< {:.0}%", target * 100.0));
            }
            if max_in_window > lane.budget as usize {
                missed.push("over budget".to_owned());
            }
            if too_many > 0 {
                missed.push("429s".to_owned());
            }
            if results.iter().any(|r| r.sent < items(lane, options)) {
                capped.push(format!("{} lane with {processes} sender(s)", lane.name));
            }
            table.row([
                lane.name.to_owned(),
                format!("{}/s", lane.budget),
                processes.to_string(),
                condition.name().to_owned(),
                format!(
                    "{} / {}",
                    thousands(median(
                        &results.iter().map(|r| r.sent as f64).collect::<Vec<_>>()
                    )),
                    thousands(items(lane, options) as f64)
                ),
                format!("{rate:.1}/s"),
                format!("{:.3}%", ratio * 100.0),
                format!("{:.2}%", rate / pacing_ceiling(lane) * 100.0),
                max_in_window.to_string(),
                too_many.to_string(),
                if missed.is_empty() {
                    verdict(true).to_owned()
                } else {
                    format!("{} ({})", verdict(false), missed.join(", "))
                },
            ]);
        }
        let ceiling = pacing_ceiling(lane);
        let ceiling_ratio = ceiling / f64::from(lane.budget);
        notes.push(format!(
            "{} lane: senders pace at {} of the configured rate (`courier_sender::rate::HEADROOM`), \
             with the slot interval rounded up to whole microseconds, so the most a sender can \
             achieve is {ceiling:.2}/s = {:.3}% of {}/s{}.",
            lane.name,
            percent(courier_sender::rate::HEADROOM),
            ceiling_ratio * 100.0,
            lane.budget,
            if ceiling_ratio < TARGET_RATIO {
                ": the target sits above that ceiling"
            } else {
                ""
            },
        ));
    }
    let mut section = Section::new(
        "3. Rate adherence",
        format!(
            "For each lane and number of `courier-sender` processes: a fresh prefix and sandbox \
             (free limit 30/s, paid limit 1000/s, one message per chat per second, {latency} ms \
             latency), the senders started and waiting for work, then budget × {seconds} s items \
             enqueued. `SENDER_RATE_LIMIT`=30, `SENDER_PAID_RATE_LIMIT`=1000, \
             `SENDER_MAX_IN_FLIGHT` at its default (each sender keeps about 2 × its rate × \
             measured latency in flight, at least 64). Steady rate: \
             sends accepted by the sandbox from 1 s after the first to the last, divided by \
             that span. Targets: achieved ≥ {target} of the budget ({busy} in the paid lane \
             on the busy machine: a thread of the bench burning one core for the run), never more than \
             the budget in any 1 s window, no 429. {runs} run(s) per row (median rate; worst window; \
             429s summed).",
            latency = options.latency_ms,
            seconds = options.seconds,
            target = percent(TARGET_RATIO),
            busy = percent(BUSY_PAID_TARGET_RATIO),
            runs = options.runs,
        ),
    );
    section.tables.push(table);
    if !capped.is_empty() {
        notes.push(format!(
            "Cut off at the time cap of {:.0} s with items left (the steady rate is over what \
             was sent): {}.",
            time_cap(options).as_secs_f64(),
            capped.join("; ")
        ));
    }
    section.notes = notes;
    Ok(section)
}

/// The most sends per second a sender paces at for `lane`'s budget: one
/// per slot interval (the budget × `HEADROOM`, rounded down by the
/// interval's whole microseconds).
fn pacing_ceiling(lane: Lane) -> f64 {
    1e6 / courier_sender::rate::interval_us(f64::from(lane.budget)) as f64
}

/// How long a run may send: its items take `seconds` / 97% at the target
/// rate; a slower run is cut off here and measured on what it sent.
fn time_cap(options: &Options) -> Duration {
    Duration::from_secs_f64(options.seconds * 1.25 + 5.0)
}

fn items(lane: Lane, options: &Options) -> u64 {
    (f64::from(lane.budget) * options.seconds).ceil() as u64
}

async fn one_run(
    launcher: &Launcher,
    options: &Options,
    lane: Lane,
    processes: usize,
    run: usize,
) -> anyhow::Result<RateRun> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let sandbox = Sandbox::start(SandboxConfig {
        rate_limit: LANES[0].budget,
        paid_rate_limit: LANES[1].budget,
        chat_rate_limit: 1,
        latency_ms: options.latency_ms,
        ..SandboxConfig::default()
    })
    .await?;
    let campaign = fixtures::sending_campaign(&env, &js, &client, DEFAULT_BOT, lane.paid).await?;

    let vars = fixtures::sender_vars(
        &sandbox.url(),
        f64::from(LANES[0].budget),
        f64::from(LANES[1].budget),
        courier_sender::DEFAULT_MAX_IN_FLIGHT,
    );
    let services = fixtures::start_senders(
        launcher,
        &env,
        &js,
        &vars,
        processes,
        &format!("rate-{}-{processes}x-{run}", lane.name),
    )
    .await?;

    let items = items(lane, options);
    fixtures::publish_windowed(&js, items, 1000, |i| {
        fixtures::work_item(&topology, campaign, i as i64 + 1)
    })
    .await?;
    let published = Instant::now();
    let outcomes = topology.outcomes_stream();
    let cap = time_cap(options);
    fixtures::wait_for(
        "every outcome or the time cap",
        cap + Duration::from_secs(10),
        || async {
            ensure_running(&services)?;
            let done = fixtures::stream_messages(&js, &outcomes).await?;
            Ok((done >= items || published.elapsed() >= cap).then_some(()))
        },
    )
    .await?;

    let stats = sandbox.stats();
    let steady_rate = steady_rate(&stats.accepted_at, WARM_UP)
        .ok_or_else(|| anyhow::anyhow!("too few sends after the warm-up to measure a rate"))?;
    Ok(RateRun {
        sent: stats.accepted_sends,
        steady_rate,
        max_in_window: stats.max_sends_in_any_window(Duration::from_secs(1)),
        too_many_requests: stats.too_many_requests,
    })
}

/// Sends per second from `warm_up` after the first send to the last.
pub fn steady_rate(accepted_at: &[Instant], warm_up: Duration) -> Option<f64> {
    let first = *accepted_at.first()?;
    let steady: Vec<Instant> = accepted_at
        .iter()
        .copied()
        .filter(|at| *at >= first + warm_up)
        .collect();
    let (start, end) = (*steady.first()?, *steady.last()?);
    let span = end.duration_since(start).as_secs_f64();
    (steady.len() >= 2 && span > 0.0).then(|| (steady.len() - 1) as f64 / span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_rate_leaves_the_warm_up_out() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // A burst in the first second, then one send every 100 ms.
        let mut sends = vec![ms(0), ms(1), ms(2), ms(3)];
        sends.extend((10..=30).map(|i| ms(i * 100)));
        let rate = steady_rate(&sends, Duration::from_secs(1)).unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        assert_eq!(steady_rate(&sends[..1], Duration::from_secs(1)), None);
    }
}
