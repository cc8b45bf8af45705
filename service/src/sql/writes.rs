//! The write limit's statements. On PostgreSQL the count goes in the statement that reads the
//! writer's account: counted in a statement of its own, it would cost every write one more
//! round trip and statement. SQLite cannot write in a `WITH`: there the count is an upsert of
//! its own ([`crate::writes`]), on a database in the same process, whose conflict clause is
//! written here.

use sea_orm::{DbBackend, Statement};

/// The condition, in an upsert of `write_counts`, that the stored window (of
/// `window_seconds`) has passed (the proposed row, `excluded`, starts now): then a new window
/// starts with this write.
fn window_passed(window_seconds: i64) -> String {
    format!("write_counts.window_start <= excluded.window_start - {window_seconds}")
}

/// The window's start after a write is counted: the stored one, or now once it has passed.
pub(crate) fn window_start_after_write(window_seconds: i64) -> String {
    let passed = window_passed(window_seconds);
    format!("CASE WHEN {passed} THEN excluded.window_start ELSE write_counts.window_start END")
}

/// The window's count after a write is counted: one more, or the first of a new window.
pub(crate) fn writes_after_write(window_seconds: i64) -> String {
    let passed = window_passed(window_seconds);
    format!("CASE WHEN {passed} THEN 1 ELSE write_counts.writes + 1 END")
}

/// Counts a write of account `user_id`'s at `now` (seconds since the epoch) in windows of
/// `window_seconds`, and reads the account, if its session `session_id` still exists (else no
/// row, and nothing counted): the account's columns, and the window's `write_window_start`
/// and `write_count`.
pub(crate) fn count_and_read_account(
    user_id: i64,
    session_id: i64,
    now: i64,
    window_seconds: i64,
) -> Statement {
    let window_start = window_start_after_write(window_seconds);
    let writes = writes_after_write(window_seconds);
    let sql = format!(
        "WITH counted AS (\
            INSERT INTO write_counts (user_id, window_start, writes) \
            SELECT user_id, $3, 1 FROM sessions WHERE id = $2 AND user_id = $1 \
            ON CONFLICT (user_id) DO UPDATE SET \
                window_start = {window_start}, writes = {writes} \
            RETURNING window_start, writes) \
         SELECT users.*, counted.window_start AS write_window_start, counted.writes AS write_count \
         FROM users, counted WHERE users.id = $1"
    );
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [user_id.into(), session_id.into(), now.into()],
    )
}
