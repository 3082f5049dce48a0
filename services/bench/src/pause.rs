//! Measurement 6: how soon a pause stops a campaign on every sender.
//!
//! Each sender follows the campaign events itself, so a pause is pushed to
//! every replica as it is published. The figure is the time from the start
//! of the pause's publish to the campaign's last send the sandbox
//! accepted, with three senders sending a paid campaign at 1000/s
//! (Telegram's answers taking 50 ms, so about 50 requests are out at any
//! moment; a request already on its way when the pause lands still
//! arrives). Target: at most 250 ms in every run.

use std::time::{Duration, Instant};

use courier_core::commands::{CampaignCommands, Change};
use courier_core::topology::SENDERS_CONSUMER;
use telegram_sandbox::{Sandbox, SandboxConfig};

use courier_core::topology::DEFAULT_BOT;

use crate::fixtures;
use crate::process::{Launcher, ensure_running};
use crate::report::{Section, Table, median, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub runs: usize,
}

/// Sender processes sharing the campaign.
const SENDERS: usize = 3;
/// Items enqueued: more than the senders send before the pause.
const ITEMS: u64 = 5_000;
/// Sends before the pause, so every sender is in full flow.
const SENT_BEFORE_PAUSE: usize = 1_000;
/// The most a pause may take to stop the last send.
const TARGET: Duration = Duration::from_millis(250);

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut table = Table::new(&[
        "run",
        "senders",
        "sent before the pause",
        "pause publish → last send",
    ]);
    let mut stops = Vec::new();
    for run in 1..=options.runs {
        eprintln!("pause, {SENDERS} senders, run {run}/{}", options.runs);
        let (sent_before, stop) = one_run(launcher, run).await?;
        table.row([
            run.to_string(),
            SENDERS.to_string(),
            sent_before.to_string(),
            format!("{} ms", stop.as_millis()),
        ]);
        stops.push(stop);
    }
    let worst = stops.iter().max().copied().unwrap_or_default();
    let millis: Vec<f64> = stops.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let mut section = Section::new(
        "6. Pause latency",
        format!(
            "{SENDERS} `courier-sender` processes on a paid campaign at 1000/s (sandbox limits \
             on, 50 ms latency, {ITEMS} items enqueued); after {SENT_BEFORE_PAUSE} sends the \
             campaign is paused through `CampaignCommands` (as the bot and courierctl do). \
             Measured: from the start of the pause's publish to the last send of the \
             campaign the sandbox accepted. Target: ≤ {} ms in every run.",
            TARGET.as_millis()
        ),
    );
    section.tables.push(table);
    section.notes.push(format!(
        "Median {:.0} ms, worst {} ms over {} run(s): {}.",
        median(&millis),
        worst.as_millis(),
        stops.len(),
        verdict(worst <= TARGET)
    ));
    Ok(section)
}

/// Sends before the pause, and how long after the pause's publish began
/// the last send was accepted (zero if none came after).
async fn one_run(launcher: &Launcher, run: usize) -> anyhow::Result<(usize, Duration)> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let sandbox = Sandbox::start(SandboxConfig {
        latency_ms: 50,
        ..SandboxConfig::default()
    })
    .await?;
    let campaign = fixtures::sending_campaign(&env, &js, &client, DEFAULT_BOT, true).await?;
    let vars = fixtures::sender_vars(
        &sandbox.url(),
        30.0,
        1000.0,
        courier_sender::DEFAULT_MAX_IN_FLIGHT,
    );
    let services =
        fixtures::start_senders(launcher, &env, &js, &vars, SENDERS, &format!("pause-{run}"))
            .await?;
    fixtures::publish_windowed(&js, ITEMS, 1000, |i| {
        fixtures::work_item(&topology, campaign, i as i64 + 1)
    })
    .await?;
    fixtures::wait_for(
        "sends before the pause",
        Duration::from_secs(60),
        || async {
            ensure_running(&services)?;
            Ok((sandbox.deliveries().len() >= SENT_BEFORE_PAUSE).then_some(()))
        },
    )
    .await?;
    let commands = CampaignCommands::new(js.clone(), topology.clone()).await?;
    let pausing = Instant::now();
    let sent_before = sandbox.deliveries().len();
    commands
        .change(
            campaign,
            Change::Pause {
                reason: "bench".to_owned(),
            },
            1,
        )
        .await?;
    // Every item is set aside or sent once none is pending or in flight.
    fixtures::wait_for("every item set aside", Duration::from_secs(60), || async {
        ensure_running(&services)?;
        let mut consumer = js
            .get_stream(topology.work_stream())
            .await?
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(SENDERS_CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let info = consumer.info().await?;
        Ok((info.num_pending == 0 && info.num_ack_pending == 0).then_some(()))
    })
    .await?;
    let last = sandbox
        .deliveries()
        .iter()
        .map(|delivery| delivery.accepted_at)
        .max()
        .unwrap_or(pausing);
    Ok((sent_before, last.saturating_duration_since(pausing)))
}
