//! nats-server processes of a test's own, on free loopback ports with their
//! own store directories, for tests that stop and restart NATS (as nats.rs's
//! own tests do): one server, or a cluster. The binary is
//! `COURIER_TEST_NATS_SERVER` (set by `scripts/test-services.sh`) or
//! `nats-server` on the PATH; it must be 2.10 or newer.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NATS_SERVER_VAR: &str = "COURIER_TEST_NATS_SERVER";

pub struct NatsServer {
    port: u16,
    store: PathBuf,
    /// Cluster flags, for a node of a cluster.
    cluster: Vec<String>,
    process: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn new_store() -> PathBuf {
    std::env::temp_dir().join(format!("courier-nats-{}", uuid::Uuid::new_v4().simple()))
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            store: new_store(),
            cluster: Vec::new(),
            process: None,
        };
        server.run();
        server
    }

    /// `size` nodes clustered on loopback, JetStream on each.
    pub fn cluster(size: usize) -> Vec<NatsServer> {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<NatsServer> = routes
            .iter()
            .enumerate()
            .map(|(i, route)| NatsServer {
                port: free_port(),
                store: new_store(),
                cluster: vec![
                    "--server_name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "courier".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    all_routes.clone(),
                ],
                process: None,
            })
            .collect();
        for node in &mut nodes {
            node.run();
        }
        nodes
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port and store: streams survive.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    fn run(&mut self) {
        let binary = std::env::var(NATS_SERVER_VAR).unwrap_or_else(|_| "nats-server".into());
        let process = Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.cluster)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (set {NATS_SERVER_VAR}): {e}"));
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
