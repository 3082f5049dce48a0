//! Measurement 7: audiences at scale (targets from the audience issue).
//!
//! Counting and fixing an audience of N users with a three-part filter
//! (`lang:ru tag:vip active:30d`) must each take under 2 s at 1,000,000
//! users, and replaying N users' events into an empty read model under
//! 60 s.
//!
//! Setup for the first two: N users inserted straight into the read model
//! (half ru; every 10th tagged vip, every 7th churned; last active 0 to 89
//! days ago), then `ANALYZE`. Counting is what the bot and courierctl show
//! an admin (`Recipients::size`, the same condition the projector uses),
//! timed in this process. Fixing is a campaign with that filter created and
//! started through events while a `courier-projector` process runs, timed
//! from the create to its `audience_size` in the read model.
//!
//! Replay: N `UserRegistered` events (with names, every 5th with a source)
//! and a `UserTagged` for every 10th user are published; a fresh
//! projector process on an empty database is timed from its start to the
//! last user's tag in the read model.

use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use courier_core::audience::{self, Recipients};
use courier_core::commands::{CampaignCommands, NewCampaign};
use courier_core::proto::v1::{Event, Language, Names, UserRegistered, UserTagged, event::Payload};
use courier_testing::campaigns::campaign_row;
use prost::Message as _;

use crate::fixtures;
use crate::process::{Launcher, ensure_running};
use crate::report::{Section, Table, median, runs, thousands};

/// The three-part filter measured.
const FILTER: &str = "lang:ru tag:vip active:30d";

/// The targets the issue sets.
const COUNT_TARGET: Duration = Duration::from_secs(2);
const REPLAY_TARGET: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Options {
    pub users: u64,
    pub runs: usize,
}

pub async fn run(launcher: &Launcher, options: &Options) -> anyhow::Result<Section> {
    let (count, fix, recipients) = count_and_fix(launcher, options).await?;
    let replay = replay(launcher, options).await?;
    let seconds = |d: &Duration| format!("{:.2} s", d.as_secs_f64());
    let as_secs = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
    let mut table = Table::new(&["", "median", "runs", "target"]);
    let (count_s, fix_s) = (as_secs(&count), as_secs(&fix));
    table.row([
        format!(
            "count `{FILTER}` ({} recipients)",
            thousands(recipients as f64)
        ),
        format!("{:.3} s", median(&count_s)),
        runs(&count_s, |v| format!("{v:.3}")),
        format!("< {}", seconds(&COUNT_TARGET)),
    ]);
    table.row([
        "fix it at a start (create → audience_size)".to_owned(),
        format!("{:.3} s", median(&fix_s)),
        runs(&fix_s, |v| format!("{v:.3}")),
        format!("< {}", seconds(&COUNT_TARGET)),
    ]);
    table.row([
        format!("replay {} users' events", thousands(options.users as f64)),
        seconds(&replay.took),
        format!(
            "{}/s",
            thousands(replay.events as f64 / replay.took.as_secs_f64())
        ),
        format!("< {}", seconds(&REPLAY_TARGET)),
    ]);
    let mut section = Section::new(
        format!("7. Audiences: {} users", thousands(options.users as f64)),
        format!(
            "Counting and fixing the audience of `{FILTER}` over {n} users in Postgres \
             (median of {runs} runs each), and replaying {events} user events ({n} \
             registrations, a tag for every 10th user) into an empty read model with one \
             projector process (one run; the rate is events per second).",
            n = thousands(options.users as f64),
            runs = options.runs,
            events = thousands(replay.events as f64),
        ),
    );
    section.tables.push(table);
    for (what, took, target) in [
        ("Counting", median(&count_s), COUNT_TARGET),
        ("Fixing", median(&fix_s), COUNT_TARGET),
        ("Replaying", replay.took.as_secs_f64(), REPLAY_TARGET),
    ] {
        if took >= target.as_secs_f64() {
            section.notes.push(format!(
                "{what} missed its target: {took:.2} s ≥ {}",
                seconds(&target)
            ));
        }
    }
    Ok(section)
}

/// Times counting and fixing; also answers the audience's size.
async fn count_and_fix(
    launcher: &Launcher,
    options: &Options,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, i64)> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    client
        .execute(
            "INSERT INTO users (user_id, chat_id, language, tags, source, is_alive, registered_at,
                 updated_at, last_active_at)
             SELECT g, g, CASE WHEN g % 2 = 0 THEN 'ru' ELSE 'en' END,
                 array_remove(ARRAY[CASE WHEN g % 10 = 0 THEN 'vip' END,
                                    CASE WHEN g % 7 = 0 THEN 'churned' END], NULL),
                 CASE WHEN g % 5 = 0 THEN 'ad' END, TRUE, now(), now(),
                 now() - make_interval(days => (g % 90)::int)
             FROM generate_series(1::BIGINT, $1::BIGINT) g",
            &[&(options.users as i64)],
        )
        .await?;
    client.batch_execute("ANALYZE users").await?;
    let filter = audience::parse(FILTER)?;

    let mut counts = Vec::new();
    let mut recipients = 0;
    for _ in 0..options.runs {
        let started = Instant::now();
        recipients = Recipients::new(courier_core::topology::DEFAULT_BOT, &filter, Utc::now())
            .size(&client)
            .await?
            .recipients;
        counts.push(started.elapsed());
    }

    let projector = [launcher.spawn("courier-projector", "audience-projector", &env, &[])?];
    let commands = CampaignCommands::new(js, topology).await?;
    let mut fixes = Vec::new();
    for _ in 0..options.runs {
        let started = Instant::now();
        let campaign = commands
            .create_and_start(NewCampaign {
                bot_id: courier_core::topology::DEFAULT_BOT,
                id: uuid::Uuid::now_v7(),
                created_by: 1,
                audience: filter.clone(),
                content: fixtures::text_content(),
                variants: Vec::new(),
                options: fixtures::options(false),
                title: String::new(),
            })
            .await?;
        let size = fixtures::wait_for("the audience fixed", Duration::from_secs(120), || async {
            ensure_running(&projector)?;
            Ok(campaign_row(&client, campaign)
                .await
                .and_then(|row| row.audience_size))
        })
        .await?;
        fixes.push(started.elapsed());
        anyhow::ensure!(
            i64::from(size) == recipients,
            "fixed {size} recipients, counted {recipients}"
        );
    }
    Ok((counts, fixes, recipients))
}

struct Replay {
    events: u64,
    took: Duration,
}

async fn replay(launcher: &Launcher, options: &Options) -> anyhow::Result<Replay> {
    let fixtures::RunEnv {
        env,
        client,
        js,
        topology,
    } = fixtures::RunEnv::new().await?;
    let users = options.users;
    let tagged = users / 10;
    let event = |payload: Payload| {
        let event = Event::new(payload);
        let subject = event
            .payload
            .as_ref()
            .map(|p| p.subject(&topology))
            .unwrap_or_default();
        let publish = PublishMessage::build()
            .message_id(event.event_id.clone())
            .payload(event.encode_to_vec().into());
        (subject, publish)
    };
    eprintln!("publishing {users} registrations and {tagged} tags");
    fixtures::publish_windowed(&js, users + tagged, 2000, |i| {
        if i < users {
            let user_id = i as i64 + 1;
            event(Payload::UserRegistered(UserRegistered {
                user_id,
                chat_id: user_id,
                language: if user_id % 2 == 0 {
                    Language::Ru
                } else {
                    Language::En
                }
                .into(),
                language_chosen: true,
                source: if user_id % 5 == 0 {
                    "ad".into()
                } else {
                    String::new()
                },
                names: Some(Names {
                    first_name: format!("User {user_id}"),
                    ..Names::default()
                }),
                ..Default::default()
            }))
        } else {
            event(Payload::UserTagged(UserTagged {
                user_id: ((i - users) * 10 + 10) as i64,
                tag: "vip".into(),
                tagged_by: 0,
                ..Default::default()
            }))
        }
    })
    .await?;

    let started = Instant::now();
    let projector = [launcher.spawn("courier-projector", "replay-projector", &env, &[])?];
    let last_tagged = (tagged * 10) as i64;
    fixtures::wait_for("every user event replayed", REPLAY_TARGET * 5, || async {
        ensure_running(&projector)?;
        let row = client
            .query_opt(
                "SELECT 1 FROM users WHERE user_id = $1 AND 'vip' = ANY(tags)",
                &[&last_tagged],
            )
            .await?;
        Ok(row.map(|_| ()))
    })
    .await?;
    let took = started.elapsed();
    let count: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await?
        .get(0);
    anyhow::ensure!(count as u64 == users, "{count} users replayed of {users}");
    Ok(Replay {
        events: users + tagged,
        took,
    })
}
