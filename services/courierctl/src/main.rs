//! courierctl: the operator's command line. Every change it makes goes
//! through events, never around them.

use std::path::PathBuf;

use anyhow::Context;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use courier_core::audience::{self, Tagging};
use courier_core::commands::{Begin, CampaignCommands, Change, NewCampaign};
use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{AudienceFilter, CampaignOptions, Variant};
use courier_core::schedule;
use courier_core::startup;
use courier_core::telemetry::{self, TelemetryConfig};
use courier_core::topology::DEFAULT_BOT;
use courierctl::operations;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    version,
    about = "courierctl: operate courier (campaigns, users, the read model)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The bot whose users, audiences and campaigns a command is about: its
    /// id from `bots list`. 0 is the default bot, TELEGRAM_BOT_TOKEN's.
    #[arg(long, global = true, value_name = "BOT_ID", default_value_t = DEFAULT_BOT)]
    bot: i64,
    #[command(flatten)]
    nats: NatsConfig,
    #[command(flatten)]
    database: DatabaseConfig,
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
    /// The bots this deployment serves, their tokens sealed with
    /// COURIER_TOKEN_KEY.
    #[command(subcommand)]
    Bots(BotsCommand),
    /// Count who an audience filter reaches now, as a campaign would.
    Audience {
        /// The filter (see `campaign start --audience`).
        #[arg(value_parser = courierctl::audience_filter)]
        filter: AudienceFilter,
    },
    /// Messages the projector could not apply.
    #[command(subcommand)]
    Parked(ParkedCommand),
    /// Empty the read model and replay every stream into it (stop the
    /// projectors first).
    Rebuild,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Create and start a text campaign; prints its id.
    Start {
        /// Who receives it, as a filter of space-separated terms: lang:ru,en
        /// (any of), tag:a,b (any of), +tag:a,b (all of), -tag:a,b (none
        /// of), source:a,b (the /start deep link), joined:2026-01-01..2026-03-31
        /// (either end may be left out), active:30d; or all. Live users who
        /// have not opted out, always. Example: 'lang:ru tag:vip -tag:churned active:30d'.
        #[arg(long, value_parser = courierctl::audience_filter)]
        audience: AudienceFilter,
        /// The message text (plain; at most 4096 characters).
        #[arg(long)]
        text: String,
        /// The text users of one language get instead, as LANGUAGE=TEXT
        /// (e.g. --variant 'ru=Привет'); repeat for each language.
        #[arg(long = "variant", value_parser = courierctl::variant)]
        variants: Vec<Variant>,
        /// Send without sound.
        #[arg(long)]
        silent: bool,
        /// Forbid forwarding and saving.
        #[arg(long)]
        protect: bool,
        /// Use the paid broadcast lane (allow_paid_broadcast).
        #[arg(long)]
        paid: bool,
        /// Put an Unsubscribe button under the message (and each variant):
        /// a press opts the user out of broadcasts.
        #[arg(long)]
        unsubscribe_button: bool,
        /// Telegram user id recorded as the creator.
        #[arg(long, default_value_t = 0)]
        created_by: i64,
        /// Start later rather than now: in 45m, in 2h, 18:30, tomorrow
        /// 10:00, 2026-12-24 09:00 (in --tz), or RFC 3339 with an offset.
        /// NATS holds the timer; `campaign reschedule` moves it, `campaign
        /// cancel` drops it.
        #[arg(long)]
        at: Option<String>,
        /// The time zone --at is written in (IANA, e.g. Europe/Moscow).
        #[arg(long, default_value = "UTC", value_parser = courierctl::time_zone)]
        tz: Tz,
    },
    /// Every event of the campaign: who did what, and when (the audit trail).
    History { campaign: Uuid },
    /// Move a scheduled campaign's start to another time.
    Reschedule {
        campaign: Uuid,
        /// As for `campaign start --at`.
        #[arg(long)]
        at: String,
        #[arg(long, default_value = "UTC", value_parser = courierctl::time_zone)]
        tz: Tz,
    },
    /// The most recent campaigns.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One campaign, with its most common failure reasons.
    Show { campaign: Uuid },
    /// How it went: outcomes by kind (and failures by reason); the same
    /// picture the bot sends with --png, one row per recipient with --csv.
    Report {
        campaign: Uuid,
        /// Write one CSV row per recipient to stdout (user_id, outcome,
        /// reason, message_id, time), streamed: fine for millions.
        #[arg(long)]
        csv: bool,
        /// Write the report's picture (PNG) to this file.
        #[arg(long, value_name = "FILE")]
        png: Option<std::path::PathBuf>,
    },
    /// Correct a campaign that started: recipients not sent yet get the new
    /// text, and every message delivered is edited to it (at the token's
    /// free rate). The text replaces the message's text or caption; its
    /// buttons and file stay.
    Edit {
        campaign: Uuid,
        /// The corrected text (plain), for the default version.
        #[arg(long)]
        text: Option<String>,
        /// A language's version corrected, as LANGUAGE=TEXT; repeat for each.
        #[arg(long = "variant", value_parser = courierctl::variant)]
        variants: Vec<Variant>,
    },
    /// Delete every delivered message of the campaign (cancelling it first
    /// if it still sends). Telegram lets a bot delete its messages only
    /// within 48 hours of sending; older ones stay, and are counted.
    Recall { campaign: Uuid },
    /// Stop sending a campaign until it is resumed.
    Pause {
        campaign: Uuid,
        /// Shown to admins.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Continue a paused campaign.
    Resume { campaign: Uuid },
    /// Stop a campaign for good; recipients without an outcome are cancelled.
    Cancel { campaign: Uuid },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Register users from a CSV file with columns user_id,language and
    /// optionally chat_id, tags (separated by spaces or ';'), source,
    /// first_name, last_name, username.
    Import { file: PathBuf },
    /// Put tags on a user.
    Tag { user: i64, tags: Vec<String> },
    /// Take tags off a user.
    Untag { user: i64, tags: Vec<String> },
}

#[derive(Subcommand)]
enum BotsCommand {
    /// Add a bot, or replace its token: the token is read from FILE (or
    /// standard input with -, the default), checked with getMe, sealed.
    Add {
        #[arg(long = "token-file", default_value = "-")]
        token_file: PathBuf,
        #[command(flatten)]
        access: courierctl::bots::Access,
    },
    /// List the bots.
    List,
    /// Say for each bot whether its sealed token opens and Telegram takes it.
    Check {
        #[command(flatten)]
        access: courierctl::bots::Access,
    },
    /// Seal every bot's token again under COURIER_TOKEN_KEY, opening those
    /// sealed with the key before it, COURIER_TOKEN_KEY_PREVIOUS: rotating
    /// the key. Run the services with both keys first; unset the previous
    /// one after this.
    Rekey {
        #[command(flatten)]
        keys: courier_core::config::TokenKeyConfig,
    },
    /// Remove a bot: its sealed token is deleted.
    Remove { bot: i64 },
    /// Set who owns an added bot: they broadcast through it and grant its
    /// admins in Telegram (the default bot's owners are OWNER_IDS). The
    /// list replaces the one before; none leaves the bot without owners.
    Owners { bot: i64, owners: Vec<i64> },
    /// Set the languages an added bot offers its users, in its order
    /// (`ru`, `en`): with one, users are not asked to choose and a
    /// broadcast asks for no other version; a new user whose app speaks
    /// another gets the first. The default bot's are BOT_LANGUAGES.
    Languages {
        bot: i64,
        #[arg(required = true)]
        languages: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ParkedCommand {
    /// List parked messages.
    List,
    /// Publish a parked message again, as it was first published, and
    /// unpark it (it stays parked if JetStream drops the copy as a
    /// duplicate: retry after the 2-minute duplicate window).
    Retry { stream: String, seq: i64 },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = telemetry::init(&cli.telemetry, "courierctl")?;
    let shutdown = courier_core::shutdown::on_signal();
    let Some(nats) = startup::nats(&cli.nats, "courierctl", &shutdown).await? else {
        return Ok(());
    };
    let commands = CampaignCommands::new(nats.js.clone(), nats.topology.clone()).await?;
    let pool = || async {
        startup::postgres(&cli.database, &shutdown)
            .await?
            .ok_or_else(|| anyhow::anyhow!("interrupted while waiting for Postgres"))
    };
    // A bot named by --bot must be added (`bots` commands name their bot
    // otherwise); the default one always is.
    let bot = cli.bot;
    if bot != DEFAULT_BOT && !matches!(cli.command, Command::Bots(_)) {
        courierctl::bots::ensure_added(&pool().await?, bot).await?;
    }
    match cli.command {
        Command::Campaign(CampaignCommand::Start {
            audience,
            text,
            variants,
            silent,
            protect,
            paid,
            unsubscribe_button,
            created_by,
            at,
            tz,
        }) => {
            let begin = match at {
                Some(at) => Begin::At(schedule::parse_start(&at, tz, chrono::Utc::now())?),
                None => Begin::Now,
            };
            let content = courierctl::text_content(&text).map_err(anyhow::Error::msg)?;
            let (content, variants) = match unsubscribe_button {
                true => audience::with_unsubscribe_buttons(content, variants),
                false => (content, variants),
            };
            let size = operations::audience(&pool().await?, bot, &audience).await?;
            eprintln!("{size}");
            if size.recipients == 0 {
                anyhow::bail!("nothing started: the audience matches nobody now");
            }
            let id = commands
                .create_and_begin(
                    NewCampaign {
                        bot_id: bot,
                        id: uuid::Uuid::now_v7(),
                        created_by,
                        audience,
                        content,
                        variants,
                        options: CampaignOptions {
                            disable_notification: silent,
                            protect_content: protect,
                            paid_broadcast: paid,
                        },
                        title: String::new(),
                    },
                    begin,
                )
                .await?;
            if let Begin::At(at) = begin {
                eprintln!(
                    "scheduled for {}",
                    at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
                );
            }
            println!("{id}");
        }
        Command::Campaign(CampaignCommand::Reschedule { campaign, at, tz }) => {
            let at = schedule::parse_start(&at, tz, chrono::Utc::now())?;
            let status = commands.reschedule(campaign, at, 0).await?;
            println!(
                "{campaign} is {status}, for {}",
                at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
            );
        }
        Command::Campaign(CampaignCommand::List { limit }) => {
            print!(
                "{}",
                operations::list_campaigns(&pool().await?, limit).await?
            );
        }
        Command::Campaign(CampaignCommand::Show { campaign }) => {
            print!(
                "{}",
                operations::show_campaign(&pool().await?, campaign).await?
            );
        }
        Command::Campaign(CampaignCommand::History { campaign }) => {
            for event in commands.history(campaign).await? {
                println!("{}", courierctl::history_line(&event));
            }
        }
        Command::Campaign(CampaignCommand::Report { campaign, csv, png }) => {
            operations::report(&pool().await?, campaign, csv, png.as_deref()).await?;
        }
        Command::Campaign(CampaignCommand::Edit {
            campaign,
            text,
            variants,
        }) => {
            let (current, _) = commands.revision(campaign).await?;
            let (content, variants) = courierctl::corrected(&current, text.as_deref(), variants)
                .map_err(anyhow::Error::msg)?;
            let revision = commands.edit(campaign, 0, content, variants).await?;
            println!(
                "{campaign} is at version {}: its delivered messages are being edited",
                revision + 1
            );
        }
        Command::Campaign(CampaignCommand::Recall { campaign }) => {
            commands.recall(campaign, 0).await?;
            println!(
                "{campaign} is recalled: its delivered messages are being deleted \
                 (those sent within 48 hours; Telegram keeps older ones)"
            );
        }
        Command::Campaign(CampaignCommand::Pause { campaign, reason }) => {
            let status = commands
                .change(campaign, Change::Pause { reason }, 0)
                .await?;
            println!("{campaign} is {status}");
        }
        Command::Campaign(CampaignCommand::Resume { campaign }) => {
            let status = commands.change(campaign, Change::Resume, 0).await?;
            println!("{campaign} is {status}");
        }
        Command::Campaign(CampaignCommand::Cancel { campaign }) => {
            let status = commands.change(campaign, Change::Cancel, 0).await?;
            println!("{campaign} is {status}");
        }
        Command::Users(UsersCommand::Import { file }) => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let users = courierctl::users::parse(input)
                .with_context(|| format!("in {}", file.display()))?;
            let publisher = EventPublisher::new(nats.js.clone(), nats.topology.clone());
            courierctl::users::publish(&publisher, bot, &users).await?;
            println!("{}", courierctl::users::summary(&users));
        }
        Command::Users(UsersCommand::Tag { user, tags }) => {
            let publisher = EventPublisher::new(nats.js.clone(), nats.topology.clone());
            let tags = courierctl::users::tag(&publisher, bot, user, &tags, Tagging::Put).await?;
            println!("tagged {user}: {}", tags.join(", "));
        }
        Command::Users(UsersCommand::Untag { user, tags }) => {
            let publisher = EventPublisher::new(nats.js.clone(), nats.topology.clone());
            let tags =
                courierctl::users::tag(&publisher, bot, user, &tags, Tagging::TakeOff).await?;
            println!("took {} off {user}", tags.join(", "));
        }
        Command::Bots(BotsCommand::Add { token_file, access }) => {
            let token = if token_file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the token")?
            } else {
                std::fs::read_to_string(&token_file)
                    .with_context(|| format!("reading {}", token_file.display()))?
            };
            let bots = courierctl::bots::Bots::new(&nats).await?;
            let (me, added) = bots.add(&access, &token).await?;
            let what = match added {
                courierctl::bots::Added::New => "added",
                courierctl::bots::Added::TokenReplaced => "token replaced",
                courierctl::bots::Added::Unchanged => "already added with this token",
            };
            println!("{} @{}: {what}", me.id, me.username);
        }
        Command::Bots(BotsCommand::List) => {
            print!("{}", courierctl::bots::list(&pool().await?).await?);
        }
        Command::Bots(BotsCommand::Check { access }) => {
            let bots = courierctl::bots::Bots::new(&nats).await?;
            print!("{}", bots.check(&pool().await?, &access).await?);
        }
        Command::Bots(BotsCommand::Rekey { keys }) => {
            let bots = courierctl::bots::Bots::new(&nats).await?;
            print!("{}", bots.rekey(&keys).await?);
        }
        Command::Bots(BotsCommand::Remove { bot }) => {
            courierctl::bots::Bots::new(&nats)
                .await?
                .remove(bot)
                .await?;
            println!("{bot} removed: its token is deleted");
        }
        Command::Bots(BotsCommand::Owners { bot, owners }) => {
            courierctl::bots::Bots::new(&nats)
                .await?
                .set_owners(bot, &owners)
                .await?;
            println!("{bot}'s owners set");
        }
        Command::Bots(BotsCommand::Languages { bot, languages }) => {
            courierctl::bots::Bots::new(&nats)
                .await?
                .set_languages(bot, &languages)
                .await?;
            println!("{bot}'s languages set");
        }
        Command::Audience { filter } => {
            let report = operations::audience(&pool().await?, bot, &filter).await?;
            println!("{report}");
        }
        Command::Parked(ParkedCommand::List) => {
            print!("{}", operations::list_parked(&pool().await?).await?);
        }
        Command::Parked(ParkedCommand::Retry { stream, seq }) => {
            let new_seq = operations::retry_parked(&pool().await?, &nats, &stream, seq).await?;
            println!("published again as {stream} #{new_seq}");
        }
        Command::Rebuild => {
            let rebuilt = courier_projector::rebuild::rebuild(nats, &pool().await?).await?;
            println!(
                "read model rebuilt from {} events and {} outcomes",
                rebuilt.events, rebuilt.outcomes
            );
        }
    }
    Ok(())
}
