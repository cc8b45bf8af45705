//! sea-orm's pool as the service uses it: straight, or through a transaction-mode pooler.
//!
//! A transaction-mode pooler (PgBouncer's `pool_mode = transaction`, RDS Proxy, Supavisor)
//! lends a server connection for one transaction at a time, and between two transactions
//! the next may be another's. Three things sqlx 0.9 does assume one connection throughout:
//!
//! - it names each statement it prepares (`sqlx_s_1`, `sqlx_s_2`, ...), counting from one
//!   on every connection, and with its statement cache off it never closes them: on a
//!   server connection that another client's statements are left on, the next name is
//!   "already exists";
//! - it sends a statement in two round trips, each ending in `Sync` (prepare, then bind
//!   and run); outside a transaction the pooler may hand the second to another server
//!   connection, on which the statement does not exist;
//! - it carries the session's settings (`statement_timeout`) in the start-up packet, which
//!   the pooler refuses, and which would stay on a server connection others then use.
//!
//! So behind such a pooler every statement runs in a transaction, and each transaction
//! first drops the statements sqlx prepared on its server connection (the page reads' own,
//! `crate::sql::prepared`, stay) and sets the timeout for itself alone (`SET LOCAL`), in one
//! round trip.

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, Statement, TransactionOptions, TransactionTrait,
};

/// The service's sea-orm pool. Clones share it.
#[derive(Clone, Debug)]
pub struct Connection {
    pool: DatabaseConnection,
    /// Behind a transaction-mode pooler: what each transaction runs first.
    transaction_setup: Option<Arc<str>>,
    /// Behind a transaction-mode pooler, how long a transaction may wait to begin: the
    /// pooler holds it until it has a server connection to lend, as long as it is
    /// configured to.
    begin_timeout: Duration,
}

impl Connection {
    /// A pool used as it is, each connection the server's own for as long as it is open.
    pub(crate) fn direct(pool: DatabaseConnection) -> Self {
        Self {
            pool,
            transaction_setup: None,
            begin_timeout: Duration::MAX,
        }
    }

    /// A pool whose connections go through a transaction-mode pooler; `setup` is what each
    /// transaction runs first (see the module's documentation), and `begin_timeout` how long
    /// it may wait for a server connection.
    pub(crate) fn pooled(pool: DatabaseConnection, setup: String, begin_timeout: Duration) -> Self {
        Self {
            pool,
            transaction_setup: Some(setup.into()),
            begin_timeout,
        }
    }

    /// sea-orm's pool itself, for what needs sea-orm's own type (its migrator on SQLite, the
    /// pool's metrics). Behind a transaction-mode pooler a statement sent through it
    /// directly is not safe: statements go through [`Connection`].
    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Begins a transaction.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.begin_with_options(TransactionOptions::default()).await
    }

    /// Begins a transaction with `options`.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        let Some(setup) = &self.transaction_setup else {
            return self.pool.begin_with_options(options).await;
        };
        let begin = async {
            let txn = self.pool.begin_with_options(options).await?;
            txn.execute_unprepared(setup).await?;
            Ok(txn)
        };
        tokio::time::timeout(self.begin_timeout, begin)
            .await
            .unwrap_or(Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)))
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// It does not.
    pub async fn ping(&self) -> Result<(), DbErr> {
        if self.transaction_setup.is_none() {
            return self.pool.ping().await;
        }
        // The server, not the pooler, must answer.
        self.execute_unprepared("SELECT 1").await.map(drop)
    }
}

/// Runs one statement on its own: straight on the pool, or in a transaction of its own
/// behind a transaction-mode pooler (`$db` names whichever runs it).
macro_rules! alone {
    ($connection:expr, $db:ident => $statement:expr) => {{
        if $connection.transaction_setup.is_none() {
            let $db = &$connection.pool;
            $statement.await
        } else {
            let txn = $connection.begin().await?;
            let $db = &txn;
            let result = $statement.await?;
            txn.commit().await?;
            Ok(result)
        }
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for Connection {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        alone!(self, db => db.execute_raw(stmt))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        alone!(self, db => db.execute_unprepared(sql))
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        alone!(self, db => db.query_one_raw(stmt))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        alone!(self, db => db.query_all_raw(stmt))
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}
