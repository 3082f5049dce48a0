//! Measurement 5: how many delivery outcomes per second the projector
//! applies to Postgres.
//!
//! Every send ends as one outcome the projector must apply before the
//! campaign's counters move and it can complete; a projector slower than
//! the senders makes completion lag behind sending (measurement 4's tail)
//! and grows a backlog on large campaigns. The projector applies one
//! message per transaction on one connection, so this is a latency-bound
//! figure: round trips to Postgres per outcome, not CPU.
//!
//! Setup: N users in the read model, a campaign started through events and
//! applied by a first projector process (which creates the N `deliveries`
//! rows), which is then stopped; N `DeliveryOutcome`s are published as
//! senders publish them. Then a fresh projector process catches up, timed
//! on its `projector_checkpoints` row for the outcomes stream from 2% of
//! the outcomes (start-up excluded) to the last.

use std::time::Duration;

use anyhow::ensure;
use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::proto::v1::AudienceFilter;
use courier_testing::campaigns::campaign_row;

use crate::fixtures;
use crate::process::{Launcher, Snapshot, ensure_running};
use crate::report::{Section, Table, median, percent, runs, thousands};

#[derive(Debug, Clone)]
pub struct Options {
    pub outcomes: u64,
    pub runs: usize,
}

struct ProjectorRun {
    rate: f64,
    cpu_us: f64,
    projector_cores: f64,
    machine_busy: f64,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut results = Vec::new();
    for run in 1..=options.runs {
        eprintln!("projector run {run}/{}", options.runs);
        results.push(one_run(launcher, options, run).await?);
    }
    let column = |f: fn(&ProjectorRun) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let rate = column(|r| r.rate);
    let cpu = column(|r| r.cpu_us);
    let cores = column(|r| r.projector_cores);
    let busy = column(|r| r.machine_busy);
    let mut table = Table::new(&["", "median", "runs"]);
    table.row([
        "outcomes applied per second".to_owned(),
        format!("{}/s", thousands(median(&rate))),
        runs(&rate, thousands),
    ]);
    table.row([
        "projector CPU per outcome".to_owned(),
        format!("{:.1} µs", median(&cpu)),
        runs(&cpu, |v| format!("{v:.1}")),
    ]);
    table.row([
        "CPU cores busy: projector".to_owned(),
        format!("{:.2}", median(&cores)),
        runs(&cores, |v| format!("{v:.2}")),
    ]);
    table.row([
        "machine CPU busy (all cores)".to_owned(),
        percent(median(&busy)),
        runs(&busy, percent),
    ]);
    let mut section = Section::new(
        format!(
            "5. Projector: {} outcomes",
            thousands(options.outcomes as f64)
        ),
        format!(
            "{n} `DeliveryOutcome`s of a started campaign with {n} recipients are in the \
             outcomes stream before a `courier-projector` process starts; timed on its \
             checkpoint from 2% of them applied to the last. No target was set; for scale, \
             the paid budget is 1000 outcomes/s per bot token. Median of {runs} runs.",
            n = thousands(options.outcomes as f64),
            runs = options.runs,
        ),
    );
    section.tables.push(table);
    let rate = median(&rate);
    if rate < 1000.0 {
        section.notes.push(format!(
            "At {}/s the projector is slower than a 1000/s paid campaign sends: such a \
             campaign's last outcome would be applied {:.2} × its sending time after the start.",
            thousands(rate),
            1000.0 / rate,
        ));
    }
    if median(&cores) < 0.5 {
        section.notes.push(
            "The projector kept less than half a core busy: it waits on Postgres round trips \
             (one statement per outcome, a transaction and a completion check per batch of \
             outcomes), not on its own CPU."
                .to_owned(),
        );
    }
    Ok(section)
}

async fn one_run(
    launcher: &Launcher,
    options: &Options,
    run: usize,
) -> anyhow::Result<ProjectorRun> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    fixtures::insert_users(&client, options.outcomes).await?;

    // A first projector applies the campaign's start: the deliveries rows.
    let commands = CampaignCommands::new(js.clone(), topology.clone()).await?;
    let campaign = {
        let setup = [launcher.spawn(
            "courier-projector",
            &format!("projector-{run}-setup"),
            &env,
            &[],
        )?];
        let campaign = commands
            .create_and_start(NewCampaign {
                bot_id: courier_core::topology::DEFAULT_BOT,
                id: uuid::Uuid::now_v7(),
                created_by: 1,
                audience: AudienceFilter::default(),
                content: fixtures::text_content(),
                variants: Vec::new(),
                options: fixtures::options(false),
                title: String::new(),
            })
            .await?;
        fixtures::wait_for(
            "the campaign's start to be projected",
            Duration::from_secs(120),
            || async {
                ensure_running(&setup)?;
                Ok(campaign_row(&client, campaign)
                    .await
                    .filter(|row| row.audience_size == Some(options.outcomes as i32)))
            },
        )
        .await?;
        campaign
        // The setup projector is killed here.
    };

    fixtures::publish_windowed(&js, options.outcomes, 1000, |i| {
        fixtures::delivered_outcome(&topology, campaign, i as i64 + 1)
    })
    .await?;

    let services = [launcher.spawn("courier-projector", &format!("projector-{run}"), &env, &[])?];
    let pids = [services[0].pid()];
    let stream = topology.outcomes_stream();
    let applied = || async {
        let row = client
            .query_opt(
                "SELECT last_seq FROM projector_checkpoints WHERE stream = $1",
                &[&stream],
            )
            .await?;
        anyhow::Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    };
    let deadline = Duration::from_secs(60 + options.outcomes / 100);
    let warm = (options.outcomes / 50).max(1);
    let (applied_before, first) =
        fixtures::wait_for("2% of the outcomes applied", deadline, || async {
            ensure_running(&services)?;
            let done = applied().await?;
            (done >= warm)
                .then(|| Snapshot::take(&pids).map(|s| (done, s)))
                .transpose()
        })
        .await?;
    let last = fixtures::wait_for("every outcome applied", deadline, || async {
        ensure_running(&services)?;
        let done = applied().await?;
        (done >= options.outcomes)
            .then(|| Snapshot::take(&pids))
            .transpose()
    })
    .await?;
    let usage = first.until(&last);

    let row = fixtures::wait_for(
        "the campaign to complete",
        Duration::from_secs(60),
        || async {
            ensure_running(&services)?;
            Ok(campaign_row(&client, campaign)
                .await
                .filter(|row| row.status == "completed"))
        },
    )
    .await?;
    ensure!(
        row.delivered as u64 == options.outcomes,
        "{} delivered after {} outcomes: {row:?}",
        row.delivered,
        options.outcomes
    );
    let messages = (options.outcomes - applied_before) as f64;
    Ok(ProjectorRun {
        rate: messages / usage.wall.as_secs_f64(),
        cpu_us: usage.processes[0].as_secs_f64() * 1e6 / messages,
        projector_cores: usage.cores(0),
        machine_busy: usage.machine_busy,
    })
}
