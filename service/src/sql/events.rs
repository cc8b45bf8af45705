//! The read of the event outbox in batches bounded by bytes.
//!
//! One post's event can carry 80 KB of text, so a batch bounded by rows alone is no bound:
//! 512 rows were 40 MB held by each stream replaying them. sea-orm's builder has no window
//! functions; the statement sums the sizes of the next rows in the database and returns as
//! many as fit the budget (at least one), so that nothing past it is ever read.

use sea_orm::{DbBackend, Statement};

/// The most rows one batch takes, however small they are.
pub(crate) const MAX_ROWS: u64 = 512;

/// The events with ids in `after + 1 ..= through`, in id order, as many as the budget of
/// `bytes` of text holds (the first one whatever its size), at most [`MAX_ROWS`].
pub(crate) fn batch(backend: DbBackend, after: i64, through: i64, bytes: usize) -> Statement {
    let budget = i64::try_from(bytes).unwrap_or(i64::MAX);
    // `octet_length` is in both databases (SQLite since 3.43); a row's other columns are a
    // few hundred bytes at most, counted as a constant.
    let sql = format!(
        "SELECT * FROM events WHERE id > $1 AND id <= ( \
           SELECT COALESCE(MAX(id), $1) FROM ( \
             SELECT id, size, SUM(size) OVER (ORDER BY id) AS running FROM ( \
               SELECT id, 256 + COALESCE(octet_length(title), 0) \
                 + COALESCE(octet_length(content), 0) + COALESCE(octet_length(owner_email), 0) \
                 AS size \
               FROM events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT {MAX_ROWS} \
             ) AS sized \
           ) AS batch WHERE running - size < $3 \
         ) ORDER BY id"
    );
    Statement::from_sql_and_values(backend, sql, [after.into(), through.into(), budget.into()])
}
