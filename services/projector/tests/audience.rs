//! The audience filter's SQL against a plain reading of the same filter:
//! 10,000 generated users in Postgres, random filters, the same answer.
//! What the projector fixes at a start and what admins are shown as a count
//! both come from `courier_core::audience::Recipients`, so both are checked.

use chrono::{DateTime, Days, Utc};
use courier_core::audience::{self, Recipients};
use courier_core::proto::v1::AudienceFilter;
use courier_core::topology::DEFAULT_BOT;
use courier_testing::TestEnv;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: i64 = 10_000;
const TAGS: [&str; 5] = ["vip", "gold", "churned", "paid", "beta"];
const SOURCES: [&str; 3] = ["ad", "blog", "friend"];
const LANGUAGES: [&str; 2] = ["ru", "en"];

/// A user as the reference reads it.
#[derive(Debug)]
struct User {
    language: &'static str,
    tags: Vec<&'static str>,
    source: Option<&'static str>,
    registered_at: DateTime<Utc>,
    last_active_at: Option<DateTime<Utc>>,
    is_alive: bool,
    opted_out: bool,
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-07-01T12:00:00Z")
        .expect("a time")
        .to_utc()
}

fn generate(rng: &mut StdRng) -> User {
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("a time")
        .to_utc();
    User {
        language: LANGUAGES[rng.random_range(0..LANGUAGES.len())],
        tags: TAGS.into_iter().filter(|_| rng.random_bool(0.3)).collect(),
        source: rng
            .random_bool(0.6)
            .then(|| SOURCES[rng.random_range(0..SOURCES.len())]),
        registered_at: start + chrono::Duration::minutes(rng.random_range(0..180 * 24 * 60)),
        last_active_at: rng
            .random_bool(0.8)
            .then(|| now() - chrono::Duration::minutes(rng.random_range(0..120 * 24 * 60))),
        is_alive: rng.random_bool(0.9),
        opted_out: rng.random_bool(0.1),
    }
}

/// The filter read plainly, one user at a time: the reference the SQL
/// must agree with.
fn matches(filter: &AudienceFilter, user: &User, now: DateTime<Utc>) -> bool {
    let has = |tag: &String| user.tags.iter().any(|t| t == tag);
    let day_start = |day: i64| DateTime::<Utc>::UNIX_EPOCH + Days::new(day as u64);
    user.is_alive
        && !user.opted_out
        && (filter.languages.is_empty() || filter.languages.iter().any(|l| l == user.language))
        && (filter.tags_any.is_empty() || filter.tags_any.iter().any(has))
        && filter.tags_all.iter().all(has)
        && !filter.tags_none.iter().any(has)
        && (filter.sources.is_empty()
            || user
                .source
                .is_some_and(|s| filter.sources.iter().any(|f| f == s)))
        && (filter.joined_from_day == 0 || user.registered_at >= day_start(filter.joined_from_day))
        && (filter.joined_to_day == 0 || user.registered_at < day_start(filter.joined_to_day + 1))
        && (filter.active_within_days == 0
            || user
                .last_active_at
                .is_some_and(|at| at >= now - Days::new(filter.active_within_days.into())))
}

fn subset(values: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(values, 0..=2)
        .prop_map(|picked| picked.into_iter().map(String::from).collect())
}

/// Filters over the generated values, plus a tag nobody has.
fn filters() -> impl Strategy<Value = AudienceFilter> {
    const TAGS_AND_UNKNOWN: [&str; 6] = ["vip", "gold", "churned", "paid", "beta", "nobody"];
    let days = 20_454i64..20_636; // 2026-01-01 to 2026-07-01
    (
        subset(&LANGUAGES),
        subset(&TAGS_AND_UNKNOWN),
        subset(&TAGS_AND_UNKNOWN),
        subset(&TAGS_AND_UNKNOWN),
        subset(&SOURCES),
        prop_oneof![Just(0), days.clone()],
        prop_oneof![Just(0), days],
        prop_oneof![Just(0u32), Just(7), Just(30), Just(90), 1u32..200],
    )
        .prop_map(
            |(languages, tags_any, tags_all, tags_none, sources, from, to, active)| {
                AudienceFilter {
                    languages,
                    tags_any,
                    tags_all,
                    tags_none,
                    sources,
                    joined_from_day: from,
                    joined_to_day: to,
                    active_within_days: active,
                }
            },
        )
}

async fn insert(client: &tokio_postgres::Client, users: &[User]) {
    let ids: Vec<i64> = (1..=USERS).collect();
    let column = |f: fn(&User) -> String| users.iter().map(f).collect::<Vec<_>>();
    let languages = column(|u| u.language.to_owned());
    let tags = column(|u| u.tags.join(","));
    let sources: Vec<Option<&str>> = users.iter().map(|u| u.source).collect();
    let registered: Vec<DateTime<Utc>> = users.iter().map(|u| u.registered_at).collect();
    let active: Vec<Option<DateTime<Utc>>> = users.iter().map(|u| u.last_active_at).collect();
    let alive: Vec<bool> = users.iter().map(|u| u.is_alive).collect();
    let opted_out: Vec<bool> = users.iter().map(|u| u.opted_out).collect();
    client
        .execute(
            "INSERT INTO users (user_id, chat_id, language, tags, source, registered_at, updated_at,
                 last_active_at, is_alive, opted_out)
             SELECT id, id, language, string_to_array(tags, ',')::text[], source, registered,
                 registered, active, alive, opted_out
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                 $6::timestamptz[], $7::bool[], $8::bool[])
                 AS u(id, language, tags, source, registered, active, alive, opted_out)",
            &[
                &ids, &languages, &tags, &sources, &registered, &active, &alive, &opted_out,
            ],
        )
        .await
        .expect("inserting the users");
}

#[test]
fn random_filters_pick_exactly_what_a_plain_reading_picks() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (_env, pool) = runtime.block_on(async {
        let env = TestEnv::new().await;
        let pool = env.pool().await;
        (env, pool)
    });
    let client = runtime.block_on(pool.get()).expect("a connection");
    let mut rng = StdRng::seed_from_u64(14);
    let users: Vec<User> = (0..USERS).map(|_| generate(&mut rng)).collect();
    runtime.block_on(insert(&client, &users));

    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let nonempty = std::cell::Cell::new(0);
    runner
        .run(&filters(), |filter| {
            let expected = users.iter().filter(|u| matches(&filter, u, now())).count() as i64;
            let recipients = Recipients::new(DEFAULT_BOT, &filter, now());
            let (condition, params) = recipients.condition(1);
            let (fixed, shown) = runtime.block_on(async {
                let fixed: i64 = client
                    .query_one(
                        &format!("SELECT count(*) FROM users WHERE {condition}"),
                        &params,
                    )
                    .await
                    .expect("counting")
                    .get(0);
                let shown = recipients.size(&client).await.expect("sizing");
                (fixed, shown.recipients)
            });
            let text = audience::to_text(&filter);
            prop_assert_eq!(fixed, expected, "fixed at a start: {}", text);
            prop_assert_eq!(shown, expected, "shown to an admin: {}", text);
            // The text form names the same filter, or refuses an empty range.
            let reread = audience::parse(&text);
            if filter.joined_to_day != 0 && filter.joined_from_day > filter.joined_to_day {
                prop_assert!(reread.is_err(), "{}", text);
            } else {
                prop_assert_eq!(reread.ok(), Some(filter.clone()));
            }
            nonempty.set(nonempty.get() + i32::from(expected > 0));
            Ok(())
        })
        .expect("SQL and the plain reading agree");
    // Not vacuous: many filters matched somebody.
    let nonempty = nonempty.get();
    assert!(nonempty > 50, "only {nonempty} filters matched anyone");
}
