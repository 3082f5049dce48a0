//! The whole read model as text, for tests that compare two of them: a
//! replay into an empty database, a rebuild, a message applied twice.

use courier_projector::rebuild::READ_MODEL;

/// Every row of every table the projector owns, as `table: {json}`, in a
/// stable order. Fails while the schema is not there yet (a replay's
/// database before its projector migrated it).
pub async fn dump(client: &tokio_postgres::Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut rows = Vec::new();
    for table in READ_MODEL {
        // `parked_at` is when the projector parked a message: the one time
        // that comes from the clock, not from an event, so no replay
        // repeats it.
        let query = format!("SELECT (to_jsonb(t) - 'parked_at')::text FROM {table} t ORDER BY 1");
        for row in client.query(&query, &[]).await? {
            rows.push(format!("{table}: {}", row.get::<_, String>(0)));
        }
    }
    Ok(rows)
}

/// Replays the streams of `env` into an empty database with a projector of
/// its own and asserts it ends identical to what `client` reads.
pub async fn assert_replays_identically(
    env: &crate::TestEnv,
    client: &tokio_postgres::Client,
    deadline: std::time::Duration,
) {
    let original = dump(client).await.expect("the read model");
    let replay_database = env.another_database("replay").await;
    let replay_pool = courier_core::db::pool(&replay_database).expect("a pool");
    let replay = tokio::spawn(courier_projector::run(
        courier_projector::ProjectorConfig {
            nats: env.nats.clone(),
            database: replay_database,
        },
        tokio_util::sync::CancellationToken::new(),
    ));
    let replayed = crate::wait_until("replay caught up", deadline, || async {
        let client = replay_pool.get().await.ok()?;
        dump(&client).await.ok().filter(|rows| *rows == original)
    })
    .await;
    assert_eq!(replayed, original);
    replay.abort();
}
