//! The integration-test harness: real NATS (JetStream) and real Postgres for
//! every test, isolated so tests run in parallel and leave nothing behind.
//!
//! Where the services come from, in order:
//! 1. `COURIER_TEST_NATS_URL` / `COURIER_TEST_DATABASE_URL`: already-running
//!    servers (how CI runs here: there is no Docker engine). The database URL
//!    names a maintenance database; each test creates its own database.
//! 2. Otherwise testcontainers starts `nats -js` and `postgres` in Docker.
//!
//! Each [`TestEnv`] gets a unique subject/stream prefix and its own
//! database; dropping it deletes both.

use std::future::Future;
use std::time::{Duration, Instant};

use courier_core::config::{DatabaseConfig, NatsConfig, Prefix};
use courier_core::topology::Topology;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::{nats, postgres};
use tokio::sync::OnceCell;

pub const NATS_URL_VAR: &str = "COURIER_TEST_NATS_URL";
pub const DATABASE_URL_VAR: &str = "COURIER_TEST_DATABASE_URL";

/// Servers shared by every test in one test binary.
struct Servers {
    nats_url: String,
    admin_database_url: String,
    _containers: Option<(
        ContainerAsync<nats::Nats>,
        ContainerAsync<postgres::Postgres>,
    )>,
}

static SERVERS: OnceCell<Servers> = OnceCell::const_new();

async fn servers() -> &'static Servers {
    SERVERS
        .get_or_init(|| async {
            match (std::env::var(NATS_URL_VAR), std::env::var(DATABASE_URL_VAR)) {
                (Ok(nats_url), Ok(admin_database_url)) => Servers {
                    nats_url,
                    admin_database_url,
                    _containers: None,
                },
                _ => start_containers().await,
            }
        })
        .await
}

async fn start_containers() -> Servers {
    let hint = format!(
        "no Docker engine for testcontainers; set {NATS_URL_VAR} and {DATABASE_URL_VAR} \
         to running servers (`just test` does)"
    );
    let nats = nats::Nats::default()
        .with_cmd(&nats::NatsServerCmd::default().with_jetstream())
        .start()
        .await
        .expect(&hint);
    let postgres = postgres::Postgres::default()
        .with_tag("16-alpine")
        .start()
        .await
        .expect(&hint);
    let nats_url = format!(
        "nats://{}:{}",
        nats.get_host().await.expect(&hint),
        nats.get_host_port_ipv4(4222).await.expect(&hint)
    );
    let admin_database_url = format!(
        "postgres://postgres:postgres@{}:{}/postgres",
        postgres.get_host().await.expect(&hint),
        postgres.get_host_port_ipv4(5432).await.expect(&hint)
    );
    Servers {
        nats_url,
        admin_database_url,
        _containers: Some((nats, postgres)),
    }
}

/// One test's slice of NATS and Postgres.
pub struct TestEnv {
    pub nats: NatsConfig,
    pub database: DatabaseConfig,
    admin_database_url: String,
    database_name: String,
}

/// A projector running in this process on a test's NATS and database.
pub struct Projector {
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Projector {
    /// Stops it; panics if it had failed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("the projector task")
            .expect("the projector");
    }
}

impl TestEnv {
    /// Starts a projector on this environment.
    pub fn start_projector(&self) -> Projector {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(courier_projector::run(
            courier_projector::ProjectorConfig {
                nats: self.nats.clone(),
                database: self.database.clone(),
            },
            shutdown.clone(),
        ));
        Projector { shutdown, task }
    }

    pub async fn new() -> TestEnv {
        TestEnv::on_nats(None).await
    }

    /// A test environment on a NATS server of the test's own (one it may
    /// stop and restart; see [`nats_server::NatsServer`]).
    pub async fn with_nats(nats_url: &str) -> TestEnv {
        TestEnv::on_nats(Some(nats_url.to_owned())).await
    }

    async fn on_nats(nats_url: Option<String>) -> TestEnv {
        // Logs of the services under test, shown for failing tests
        // (`RUST_LOG=courier_sender=debug just test`).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let servers = servers().await;
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let prefix: Prefix = format!("t{id}").parse().expect("valid prefix");
        let database_name = format!("courier_test_{id}");
        let (admin, connection) =
            tokio_postgres::connect(&servers.admin_database_url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to {DATABASE_URL_VAR}: {e}"));
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("CREATE DATABASE {database_name}"))
            .await
            .expect("creating the test database");
        let mut database_url: tokio_postgres::Config = servers
            .admin_database_url
            .parse()
            .expect("a valid database URL");
        database_url.dbname(&database_name);
        TestEnv {
            nats: NatsConfig {
                nats_url: nats_url.unwrap_or_else(|| servers.nats_url.clone()),
                nats_creds: None,
                prefix,
                stream_replicas: 1,
            },
            database: DatabaseConfig {
                database_url,
                pool_size: 8,
            },
            admin_database_url: servers.admin_database_url.clone(),
            database_name,
        }
    }

    /// The environment a service process needs to join this test: its NATS
    /// prefix, its database, and a metrics port of its own.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let config = &self.database.database_url;
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        };
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let database_url = format!(
            "postgres://{}{password}@{host}:{}/{}",
            config.get_user().unwrap_or("postgres"),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().expect("a test database"),
        );
        vec![
            ("NATS_URL", self.nats.nats_url.clone()),
            ("COURIER_NATS_PREFIX", self.nats.prefix.to_string()),
            ("DATABASE_URL", database_url),
            ("METRICS_ADDR", "127.0.0.1:0".into()),
            ("RUST_LOG", "warn".into()),
        ]
    }

    pub fn topology(&self) -> Topology {
        Topology::new(self.nats.prefix.clone(), self.nats.stream_replicas)
    }

    pub async fn nats_client(&self) -> async_nats::Client {
        async_nats::connect(self.nats.servers())
            .await
            .expect("connecting to the test NATS server")
    }

    /// A JetStream context with the topology in place.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let js = async_nats::jetstream::new(self.nats_client().await);
        self.topology()
            .ensure(&js)
            .await
            .expect("creating the topology");
        js
    }

    /// A pool on this test's database, schema applied.
    pub async fn pool(&self) -> deadpool_postgres::Pool {
        let pool = courier_core::db::pool(&self.database).expect("a pool");
        courier_core::db::migrate(&pool)
            .await
            .expect("migrating the test database");
        pool
    }

    /// A fresh, empty database on the same server (for replay tests).
    pub async fn another_database(&self, suffix: &str) -> DatabaseConfig {
        let name = format!("{}_{suffix}", self.database_name);
        let (admin, connection) =
            tokio_postgres::connect(&self.admin_database_url, tokio_postgres::NoTls)
                .await
                .expect("connecting to the admin database");
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a database");
        let mut database_url = self.database.database_url.clone();
        database_url.dbname(&name);
        DatabaseConfig {
            database_url,
            pool_size: 8,
        }
    }
}

impl Drop for TestEnv {
    /// Deletes the test's streams and databases. Drop cannot be async, so
    /// the clean-up runs on a runtime of its own in a plain thread.
    fn drop(&mut self) {
        let nats_url = self.nats.nats_url.clone();
        let topology = self.topology();
        let admin_url = self.admin_database_url.clone();
        let database_name = self.database_name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for clean-up");
            runtime.block_on(async move {
                if let Ok(client) =
                    async_nats::connect(nats_url.split(',').collect::<Vec<_>>()).await
                {
                    use futures::StreamExt as _;
                    let js = async_nats::jetstream::new(client);
                    // Every stream and bucket of the prefix, whichever the
                    // test made: a shared server otherwise gathers
                    // thousands over repeated runs.
                    let owned: Vec<String> = js
                        .stream_names()
                        .filter_map(|name| async { name.ok() })
                        .filter(|name| std::future::ready(topology.owns_stream(name)))
                        .collect()
                        .await;
                    for stream in owned {
                        let _ = js.delete_stream(stream).await;
                    }
                }
                if let Ok((admin, connection)) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let databases = admin
                        .query(
                            "SELECT datname FROM pg_database WHERE datname LIKE $1",
                            &[&format!("{database_name}%")],
                        )
                        .await
                        .unwrap_or_default();
                    for row in databases {
                        let name: String = row.get(0);
                        let _ = admin
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// How many messages `stream` holds on `subject` (wildcards allowed).
pub async fn messages_on(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
) -> usize {
    use futures::TryStreamExt as _;
    let counts: Vec<(String, usize)> = js
        .get_stream(stream)
        .await
        .expect("the stream")
        .info_with_subjects(subject)
        .await
        .expect("subject counts")
        .try_collect()
        .await
        .expect("subject counts");
    counts.into_iter().map(|(_, count)| count).sum()
}

/// Polls `condition` until it returns `Some`, failing the test with `what`
/// after `deadline`. The way tests wait: on a condition, never on a sleep.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A read model and campaign helpers the tests of several crates share.
pub mod campaigns;
pub mod nats_server;
pub mod otlp;
pub mod process;
pub mod read_model;

/// Makes the test's database refuse connections and drops the open ones,
/// as if Postgres went down, until [`TestEnv::restore_postgres`]. Other
/// tests' databases on the same server are untouched.
impl TestEnv {
    pub async fn cut_postgres(&self) {
        self.admin(&[
            &format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                self.database_name
            ),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.database_name
            ),
        ])
        .await;
    }

    pub async fn restore_postgres(&self) {
        self.admin(&[&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.database_name
        )])
        .await;
    }

    async fn admin(&self, statements: &[&str]) {
        let (admin, connection) =
            tokio_postgres::connect(&self.admin_database_url, tokio_postgres::NoTls)
                .await
                .expect("connecting to the admin database");
        tokio::spawn(connection);
        for statement in statements {
            admin.batch_execute(statement).await.expect(statement);
        }
    }
}
