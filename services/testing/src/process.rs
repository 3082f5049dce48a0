//! A courier service as a real process, for tests that SIGKILL and restart
//! one. The binaries come from the workspace's target directory (a
//! workspace test run builds them; `cargo build --bins` otherwise).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::TestEnv;

pub struct ServiceProcess {
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// `target/<profile>/<name>`, next to the running test's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary under target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is not built: run `cargo build --bins`",
        binary.display()
    );
    binary
}

impl ServiceProcess {
    /// Starts service `name` joined to `env`, with `extra` variables.
    pub fn start(name: &str, env: &TestEnv, extra: &[(&str, &str)]) -> ServiceProcess {
        let mut variables: Vec<(String, String)> = env
            .service_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        variables.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut process = ServiceProcess {
            binary: binary(name),
            env: variables,
            child: None,
        };
        process.restart();
        process
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(&self.binary)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
