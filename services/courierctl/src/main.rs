//! courierctl: the operator's command line. Every change it makes goes
//! through events, never around them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::config::NatsConfig;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, CampaignOptions};
use courier_core::telemetry::{self, TelemetryConfig};

#[derive(Parser)]
#[command(version, about = "courierctl: operate courier (campaigns, users)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    nats: NatsConfig,
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Create and start a text campaign; prints its id.
    Start {
        /// Who receives it: live users whose language is ru, en, or all.
        #[arg(long, value_parser = ["ru", "en", "all"])]
        audience: String,
        /// The message text (plain; at most 4096 characters).
        #[arg(long)]
        text: String,
        /// Send without sound.
        #[arg(long)]
        silent: bool,
        /// Forbid forwarding and saving.
        #[arg(long)]
        protect: bool,
        /// Use the paid broadcast lane (allow_paid_broadcast).
        #[arg(long)]
        paid: bool,
        /// Telegram user id recorded as the creator.
        #[arg(long, default_value_t = 0)]
        created_by: i64,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Register users from a CSV file with columns user_id,language[,chat_id].
    Import { file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.telemetry, "courierctl")?;
    let shutdown = courier_core::shutdown::on_signal();
    let Some(nats) = courier_core::startup::nats(&cli.nats, "courierctl", &shutdown).await? else {
        return Ok(());
    };
    let publisher = EventPublisher::new(nats.js.clone(), nats.topology.clone());
    let commands = CampaignCommands::new(nats.js, nats.topology).await?;
    match cli.command {
        Command::Campaign(CampaignCommand::Start {
            audience,
            text,
            silent,
            protect,
            paid,
            created_by,
        }) => {
            let content = courierctl::text_content(&text).map_err(anyhow::Error::msg)?;
            let id = commands
                .create_and_start(NewCampaign {
                    created_by,
                    audience: Audience::from_code(&audience).expect("clap checked the audience"),
                    content,
                    options: CampaignOptions {
                        disable_notification: silent,
                        protect_content: protect,
                        paid_broadcast: paid,
                    },
                })
                .await?;
            println!("{id}");
        }
        Command::Users(UsersCommand::Import { file }) => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let users = courierctl::users::parse(input)
                .with_context(|| format!("in {}", file.display()))?;
            let count = courierctl::users::publish(&publisher, users).await?;
            println!("registered {count} users");
        }
    }
    Ok(())
}
