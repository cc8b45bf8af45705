//! Every statement the service writes as SQL text, each with the reason sea-orm's builder
//! does not write it. Everything else goes through sea-orm's entities and query builder.
//!
//! - [`page`]: the page reads of posts, one statement per request whose shape and literal
//!   `LIMIT` are what keep PostgreSQL's plans cached; they run on connections of their own
//!   ([`crate::database::Database`]), handed a [`ReadStatement`] that only this module can make.
//! - [`prepared`]: a page read as a prepared statement of the server connection's own, for a
//!   transaction-mode pooler.
//! - [`replication`]: where the primary's log and a replica's replay of it stand.
//! - [`seed`]: demo and benchmark rows generated inside the database in batches.
//! - [`events`]: the outbox of live events read in batches bounded by bytes.
//! - [`writes`]: the write limit's count, in the statement that reads the writer's account.
//! - [`stream_leases`]: the take of a slot under the cap on an account's event streams.
//!
//! sqlx's `AssertSqlSafe`, which lets a statement built at run time through, is used here
//! and nowhere else.

pub(crate) mod events;
pub(crate) mod page;
pub(crate) mod prepared;
pub(crate) mod replication;
pub mod seed;
pub(crate) mod stream_leases;
pub(crate) mod writes;

use sea_orm::{
    DbBackend, EntityTrait, QueryTrait, Select, Statement, Values,
    sqlx::{self, AssertSqlSafe},
};
use sea_query_sqlx::SqlxValues;

/// A read-only statement for [`crate::database::Database::read`]; only this module makes one.
pub(crate) struct ReadStatement(Statement);

impl ReadStatement {
    fn new(backend: DbBackend, sql: String, values: Vec<sea_orm::Value>) -> Self {
        Self(Statement::from_sql_and_values(backend, sql, values))
    }

    /// A read built with sea-orm's `find` (which writes nothing), to run as a page read.
    pub(crate) fn of_select<E: EntityTrait>(backend: DbBackend, select: Select<E>) -> Self {
        Self(select.build(backend))
    }

    /// Whether the statement has no values to bind: then it may go as a simple query, in
    /// one message.
    pub(crate) fn is_plain(&self) -> bool {
        self.0
            .values
            .as_ref()
            .is_none_or(|values| values.0.is_empty())
    }

    /// The statement's text.
    pub(crate) fn sql(&self) -> &str {
        &self.0.sql
    }

    /// The statement as an sqlx query, its values bound the way sea-orm binds them.
    pub(crate) fn to_sqlx<DB>(&self) -> sqlx::query::Query<'_, DB, SqlxValues>
    where
        DB: sqlx::Database,
        SqlxValues: sqlx::IntoArguments<DB>,
    {
        let values = self.0.values.clone().unwrap_or_else(|| Values(Vec::new()));
        sqlx::query_with(AssertSqlSafe(self.0.sql.as_str()), SqlxValues(values))
    }
}
