//! Opening the database: pool limits, SQLite pragmas, the connections page reads take on
//! PostgreSQL, running behind a transaction-mode pooler, and what "reachable" means.

mod connection;
mod options;
mod pages;
mod replicas;

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    RuntimeErr, SqliteTransactionMode, TransactionOptions, sqlx,
};
use tokio::sync::watch;

pub use self::{
    connection::Connection,
    options::{DatabaseOptions, PoolMode},
    replicas::ReplicaState,
};
use self::{
    options::{set_local_statement_timeout, with_session_settings},
    pages::PageConnections,
    replicas::Replicas,
};
use crate::{error::ServiceError, sql::ReadStatement};

/// The service's database: sea-orm's pool for every statement but the page reads, which
/// on PostgreSQL have connections of their own; and word of the writes made through it, for
/// the feed of live events.
///
/// Why two: sqlx's pool sends a `Sync` and waits for the answer each time a connection goes
/// back to it, a second round trip for a request that needs one statement (the README gives
/// what it costs the list endpoint). The page reads are
/// single read-only statements, so their pool may skip that check: a connection a read
/// gave up on half-way is dropped, and one the server closed is noticed by the next read,
/// which then asks again on a new one.
#[derive(Clone)]
pub struct Database {
    orm: Connection,
    pages: Option<PageConnections>,
    replicas: Option<Arc<Replicas>>,
    /// How many operations that may write have ended (wrapping).
    writes: Arc<watch::Sender<u64>>,
}

/// Held by an operation that may write; its drop, when the operation ends however it ends,
/// tells whoever watches the writes (the feed) to look.
pub(crate) struct Writing<'a>(&'a Database);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0
            .writes
            .send_modify(|writes| *writes = writes.wrapping_add(1));
    }
}

impl Database {
    /// Opens the pools; see [`connect`].
    ///
    /// # Errors
    /// The database cannot be reached or the URL is malformed.
    pub async fn open(options: &DatabaseOptions) -> Result<Self, DbErr> {
        let orm = connect(options).await?;
        let pages = match orm.get_database_backend() {
            DbBackend::Postgres => Some(PageConnections::new(options)?),
            _ => None,
        };
        let replicas = match &pages {
            _ if options.replica_urls.is_empty() => None,
            Some(primary) => Some(Replicas::new(&options.replica_urls, options, primary)?),
            None => {
                return Err(DbErr::Custom(
                    "read replicas need PostgreSQL (DATABASE_REPLICA_URL is set)".into(),
                ));
            }
        };
        Ok(Self {
            orm,
            pages,
            replicas,
            writes: Arc::new(watch::Sender::new(0)),
        })
    }

    /// sea-orm's connection pool, for every statement but the page reads.
    pub fn connection(&self) -> &Connection {
        &self.orm
    }

    pub fn backend(&self) -> DbBackend {
        self.orm.get_database_backend()
    }

    /// Marks an operation that may write, until the guard is dropped.
    pub(crate) fn writing(&self) -> Writing<'_> {
        Writing(self)
    }

    /// Changes after each operation that may have written ends.
    pub(crate) fn watch_writes(&self) -> watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// Runs a read-only statement of [`crate::sql`] and returns its rows: on a replica that
    /// has replayed every write committed before now, if there is one (see
    /// [`replicas`]), else on the primary.
    ///
    /// On SQLite it goes to sqlx's pool directly: sea-orm's own call boxes a large future,
    /// which each of the requests queued for one of the few connections would hold.
    pub(crate) async fn read(&self, statement: &ReadStatement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(primary) = &self.pages else {
            let rows = statement
                .to_sqlx()
                .fetch_all(self.orm.pool().get_sqlite_connection_pool())
                .await
                .map_err(statement_failed)?;
            return Ok(rows.into_iter().map(QueryResult::from).collect());
        };
        if let Some(replicas) = &self.replicas {
            let position = replicas::primary_position(primary).await?;
            if let Some(rows) = replicas.read(position, statement).await {
                return Ok(rows);
            }
        }
        primary.read(statement).await
    }

    /// The state of each replica of `DATABASE_REPLICA_URL`, in its order.
    pub fn replica_states(&self) -> Vec<ReplicaState> {
        self.replicas
            .as_ref()
            .map_or_else(Vec::new, |replicas| replicas.states())
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a transaction that reads before it writes would otherwise fail with
/// "database is locked" when another writer came first, instead of waiting its turn.
pub(crate) async fn begin_write(db: &Connection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// A statement's own failure, as sea-orm reports one.
fn statement_failed(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

/// Drops the statements sqlx prepared on the server connection a transaction-mode pooler
/// lent (another client's, under names this one will use), leaving the page reads' own
/// (see [`crate::sql::prepared`]).
const DROP_SQLX_STATEMENTS: &str = "DO $$ DECLARE statement text; BEGIN \
    FOR statement IN SELECT name FROM pg_prepared_statements WHERE name LIKE 'sqlx\\_s\\_%' \
    LOOP EXECUTE format('DEALLOCATE %I', statement); END LOOP; END $$";

/// Opens the pool requests use. On SQLite the journal is WAL (readers never wait for the
/// writer), writes wait up to five seconds for the lock, and foreign keys are enforced; on
/// PostgreSQL a statement running over [`DatabaseOptions::statement_timeout`] is cancelled.
///
/// # Errors
/// The database cannot be reached or the URL is malformed.
pub async fn connect(options: &DatabaseOptions) -> Result<Connection, DbErr> {
    connect_with(options, options.statement_timeout).await
}

/// Opens a pool for migrations and seeding: like [`connect`], but with no statement
/// timeout on PostgreSQL (a migration rewriting a large table, or building an index on it,
/// runs as long as it takes; the server's or the role's own default is overridden too).
///
/// # Errors
/// The database cannot be reached or the URL is malformed.
pub async fn connect_for_maintenance(options: &DatabaseOptions) -> Result<Connection, DbErr> {
    connect_with(options, Duration::ZERO).await
}

async fn connect_with(
    options: &DatabaseOptions,
    statement_timeout: Duration,
) -> Result<Connection, DbErr> {
    let url = options.url.clone();
    let pool_mode = options.pool_mode;
    let mut connect = ConnectOptions::new(options.url.clone());
    connect
        .max_connections(options.max_connections)
        // The second opens in the background while the first migrates, ready for the event
        // feed's first read: opening one in turn costs start-up a TLS handshake, which sqlx
        // 0.9 sends without TCP_NODELAY (two 40 ms waits for a delayed ACK on Linux).
        .min_connections(options.max_connections.min(2))
        .connect_timeout(options.acquire_timeout)
        .acquire_timeout(options.acquire_timeout)
        // A pool ping before every checkout costs a round trip per request; a dead
        // connection instead fails its statement and is dropped.
        .test_before_acquire(false)
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |postgres| {
            with_session_settings(postgres, &url, pool_mode, statement_timeout)
        })
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    let pool = sea_orm::Database::connect(connect).await?;
    Ok(match options.pool_mode {
        PoolMode::Transaction if pool.get_database_backend() == DbBackend::Postgres => {
            Connection::pooled(
                pool,
                format!(
                    "{DROP_SQLX_STATEMENTS}; {}",
                    set_local_statement_timeout(statement_timeout)
                ),
                options.acquire_timeout,
            )
        }
        _ => Connection::direct(pool),
    })
}

/// Checks that the database answers a trivial statement.
///
/// # Errors
/// [`ServiceError::Unavailable`] when it does not.
pub async fn check(db: &Database) -> Result<(), ServiceError> {
    db.orm.ping().await?;
    Ok(())
}

/// How many connections the pool holds, and how many of them are in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub in_use: u32,
}

/// The pools' current usage together, for metrics.
pub fn pool_usage(db: &Database) -> PoolUsage {
    let (orm_size, orm_idle) = match db.backend() {
        DbBackend::Postgres => {
            let pool = db.orm.pool().get_postgres_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
        _ => {
            let pool = db.orm.pool().get_sqlite_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
    };
    let (pages_size, pages_idle) = db.pages.as_ref().map_or((0, 0), PageConnections::usage);
    let size = orm_size + pages_size;
    let idle = orm_idle + pages_idle;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    PoolUsage {
        size: count(size),
        in_use: count(size.saturating_sub(idle)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::page::{self, Cut, PageQuery, PostFilter};

    /// Every request waiting for a page read holds this future, and every layer of the HTTP
    /// stack above it moves it; deadpool's checkout made it about 10 KB before its connecting
    /// and checking were boxed.
    #[test]
    fn a_page_read_is_a_small_future() {
        let pages = PageConnections::new(&DatabaseOptions {
            url: "postgres://nobody@127.0.0.1:1/none".into(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
            pool_mode: PoolMode::Session,
            replica_urls: Vec::new(),
        })
        .expect("the pool is built without connecting");
        let query = PageQuery {
            user_id: 1,
            session_id: 1,
            filter: PostFilter::Everything,
            limit: 10,
            skip: 0,
            after: None,
        };
        let owner = [entity::user::Column::Id];
        let owner = page::owner_columns(&owner);
        let statement = page::statement(DbBackend::Postgres, &query, Cut::Everything, &owner);
        let read = pages.read(&statement);
        assert!(
            std::mem::size_of_val(&read) < 2048,
            "{} bytes",
            std::mem::size_of_val(&read)
        );
    }
}
