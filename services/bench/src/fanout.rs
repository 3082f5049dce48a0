//! Measurement 1: how fast the loader turns a started campaign into work
//! items, against the fastest JetStream can take the same messages here.
//!
//! The loader is the only step whose cost grows with the audience before
//! anything is sent: a million-recipient campaign waits for it. Its ceiling
//! is JetStream's publish rate, so it is judged against that rate measured
//! in the same run on the same server: raw async publishes of the same
//! `courier.v1.SendMessage`, on the same subject shape, with the same
//! `Nats-Msg-Id` (so the server does the same dedup work), keeping a
//! bounded window of acknowledgements outstanding.
//!
//! The loader runs as its release process. Its input (`deliveries` rows
//! the projector would have created) is written with `generate_series`;
//! the clock starts when `CampaignStarted` is published and stops when the
//! loader marks its cursor finished (every batch acknowledged).

use std::time::{Duration, Instant};

use anyhow::ensure;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{CampaignStarted, Event, event::Payload};
use courier_core::topology::LOADER_CONSUMER;
use courier_testing::TestEnv;
use uuid::Uuid;

use crate::fixtures;
use crate::process::{Launcher, ensure_running};
use crate::report::{Section, Table, median, percent, runs, thousands, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub recipients: u64,
    /// Acknowledgements outstanding at once in the raw publish.
    pub ack_window: usize,
    /// `LOADER_BATCH_SIZE` of the loader process.
    pub batch_size: i64,
    pub runs: usize,
}

/// The loader must reach this fraction of the raw publish rate.
const TARGET_RATIO: f64 = 0.5;

struct LoaderRun {
    rate: f64,
    cpu_us_per_item: f64,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut raw = Vec::new();
    let mut loader = Vec::new();
    let mut cpu = Vec::new();
    let mut ratios = Vec::new();
    for run in 1..=options.runs {
        eprintln!("fan-out run {run}/{}: raw publish", options.runs);
        let raw_rate = raw_publish(options).await?;
        eprintln!("fan-out run {run}/{}: loader", options.runs);
        let loaded = loader_fan_out(launcher, options, run).await?;
        raw.push(raw_rate);
        loader.push(loaded.rate);
        cpu.push(loaded.cpu_us_per_item);
        ratios.push(loaded.rate / raw_rate);
    }
    let ratio = median(&ratios);
    let per_second = |v: f64| format!("{}/s", thousands(v));
    let mut table = Table::new(&["", "median", "runs", "target", "verdict"]);
    table.row([
        format!("raw JetStream publish (window {})", options.ack_window),
        per_second(median(&raw)),
        runs(&raw, thousands),
        String::new(),
        String::new(),
    ]);
    table.row([
        format!(
            "loader fan-out (process, LOADER_BATCH_SIZE {})",
            options.batch_size
        ),
        per_second(median(&loader)),
        runs(&loader, thousands),
        String::new(),
        String::new(),
    ]);
    table.row([
        "loader / raw".to_owned(),
        percent(ratio),
        runs(&ratios, percent),
        format!("≥ {}", percent(TARGET_RATIO)),
        verdict(ratio >= TARGET_RATIO).to_owned(),
    ]);
    table.row([
        "loader CPU per work item".to_owned(),
        format!("{:.1} µs", median(&cpu)),
        runs(&cpu, |v| format!("{v:.1}")),
        String::new(),
        String::new(),
    ]);
    let mut section = Section::new(
        format!(
            "1. Fan-out: {} recipients",
            thousands(options.recipients as f64)
        ),
        format!(
            "Each run: (a) the harness publishes {n} `SendMessage` items to a fresh work stream \
             (same subject, payload and `Nats-Msg-Id` as the loader) with at most {w} \
             acknowledgements outstanding, timed from the first publish to the last ack; \
             (b) {n} `deliveries` rows are inserted into a fresh database, a `courier-loader` \
             process is started and, once it waits for events, `CampaignStarted` is published; \
             timed until the loader marks its cursor finished (every item acknowledged). \
             Median of {runs} runs.",
            n = thousands(options.recipients as f64),
            w = options.ack_window,
            runs = options.runs,
        ),
    );
    section.tables.push(table);
    if ratio < TARGET_RATIO {
        section.notes.push(
            "The loader publishes a batch, then waits for all of its acknowledgements, then \
             writes its cursor to Postgres before reading the next batch: the pipe to JetStream \
             is empty between batches, where the raw publisher keeps it full."
                .to_owned(),
        );
    }
    Ok(section)
}

/// The raw publish rate of `recipients` work items, in messages per second.
async fn raw_publish(options: &Options) -> anyhow::Result<f64> {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let campaign = Uuid::now_v7();
    let elapsed = fixtures::publish_windowed(&js, options.recipients, options.ack_window, |i| {
        fixtures::work_item(&topology, campaign, i as i64 + 1)
    })
    .await?;
    let stored = fixtures::stream_messages(&js, &topology.work_stream()).await?;
    ensure!(
        stored == options.recipients,
        "the work stream holds {stored} items, not {}",
        options.recipients
    );
    Ok(options.recipients as f64 / elapsed.as_secs_f64())
}

async fn loader_fan_out(
    launcher: &Launcher,
    options: &Options,
    run: usize,
) -> anyhow::Result<LoaderRun> {
    let env = TestEnv::new().await;
    let pool = env.pool().await;
    let client = pool.get().await?;
    let js = env.jetstream().await;
    let topology = env.topology();
    let campaign = Uuid::now_v7();
    let audience_size = i32::try_from(options.recipients)?;
    fixtures::insert_campaign(&client, campaign, false, Some(audience_size)).await?;
    fixtures::insert_deliveries(&client, campaign, options.recipients).await?;

    let services = [launcher.spawn(
        "courier-loader",
        &format!("fanout-{run}-loader"),
        &env,
        &[("LOADER_BATCH_SIZE", options.batch_size.to_string())],
    )?];
    let loader = &services[0];
    let events = topology.events_stream();
    fixtures::wait_for(
        "the loader to wait for events",
        Duration::from_secs(60),
        || async {
            ensure_running(&services)?;
            let waiting = fixtures::pull_requests(&js, &events, LOADER_CONSUMER).await?;
            Ok((waiting >= 1).then_some(()))
        },
    )
    .await?;

    let cpu_before = loader.cpu_time()?;
    let started = Instant::now();
    EventPublisher::new(js.clone(), topology.clone())
        .publish(&Event::new(Payload::CampaignStarted(CampaignStarted {
            campaign_id: campaign.to_string(),
            started_by: 1,
        })))
        .await?;
    // Generous: a tenth of the raw rate of a slow machine.
    let deadline = Duration::from_secs(60 + options.recipients / 2_000);
    fixtures::wait_for("the loader to finish", deadline, || async {
        ensure_running(&services)?;
        let row = client
            .query_opt(
                "SELECT finished FROM loader_cursors WHERE campaign_id = $1",
                &[&campaign],
            )
            .await?;
        Ok(row.filter(|row| row.get::<_, bool>(0)).map(|_| ()))
    })
    .await?;
    let elapsed = started.elapsed();
    let cpu = loader.cpu_time()?.saturating_sub(cpu_before);

    let stored = fixtures::stream_messages(&js, &topology.work_stream()).await?;
    ensure!(
        stored == options.recipients,
        "the loader enqueued {stored} items, not {}",
        options.recipients
    );
    Ok(LoaderRun {
        rate: options.recipients as f64 / elapsed.as_secs_f64(),
        cpu_us_per_item: cpu.as_secs_f64() * 1e6 / options.recipients as f64,
    })
}
