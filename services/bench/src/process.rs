//! The services under test as real processes, and what the kernel says
//! they cost.
//!
//! A benchmark of in-process services would measure a different program:
//! one runtime shared with the harness, no process start, no separate
//! allocator. So every service runs from its release binary, configured by
//! environment variables exactly as in production, with its log on a file
//! of its own (`target/bench-logs/`). A [`Service`] is killed when dropped,
//! so a failing measurement leaves no process behind.
//!
//! CPU time and peak memory come from `/proc`: `utime + stime` of
//! `/proc/<pid>/stat` (every thread of the process), `VmHWM` of
//! `/proc/<pid>/status`, and the first line of `/proc/stat` for the whole
//! machine.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use courier_testing::TestEnv;

use crate::fixtures;

/// Starts service binaries from one directory.
pub struct Launcher {
    bin_dir: PathBuf,
    log_dir: PathBuf,
}

impl Launcher {
    pub fn new(bin_dir: PathBuf, log_dir: PathBuf) -> anyhow::Result<Launcher> {
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating the log directory {}", log_dir.display()))?;
        Ok(Launcher { bin_dir, log_dir })
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Checks every binary the benchmark runs is there, before any
    /// measurement spends minutes on its setup.
    pub fn check(&self, binaries: &[&str]) -> anyhow::Result<()> {
        for binary in binaries {
            let path = self.bin_dir.join(binary);
            ensure!(
                path.is_file(),
                "{} does not exist: run `cargo build --release --bins` or point --bin-dir \
                 (COURIER_BENCH_BIN_DIR) at the service binaries",
                path.display()
            );
        }
        Ok(())
    }

    /// Starts `binary` on `env`'s NATS prefix and database, with `vars` on
    /// top of the shared configuration. `label` names its log file.
    pub fn spawn(
        &self,
        binary: &str,
        label: &str,
        env: &TestEnv,
        vars: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let path = self.bin_dir.join(binary);
        let log_path = self.log_dir.join(format!("{label}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&path)
            .env_clear()
            .env("NATS_URL", &env.nats.nats_url)
            .env("COURIER_NATS_PREFIX", env.nats.prefix.as_str())
            .env("DATABASE_URL", fixtures::database_url(env))
            // Warnings and errors only: logging every send would be part
            // of what is measured.
            .env("RUST_LOG", "warn")
            // Several services run at once: none may take the fixed
            // default port of the metrics endpoint.
            .env("METRICS_ADDR", "127.0.0.1:0")
            .envs(vars.iter().map(|(name, value)| (name, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        Ok(Service {
            label: label.to_owned(),
            pid: child.id(),
            log_path,
            child: Mutex::new(child),
        })
    }
}

/// A running service process; killed (SIGKILL) on drop.
pub struct Service {
    label: String,
    pid: u32,
    log_path: PathBuf,
    child: Mutex<Child>,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// An error naming the service and its log if it has exited: waiting
    /// for a dead service would only end at the deadline.
    pub fn ensure_running(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().expect("child lock");
        match child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); see {}",
                self.label,
                self.log_path.display()
            ),
        }
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time(self.pid)
    }

    /// The most resident memory the process has had (VmHWM), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("no VmHWM in {path}"))?;
        Ok(kib * 1024)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let child = self.child.get_mut().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Checks every service is still running.
pub fn ensure_running(services: &[Service]) -> anyhow::Result<()> {
    services.iter().try_for_each(Service::ensure_running)
}

/// Kernel clock ticks per second, the unit of `/proc/<pid>/stat` times.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the system; it has no
    // preconditions and touches no memory of ours.
    #[expect(unsafe_code, reason = "sysconf has no safe wrapper in std")]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// User plus system CPU time of process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // fields are counted after its closing parenthesis, where field 3
    // (the state) is the first. utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| -> anyhow::Result<u64> {
        fields
            .get(field - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("field {field} of {path}"))
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second() as f64,
    ))
}

/// Process ids whose command name is `name` (e.g. `nats-server`).
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

/// CPU time of the whole machine, in clock ticks, from `/proc/stat`.
#[derive(Debug, Clone, Copy)]
struct MachineTicks {
    busy: u64,
    total: u64,
}

fn machine_ticks() -> anyhow::Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    // cpu  user nice system idle iowait irq softirq steal ...
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    ensure!(values.len() >= 5, "unexpected /proc/stat: {line}");
    let total: u64 = values.iter().take(8).sum();
    let idle = values[3] + values[4];
    Ok(MachineTicks {
        busy: total - idle,
        total,
    })
}

/// CPU times of some processes and of the machine at one moment.
pub struct Snapshot {
    at: Instant,
    processes: Vec<Duration>,
    machine: MachineTicks,
}

impl Snapshot {
    /// Samples `pids` (processes that are gone count as zero).
    pub fn take(pids: &[u32]) -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            at: Instant::now(),
            processes: pids
                .iter()
                .map(|pid| cpu_time(*pid).unwrap_or_default())
                .collect(),
            machine: machine_ticks()?,
        })
    }

    /// Time since the snapshot was taken.
    pub fn elapsed(&self) -> Duration {
        self.at.elapsed()
    }

    /// What was used between this snapshot and `later` (same pids).
    pub fn until(&self, later: &Snapshot) -> Usage {
        let machine_total = later.machine.total.saturating_sub(self.machine.total);
        let machine_busy = later.machine.busy.saturating_sub(self.machine.busy);
        Usage {
            wall: later.at.duration_since(self.at),
            processes: self
                .processes
                .iter()
                .zip(&later.processes)
                .map(|(before, after)| after.saturating_sub(*before))
                .collect(),
            machine_busy: if machine_total == 0 {
                0.0
            } else {
                machine_busy as f64 / machine_total as f64
            },
        }
    }
}

/// CPU used over an interval.
#[derive(Debug, Clone)]
pub struct Usage {
    pub wall: Duration,
    /// CPU time of each sampled process, in the order of their pids.
    pub processes: Vec<Duration>,
    /// Fraction of the whole machine's CPU capacity that was busy.
    pub machine_busy: f64,
}

impl Usage {
    /// Cores the `i`th process kept busy on average (1.0 = one full core).
    pub fn cores(&self, i: usize) -> f64 {
        self.processes[i].as_secs_f64() / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}
