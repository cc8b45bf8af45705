//! The write limit: how many writes (creating, changing or deleting a post, voting) one
//! account may make a minute, across every instance of the service.
//!
//! A fixed window per account, starting with its first write after the last window ended,
//! counted by one upsert in a statement of its own before the write: it holds the account's
//! row for that statement only, so one account's writes do not queue behind each other, and
//! a request counts whatever its answer (a refused write costs the service too).

use entity::write_count;
use sea_orm::{
    DatabaseConnection, EntityTrait, Set,
    sea_query::{Expr, OnConflict},
};

use crate::{RateLimit, ServiceError, now, sessions::ended_if_orphaned, tokens::Caller};

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

/// Counts a write of `caller`'s against `quota` writes a window.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the account was deleted meanwhile,
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn count(
    db: &DatabaseConnection,
    caller: Caller,
    quota: u32,
) -> Result<WriteBudget, ServiceError> {
    let now = now().timestamp();
    // `excluded.window_start` is now: the stored window goes on while it is younger than
    // WINDOW_SECONDS, else a new one starts with this write.
    let passed = format!("write_counts.window_start <= excluded.window_start - {WINDOW_SECONDS}");
    let counted = write_count::Entity::insert(write_count::ActiveModel {
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
    .map_err(ended_if_orphaned)?;
    let writes = u32::try_from(counted.writes).unwrap_or(u32::MAX);
    let ends = counted.window_start + WINDOW_SECONDS;
    Ok(WriteBudget {
        quota,
        remaining: quota.saturating_sub(writes),
        resets_in_seconds: u64::try_from(ends - now).unwrap_or(0).max(1),
        exceeded: writes > quota,
    })
}
