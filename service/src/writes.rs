//! The write limit: how many writes (creating, changing or deleting a post, voting) one
//! account may make a minute, across every instance of the service.
//!
//! A fixed window per account, starting with its first write after the last window ended,
//! counted by one upsert before the write, in the statement that reads the writer's account
//! on PostgreSQL ([`crate::sql::writes`]): it holds the account's row for that statement
//! only, so one account's writes do not queue behind each other, and a request counts
//! whatever its answer (a refused write costs the service too).

use entity::write_count;
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Set,
    sea_query::{Expr, OnConflict},
};

use crate::{
    accounts::User,
    clock::now,
    database::{Connection, Database},
    error::{RateLimit, ServiceError},
    limits::Allowance,
    sessions::{Caller, ended_if_orphaned, session_ended},
    sql,
};

/// How long a window lasts, in seconds.
pub const WINDOW_SECONDS: i64 = 60;

/// Reads the account of `caller`, if their session still exists, and counts a write of
/// theirs against `quota` writes a window: the caller comes back with their account.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the session has ended (nothing is counted),
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn count(
    db: &Database,
    caller: Caller,
    quota: u32,
) -> Result<(Caller, Allowance), ServiceError> {
    let db = db.connection();
    let now = now().timestamp();
    let (user, window_start, writes) = if db.get_database_backend() == DbBackend::Postgres {
        let row = db
            .query_one_raw(sql::writes::count_and_read_account(
                caller.user_id(),
                caller.session_id(),
                now,
                WINDOW_SECONDS,
            ))
            .await
            .map_err(ended_if_orphaned)?
            .ok_or_else(session_ended)?;
        let user = User::from_query_result(&row, "")?;
        let window_start: i64 = row.try_get("", "write_window_start")?;
        let writes: i64 = row.try_get("", "write_count")?;
        (user, window_start, writes)
    } else {
        let user = caller.account(db).await?.into_owned();
        let counted = upsert(db, &caller, now).await?;
        (user, counted.window_start, counted.writes)
    };
    let writes = u32::try_from(writes).unwrap_or(u32::MAX);
    let ends = window_start + WINDOW_SECONDS;
    let budget = Allowance {
        limit: RateLimit::Writes,
        quota,
        window_seconds: WINDOW_SECONDS.unsigned_abs(),
        remaining: quota.saturating_sub(writes),
        resets_in_seconds: u64::try_from(ends - now).unwrap_or(0).max(1),
        exceeded: writes > quota,
    };
    Ok((caller.with_account(user), budget))
}

/// Counts a write of `caller`'s at `now`: one more in the window, or the first of a new one.
async fn upsert(
    db: &Connection,
    caller: &Caller,
    now: i64,
) -> Result<write_count::Model, ServiceError> {
    write_count::Entity::insert(write_count::ActiveModel {
        user_id: Set(caller.user_id()),
        window_start: Set(now),
        writes: Set(1),
    })
    .on_conflict(
        OnConflict::column(write_count::Column::UserId)
            .value(
                write_count::Column::WindowStart,
                Expr::cust(sql::writes::window_start_after_write(WINDOW_SECONDS)),
            )
            .value(
                write_count::Column::Writes,
                Expr::cust(sql::writes::writes_after_write(WINDOW_SECONDS)),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await
    .map_err(ended_if_orphaned)
}
