//! courier-bench: measures courier on this machine against real NATS,
//! Postgres and the in-process Telegram sandbox, with the services as their
//! release binaries, and writes a markdown report (stdout and
//! `target/bench-report.md`).
//!
//! It exists so performance claims come with a way to check them: `just
//! bench` builds the binaries and runs every measurement; `just
//! bench-sender` only the sender ones. Each measurement is a module of its
//! own with its method in its doc comment:
//! 1. [`fanout`]: the loader's enqueue rate against raw JetStream publishes;
//! 2. [`sender`]: CPU and memory of one sender with every limit off;
//! 3. [`rate`]: rate budgets met and never exceeded, with 1 to 4 senders;
//! 4. [`e2e`]: a whole paid campaign against the budget's ideal time, and
//!    with every limit off;
//! 5. [`projector`]: outcomes applied to Postgres per second;
//! 6. [`pause`]: how soon a pause stops every sender;
//! 7. [`audience`]: counting, fixing and replaying a million users.
//!
//! Every run gets its own NATS prefix and database from `courier-testing`,
//! removed afterwards, so the benchmark can share servers with tests.

mod audience;
mod bots;
mod e2e;
mod fanout;
mod fixtures;
mod hog;
mod machine;
mod pause;
mod process;
mod projector;
mod rate;
mod report;
mod sender;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use courier_testing::{DATABASE_URL_VAR, NATS_URL_VAR};

use crate::machine::Machine;
use crate::process::Launcher;
use crate::report::Section;

/// Benchmarks courier's services (release binaries) against real NATS,
/// Postgres and the Telegram sandbox, and writes a markdown report.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Measurements to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fanout,sender,rate,e2e,projector,pause,audience,bots"
    )]
    only: Vec<Measurement>,

    /// Runs of each measurement reported as a median.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,

    /// Directory of the service binaries (courier-loader, courier-sender,
    /// courier-projector); default: the directory of this executable.
    #[arg(long, env = "COURIER_BENCH_BIN_DIR")]
    bin_dir: Option<PathBuf>,

    /// Where the markdown report is written (it also goes to stdout).
    #[arg(long, default_value = "target/bench-report.md")]
    report: PathBuf,

    /// Where the services' logs go, one file per process.
    #[arg(long, default_value = "target/bench-logs")]
    log_dir: PathBuf,

    /// NATS server with JetStream (`eval "$(scripts/test-services.sh)"` sets it).
    #[arg(long, env = NATS_URL_VAR)]
    nats_url: String,

    /// Maintenance database of the Postgres server; each run creates and
    /// drops a database of its own.
    #[arg(long, env = DATABASE_URL_VAR, hide_env_values = true)]
    database_url: String,

    /// Fan-out: recipients of the campaign.
    #[arg(long, default_value_t = 1_000_000)]
    fanout_recipients: u64,

    /// Fan-out: acknowledgements outstanding at once in the raw publish.
    #[arg(long, default_value_t = 1000)]
    fanout_ack_window: usize,

    /// Fan-out: LOADER_BATCH_SIZE of the loader process.
    #[arg(long, default_value_t = 1000)]
    loader_batch_size: i64,

    /// Sender with limits off: work items per run.
    #[arg(long, default_value_t = 20_000)]
    sender_items: u64,

    /// Sender with limits off: SENDER_RATE_LIMIT (and SENDER_PAID_RATE_LIMIT)
    /// of each configuration, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    sender_rate_limits: Vec<f64>,

    /// Sender with limits off: seconds a run measures at most (a slow
    /// configuration stops there with items left).
    #[arg(long, default_value_t = 10)]
    sender_seconds: u64,

    /// Sender with limits off: SENDER_MAX_IN_FLIGHT.
    #[arg(long, default_value_t = courier_sender::DEFAULT_MAX_IN_FLIGHT)]
    sender_max_in_flight: u16,

    /// Rate adherence: seconds of sending per run (sets the items).
    #[arg(long, default_value_t = 12.0)]
    rate_seconds: f64,

    /// Rate adherence: the sandbox's latency in milliseconds.
    #[arg(long, default_value_t = 50)]
    rate_latency_ms: u64,

    /// Rate adherence: numbers of sender processes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    rate_senders: Vec<usize>,

    /// Rate adherence: the machine's conditions, comma-separated: `quiet`,
    /// and `busy` (a thread of the bench burns one core meanwhile).
    #[arg(long, value_delimiter = ',', default_value = "quiet,busy")]
    rate_machine: Vec<rate::Condition>,

    /// Rate adherence: runs per row (each lasts --rate-seconds).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    rate_runs: u16,

    /// End to end: recipients of the paid campaign.
    #[arg(long, default_value_t = 10_000)]
    e2e_recipients: u64,

    /// End to end: what holds the campaign back, comma-separated: `paid`
    /// (the paid lane's 1000/s) and `off` (no limit anywhere).
    #[arg(long, value_delimiter = ',', default_value = "paid,off")]
    e2e_limits: Vec<e2e::Limits>,

    /// End to end: runs (each lasts as long as its campaign; median reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    e2e_runs: u16,

    /// Pause latency: runs (each pauses one campaign).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pause_runs: u16,

    /// Projector: outcomes to apply per run.
    #[arg(long, default_value_t = 10_000)]
    projector_outcomes: u64,

    /// Audiences: users to count, fix and replay.
    #[arg(long, default_value_t = 1_000_000)]
    audience_users: u64,

    /// Many bots: bots served at once (the last starts late).
    #[arg(long, default_value_t = 50)]
    bots: usize,

    /// Many bots: seconds each busy bot's campaign takes at its limit.
    #[arg(long, default_value_t = 20.0)]
    bots_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measurement {
    Fanout,
    Sender,
    Rate,
    E2e,
    Projector,
    Pause,
    Audience,
    Bots,
}

impl Measurement {
    const ALL: [Measurement; 8] = [
        Measurement::Fanout,
        Measurement::Sender,
        Measurement::Rate,
        Measurement::E2e,
        Measurement::Projector,
        Measurement::Pause,
        Measurement::Audience,
        Measurement::Bots,
    ];

    fn title(self) -> &'static str {
        match self {
            Measurement::Fanout => "1. Fan-out",
            Measurement::Sender => "2. Sender with limits off",
            Measurement::Rate => "3. Rate adherence",
            Measurement::E2e => "4. End to end",
            Measurement::Projector => "5. Projector",
            Measurement::Pause => "6. Pause latency",
            Measurement::Audience => "7. Audiences",
            Measurement::Bots => "8. Many bots",
        }
    }

    fn binaries(self) -> &'static [&'static str] {
        match self {
            Measurement::Fanout => &["courier-loader"],
            Measurement::Sender | Measurement::Rate | Measurement::Pause | Measurement::Bots => {
                &["courier-sender"]
            }
            Measurement::E2e => &["courier-projector", "courier-loader", "courier-sender"],
            Measurement::Projector | Measurement::Audience => &["courier-projector"],
        }
    }

    async fn run(self, launcher: &Launcher, cli: &Cli) -> anyhow::Result<Section> {
        let runs = usize::from(cli.runs);
        match self {
            Measurement::Fanout => {
                fanout::run(
                    launcher,
                    &fanout::Options {
                        recipients: cli.fanout_recipients,
                        ack_window: cli.fanout_ack_window,
                        batch_size: cli.loader_batch_size,
                        runs,
                    },
                )
                .await
            }
            Measurement::Sender => {
                sender::run(
                    launcher,
                    &sender::Options {
                        items: cli.sender_items,
                        max_in_flight: cli.sender_max_in_flight,
                        rate_limits: cli.sender_rate_limits.clone(),
                        max_duration: Duration::from_secs(cli.sender_seconds),
                        runs,
                    },
                )
                .await
            }
            Measurement::Rate => {
                rate::run(
                    launcher,
                    &rate::Options {
                        seconds: cli.rate_seconds,
                        latency_ms: cli.rate_latency_ms,
                        processes: cli.rate_senders.clone(),
                        conditions: cli.rate_machine.clone(),
                        runs: usize::from(cli.rate_runs),
                    },
                )
                .await
            }
            Measurement::E2e => {
                e2e::run(
                    launcher,
                    &e2e::Options {
                        recipients: cli.e2e_recipients,
                        runs: usize::from(cli.e2e_runs),
                        limits: cli.e2e_limits.clone(),
                    },
                )
                .await
            }
            Measurement::Pause => {
                pause::run(
                    launcher,
                    &pause::Options {
                        runs: usize::from(cli.pause_runs),
                    },
                )
                .await
            }
            Measurement::Audience => {
                audience::run(
                    launcher,
                    &audience::Options {
                        users: cli.audience_users,
                        runs,
                    },
                )
                .await
            }
            Measurement::Bots => {
                bots::run(
                    launcher,
                    &bots::Options {
                        bots: cli.bots,
                        seconds: cli.bots_seconds,
                        latency_ms: cli.rate_latency_ms,
                    },
                )
                .await
            }
            Measurement::Projector => {
                projector::run(
                    launcher,
                    &projector::Options {
                        outcomes: cli.projector_outcomes,
                        runs,
                    },
                )
                .await
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // courier-testing finds the servers through these variables; values
    // given as flags are handed on here.
    // SAFETY: no other thread exists yet (the runtime is built below), so
    // nothing can read the environment while it changes.
    #[expect(unsafe_code, reason = "set_var before the runtime's threads exist")]
    unsafe {
        std::env::set_var(NATS_URL_VAR, &cli.nats_url);
        std::env::set_var(DATABASE_URL_VAR, &cli.database_url);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = match &cli.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the executable's directory")?
            .to_path_buf(),
    };
    let launcher = Launcher::new(bin_dir, cli.log_dir.clone())?;
    let selected: Vec<Measurement> = Measurement::ALL
        .into_iter()
        .filter(|m| cli.only.contains(m))
        .collect();
    for measurement in &selected {
        launcher.check(measurement.binaries())?;
    }
    let machine = Machine::describe(&cli.nats_url, &cli.database_url).await?;

    let mut report = header(&cli, &machine, &launcher);
    print!("{report}");
    for measurement in selected {
        let began = Instant::now();
        let mut section = match measurement.run(&launcher, &cli).await {
            Ok(section) => section,
            Err(error) => {
                eprintln!("{} failed: {error:#}", measurement.title());
                Section::failed(measurement.title(), &error, began.elapsed())
            }
        };
        section.took = began.elapsed();
        let markdown = section.markdown();
        print!("{markdown}");
        report.push_str(&markdown);
    }
    let footer = format!(
        "---\nTotal: {} (service logs in `{}`).\n",
        report::duration(started.elapsed()),
        cli.log_dir.display()
    );
    print!("{footer}");
    report.push_str(&footer);
    if let Some(parent) = cli.report.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cli.report, &report)
        .with_context(|| format!("writing {}", cli.report.display()))?;
    eprintln!("report written to {}", cli.report.display());
    Ok(())
}

fn header(cli: &Cli, machine: &Machine, launcher: &Launcher) -> String {
    let command: Vec<String> = std::env::args().collect();
    let mut out = format!(
        "# courier benchmark\n\n{} · `{}` · binaries from `{}`\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        command.join(" "),
        launcher.bin_dir().display(),
    );
    out.push_str(&machine.table().markdown());
    let load: f64 = machine
        .load
        .split(" / ")
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    if load > 0.5 * machine.cores as f64 {
        out.push_str(&format!(
            "\nThe machine was not idle at the start (load {load:.2} on {} cores): other work \
             competes with the measured processes for CPU.\n",
            machine.cores
        ));
    }
    out.push_str(&format!(
        "\nMedians are of {} runs; NATS at {}.\n\n",
        cli.runs, cli.nats_url
    ));
    out
}
