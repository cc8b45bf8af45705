//! The event outbox's statements: its read in batches bounded by bytes, the transactions still
//! writing to it, and the word to the other instances.
//!
//! One post's event can carry tens of kilobytes of text, so a batch bounded by rows alone is
//! no bound on what each replaying stream holds. sea-orm's builder has no window
//! functions; the statement sums the sizes of the next rows in the database and returns as
//! many as fit the budget (at least one), so that nothing past it is ever read.

use entity::event;
use sea_orm::{DbBackend, IdenStatic, Iterable, Statement};

/// The most rows one batch takes, however small they are.
pub(crate) const MAX_ROWS: u64 = 512;

/// The events with ids in `after + 1 ..= through`, in id order, as many as the budget of
/// `bytes` of text holds (the first one whatever its size), at most [`MAX_ROWS`].
pub(crate) fn batch(backend: DbBackend, after: i64, through: i64, bytes: usize) -> Statement {
    let budget = i64::try_from(bytes).unwrap_or(i64::MAX);
    // `octet_length` is in both databases (SQLite since 3.43); a row's other columns are a
    // few hundred bytes at most, counted as a constant.
    // The columns by name, not `*`: a SQLite connection opened while the migrations ran may
    // have prepared the statement against the columns of that moment.
    let columns = event::Column::iter()
        .map(|column| column.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM events WHERE id > $1 AND id <= ( \
           SELECT COALESCE(MAX(id), $1) FROM ( \
             SELECT id, size, SUM(size) OVER (ORDER BY id) AS running FROM ( \
               SELECT id, 256 + COALESCE(octet_length(title), 0) \
                 + COALESCE(octet_length(content), 0) \
                 + COALESCE(octet_length(owner_display_name), 0) \
                 + COALESCE(octet_length(hidden_reason), 0) AS size \
               FROM events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT {MAX_ROWS} \
             ) AS sized \
           ) AS batch WHERE running - size < $3 \
         ) ORDER BY id"
    );
    Statement::from_sql_and_values(backend, sql, [after.into(), through.into(), budget.into()])
}

/// The transactions writing events now, each by a name (PostgreSQL: a function of the
/// migrations, which sea-orm's builder cannot call as a table).
pub(crate) fn writers_in_flight() -> Statement {
    Statement::from_string(DbBackend::Postgres, "SELECT writer FROM events_in_flight()")
}

/// `NOTIFY events`, in a transaction that commits without waiting for the disk: its two
/// statements.
pub(crate) fn notify_without_waiting_for_disk() -> [Statement; 2] {
    [
        "SET LOCAL synchronous_commit = off",
        "SELECT pg_notify('events', '')",
    ]
    .map(|sql| Statement::from_string(DbBackend::Postgres, sql))
}
