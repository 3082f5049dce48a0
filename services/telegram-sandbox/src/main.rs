//! `telegram-sandbox`: the fake Bot API as a process, for local demos and out-of-process tests.

use clap::Parser;
use telegram_sandbox::{Sandbox, SandboxConfig};
use tracing_subscriber::EnvFilter;

/// A fake Telegram Bot API server. Point bots at http://ADDR (their token stays the same) and
/// steer the sandbox under http://ADDR/_sandbox.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: SandboxConfig,

    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&cli.log))
        .init();
    let sandbox = Sandbox::start(cli.config).await?;
    tracing::info!(url = %sandbox.url(), "telegram sandbox listening");
    stop_signal().await?;
    tracing::info!("stopping");
    sandbox.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one (how containers and CI stop a process).
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
