//! The write limit's count on PostgreSQL, in the statement that reads the writer's account:
//! counted in a statement of its own, it would cost every write one more round trip and
//! statement. SQLite cannot write in a `WITH`: there the count stays a statement of its own
//! ([`crate::writes`]), on a database in the same process.

use sea_orm::{DbBackend, Statement};

use crate::{tokens::Caller, writes::window_passed};

/// Counts a write of `caller`'s at `now` (seconds since the epoch) and reads their account,
/// if their session still exists (else no row, and nothing counted): the account's columns,
/// and the window's `write_window_start` and `write_count`.
pub(crate) fn count_and_read_account(caller: Caller, now: i64) -> Statement {
    let passed = window_passed();
    let sql = format!(
        "WITH counted AS (\
            INSERT INTO write_counts (user_id, window_start, writes) \
            SELECT user_id, $3, 1 FROM sessions WHERE id = $2 AND user_id = $1 \
            ON CONFLICT (user_id) DO UPDATE SET \
                window_start = CASE WHEN {passed} THEN excluded.window_start \
                    ELSE write_counts.window_start END, \
                writes = CASE WHEN {passed} THEN 1 ELSE write_counts.writes + 1 END \
            RETURNING window_start, writes) \
         SELECT users.*, counted.window_start AS write_window_start, counted.writes AS write_count \
         FROM users, counted WHERE users.id = $1"
    );
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [caller.user_id.into(), caller.session_id.into(), now.into()],
    )
}
