use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

use crate::m20261130_000011_create_events::{Recording, post_lock, recordings, trigger_function};

/// Orders the events of one post by the post's row lock instead of an advisory lock per post.
///
/// An advisory lock takes a slot of the server's lock table until its transaction ends (about
/// 6,400 slots by default), so a transaction writing events about ~10,000 posts (an account
/// deleted with its posts, a bulk load) failed with "out of shared memory". A row lock is kept
/// in the row itself, however many rows a transaction locks:
/// - a write to `posts` holds its row's lock already when its trigger runs (an insert's row is
///   seen by no other transaction before it commits);
/// - a vote locks its post's row `FOR NO KEY UPDATE`, which waits for another vote or a write
///   to the post but not for the `FOR KEY SHARE` lock the votes' foreign key check takes, so
///   two votes on one post wait for each other instead of deadlocking.
///
/// Either way the event gets its id, and a vote its count, after the post's previous writer
/// committed, as before. The shared writers' lock (one per transaction) stays: readers still
/// wait through it for the events being written. SQLite has one writer at a time and nothing
/// to change.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_functions(manager, row_lock).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_functions(manager, post_lock).await
    }
}

/// Replaces the trigger function of every recording about a post, with `lock` ordering the
/// post's writers.
async fn replace_functions(
    manager: &SchemaManager<'_>,
    lock: fn(&Recording) -> String,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for recording in recordings().iter().filter(|r| r.post.is_some()) {
        let function = trigger_function(recording, &lock(recording));
        db.execute_unprepared(&format!("CREATE OR REPLACE {function}"))
            .await?;
    }
    Ok(())
}

/// The lock of the recording's post row, for the writes that do not hold it already (the
/// votes'): taken without a row seen (a post deleted in the same statement) it is nothing.
pub(crate) fn row_lock(recording: &Recording) -> String {
    match recording.post {
        Some(post) if recording.table != "posts" => {
            format!("PERFORM 1 FROM posts WHERE id = {post} FOR NO KEY UPDATE;")
        }
        _ => String::new(),
    }
}
