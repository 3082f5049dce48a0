//! Measurement 4: a whole campaign through every service, against the
//! time the rate budget alone would take.
//!
//! What an admin experiences is the time from pressing Start to the
//! campaign reading "completed". At a budget of 1000/s, 10,000 recipients
//! cannot take less than 10 s; everything courier adds on top (projecting
//! the start, fanning out, pulling, recording outcomes, projecting them,
//! deciding completion) shows as the ratio to that ideal.
//!
//! Projector, loader and two senders run as release processes, already
//! waiting for work. Users are inserted into the read model directly; the
//! campaign is published as the bot publishes it (`CampaignCreated`, then
//! `CampaignStarted`, the clock starting at the latter) and the clock
//! stops when Postgres shows the campaign `completed`.
//!
//! The same run gives what each service costs per recipient *during a live
//! campaign* (CPU time from `CampaignStarted` to `completed`, divided by
//! the recipients), with how busy the whole machine was beside it.
//!
//! By default each run is made twice (`--e2e-limits paid,off`): paced at
//! the paid lane's budget, and with every limit off (the sandbox's and the
//! senders', as in measurement 2), so the campaign goes as fast as the
//! pipeline can. The second is the condition of issue 12's side-by-side
//! with the seed's design; the first is what a paid campaign costs when
//! each send is its own wake-up.

use std::time::{Duration, Instant};

use anyhow::ensure;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{
    AudienceFilter, CampaignCreated, CampaignStarted, Event, event::Payload,
};
use courier_core::topology::{LOADER_CONSUMER, SENDERS_CONSUMER};
use courier_testing::campaigns::campaign_row;
use telegram_sandbox::{Sandbox, SandboxConfig};
use uuid::Uuid;

use crate::fixtures;
use crate::process::{Launcher, Service, Snapshot, ensure_running};
use crate::report::{Section, Table, duration, median, runs, thousands, verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub recipients: u64,
    pub runs: usize,
    /// The conditions measured, each a table of its own.
    pub limits: Vec<Limits>,
}

/// What holds the campaign back. With limits off the campaign is a free
/// one: paid broadcasts at an unlimited rate would need more Stars than
/// the sandbox's bot has (the senders would move them to the free lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Limits {
    /// Telegram's paid limit: the senders pace at [`BUDGET`], the sandbox
    /// enforces it; timed against the ideal recipients / budget.
    Paid,
    /// No limit anywhere: the sandbox enforces none and the senders' rate
    /// limit is far above what they reach.
    Off,
}

impl Limits {
    fn sandbox(self) -> SandboxConfig {
        let limits = match self {
            Limits::Paid => SandboxConfig {
                paid_rate_limit: BUDGET as u32,
                ..SandboxConfig::default()
            },
            Limits::Off => SandboxConfig {
                rate_limit: 0,
                paid_rate_limit: 0,
                chat_rate_limit: 0,
                ..SandboxConfig::default()
            },
        };
        SandboxConfig {
            latency_ms: LATENCY_MS,
            ..limits
        }
    }

    /// `SENDER_RATE_LIMIT` and `SENDER_PAID_RATE_LIMIT`.
    fn sender_rates(self) -> (f64, f64) {
        match self {
            Limits::Paid => (30.0, BUDGET),
            Limits::Off => (OFF_RATE_LIMIT, OFF_RATE_LIMIT),
        }
    }
}

const BUDGET: f64 = 1000.0;
/// The senders' rate limit when limits are off: far above what two
/// senders reach, like measurement 2's default.
const OFF_RATE_LIMIT: f64 = 100_000.0;
const LATENCY_MS: u64 = 50;
const SENDERS: usize = 2;
/// Wall time may exceed the ideal by this fraction.
const TARGET_OVERHEAD: f64 = 0.05;
/// CPU per recipient during the campaign, µs: senders, projector, all.
const SENDER_CPU_TARGET_US: f64 = 50.0;
const PROJECTOR_CPU_TARGET_US: f64 = 30.0;
const ALL_CPU_TARGET_US: f64 = 100.0;

struct E2eRun {
    wall: Duration,
    /// `CampaignStarted` published → the sandbox accepts the first send.
    first_send: Duration,
    /// First send → last send.
    sending: Duration,
    /// Last send → the campaign shows `completed` in Postgres.
    completing: Duration,
    too_many_requests: u64,
    /// CPU per recipient (µs) from start to completed: projector, loader,
    /// all senders together.
    projector_us: f64,
    loader_us: f64,
    senders_us: f64,
    /// Fraction of the machine's CPU busy meanwhile (everything on it).
    machine_busy: f64,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let mut section = Section::new(
        format!(
            "4. End to end: {} recipients",
            thousands(options.recipients as f64)
        ),
        format!(
            "`courier-projector`, `courier-loader` and {SENDERS} `courier-sender` processes \
             (`SENDER_MAX_IN_FLIGHT` at its default), the sandbox with {LATENCY_MS} ms latency, \
             {n} live users in the read model. A campaign to all of them is published; timed \
             from `CampaignStarted` to the campaign's status `completed` in Postgres. *Paid*: \
             a paid campaign, `SENDER_PAID_RATE_LIMIT`={BUDGET} and the sandbox at Telegram's \
             limits; ideal: recipients / budget. *Limits off*: a free campaign, no limit in the \
             sandbox, the senders' rate limits at {OFF_RATE_LIMIT}. Median of {runs} runs.",
            n = thousands(options.recipients as f64),
            runs = options.runs,
        ),
    );
    for &limits in &options.limits {
        let mut results = Vec::new();
        for run in 1..=options.runs {
            eprintln!("end-to-end ({limits:?}) run {run}/{}", options.runs);
            results.push(one_run(launcher, options, run, limits).await?);
        }
        let table = match limits {
            Limits::Paid => paid_table(options, &results, &mut section.notes),
            Limits::Off => off_table(options, &results),
        };
        section.tables.push(table);
    }
    Ok(section)
}

fn secs(results: &[E2eRun], f: fn(&E2eRun) -> Duration) -> Vec<f64> {
    results.iter().map(|r| f(r).as_secs_f64()).collect()
}

fn seconds(v: f64) -> String {
    format!("{v:.2}")
}

fn paid_table(options: &Options, results: &[E2eRun], notes: &mut Vec<String>) -> Table {
    let ideal = options.recipients as f64 / BUDGET;
    let wall = secs(results, |r| r.wall);
    let ratios: Vec<f64> = wall.iter().map(|w| w / ideal).collect();
    let ratio = median(&ratios);

    let mut table = wall_table(format!("Paid, {BUDGET}/s"), &wall);
    table.row([
        format!("wall / ideal ({ideal:.0} s)"),
        format!("{ratio:.3}"),
        runs(&ratios, |v| format!("{v:.3}")),
        format!("≤ {:.2}", 1.0 + TARGET_OVERHEAD),
        verdict(ratio <= 1.0 + TARGET_OVERHEAD).to_owned(),
    ]);
    for (label, values) in [
        (
            "of which: start → first send",
            secs(results, |r| r.first_send),
        ),
        ("of which: first → last send", secs(results, |r| r.sending)),
        (
            "of which: last send → completed",
            secs(results, |r| r.completing),
        ),
    ] {
        table.row([
            label.to_owned(),
            duration(Duration::from_secs_f64(median(&values))),
            runs(&values, seconds),
            String::new(),
            String::new(),
        ]);
    }
    cpu_rows(&mut table, results);
    let too_many: u64 = results.iter().map(|r| r.too_many_requests).sum();
    table.row([
        "429s from the sandbox (all runs)".to_owned(),
        too_many.to_string(),
        String::new(),
        "0".to_owned(),
        verdict(too_many == 0).to_owned(),
    ]);

    let sending = median(&secs(results, |r| r.sending));
    if sending > ideal * 1.1 {
        notes.push(format!(
            "Sending took {:.2} × the ideal: the senders averaged {}/s of the {BUDGET}/s \
             budget (measurement 3 measures that alone).",
            sending / ideal,
            thousands(options.recipients as f64 / sending),
        ));
    }
    let completing = median(&secs(results, |r| r.completing));
    if completing > ideal * 0.05 {
        notes.push(format!(
            "{completing:.1} s passed between the last send and `completed`: the projector \
             applies outcomes more slowly than the senders produce them (measurement 5), and \
             a campaign completes only when its last outcome is applied."
        ));
    }
    let ceiling = BUDGET / (1e6 / courier_sender::rate::interval_us(BUDGET) as f64);
    notes.push(format!(
        "Senders pace at {:.1}% of `SENDER_PAID_RATE_LIMIT` (see measurement 3), so sending \
         alone takes {:.3} × the ideal; the 5% target leaves {:.1} percentage points for \
         everything else.",
        100.0 / ceiling,
        ceiling,
        (1.0 + TARGET_OVERHEAD - ceiling) * 100.0,
    ));
    table
}

fn off_table(options: &Options, results: &[E2eRun]) -> Table {
    let wall = secs(results, |r| r.wall);
    let rates: Vec<f64> = wall.iter().map(|w| options.recipients as f64 / w).collect();
    let mut table = wall_table("Limits off".to_owned(), &wall);
    table.row([
        "recipients completed per second".to_owned(),
        thousands(median(&rates)),
        runs(&rates, thousands),
        String::new(),
        String::new(),
    ]);
    cpu_rows(&mut table, results);
    table
}

/// A table captioned `caption` whose first row is the runs' wall times.
fn wall_table(caption: String, wall: &[f64]) -> Table {
    let mut table = Table::new(&["", "median", "runs", "target", "verdict"]).with_caption(caption);
    table.row([
        "wall time, CampaignStarted → completed".to_owned(),
        duration(Duration::from_secs_f64(median(wall))),
        runs(wall, seconds),
        String::new(),
        String::new(),
    ]);
    table
}

/// Each service's CPU per message, against the targets, and how busy the
/// machine was meanwhile.
fn cpu_rows(table: &mut Table, results: &[E2eRun]) {
    let micros = |f: fn(&E2eRun) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let per_message = |v: f64| format!("{v:.1}");
    let all = micros(|r| r.projector_us + r.loader_us + r.senders_us);
    for (label, values, target) in [
        (
            "senders' CPU per message (µs)",
            micros(|r| r.senders_us),
            Some(SENDER_CPU_TARGET_US),
        ),
        (
            "projector's CPU per outcome (µs)",
            micros(|r| r.projector_us),
            Some(PROJECTOR_CPU_TARGET_US),
        ),
        (
            "loader's CPU per recipient (µs)",
            micros(|r| r.loader_us),
            None,
        ),
        (
            "all services' CPU per message (µs)",
            all,
            Some(ALL_CPU_TARGET_US),
        ),
    ] {
        let value = median(&values);
        table.row([
            label.to_owned(),
            per_message(value),
            runs(&values, per_message),
            target.map_or(String::new(), |t| format!("≤ {t:.0}")),
            target.map_or(String::new(), |t| verdict(value <= t).to_owned()),
        ]);
    }
    let busy = micros(|r| r.machine_busy * 100.0);
    table.row([
        "machine CPU busy meanwhile (%)".to_owned(),
        format!("{:.0}", median(&busy)),
        runs(&busy, |v| format!("{v:.0}")),
        String::new(),
        String::new(),
    ]);
}

async fn one_run(
    launcher: &Launcher,
    options: &Options,
    run: usize,
    limits: Limits,
) -> anyhow::Result<E2eRun> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let sandbox = Sandbox::start(limits.sandbox()).await?;
    fixtures::insert_users(&client, options.recipients).await?;

    let label = format!("e2e-{}-{run}", format!("{limits:?}").to_lowercase());
    let mut services: Vec<Service> = vec![
        launcher.spawn(
            "courier-projector",
            &format!("{label}-projector"),
            &env,
            &[],
        )?,
        launcher.spawn("courier-loader", &format!("{label}-loader"), &env, &[])?,
    ];
    let (rate, paid_rate) = limits.sender_rates();
    let vars = fixtures::sender_vars(
        &sandbox.url(),
        rate,
        paid_rate,
        courier_sender::DEFAULT_MAX_IN_FLIGHT,
    );
    for i in 1..=SENDERS {
        services.push(launcher.spawn(
            "courier-sender",
            &format!("{label}-sender{i}"),
            &env,
            &vars,
        )?);
    }
    let (events, work) = (topology.events_stream(), topology.work_stream());
    fixtures::wait_for(
        "projector, loader and senders to be ready",
        Duration::from_secs(60),
        || async {
            ensure_running(&services)?;
            // The projector creates its checkpoint rows when it starts applying.
            let checkpoints: i64 = client
                .query_one("SELECT count(*) FROM projector_checkpoints", &[])
                .await?
                .get(0);
            let loader = fixtures::pull_requests(&js, &events, LOADER_CONSUMER).await?;
            let senders = fixtures::pull_requests(&js, &work, SENDERS_CONSUMER).await?;
            Ok((checkpoints == 2 && loader >= 1 && senders >= SENDERS).then_some(()))
        },
    )
    .await?;

    let campaign = Uuid::now_v7();
    let publisher = EventPublisher::new(js.clone(), topology.clone());
    let created = Event::new(Payload::CampaignCreated(CampaignCreated {
        campaign_id: campaign.to_string(),
        created_by: 1,
        audience: 0,
        content: Some(fixtures::text_content()),
        options: Some(fixtures::options(limits == Limits::Paid)),
        filter: Some(AudienceFilter::default()),
        variants: Vec::new(),
        title: String::new(),
        bot_id: courier_core::topology::DEFAULT_BOT,
    }));
    let created_seq = publisher.publish_expecting(&created, 0).await?;
    let pids: Vec<u32> = services.iter().map(Service::pid).collect();
    let before = Snapshot::take(&pids)?;
    let started = Instant::now();
    let start = Event::new(Payload::CampaignStarted(CampaignStarted {
        campaign_id: campaign.to_string(),
        started_by: 1,
    }));
    publisher.publish_expecting(&start, created_seq).await?;

    // Generous (a twentieth of the budget): the figure is the wall time,
    // however far from the ideal it is.
    let deadline = Duration::from_secs_f64(options.recipients as f64 / BUDGET * 20.0 + 60.0);
    let completed = fixtures::wait_for("the campaign to complete", deadline, || async {
        ensure_running(&services)?;
        Ok(campaign_row(&client, campaign)
            .await
            .filter(|row| row.status == "completed"))
    })
    .await;
    let row = match completed {
        Ok(row) => row,
        Err(error) => {
            let progress = campaign_row(&client, campaign).await;
            return Err(error.context(format!("the campaign stood at {progress:?}")));
        }
    };
    let completed = Instant::now();
    let usage = before.until(&Snapshot::take(&pids)?);
    let per_recipient = |cpu: Duration| cpu.as_secs_f64() * 1e6 / options.recipients as f64;
    ensure!(
        row.delivered as u64 == options.recipients,
        "{} of {} recipients delivered: {row:?}",
        row.delivered,
        options.recipients
    );
    let stats = sandbox.stats();
    let (Some(first), Some(last)) = (stats.accepted_at.first(), stats.accepted_at.last()) else {
        anyhow::bail!("the sandbox accepted no send");
    };
    Ok(E2eRun {
        wall: completed.duration_since(started),
        first_send: first.duration_since(started),
        sending: last.duration_since(*first),
        completing: completed.duration_since(*last),
        too_many_requests: stats.too_many_requests,
        projector_us: per_recipient(usage.processes[0]),
        loader_us: per_recipient(usage.processes[1]),
        senders_us: per_recipient(usage.processes[2..].iter().sum()),
        machine_busy: usage.machine_busy,
    })
}
