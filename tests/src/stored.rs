//! What the database holds, looked at without asking the service: to see that a request
//! stored what it answered, or that a refused one changed nothing.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::app::TestApp;

/// The first column of every row `sql` returns, as integers (`COUNT`s, ids).
pub async fn query_i64s(db: &DatabaseConnection, sql: &str) -> Vec<i64> {
    first_column(db, sql, "an integer").await
}

/// The first column of every row `sql` returns, as text.
pub async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    first_column(db, sql, "text").await
}

/// The first column of every row `sql` returns, as `T` (`what` names it for the panic).
async fn first_column<T: sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
    what: &str,
) -> Vec<T> {
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned());
    let rows = db
        .query_all_raw(statement)
        .await
        .unwrap_or_else(|err| panic!("`{sql}` failed: {err}"));
    rows.iter()
        .map(|row| {
            row.try_get_by_index::<T>(0)
                .unwrap_or_else(|err| panic!("`{sql}` did not return {what}: {err:?}"))
        })
        .collect()
}

/// The single integer `sql` returns (a `COUNT(*)`).
pub async fn query_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let values = query_i64s(db, sql).await;
    match values.as_slice() {
        [value] => *value,
        other => panic!("`{sql}` returned {other:?} instead of one row"),
    }
}

/// Runs `sql` (a `COUNT(*)`) every 20 ms until it returns `wanted`, for at most two seconds;
/// returns the last value, for the caller to assert on.
pub async fn wait_for_count(db: &DatabaseConnection, sql: &str, wanted: i64) -> i64 {
    let mut count = query_i64(db, sql).await;
    for _ in 0..100 {
        if count == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        count = query_i64(db, sql).await;
    }
    count
}

/// How many users, posts, votes and login failures a database holds, and a fingerprint of
/// every post's stored fields: equal snapshots mean nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub users: i64,
    pub posts: i64,
    pub votes: i64,
    pub posts_fingerprint: Vec<String>,
    pub users_fingerprint: Vec<String>,
}

impl Snapshot {
    pub async fn take(db: &DatabaseConnection) -> Snapshot {
        let text_rows = |sql: &'static str| query_strings(db, sql);
        Snapshot {
            users: query_i64(db, "SELECT COUNT(*) FROM users").await,
            posts: query_i64(db, "SELECT COUNT(*) FROM posts").await,
            votes: query_i64(db, "SELECT COUNT(*) FROM votes").await,
            posts_fingerprint: text_rows(
                "SELECT CAST(id AS TEXT) || '|' || title || '|' || content || '|' \
                 || CAST(published AS TEXT) || '|' || CAST(owner_id AS TEXT) || '|' \
                 || CAST(updated_at AS TEXT) FROM posts ORDER BY id",
            )
            .await,
            users_fingerprint: text_rows(
                "SELECT CAST(id AS TEXT) || '|' || email || '|' || password_hash \
                 FROM users ORDER BY id",
            )
            .await,
        }
    }
}

/// A [`Snapshot`] of a database and a connection to take another: equal ones later mean that
/// nothing was changed in between.
pub struct Baseline {
    db: DatabaseConnection,
    snapshot: Snapshot,
}

impl Baseline {
    /// Asserts that the database holds what it held when the baseline was taken.
    pub async fn assert_unchanged(&self, message: &str) {
        assert_eq!(Snapshot::take(&self.db).await, self.snapshot, "{message}");
    }
}

impl TestApp {
    /// What the application's database holds now, for [`Baseline::assert_unchanged`].
    pub async fn baseline(&self) -> Baseline {
        let db = self.database().await;
        let snapshot = Snapshot::take(&db).await;
        Baseline { db, snapshot }
    }
}
