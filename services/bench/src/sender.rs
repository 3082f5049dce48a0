//! Measurement 2: what one sender process costs per message when nothing
//! holds it back (rate limits off, a sandbox answering at once).
//!
//! In production a sender spends its time waiting for rate slots, so its
//! throughput here is not a production figure; its cost is. CPU per
//! message and memory decide how many replicas fit on a machine and how
//! much headroom a sender has at the 1000/s paid rate.
//!
//! The work items are enqueued before the sender starts. Figures are taken
//! between two samples: the first once 2% of the items have an outcome (so
//! start-up and warm-up are excluded), the second when every item has one
//! or a time cap has passed (so a slow configuration cannot take minutes).
//! The sandbox runs inside this harness, so the harness's CPU is the
//! sandbox's; it is reported, with the machine's, to show whether the
//! sender or its surroundings were the limit.

use std::time::Duration;

use anyhow::ensure;
use telegram_sandbox::{Sandbox, SandboxConfig};
use uuid::Uuid;

use courier_core::topology::DEFAULT_BOT;

use crate::fixtures;
use crate::process::{Launcher, Snapshot, ensure_running, pids_named};
use crate::report::{Section, Table, median, percent, runs, thousands, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub items: u64,
    pub max_in_flight: u16,
    /// `SENDER_RATE_LIMIT` (and paid limit) of each configuration measured.
    pub rate_limits: Vec<f64>,
    /// A run stops at this long after its first sample even if items remain.
    pub max_duration: Duration,
    pub runs: usize,
}

const TARGET_CPU_US: f64 = 50.0;
const TARGET_RSS_MB: f64 = 50.0;

struct SenderRun {
    rate: f64,
    cpu_us: f64,
    rss_mb: f64,
    sender_cores: f64,
    sandbox_cores: f64,
    nats_cores: f64,
    machine_busy: f64,
    /// TCP connections the sandbox saw opened.
    connections: f64,
    peak_in_flight: f64,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut section = Section::new(
        "2. Sender with limits off",
        format!(
            "One `courier-sender` process (`SENDER_MAX_IN_FLIGHT` {in_flight}, rate limits as \
             in each table's title, the same for both lanes), the sandbox with every limit off \
             and no latency, {n} work items enqueued before it starts. Measured from the \
             moment 2% of the items have an outcome to the last outcome or {cap} s later, \
             whichever comes first; CPU is the process's utime+stime over that span divided \
             by the messages in it. MB = 10^6 bytes. Median of {runs} runs. Senders have no \
             \"off\" switch for pacing, so \"limits off\" is a rate limit far above what is \
             reached (`--sender-rate-limits` measures several).",
            in_flight = options.max_in_flight,
            cap = options.max_duration.as_secs(),
            n = thousands(options.items as f64),
            runs = options.runs,
        ),
    );
    let mut rates = Vec::new();
    for &rate_limit in &options.rate_limits {
        let mut results = Vec::new();
        for run in 1..=options.runs {
            eprintln!(
                "sender at SENDER_RATE_LIMIT {rate_limit}, run {run}/{}",
                options.runs
            );
            results.push(one_run(launcher, options, rate_limit, run).await?);
        }
        rates.push((
            rate_limit,
            median(&results.iter().map(|r| r.rate).collect::<Vec<_>>()),
        ));
        let (table, notes) = summarize(&results, rate_limit, options.max_in_flight);
        section.tables.push(table);
        section.notes.extend(notes);
    }
    let best = rates.iter().map(|(_, rate)| *rate).fold(0.0, f64::max);
    for (rate_limit, rate) in rates {
        if rate < best / 2.0 {
            section.notes.push(format!(
                "SENDER_RATE_LIMIT = {}: the sender's own pacer \
                 (`courier_sender::budget::Budget::acquire`) sets the rate: {}/s against {}/s \
                 at the best limit measured.",
                thousands(rate_limit),
                thousands(rate),
                thousands(best),
            ));
        }
    }
    Ok(section)
}

fn summarize(results: &[SenderRun], rate_limit: f64, max_in_flight: u16) -> (Table, Vec<String>) {
    let column = |f: fn(&SenderRun) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let rate = column(|r| r.rate);
    let cpu = column(|r| r.cpu_us);
    let rss = column(|r| r.rss_mb);
    let sender_cores = column(|r| r.sender_cores);
    let sandbox_cores = column(|r| r.sandbox_cores);
    let nats_cores = column(|r| r.nats_cores);
    let busy = column(|r| r.machine_busy);

    let limit = thousands(rate_limit);
    let interval = courier_sender::rate::interval_us(rate_limit);
    let mut table = Table::new(&["", "median", "runs", "target", "verdict"]).with_caption(format!(
        "SENDER_RATE_LIMIT = {limit} (a rate slot every {interval} µs)"
    ));
    table.row([
        "messages per second".to_owned(),
        format!("{}/s", thousands(median(&rate))),
        runs(&rate, thousands),
        String::new(),
        String::new(),
    ]);
    table.row([
        "sender CPU per message".to_owned(),
        format!("{:.1} µs", median(&cpu)),
        runs(&cpu, |v| format!("{v:.1}")),
        format!("≤ {TARGET_CPU_US} µs"),
        verdict(median(&cpu) <= TARGET_CPU_US).to_owned(),
    ]);
    table.row([
        "sender peak RSS (VmHWM)".to_owned(),
        format!("{:.1} MB", median(&rss)),
        runs(&rss, |v| format!("{v:.1}")),
        format!("≤ {TARGET_RSS_MB} MB"),
        verdict(median(&rss) <= TARGET_RSS_MB).to_owned(),
    ]);
    let cores = |v: f64| format!("{v:.2}");
    for (label, values) in [
        ("CPU cores busy: sender", &sender_cores),
        ("CPU cores busy: sandbox (the harness)", &sandbox_cores),
        ("CPU cores busy: nats-server", &nats_cores),
    ] {
        table.row([
            label.to_owned(),
            cores(median(values)),
            runs(values, cores),
            String::new(),
            String::new(),
        ]);
    }
    table.row([
        "machine CPU busy (all cores)".to_owned(),
        percent(median(&busy)),
        runs(&busy, percent),
        String::new(),
        String::new(),
    ]);
    // Reused connections: about as many opened as requests were ever in
    // flight at once, and never more than the sender's bound.
    let connections = column(|r| r.connections);
    let peak = column(|r| r.peak_in_flight);
    let whole = |v: f64| thousands(v);
    table.row([
        "connections the sender opened to the Bot API".to_owned(),
        whole(median(&connections)),
        runs(&connections, whole),
        format!("≤ {max_in_flight} (SENDER_MAX_IN_FLIGHT)"),
        verdict(
            results
                .iter()
                .all(|r| r.connections <= f64::from(max_in_flight)),
        )
        .to_owned(),
    ]);
    table.row([
        "peak requests in flight (the sandbox's count)".to_owned(),
        whole(median(&peak)),
        runs(&peak, whole),
        String::new(),
        String::new(),
    ]);

    let mut notes = Vec::new();
    let busy = median(&busy);
    if busy >= 0.8 {
        notes.push(format!(
            "SENDER_RATE_LIMIT = {limit}: the machine was {} busy: sender, sandbox, \
             nats-server and Postgres share {} cores, so the message rate is bounded by the \
             machine, not by the sender alone.",
            percent(busy),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ));
    }
    if median(&sandbox_cores) >= median(&sender_cores) {
        notes.push(format!(
            "SENDER_RATE_LIMIT = {limit}: the in-process sandbox used as much CPU as the \
             sender or more: it is part of the bottleneck of the message rate (not of the CPU \
             per message)."
        ));
    }
    (table, notes)
}

async fn one_run(
    launcher: &Launcher,
    options: &Options,
    rate_limit: f64,
    run: usize,
) -> anyhow::Result<SenderRun> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let sandbox = Sandbox::start(SandboxConfig {
        rate_limit: 0,
        paid_rate_limit: 0,
        chat_rate_limit: 0,
        latency_ms: 0,
        max_in_flight: 0,
        ..SandboxConfig::default()
    })
    .await?;
    let campaign: Uuid = fixtures::sending_campaign(&env, &js, &client, DEFAULT_BOT, false).await?;
    fixtures::publish_windowed(&js, options.items, 1000, |i| {
        fixtures::work_item(&topology, campaign, i as i64 + 1)
    })
    .await?;

    let services = [launcher.spawn(
        "courier-sender",
        &format!("sender-{rate_limit}-{run}"),
        &env,
        &fixtures::sender_vars(
            &sandbox.url(),
            rate_limit,
            rate_limit,
            options.max_in_flight,
        ),
    )?];
    let sender = &services[0];
    let mut pids = vec![sender.pid(), std::process::id()];
    pids.extend(pids_named("nats-server"));
    let outcomes = topology.outcomes_stream();
    let warm = (options.items / 50).max(1);
    let (done_before, first) =
        fixtures::wait_for("2% of the outcomes", Duration::from_secs(120), || async {
            ensure_running(&services)?;
            let done = fixtures::stream_messages(&js, &outcomes).await?;
            (done >= warm)
                .then(|| Snapshot::take(&pids).map(|s| (done, s)))
                .transpose()
        })
        .await?;
    // Every outcome, or as many as the time cap allows.
    let (done_after, last) = fixtures::wait_for(
        "every outcome or the time cap",
        options.max_duration + Duration::from_secs(10),
        || async {
            ensure_running(&services)?;
            let done = fixtures::stream_messages(&js, &outcomes).await?;
            let capped = first.elapsed() >= options.max_duration;
            (done >= options.items || capped)
                .then(|| Snapshot::take(&pids).map(|s| (done, s)))
                .transpose()
        },
    )
    .await?;
    let rss = sender.peak_rss()?;
    let usage = first.until(&last);

    let stats = sandbox.stats();
    ensure!(
        stats.accepted_sends >= done_after,
        "the sandbox accepted {} sends for {done_after} outcomes",
        stats.accepted_sends,
    );
    let messages = (done_after - done_before) as f64;
    Ok(SenderRun {
        rate: messages / usage.wall.as_secs_f64(),
        cpu_us: usage.processes[0].as_secs_f64() * 1e6 / messages,
        rss_mb: rss as f64 / 1e6,
        sender_cores: usage.cores(0),
        sandbox_cores: usage.cores(1),
        nats_cores: (2..pids.len()).map(|i| usage.cores(i)).sum(),
        machine_busy: usage.machine_busy,
        connections: stats.connections_opened as f64,
        peak_in_flight: stats.peak_in_flight as f64,
    })
}
