//! courierctl as an operator runs it: the binary against real NATS and
//! Postgres.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::process::{Command, Output};
use std::time::Duration;

use courier_core::commands::CampaignCommands;
use courier_core::event::EventPublisher;
use courier_core::proto::v1::{AdminGranted, Audience, Event, Language, event::Payload};
use courier_testing::campaigns::{
    register_users, start_text_campaign, wait_for_status, wait_for_users,
};
use courier_testing::read_model::dump;
use courier_testing::{TestEnv, wait_until};
use prost::Message as _;

async fn courierctl(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_courierctl"));
    command.env_clear().envs(env.service_env()).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("running courierctl"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_replays_an_identical_read_model_and_refuses_while_a_projector_runs() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let population: Vec<_> = (1..=20).map(|id| (id, Language::Ru, id % 3 != 0)).collect();
    let publisher = EventPublisher::new(js.clone(), env.topology());
    register_users(&publisher, &population).await;
    let granted = Payload::AdminGranted(AdminGranted {
        user_id: 1,
        granted_by: 99,
        ..Default::default()
    });
    publisher.publish(&Event::new(granted)).await.unwrap();
    let commands = CampaignCommands::new(js, env.topology()).await.unwrap();
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 20, Duration::from_secs(30)).await;
    // Nobody speaks en: the campaign completes with no recipient.
    let campaign = start_text_campaign(&commands, Audience::En, "nobody").await;
    wait_for_status(&client, campaign, "completed", Duration::from_secs(30)).await;
    let running = start_text_campaign(&commands, Audience::Ru, "paused").await;
    wait_for_status(&client, running, "sending", Duration::from_secs(30)).await;

    let refused = courierctl(&env, &["rebuild"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop every courier-projector"));

    let paused = courierctl(
        &env,
        &[
            "campaign",
            "pause",
            &running.to_string(),
            "--reason",
            "checking",
        ],
    )
    .await;
    assert!(
        paused.status.success(),
        "{}",
        String::from_utf8_lossy(&paused.stderr)
    );
    wait_for_status(&client, running, "paused", Duration::from_secs(30)).await;
    let before = dump(&client).await.unwrap();
    assert!(
        before.iter().any(|row| row.starts_with("admins: ")),
        "{before:?}"
    );
    projector.stop().await;

    let rebuilt = courierctl(&env, &["rebuild"]).await;
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(dump(&pool.get().await.unwrap()).await.unwrap(), before);

    let listed = String::from_utf8(courierctl(&env, &["campaign", "list"]).await.stdout).unwrap();
    assert!(
        listed.contains(&format!("{campaign} completed")),
        "{listed}"
    );
    assert!(listed.contains(&format!("{running} paused")), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_outside_the_state_machine_are_refused() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let commands = CampaignCommands::new(js, env.topology()).await.unwrap();
    let campaign = start_text_campaign(&commands, Audience::All, "done soon").await;
    let cancelled = courierctl(&env, &["campaign", "cancel", &campaign.to_string()]).await;
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    let resumed = courierctl(&env, &["campaign", "resume", &campaign.to_string()]).await;
    assert!(!resumed.status.success());
    let error = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        error.contains("cannot resume a campaign that is cancelled"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn users_imported_from_a_csv_make_the_audience_of_a_campaign_started_from_the_cli() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("courierctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    // A user the good file lacks: had the bad file published anything, five users would show.
    std::fs::write(&bad, "user_id,language\n9,ru\n2,klingon\n").unwrap();
    let refused = courierctl(&env, &["users", "import", bad.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("line 3"), "{error}");
    let good = dir.join("users.csv");
    std::fs::write(
        &good,
        "user_id,language,tags,source\n1,ru,vip,ad\n2,ru,vip churned,\n3,en,vip,ad\n4,ru,,\n",
    )
    .unwrap();
    let imported = courierctl(&env, &["users", "import", good.to_str().unwrap()]).await;
    assert_eq!(
        String::from_utf8_lossy(&imported.stdout),
        "registered 4 users: 3 ru, 1 en; 4 tags\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    // The bad file published nothing: four users, not five.
    wait_for_users(&client, 4, Duration::from_secs(30)).await;
    // Tags arrive after their user's registration: wait for the last.
    wait_until("tags projected", Duration::from_secs(30), || async {
        let row = client
            .query_one("SELECT count(*) FROM users WHERE tags <> '{}'", &[])
            .await
            .ok()?;
        (row.get::<_, i64>(0) == 3).then_some(())
    })
    .await;
    let untagged = courierctl(&env, &["users", "untag", "3", "VIP"]).await;
    assert_eq!(
        String::from_utf8_lossy(&untagged.stdout),
        "took vip off 3\n"
    );
    // vip and not churned: users 1 and 3, then 1 alone once the untag is projected.
    wait_until("untag projected", Duration::from_secs(30), || async {
        let counted = courierctl(&env, &["audience", "tag:vip -tag:churned"]).await;
        (String::from_utf8_lossy(&counted.stdout) == "1 recipients now\n").then_some(())
    })
    .await;
    let typo = courierctl(&env, &["audience", "tag:vpi"]).await;
    assert_eq!(
        String::from_utf8_lossy(&typo.stdout),
        "0 recipients now; warning: no user has the tag(s) vpi\n"
    );
    let syntax = courierctl(&env, &["audience", "lang:ru tga:vip"]).await;
    assert!(!syntax.status.success());
    let error = String::from_utf8_lossy(&syntax.stderr);
    assert!(
        error.contains("lang:ru tga:vip\n        ^ \"tga\" is not a term"),
        "{error}"
    );
    let nobody = courierctl(
        &env,
        &[
            "campaign",
            "start",
            "--audience",
            "tag:vpi",
            "--text",
            "Привет",
        ],
    )
    .await;
    assert!(!nobody.status.success());
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("the audience matches nobody now"),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );
    let mut last = None;
    for (audience, size) in [("ru", 3), ("lang:ru,en source:ad", 2)] {
        let started = courierctl(
            &env,
            &[
                "campaign",
                "start",
                "--audience",
                audience,
                "--text",
                "Hi",
                "--variant",
                "ru=Привет",
                "--unsubscribe-button",
            ],
        )
        .await;
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        let id: uuid::Uuid = String::from_utf8(started.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let row = wait_for_status(&client, id, "sending", Duration::from_secs(30)).await;
        assert_eq!(row.audience_size, Some(size), "{audience}: {row:?}");
        last = Some(id);
    }
    // The last one: user 1 (ru) gets the ru version, user 3 (en) the default.
    let last = last.unwrap().to_string();
    let shown = courierctl(&env, &["campaign", "show", &last]).await;
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("version ru: 0/1 delivered\nversion default: 0/1 delivered"),
        "{shown}"
    );
    // --unsubscribe-button: the message ends with the button.
    let content: Vec<u8> = client
        .query_one(
            "SELECT content FROM campaigns WHERE campaign_id = $1",
            &[&last.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    let content = courier_core::proto::v1::Content::decode(content.as_slice()).unwrap();
    let rows = content.keyboard.unwrap().rows;
    let button = &rows.last().unwrap().buttons[0];
    assert_eq!(
        (button.text.as_str(), button.action.clone()),
        (
            "Unsubscribe",
            Some(courier_core::proto::v1::button::Action::CallbackData(
                courier_core::audience::UNSUBSCRIBE.into()
            ))
        )
    );
    projector.stop().await;
}

/// A message retried while the stream still remembers its id (the
/// 2-minute duplicate window) would be dropped by JetStream: courierctl
/// says so and the message stays parked, rather than unpark it for nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_inside_the_duplicate_window_keeps_the_message_parked() {
    use async_nats::jetstream::message::PublishMessage;
    use courier_core::proto::v1::{Delivered, DeliveryOutcome, delivery_outcome};
    use prost::Message as _;

    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let topology = env.topology();
    let campaign = uuid::Uuid::now_v7().to_string();
    // An outcome for a recipient of no campaign, as a sender publishes one.
    let outcome = DeliveryOutcome {
        campaign_id: campaign.clone(),
        user_id: 7,
        chat_id: 7,
        occurred_at_ms: 1,
        attempts: 1,
        amend: None,
        result: Some(delivery_outcome::Result::Delivered(Delivered {
            message_id: 1,
            revision: 0,
            ..Default::default()
        })),
    };
    js.send_publish(
        topology.outcome_subject(&campaign, 7),
        PublishMessage::build()
            .message_id(format!("{campaign}.7"))
            .payload(outcome.encode_to_vec().into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let projector = env.start_projector();
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    courier_testing::wait_until("the outcome parked", Duration::from_secs(30), || async {
        let row = client
            .query_opt("SELECT 1 FROM parked_messages", &[])
            .await
            .ok()?;
        row.map(|_| ())
    })
    .await;
    projector.stop().await;
    let outcomes = topology.outcomes_stream();
    let listed = courierctl(&env, &["parked", "list"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("outcome for a recipient of no started campaign"),
        "{listed}"
    );

    let retried = courierctl(&env, &["parked", "retry", &outcomes, "1"]).await;
    assert!(!retried.status.success());
    let error = String::from_utf8_lossy(&retried.stderr);
    assert!(
        error.contains("stays parked") && error.contains("duplicate of #1"),
        "{error}"
    );
    let still_parked: i64 = client
        .query_one("SELECT count(*) FROM parked_messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(still_parked, 1);

    let elsewhere = courierctl(&env, &["parked", "retry", "ELSEWHERE", "1"]).await;
    let error = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        error.contains("ELSEWHERE is not one of courier's streams"),
        "{error}"
    );
}

/// A user on two lines (ru on one, en on the other) refuses the file,
/// naming both lines, and so does a 10 MB field, quoted by its beginning
/// only; neither publishes anyone.
#[tokio::test(flavor = "multi_thread")]
async fn an_import_with_a_user_on_two_lines_or_a_huge_field_is_refused_briefly() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("courierctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let twice = dir.join("twice.csv");
    std::fs::write(&twice, "user_id,language\n1,ru\n2,en\n1,en\n").unwrap();
    let huge = dir.join("huge.csv");
    let field = "x".repeat(10 * 1024 * 1024);
    std::fs::write(&huge, format!("user_id,language\n1,ru\n2,{field}\n")).unwrap();

    let refused = courierctl(&env, &["users", "import", twice.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("line 4: user 1 is on line 2 too"), "{error}");
    let refused = courierctl(&env, &["users", "import", huge.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("line 3: language \"xxxx"), "{error}");
    assert!(
        error.contains("(10485760 bytes) is not ru or en"),
        "{error}"
    );
    assert!(error.len() < 1024, "{} bytes on stderr", error.len());
    std::fs::remove_dir_all(&dir).unwrap();

    let js = env.jetstream().await;
    let mut events = js.get_stream(env.topology().events_stream()).await.unwrap();
    assert_eq!(
        events.info().await.unwrap().state.messages,
        0,
        "nothing published"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_and_a_recall_from_the_cli_are_checked_and_recorded() {
    let env = TestEnv::new().await;
    let js = env.jetstream().await;
    let commands = CampaignCommands::new(js, env.topology()).await.unwrap();
    let campaign = start_text_campaign(&commands, Audience::All, "Sale tomorow").await;
    let id = campaign.to_string();
    let run = |args: Vec<&'static str>| {
        let (env, id) = (&env, id.clone());
        async move {
            let mut args: Vec<&str> = args;
            args.insert(2, &id);
            let output = courierctl(env, &args).await;
            let said = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            (output.status.success(), said)
        }
    };

    let (ok, said) = run(vec!["campaign", "edit"]).await;
    assert!(!ok && said.contains("give the corrected --text"), "{said}");
    let (ok, said) = run(vec!["campaign", "edit", "--text", "Sale tomorow"]).await;
    assert!(!ok && said.contains("the same as the one sent"), "{said}");
    let (ok, said) = run(vec!["campaign", "edit", "--variant", "ru=Распродажа"]).await;
    assert!(!ok && said.contains("has no ru version"), "{said}");
    let (ok, said) = run(vec!["campaign", "edit", "--text", "Sale tomorrow"]).await;
    assert!(ok && said.contains("is at version 2"), "{said}");

    // A recall of a campaign still sending cancels it first; nothing is
    // edited after it.
    let (ok, said) = run(vec!["campaign", "recall"]).await;
    assert!(ok && said.contains("is recalled"), "{said}");
    let (ok, said) = run(vec!["campaign", "edit", "--text", "Sale, really"]).await;
    assert!(!ok && said.contains("was recalled"), "{said}");
    let (ok, said) = run(vec!["campaign", "recall"]).await;
    assert!(!ok && said.contains("was recalled"), "{said}");

    let (_, history) = run(vec!["campaign", "history"]).await;
    let events: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        events,
        ["created", "started", "edited", "cancelled", "recalled"],
        "{history}"
    );
    assert!(history.contains("to version 2"), "{history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_scheduled_from_the_cli_is_listed_moved_and_cancelled() {
    let env = TestEnv::new().await;
    let projector = env.start_projector();
    let publisher = EventPublisher::new(env.jetstream().await, env.topology());
    register_users(&publisher, &[(1, Language::En, true)]).await;
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 1, Duration::from_secs(30)).await;
    let start = |at: &'static str| {
        let env = &env;
        async move {
            let args = [
                "campaign",
                "start",
                "--audience",
                "all",
                "--text",
                "Later",
                "--at",
                at,
                "--tz",
                "Europe/Moscow",
            ];
            courierctl(env, &args).await
        }
    };

    let unreadable = start("soonish").await;
    assert!(!unreadable.status.success());
    let error = String::from_utf8_lossy(&unreadable.stderr);
    assert!(
        error.contains("\"soonish\" is not a time courier understands")
            && error.contains("tomorrow 10:00"),
        "{error}"
    );
    let passed = start("2020-01-01 09:00").await;
    let error = String::from_utf8_lossy(&passed.stderr);
    assert!(
        error.contains("2020-01-01 09:00 MSK has passed already"),
        "{error}"
    );

    let scheduled = start("2099-01-01 09:00").await;
    let said = String::from_utf8_lossy(&scheduled.stderr);
    assert!(
        said.contains("scheduled for 2099-01-01 09:00 MSK"),
        "{said}"
    );
    let id = String::from_utf8(scheduled.stdout)
        .unwrap()
        .trim()
        .to_owned();
    wait_for_status(
        &client,
        id.parse().unwrap(),
        "scheduled",
        Duration::from_secs(30),
    )
    .await;
    let listed = String::from_utf8(courierctl(&env, &["campaign", "list"]).await.stdout).unwrap();
    let line = listed.lines().find(|line| line.starts_with(&id)).unwrap();
    assert!(
        line.contains("scheduled") && line.ends_with("2099-01-01 06:00:00 UTC"),
        "{line}"
    );

    let moved = courierctl(
        &env,
        &[
            "campaign",
            "reschedule",
            &id,
            "--at",
            "2099-02-01T10:00:00Z",
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&moved.stdout).trim(),
        format!("{id} is scheduled, for 2099-02-01 10:00 UTC")
    );
    let cancelled = courierctl(&env, &["campaign", "cancel", &id]).await;
    assert_eq!(
        String::from_utf8_lossy(&cancelled.stdout).trim(),
        format!("{id} is cancelled")
    );
    let timers = courier_testing::messages_on(
        &env.jetstream().await,
        &env.topology().schedules_stream(),
        &env.topology().schedule_subject(&id),
    )
    .await;
    assert_eq!(timers, 0, "the cancelled campaign's timer is gone");

    // The audit trail: who did what, and when.
    let history = courierctl(&env, &["campaign", "history", &id]).await;
    let history = String::from_utf8(history.stdout).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    for (line, said) in lines.iter().zip([
        "created           by courier, audience all",
        "scheduled         by courier, to start 2099-01-01 06:00:00 UTC",
        "scheduled         by courier, to start 2099-02-01 10:00:00 UTC",
        "cancelled         by courier",
    ]) {
        assert!(line.ends_with(said), "{line:?} ends with {said:?}");
    }
    projector.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_streams_one_csv_row_per_delivery_and_draws_its_picture() {
    use courier_core::proto::v1::{Delivered, Failed, NotAlive, delivery_outcome::Result};
    use courier_testing::campaigns::publish_outcome;
    let env = TestEnv::new().await;
    let projector = env.start_projector();
    let js = env.jetstream().await;
    let publisher = EventPublisher::new(js.clone(), env.topology());
    let users: Vec<_> = (1..=30).map(|id| (id, Language::En, true)).collect();
    register_users(&publisher, &users).await;
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    wait_for_users(&client, 30, Duration::from_secs(30)).await;
    let commands = CampaignCommands::new(js.clone(), env.topology())
        .await
        .unwrap();
    let campaign = start_text_campaign(&commands, Audience::All, "How did it go?").await;
    wait_for_status(&client, campaign, "sending", Duration::from_secs(30)).await;
    let started = chrono::Utc::now().timestamp_millis();
    for user in 1..=30 {
        let result = match user {
            1..=26 => Result::Delivered(Delivered {
                message_id: 1000 + user,
                revision: 0,
                ..Default::default()
            }),
            27 | 28 => Result::NotAlive(NotAlive {
                reason: "Forbidden: bot was blocked by the user".into(),
            }),
            _ => Result::Failed(Failed {
                reason: "Bad Request: chat not found".into(),
                ..Default::default()
            }),
        };
        publish_outcome(
            &js,
            &env.topology(),
            campaign,
            user,
            started + user * 100,
            result,
        )
        .await;
    }
    wait_for_status(&client, campaign, "completed", Duration::from_secs(30)).await;

    let id = campaign.to_string();
    let picture = std::env::temp_dir().join(format!("report-{id}.png"));
    let summary = courierctl(
        &env,
        &[
            "campaign",
            "report",
            &id,
            "--png",
            picture.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        summary.status.success(),
        "{}",
        String::from_utf8_lossy(&summary.stderr)
    );
    let summary = String::from_utf8(summary.stdout).unwrap();
    for line in [
        "campaign {id}: completed, 30 recipients",
        "       26  delivered",
        "        2  not alive",
        "        2  failed: Bad Request: chat not found",
    ] {
        let line = line.replace("{id}", &id);
        assert!(summary.contains(&line), "{line:?} in {summary}");
    }
    let png = std::fs::read(&picture).unwrap();
    std::fs::remove_file(&picture).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(
        (side(16), side(20)),
        (1200, 760),
        "a PNG of the report's size"
    );

    let csv = courierctl(&env, &["campaign", "report", &id, "--csv"]).await;
    let csv = String::from_utf8(csv.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(courier_core::report::CSV_HEADER));
    let rows: Vec<String> = lines.map(str::to_owned).collect();
    let expected: Vec<String> = client
        .query(
            "SELECT user_id, status, COALESCE(reason, ''), message_id, finished_at
             FROM deliveries WHERE campaign_id = $1 ORDER BY user_id",
            &[&campaign],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let reason: String = row.get(2);
            let reason = match reason.contains([',', '"']) {
                true => format!("\"{}\"", reason.replace('"', "\"\"")),
                false => reason,
            };
            let at: chrono::DateTime<chrono::Utc> = row.get(4);
            format!(
                "{},{},{reason},{},{}",
                row.get::<_, i64>(0),
                row.get::<_, &str>(1),
                row.get::<_, Option<i64>>(3)
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            )
        })
        .collect();
    assert_eq!(rows.len(), 30);
    assert_eq!(rows, expected, "one row per delivery, as the table has it");
    projector.stop().await;
}
