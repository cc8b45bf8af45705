//! The page reads' own connections on PostgreSQL (see [`super::Database`]).

use std::{str::FromStr, sync::Arc, time::Duration};

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult};
use sea_orm::{
    ConnAcquireErr, DbErr, QueryResult, RuntimeErr,
    sqlx::{
        self, Connection, Executor, PgConnection,
        postgres::{PgConnectOptions, PgRow},
    },
};

use super::{
    options::{DatabaseOptions, PoolMode, set_local_statement_timeout, with_session_settings},
    statement_failed,
};
use crate::sql::ReadStatement;

/// The page reads' connections on PostgreSQL.
#[derive(Clone)]
pub(super) struct PageConnections {
    pool: managed::Pool<PageConnector>,
    /// Behind a transaction-mode pooler, how reads go (see [`PooledReads::read`]).
    pooled: Option<PooledReads>,
}

/// How page reads go through a transaction-mode pooler.
#[derive(Clone)]
struct PooledReads {
    /// What each read runs first, in its own transaction: `SET LOCAL statement_timeout`.
    set_timeout: Arc<str>,
    /// How long a read may take in all: the pooler holds a statement until it has a server
    /// connection for it, as long as it is configured to. (No bound when statements have
    /// none.)
    timeout: Duration,
}

impl PageConnections {
    pub(super) fn new(options: &DatabaseOptions) -> Result<Self, DbErr> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))))?;
        let connector = PageConnector {
            options: sqlx::ConnectOptions::disable_statement_logging(with_session_settings(
                connect,
                &options.url,
                options.pool_mode,
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
        let pooled = (options.pool_mode == PoolMode::Transaction).then(|| PooledReads {
            set_timeout: set_local_statement_timeout(options.statement_timeout).into(),
            timeout: if options.statement_timeout.is_zero() {
                Duration::MAX
            } else {
                options.acquire_timeout + options.statement_timeout
            },
        });
        Ok(Self { pool, pooled })
    }

    /// How many connections the pool holds, and how many of them are idle.
    pub(super) fn usage(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size, status.available)
    }

    pub(super) async fn read(&self, statement: &ReadStatement) -> Result<Vec<QueryResult>, DbErr> {
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
        let read = match &self.pooled {
            None => statement.to_sqlx().fetch_all(connection.as_mut()).await,
            Some(pooled) => {
                let read = pooled.read(connection.as_mut(), statement);
                match tokio::time::timeout(pooled.timeout, read).await {
                    Ok(read) => read,
                    // Dropped half-way, the connection is closed.
                    Err(_) => return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
                }
            }
        };
        match read {
            Ok(rows) => {
                connection.give_back();
                Ok(Ok(rows))
            }
            Err(err) if is_broken(&err) => Ok(Err(BrokenConnection(Arc::new(err)))),
            // Behind a transaction-mode pooler the failed read leaves its transaction open:
            // the connection is closed rather than given back.
            Err(err) if self.pooled.is_some() => Err(statement_failed(err)),
            Err(err) => {
                connection.give_back();
                Err(statement_failed(err))
            }
        }
    }
}

impl PooledReads {
    /// Runs a page read through a transaction-mode pooler, each way in one transaction,
    /// which keeps the server connection lent for all of it:
    ///
    /// - a statement with no values as one simple query, which the pooler passes to one
    ///   server connection whole and PostgreSQL runs as one transaction;
    /// - any other as a prepared statement of the server connection's own (see
    ///   [`crate::sql::prepared`]), executed in one simple query, which where the server
    ///   connection lacks it (each message may land on another) prepares it first;
    /// - one whose values cannot be written as literals as an unnamed statement in an explicit
    ///   transaction, in four round trips, planned anew.
    async fn read(
        &self,
        connection: &mut PgConnection,
        statement: &ReadStatement,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        if statement.is_plain() {
            return simple_query(connection, &self.set_timeout, &[statement.sql()]).await;
        }
        let Some(prepared) = statement.as_prepared() else {
            let begin = format!("BEGIN READ ONLY; {}", self.set_timeout);
            return in_transaction(connection, &begin, statement).await;
        };
        let execute = prepared.execute.as_str();
        match simple_query(connection, &self.set_timeout, &[execute]).await {
            Err(err) if has_code(&err, UNDEFINED_PREPARED_STATEMENT) => {
                let prepare = prepared.prepare_if_missing.as_str();
                simple_query(connection, &self.set_timeout, &[prepare, execute]).await
            }
            read => read,
        }
    }
}

const UNDEFINED_PREPARED_STATEMENT: &str = "26000";

fn has_code(err: &sqlx::Error, code: &str) -> bool {
    matches!(err, sqlx::Error::Database(err) if err.code().as_deref() == Some(code))
}

/// `statements` after `first`, as one simple query (one message, one implicit transaction);
/// the rows of all of them.
async fn simple_query(
    connection: &mut PgConnection,
    first: &str,
    statements: &[&str],
) -> Result<Vec<PgRow>, sqlx::Error> {
    let sql = std::iter::once(first)
        .chain(statements.iter().copied())
        .collect::<Vec<_>>()
        .join("; ");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .fetch_all(connection)
        .await
}

/// A statement unnamed, in an explicit transaction begun by `begin`.
async fn in_transaction(
    connection: &mut PgConnection,
    begin: &str,
    statement: &ReadStatement,
) -> Result<Vec<PgRow>, sqlx::Error> {
    connection
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(begin.to_owned())))
        .await?;
    let rows = statement
        .to_sqlx()
        .persistent(false)
        .fetch_all(&mut *connection)
        .await?;
    connection.execute("COMMIT").await?;
    Ok(rows)
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
