//! Opening the database: pool limits, SQLite pragmas, the connections page reads take on
//! PostgreSQL, and what "reachable" means.

use std::{net::IpAddr, str::FromStr, sync::Arc, time::Duration};

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    QueryResult, RuntimeErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::{
        self, Connection, PgConnection,
        postgres::{PgConnectOptions, PgRow, PgSslMode},
    },
};

use tokio::sync::watch;

use crate::{error::ServiceError, sql::ReadStatement};

/// How to reach the database and how many connections to keep.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// `sqlite://file.db?mode=rwc` or `postgres://user@host/db`; the scheme picks the backend.
    pub url: String,
    pub max_connections: u32,
    /// How long a request may wait for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
    /// How long a request's statement may run on PostgreSQL (zero: no limit). Longer, it is
    /// stuck behind a lock or the server is overwhelmed, and the client gets a 503 rather
    /// than a request held open.
    pub statement_timeout: Duration,
}

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
    orm: DatabaseConnection,
    pages: Option<PageConnections>,
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
        Ok(Self {
            orm,
            pages,
            writes: Arc::new(watch::Sender::new(0)),
        })
    }

    /// sea-orm's connection pool, for every statement but the page reads.
    pub fn connection(&self) -> &DatabaseConnection {
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

    /// Runs a read-only statement of [`crate::sql`] and returns its rows.
    ///
    /// On SQLite it goes to sqlx's pool directly: sea-orm's own call boxes a large future,
    /// which each of the requests queued for one of the few connections would hold.
    pub(crate) async fn read(&self, statement: &ReadStatement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(pages) = &self.pages else {
            let rows = statement
                .to_sqlx()
                .fetch_all(self.orm.get_sqlite_connection_pool())
                .await
                .map_err(statement_failed)?;
            return Ok(rows.into_iter().map(QueryResult::from).collect());
        };
        pages.read(statement).await
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a transaction that reads before it writes would otherwise fail with
/// "database is locked" when another writer came first, instead of waiting its turn.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
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

/// Opens the pool requests use. On SQLite the journal is WAL (readers never wait for the
/// writer), writes wait up to five seconds for the lock, and foreign keys are enforced; on
/// PostgreSQL a statement running over [`DatabaseOptions::statement_timeout`] is cancelled.
///
/// # Errors
/// The database cannot be reached or the URL is malformed.
pub async fn connect(options: &DatabaseOptions) -> Result<DatabaseConnection, DbErr> {
    connect_with(options, options.statement_timeout).await
}

/// Opens a pool for migrations and seeding: like [`connect`], but with no statement
/// timeout on PostgreSQL (a migration rewriting a large table, or building an index on it,
/// runs as long as it takes; the server's or the role's own default is overridden too).
///
/// # Errors
/// The database cannot be reached or the URL is malformed.
pub async fn connect_for_maintenance(
    options: &DatabaseOptions,
) -> Result<DatabaseConnection, DbErr> {
    connect_with(options, Duration::ZERO).await
}

async fn connect_with(
    options: &DatabaseOptions,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let url = options.url.clone();
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
            with_session_settings(postgres, &url, statement_timeout)
        })
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    sea_orm::Database::connect(connect).await
}

/// Sets the session's `statement_timeout` (zero turns it off, the server's or the role's
/// own default overridden either way), and connects to a loopback address without TLS
/// unless `url` or `PGSSLMODE` names an `sslmode`: the bytes never leave the machine, and
/// sqlx 0.9 writes a handshake without `TCP_NODELAY`, so that each new connection waits
/// twice for PostgreSQL's delayed ACK, start-up's first connection among them.
fn with_session_settings(
    options: PgConnectOptions,
    url: &str,
    statement_timeout: Duration,
) -> PgConnectOptions {
    let options = options.options([(
        "statement_timeout",
        format!("{}ms", statement_timeout.as_millis()),
    )]);
    let mode_chosen = std::env::var_os("PGSSLMODE").is_some() || names_ssl_mode(url);
    if !mode_chosen && is_loopback(options.get_host()) {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// Whether a PostgreSQL URL says how to use TLS (`sslmode`, or sqlx's `ssl-mode`).
fn names_ssl_mode(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        url.query_pairs()
            .any(|(key, _)| key == "sslmode" || key == "ssl-mode")
    })
}

/// `localhost` or a loopback address (a socket's directory, or another host, is not).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The page reads' connections on PostgreSQL.
#[derive(Clone)]
struct PageConnections {
    pool: managed::Pool<PageConnector>,
}

impl PageConnections {
    fn new(options: &DatabaseOptions) -> Result<Self, DbErr> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))))?;
        let connector = PageConnector {
            options: sqlx::ConnectOptions::disable_statement_logging(with_session_settings(
                connect,
                &options.url,
                options.statement_timeout,
            )),
        };
        let pool = managed::Pool::builder(connector)
            .max_size(options.max_connections as usize)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|err| DbErr::Custom(format!("cannot build the page reads' pool: {err}")))?;
        Ok(Self { pool })
    }

    async fn read(&self, statement: &ReadStatement) -> Result<Vec<QueryResult>, DbErr> {
        let rows = match self.try_read(statement).await? {
            Ok(rows) => rows,
            // The server closed the connection while it sat idle (a restart, a proxy's
            // timeout); the other idle ones most likely went with it. A read may be asked
            // again, on a new connection.
            Err(BrokenConnection(_)) => {
                self.pool.retain(|_, _| false);
                self.try_read(statement)
                    .await?
                    .map_err(|BrokenConnection(err)| DbErr::Conn(RuntimeErr::SqlxError(err)))?
            }
        };
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }

    /// Runs the statement on a pooled connection; the inner error is a connection that
    /// broke under it.
    async fn try_read(
        &self,
        statement: &ReadStatement,
    ) -> Result<Result<Vec<PgRow>, BrokenConnection>, DbErr> {
        let connection = self.pool.get().await.map_err(|err| match err {
            PoolError::Backend(err) => DbErr::Conn(RuntimeErr::SqlxError(err)),
            PoolError::Timeout(_) => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            _ => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        })?;
        let mut connection = Checkout(Some(connection));
        match statement.to_sqlx().fetch_all(connection.as_mut()).await {
            Ok(rows) => {
                connection.give_back();
                Ok(Ok(rows))
            }
            Err(err) if is_broken(&err) => Ok(Err(BrokenConnection(Arc::new(err)))),
            Err(err) => {
                connection.give_back();
                Err(statement_failed(err))
            }
        }
    }
}

/// A read that failed on its connection rather than on its statement.
struct BrokenConnection(Arc<sqlx::Error>);

/// Whether a read failed on the connection itself rather than on its statement: the socket
/// or the protocol broke, or the server ended the session (57P: shutdown, terminated by an
/// administrator; 08: connection exception).
fn is_broken(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(err) => err
            .code()
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}

/// A connection taken for one read. It goes back to the pool only through
/// [`Checkout::give_back`]: one whose read was dropped half-way (its request went away) or
/// failed on the connection itself may hold unread replies, and is closed instead.
struct Checkout(Option<Object<PageConnector>>);

impl Checkout {
    fn as_mut(&mut self) -> &mut PgConnection {
        self.0
            .as_mut()
            .expect("a checkout holds its connection until it ends")
    }

    fn give_back(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(Object::take(connection));
        }
    }
}

/// Opens the page reads' connections and checks one before reuse only when it has sat idle
/// long enough for a server or proxy to have closed it.
///
/// Connecting and checking are boxed: deadpool's checkout future holds both inline, which
/// made every request's future that much larger, a size each layer of the HTTP stack then
/// moves and every request waiting for a connection keeps.
struct PageConnector {
    options: PgConnectOptions,
}

const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(30);

impl managed::Manager for PageConnector {
    type Type = PgConnection;
    type Error = Arc<sqlx::Error>;

    fn create(&self) -> impl Future<Output = Result<PgConnection, Self::Error>> + Send {
        Box::pin(async move {
            PgConnection::connect_with(&self.options)
                .await
                .map_err(Arc::new)
        })
    }

    fn recycle(
        &self,
        connection: &mut PgConnection,
        metrics: &Metrics,
    ) -> impl Future<Output = RecycleResult<Self::Error>> + Send {
        let idle = metrics.last_used() > IDLE_BEFORE_CHECK;
        Box::pin(async move {
            if idle {
                connection.ping().await.map_err(Arc::new)?;
            }
            Ok(())
        })
    }
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
            let pool = db.orm.get_postgres_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
        _ => {
            let pool = db.orm.get_sqlite_connection_pool();
            (pool.size() as usize, pool.num_idle())
        }
    };
    let (pages_size, pages_idle) = db.pages.as_ref().map_or((0, 0), |pages| {
        let status = pages.pool.status();
        (status.size, status.available)
    });
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

    /// The TLS mode each URL connects with (`PGSSLMODE` unset, as in the tests' runs).
    fn ssl_mode(url: &str) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).expect("a valid URL");
        with_session_settings(options, url, Duration::from_secs(1)).get_ssl_mode()
    }

    #[test]
    fn a_loopback_connection_goes_without_tls_unless_the_url_asks_for_it() {
        for plain in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@127.0.0.2/db?application_name=api",
        ] {
            assert!(matches!(ssl_mode(plain), PgSslMode::Disable), "{plain}");
        }
        for chosen in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?ssl-mode=prefer",
            "postgres://u@db.example.org/db",
            "postgres://u@10.0.0.5/db",
        ] {
            assert!(!matches!(ssl_mode(chosen), PgSslMode::Disable), "{chosen}");
        }
    }
}
