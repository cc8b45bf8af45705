//! Opening the database: pool limits, SQLite pragmas, and what "reachable" means.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use crate::ServiceError;

/// How to reach the database and how many connections to keep.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// `sqlite://file.db?mode=rwc` or `postgres://user@host/db`; the scheme picks the backend.
    pub url: String,
    pub max_connections: u32,
    /// How long a request may wait for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
}

/// Opens a pool. On SQLite the journal is WAL (readers never wait for the writer), writes
/// wait up to five seconds for the lock, and foreign keys are enforced.
///
/// # Errors
/// The database cannot be reached or the URL is malformed.
pub async fn connect(options: &DatabaseOptions) -> Result<DatabaseConnection, DbErr> {
    let mut connect = ConnectOptions::new(options.url.clone());
    connect
        .max_connections(options.max_connections)
        .min_connections(1)
        .connect_timeout(options.acquire_timeout)
        .acquire_timeout(options.acquire_timeout)
        // A pool ping before every checkout costs a round trip per request; a dead
        // connection instead fails its statement and is dropped.
        .test_before_acquire(false)
        .sqlx_logging(false)
        // A statement running this long is stuck behind a lock or the server is overwhelmed:
        // give the client a 503 rather than hold its request open.
        .map_sqlx_postgres_opts(|postgres| postgres.options([("statement_timeout", "15s")]))
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(connect).await
}

/// Checks that the database answers a trivial statement.
///
/// # Errors
/// [`ServiceError::Unavailable`] when it does not.
pub async fn check(db: &DatabaseConnection) -> Result<(), ServiceError> {
    db.execute_unprepared("SELECT 1").await?;
    Ok(())
}

/// How many connections the pool holds, and how many of them are in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub in_use: u32,
}

/// The pool's current usage, for metrics.
pub fn pool_usage(db: &DatabaseConnection) -> PoolUsage {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    PoolUsage {
        size,
        in_use: size.saturating_sub(idle),
    }
}
