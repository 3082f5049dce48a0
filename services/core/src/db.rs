//! The Postgres connection pool and schema migrations.
//!
//! Migrations live in `migrations/` at the repository root, are embedded in
//! every service binary and applied at start-up under an advisory lock, so
//! replicas starting together do not race (refinery takes no lock itself).

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary, fixed: the advisory lock key taken while migrating.
const MIGRATION_LOCK: i64 = 0x0063_6f75_7269_6572; // "courier"

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("postgres pool setup: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("migrating the schema: {0}")]
    Migration(#[from] refinery::Error),
}

/// A pool for `config`. Connections are opened lazily, on first use.
pub fn pool(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let manager = Manager::from_config(
        config.database_url.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(usize::from(config.pool_size))
        .build()?)
}

/// Applies pending migrations; safe to call from every replica at once.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = embedded::migrations::runner()
        .run_async(&mut **client)
        .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = result?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}
