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
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Set,
    sea_query::{Expr, OnConflict},
};

use crate::{
    RateLimit, ServiceError, User,
    accounts::caller_account,
    now,
    sessions::{ended_if_orphaned, session_ended},
    sql,
    tokens::Caller,
};

/// How long a window lasts, in seconds.
pub const WINDOW_SECONDS: i64 = 60;

/// An account's budget in its window, a write just counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBudget {
    /// Writes a window allows.
    pub quota: u32,
    /// Writes left in this window.
    pub remaining: u32,
    /// Whole seconds (at least one) until the window ends and the budget is whole again.
    pub resets_in_seconds: u64,
    /// Whether the write just counted is past the quota.
    pub exceeded: bool,
}

impl WriteBudget {
    /// # Errors
    /// [`ServiceError::RateLimited`] when the write is past the quota.
    pub fn check(&self) -> Result<(), ServiceError> {
        if self.exceeded {
            return Err(ServiceError::RateLimited {
                limit: RateLimit::Writes,
                retry_after_secs: self.resets_in_seconds,
            });
        }
        Ok(())
    }
}

/// The condition, in an upsert of `write_counts`, that the stored window has passed (the
/// proposed row, `excluded`, starts now): then a new window starts with this write.
pub(crate) fn window_passed() -> String {
    format!("write_counts.window_start <= excluded.window_start - {WINDOW_SECONDS}")
}

/// Reads the account of `caller`, if their session still exists, and counts a write of
/// theirs against `quota` writes a window.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the session has ended (nothing is counted),
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn count(
    db: &DatabaseConnection,
    caller: Caller,
    quota: u32,
) -> Result<(User, WriteBudget), ServiceError> {
    let now = now().timestamp();
    let (user, window_start, writes) = if db.get_database_backend() == DbBackend::Postgres {
        let row = db
            .query_one_raw(sql::writes::count_and_read_account(caller, now))
            .await
            .map_err(ended_if_orphaned)?
            .ok_or_else(session_ended)?;
        let user = User::from_query_result(&row, "")?;
        let window_start: i64 = row.try_get("", "write_window_start")?;
        let writes: i64 = row.try_get("", "write_count")?;
        (user, window_start, writes)
    } else {
        let user = caller_account(db, caller).await?;
        let counted = upsert(db, caller, now).await?;
        (user, counted.window_start, counted.writes)
    };
    let writes = u32::try_from(writes).unwrap_or(u32::MAX);
    let ends = window_start + WINDOW_SECONDS;
    let budget = WriteBudget {
        quota,
        remaining: quota.saturating_sub(writes),
        resets_in_seconds: u64::try_from(ends - now).unwrap_or(0).max(1),
        exceeded: writes > quota,
    };
    Ok((user, budget))
}

/// Counts a write of `caller`'s at `now`: one more in the window, or the first of a new one.
async fn upsert(
    db: &DatabaseConnection,
    caller: Caller,
    now: i64,
) -> Result<write_count::Model, ServiceError> {
    let passed = window_passed();
    write_count::Entity::insert(write_count::ActiveModel {
        user_id: Set(caller.user_id),
        window_start: Set(now),
        writes: Set(1),
    })
    .on_conflict(
        OnConflict::column(write_count::Column::UserId)
            .value(
                write_count::Column::WindowStart,
                Expr::cust(format!(
                    "CASE WHEN {passed} THEN excluded.window_start \
                     ELSE write_counts.window_start END"
                )),
            )
            .value(
                write_count::Column::Writes,
                Expr::cust(format!(
                    "CASE WHEN {passed} THEN 1 ELSE write_counts.writes + 1 END"
                )),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await
    .map_err(ended_if_orphaned)
}
