//! `courierctl bots` as an operator runs it: the binary against real NATS,
//! Postgres and a projector, with the Telegram sandbox answering getMe.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of a test crate are test code; allow-unwrap-in-tests sees only #[test] fns"
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use courier_testing::read_model::{assert_replays_identically, dump};
use courier_testing::{Projector, TestEnv, wait_until};
use telegram_sandbox::{Sandbox, SandboxConfig};

/// Bot 111 and a second token of it (a rotation), and bot 222.
const FIRST: &str = "111:AAF-first_secret_0123456789";
const ROTATED: &str = "111:AAF-rotated_secret_9876543210";
const OTHER: &str = "222:AAG-other_secret_0123456789";
/// Telegram does not know it (revoked, say).
const REVOKED: &str = "333:AAH-revoked_secret_0123456789";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ANOTHER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Runs courierctl with `stdin` on its standard input, with `key` as
/// COURIER_TOKEN_KEY.
async fn courierctl(
    env: &TestEnv,
    sandbox: &Sandbox,
    key: &str,
    args: &[&str],
    stdin: &str,
) -> Output {
    rotating(env, sandbox, key, None, args, stdin).await
}

/// The same, with `previous` as COURIER_TOKEN_KEY_PREVIOUS.
async fn rotating(
    env: &TestEnv,
    sandbox: &Sandbox,
    key: &str,
    previous: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_courierctl"));
    command
        .env_clear()
        .envs(env.service_env())
        .env("TELEGRAM_API_URL", sandbox.url())
        .env("COURIER_TOKEN_KEY", key)
        .envs(previous.map(|previous| ("COURIER_TOKEN_KEY_PREVIOUS", previous)))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("running courierctl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every message `stream` holds, headers and payload, end to end.
async fn stored_bytes(js: &async_nats::jetstream::Context, stream: &str) -> Vec<u8> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut bytes = Vec::new();
    for seq in 1..=last {
        // Deleted and purged messages are gone: nothing to read there.
        if let Ok(message) = stream.get_raw_message(seq).await {
            bytes.extend_from_slice(format!("{:?}", message.headers).as_bytes());
            bytes.extend_from_slice(&message.payload);
        }
    }
    bytes
}

fn secret(token: &str) -> &str {
    token.split_once(':').unwrap().1
}

/// A test's world: NATS and Postgres with a projector, and a sandbox that
/// takes `tokens`.
async fn world(tokens: &[&str]) -> (TestEnv, Sandbox, Projector, deadpool_postgres::Pool) {
    let env = TestEnv::new().await;
    let sandbox = Sandbox::start(SandboxConfig {
        tokens: tokens.iter().map(|&token| token.to_owned()).collect(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let projector = env.start_projector();
    let pool = env.pool().await;
    (env, sandbox, projector, pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_are_added_rotated_checked_and_removed_and_no_token_is_kept_in_clear() {
    let (env, sandbox, projector, pool) = world(&[FIRST, ROTATED, OTHER]).await;
    let client = pool.get().await.unwrap();
    let printed = std::sync::Mutex::new(String::new());
    let run = &async |key: &str, args: &[&str], stdin: &str| {
        let output = courierctl(&env, &sandbox, key, args, stdin).await;
        printed.lock().unwrap().push_str(&text(&output));
        output
    };

    let added = run(KEY, &["bots", "add"], FIRST).await;
    assert!(added.status.success(), "{}", text(&added));
    assert!(text(&added).contains("111 @"), "{}", text(&added));
    assert!(text(&added).contains(": added"), "{}", text(&added));
    let again = run(KEY, &["bots", "add"], &format!("{FIRST}\n")).await;
    assert!(
        text(&again).contains("already added with this token"),
        "{}",
        text(&again)
    );
    assert!(run(KEY, &["bots", "add"], OTHER).await.status.success());
    let rotated = run(KEY, &["bots", "add"], ROTATED).await;
    assert!(
        text(&rotated).contains("token replaced"),
        "{}",
        text(&rotated)
    );

    // Refused before anything is kept: a token Telegram does not take, and
    // something that is not a token at all (not echoed back).
    let revoked = run(KEY, &["bots", "add"], REVOKED).await;
    assert!(!revoked.status.success());
    assert!(
        text(&revoked).contains("Telegram does not take the token of bot 333"),
        "{}",
        text(&revoked)
    );
    assert!(
        text(&revoked).contains("nothing was added"),
        "{}",
        text(&revoked)
    );
    let malformed = run(KEY, &["bots", "add"], "not-a-token-secret").await;
    assert!(!malformed.status.success());
    assert!(
        text(&malformed).contains("not a bot token"),
        "{}",
        text(&malformed)
    );
    assert!(!text(&malformed).contains("not-a-token-secret"));
    let bad_key = run("c2hvcnQ=", &["bots", "add"], FIRST).await;
    assert!(
        text(&bad_key).contains("COURIER_TOKEN_KEY is malformed"),
        "{}",
        text(&bad_key)
    );

    let listed = wait_until(
        "both bots listed",
        Duration::from_secs(30),
        move || async move {
            let out = run(KEY, &["bots", "list"], "").await;
            let out = text(&out);
            (out.contains("111  @") && out.contains("222  @") && out.contains("token replaced"))
                .then_some(out)
        },
    )
    .await;
    assert!(!listed.contains("333"), "{listed}");
    let checked = text(&run(KEY, &["bots", "check"], "").await);
    assert_eq!(checked.matches("token works").count(), 2, "{checked}");
    let wrong_key = text(&run(ANOTHER_KEY, &["bots", "check"], "").await);
    assert_eq!(
        wrong_key
            .matches("does not open with COURIER_TOKEN_KEY")
            .count(),
        2,
        "{wrong_key}"
    );

    let removed = run(KEY, &["bots", "remove", "222"], "").await;
    assert!(removed.status.success(), "{}", text(&removed));
    let unknown = run(KEY, &["bots", "remove", "222"], "").await;
    assert!(
        text(&unknown).contains("not in this deployment"),
        "{}",
        text(&unknown)
    );
    wait_until(
        "bot 222 gone from the list",
        Duration::from_secs(30),
        move || async move {
            let out = text(&run(KEY, &["bots", "list"], "").await);
            (out.contains("111  @") && !out.contains("222  @")).then_some(())
        },
    )
    .await;

    // No token in clear anywhere: events, the bots bucket's stream, the
    // read model, or anything courierctl printed.
    let js = env.jetstream().await;
    let topology = env.topology();
    let mut stored = Vec::new();
    for stream in [
        topology.events_stream(),
        format!("KV_{}", topology.bots_bucket()),
    ] {
        stored.extend(stored_bytes(&js, &stream).await);
    }
    let read_model = dump(&client).await.unwrap().join("\n");
    for token in [FIRST, ROTATED, OTHER, REVOKED] {
        let part = secret(token).as_bytes();
        assert!(
            !stored.windows(part.len()).any(|w| w == part),
            "{token} stored"
        );
        assert!(
            !read_model.contains(secret(token)),
            "{token} in the read model"
        );
        assert!(
            !printed.lock().unwrap().contains(secret(token)),
            "{token} printed"
        );
    }

    // The bots are events like any other: a replay rebuilds them.
    assert_replays_identically(&env, &client, Duration::from_secs(30)).await;
    projector.stop().await;
}

/// The token key is rotated without re-adding a bot: `bots rekey`, given
/// the new key and the old one as previous, seals every token again under
/// the new key alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_key_is_rotated_by_sealing_every_token_again() {
    let (env, sandbox, projector, _pool) = world(&[FIRST, OTHER]).await;
    for token in [FIRST, OTHER] {
        let added = courierctl(&env, &sandbox, KEY, &["bots", "add"], token).await;
        assert!(added.status.success(), "{}", text(&added));
    }
    wait_until("both bots listed", Duration::from_secs(30), || async {
        let out = text(&courierctl(&env, &sandbox, KEY, &["bots", "list"], "").await);
        (out.contains("111  @") && out.contains("222  @")).then_some(())
    })
    .await;
    let check = async |key: &str, previous: Option<&str>| {
        text(&rotating(&env, &sandbox, key, previous, &["bots", "check"], "").await)
    };
    // While rotating, both keys open the tokens.
    assert_eq!(
        check(ANOTHER_KEY, Some(KEY))
            .await
            .matches("token works")
            .count(),
        2
    );

    let rekey = |previous| {
        rotating(
            &env,
            &sandbox,
            ANOTHER_KEY,
            previous,
            &["bots", "rekey"],
            "",
        )
    };
    let rekeyed = text(&rekey(Some(KEY)).await);
    assert!(
        rekeyed.contains("2 sealed again under COURIER_TOKEN_KEY, 0 under it already"),
        "{rekeyed}"
    );
    // The new key alone opens them now, the old one no longer.
    assert_eq!(
        check(ANOTHER_KEY, None)
            .await
            .matches("token works")
            .count(),
        2
    );
    let old = check(KEY, None).await;
    assert_eq!(old.matches("does not open").count(), 2, "{old}");
    let again = text(&rekey(None).await);
    assert!(
        again.contains("0 sealed again under COURIER_TOKEN_KEY, 2 under it already"),
        "{again}"
    );
    // A previous key alone is refused, naming what is missing.
    let mut lone = Command::new(env!("CARGO_BIN_EXE_courierctl"));
    let lone = lone
        .env_clear()
        .envs(env.service_env())
        .env("COURIER_TOKEN_KEY_PREVIOUS", KEY)
        .args(["bots", "rekey"])
        .output()
        .unwrap();
    assert!(!lone.status.success());
    assert!(
        text(&lone).contains("not provided:\n  --token-key <COURIER_TOKEN_KEY>"),
        "{}",
        text(&lone)
    );
    assert!(!text(&lone).contains(KEY), "{}", text(&lone));

    projector.stop().await;
}

/// `--bot` names whose users, audiences and campaigns a command is about:
/// users are per bot, and a bot must be added before it has any.
#[tokio::test(flavor = "multi_thread")]
async fn an_added_bots_users_audiences_and_campaigns_are_its_own() {
    let (env, sandbox, projector, pool) = world(&[OTHER]).await;
    let client = pool.get().await.unwrap();
    let dir = std::env::temp_dir().join(format!("courierctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ru_vip = dir.join("ru.csv");
    std::fs::write(&ru_vip, "user_id,language,tags\n1,ru,vip\n2,ru,\n").unwrap();
    let en = dir.join("en.csv");
    std::fs::write(&en, "user_id,language\n1,en\n").unwrap();
    let run = async |args: &[&str]| courierctl(&env, &sandbox, KEY, args, "").await;

    let refused = run(&["--bot", "222", "users", "import", ru_vip.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("bot 222 is not added"),
        "{}",
        text(&refused)
    );
    let added = courierctl(&env, &sandbox, KEY, &["bots", "add"], OTHER).await;
    assert!(added.status.success(), "{}", text(&added));
    wait_until("the bot projected", Duration::from_secs(30), || async {
        let listed = run(&["bots", "list"]).await;
        text(&listed).starts_with("222 ").then_some(())
    })
    .await;
    // Its owners: set, listed; the default bot's are OWNER_IDS, and an
    // unknown bot has none to set.
    let owned = run(&["bots", "owners", "222", "9101", "9102"]).await;
    assert!(owned.status.success(), "{}", text(&owned));
    for (bot, refusal) in [("0", "OWNER_IDS"), ("999", "not in this deployment")] {
        let refused = run(&["bots", "owners", bot, "5"]).await;
        assert!(!refused.status.success());
        assert!(text(&refused).contains(refusal), "{}", text(&refused));
    }
    // Its languages, likewise; an unknown one is named.
    let listed = run(&["bots", "list"]).await;
    assert!(
        text(&listed).contains(", every language"),
        "{}",
        text(&listed)
    );
    let spoken = run(&["bots", "languages", "222", "en"]).await;
    assert!(spoken.status.success(), "{}", text(&spoken));
    for (args, refusal) in [
        (["bots", "languages", "0", "en"], "BOT_LANGUAGES"),
        (
            ["bots", "languages", "222", "de"],
            r#"unknown language "de""#,
        ),
    ] {
        let refused = run(&args).await;
        assert!(!refused.status.success());
        assert!(text(&refused).contains(refusal), "{}", text(&refused));
    }
    wait_until(
        "the owners and languages projected",
        Duration::from_secs(30),
        || async {
            let listed = run(&["bots", "list"]).await;
            let listed = text(&listed);
            (listed.contains("owners 9101 9102") && listed.contains("languages en")).then_some(())
        },
    )
    .await;
    let imported = run(&["--bot", "222", "users", "import", ru_vip.to_str().unwrap()]).await;
    assert!(imported.status.success(), "{}", text(&imported));
    // User 1 of the default bot too, in another language, untagged.
    let imported = run(&["users", "import", en.to_str().unwrap()]).await;
    assert!(imported.status.success(), "{}", text(&imported));
    std::fs::remove_dir_all(&dir).unwrap();
    wait_until("tags projected", Duration::from_secs(30), || async {
        let row = client
            .query_one("SELECT count(*) FROM users WHERE tags <> '{}'", &[])
            .await
            .ok()?;
        (row.get::<_, i64>(0) == 1).then_some(())
    })
    .await;

    let of_bot = run(&["--bot", "222", "audience", "lang:ru tag:vip"]).await;
    assert_eq!(text(&of_bot), "1 recipients now\n");
    let of_default = run(&["audience", "tag:vip"]).await;
    assert_eq!(
        text(&of_default),
        "0 recipients now; warning: no user has the tag(s) vip\n"
    );
    let started = run(&[
        "campaign",
        "start",
        "--bot",
        "222",
        "--audience",
        "ru",
        "--text",
        "hi",
    ])
    .await;
    assert!(started.status.success(), "{}", text(&started));
    let id: uuid::Uuid = String::from_utf8_lossy(&started.stdout)
        .trim()
        .parse()
        .unwrap();
    let (bot, size) = wait_until("the start projected", Duration::from_secs(30), || async {
        let row = client
            .query_one(
                "SELECT bot_id, audience_size FROM campaigns WHERE campaign_id = $1",
                &[&id],
            )
            .await
            .ok()?;
        Some((row.get::<_, i64>(0), row.get::<_, Option<i32>>(1)?))
    })
    .await;
    assert_eq!((bot, size), (222, 2));
    projector.stop().await;
}
