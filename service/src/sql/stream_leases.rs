//! The take of a slot for an event stream: sea-orm's builder writes neither a recursive
//! `WITH` nor an upsert from a `SELECT` with a condition on the update.

use sea_orm::{DbBackend, Statement};

/// Takes the lowest slot of `user_id`'s below `cap` that no unexpired lease holds, for
/// `instance` until `expires_at` (seconds since the epoch, as `now`): the slot's number, or
/// no row when every slot is held, or when a racing take got the same slot first (then the
/// next try sees it held). An expired lease's slot is taken over.
pub(crate) fn take_slot(
    backend: DbBackend,
    user_id: i64,
    cap: i32,
    instance: &str,
    now: i64,
    expires_at: i64,
) -> Statement {
    // The `WHERE true` lets SQLite tell the upsert's `ON CONFLICT` from a join's `ON`.
    let sql = "WITH RECURSIVE slots(n) AS ( \
           SELECT 0 WHERE $2 > 0 UNION ALL SELECT n + 1 FROM slots WHERE n + 1 < $2 \
         ) \
         INSERT INTO event_streams (user_id, slot, instance, expires_at) \
         SELECT $1, n, $3, $5 FROM ( \
           SELECT n FROM slots WHERE true AND n NOT IN ( \
             SELECT slot FROM event_streams WHERE user_id = $1 AND expires_at >= $4 \
           ) ORDER BY n LIMIT 1 \
         ) AS free WHERE true \
         ON CONFLICT (user_id, slot) DO UPDATE \
           SET instance = excluded.instance, expires_at = excluded.expires_at \
           WHERE event_streams.expires_at < $4 \
         RETURNING slot";
    Statement::from_sql_and_values(
        backend,
        sql,
        [
            user_id.into(),
            cap.into(),
            instance.into(),
            now.into(),
            expires_at.into(),
        ],
    )
}
