//! What the figures were measured on. Throughput numbers mean little
//! without the machine, the server versions and how busy the machine was
//! with other work, so the report opens with them.

use anyhow::Context as _;

use crate::report::Table;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages when the benchmark started.
    pub load: String,
    pub nats_server: String,
    pub postgres: String,
}

impl Machine {
    /// Reads `/proc` and asks both servers their version.
    pub async fn describe(nats_url: &str, database_url: &str) -> anyhow::Result<Machine> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|meminfo| {
                meminfo
                    .lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0 / 1024.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
            .unwrap_or_else(|_| "unknown".to_owned());
        let nats = async_nats::connect(nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {nats_url}"))?;
        let nats_server = format!("nats-server {}", nats.server_info().version);
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .context("connecting to Postgres")?;
        tokio::spawn(connection);
        let postgres = client
            .query_one("SELECT version()", &[])
            .await?
            .get::<_, String>(0);
        let postgres = postgres
            .split(" on ")
            .next()
            .unwrap_or(&postgres)
            .to_owned();
        Ok(Machine {
            cpu_model,
            cores,
            memory_gib,
            kernel,
            load,
            nats_server,
            postgres,
        })
    }

    pub fn table(&self) -> Table {
        let mut table = Table::new(&["", ""]);
        table.row(["CPU".to_owned(), self.cpu_model.clone()]);
        table.row(["cores (logical)".to_owned(), self.cores.to_string()]);
        table.row(["memory".to_owned(), format!("{:.1} GiB", self.memory_gib)]);
        table.row(["kernel".to_owned(), format!("Linux {}", self.kernel)]);
        table.row([
            "load average at start (1/5/15 min)".to_owned(),
            self.load.clone(),
        ]);
        table.row(["NATS".to_owned(), self.nats_server.clone()]);
        table.row(["Postgres".to_owned(), self.postgres.clone()]);
        table
    }
}
