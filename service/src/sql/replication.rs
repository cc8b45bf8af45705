//! Where the primary's write-ahead log and a replica's replay of it stand, as byte
//! positions: PostgreSQL's `pg_lsn` has no sqlx type, and its difference from `0/0` is a
//! number.

use sea_orm::DbBackend;

use super::ReadStatement;

/// The primary's write-ahead log as flushed: past the commit of every transaction that
/// has told its client it committed (a commit without waiting for the disk changes no data
/// here: only the live events' `NOTIFY`).
pub(crate) fn primary_position() -> ReadStatement {
    ReadStatement::new(
        DbBackend::Postgres,
        "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint".to_owned(),
        Vec::new(),
    )
}

/// How far a replica has replayed the primary's log (null on a server that is no replica).
pub(crate) fn replica_position() -> ReadStatement {
    ReadStatement::new(
        DbBackend::Postgres,
        "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint".to_owned(),
        Vec::new(),
    )
}
