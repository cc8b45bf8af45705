use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

use crate::{
    m20261121_000001_create_users::Users,
    m20261121_000002_create_posts::Posts,
    m20261130_000011_create_events::{PUBLISHED_POST, PostColumns, recordings_of},
    m20261207_000012_session_generations::{add, drop_column},
    m20261207_000019_profiles::{OWNER_PROFILE, replace_post_recordings},
};

/// Moderation: a post can be hidden (with the reason its owner is shown), an account
/// suspended (with a reason, until a time or for good), and every role change, hide, restore,
/// suspension and lift is appended to `moderation_log`.
///
/// - Anyone but its owner sees a post only while it is published and not hidden: the events'
///   triggers record that as whether the post is public, and a post's events carry `hidden`
///   and `hidden_reason` for its owner. The listing's covering index carries `hidden`, so that
///   pages and searches still read only the index to filter.
/// - `moderation_log` names people and posts by id with their handle and title as they were,
///   with no foreign key (an entry outlives what it names), and refuses every `UPDATE` and
///   `DELETE` with a trigger: it is appended to, never changed.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// A hidden post is public to no one.
const MODERATED_POST: PostColumns = PostColumns {
    public: "({row}.published AND NOT {row}.hidden)",
    columns: ", hidden, hidden_reason",
    values: ", NEW.hidden, NEW.hidden_reason",
    nulls: ", NULL, NULL",
};

const APPEND_ONLY: &str = "the moderation log is append-only";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        add(
            manager,
            Users::Table,
            timestamp_with_time_zone_null(Moderation::SuspendedUntil),
        )
        .await?;
        add(
            manager,
            Users::Table,
            text_null(Moderation::SuspensionReason),
        )
        .await?;
        add(
            manager,
            Posts::Table,
            boolean(Moderation::Hidden).default(false),
        )
        .await?;
        add(manager, Posts::Table, text_null(Moderation::HiddenReason)).await?;
        add(manager, Events::Table, boolean_null(Moderation::Hidden)).await?;
        add(manager, Events::Table, text_null(Moderation::HiddenReason)).await?;
        listing_index(db, backend, true).await?;
        replace_post_recordings(db, backend, &recordings_of(&OWNER_PROFILE, &MODERATED_POST))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ModerationLog::Table)
                    .col(big_pk_auto(ModerationLog::Id))
                    .col(timestamp_with_time_zone(ModerationLog::At))
                    .col(string_len(ModerationLog::Action, 32))
                    .col(big_integer_null(ModerationLog::ActorId))
                    .col(string_len_null(ModerationLog::ActorHandle, 30))
                    .col(big_integer(ModerationLog::UserId))
                    .col(string_len(ModerationLog::UserHandle, 30))
                    .col(big_integer_null(ModerationLog::PostId))
                    .col(string_len_null(ModerationLog::PostTitle, 200))
                    .col(text_null(ModerationLog::Reason))
                    .col(string_len_null(ModerationLog::Role, 16))
                    .col(timestamp_with_time_zone_null(ModerationLog::Until))
                    .to_owned(),
            )
            .await?;
        if backend == DbBackend::Postgres {
            db.execute_unprepared(&format!(
                "CREATE FUNCTION moderation_log_append_only() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
            ))
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER moderation_log_append_only BEFORE UPDATE OR DELETE ON \
                 moderation_log FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only()",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER moderation_log_not_truncated BEFORE TRUNCATE ON moderation_log \
                 FOR EACH STATEMENT EXECUTE FUNCTION moderation_log_append_only()",
            )
            .await?;
        } else {
            for operation in ["UPDATE", "DELETE"] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER moderation_log_no_{} BEFORE {operation} ON moderation_log \
                     BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
                    operation.to_lowercase()
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        // Dropping the table drops its triggers; PostgreSQL keeps the function.
        manager
            .drop_table(Table::drop().table(ModerationLog::Table).to_owned())
            .await?;
        if backend == DbBackend::Postgres {
            db.execute_unprepared("DROP FUNCTION moderation_log_append_only()")
                .await?;
        }
        replace_post_recordings(db, backend, &recordings_of(&OWNER_PROFILE, &PUBLISHED_POST))
            .await?;
        listing_index(db, backend, false).await?;
        drop_column(manager, Events::Table, Moderation::HiddenReason).await?;
        drop_column(manager, Events::Table, Moderation::Hidden).await?;
        drop_column(manager, Posts::Table, Moderation::HiddenReason).await?;
        drop_column(manager, Posts::Table, Moderation::Hidden).await?;
        drop_column(manager, Users::Table, Moderation::SuspensionReason).await?;
        drop_column(manager, Users::Table, Moderation::SuspendedUntil).await
    }
}

/// Re-creates the listing's covering index (`m20261121_000007`), carrying `hidden` or not.
async fn listing_index(
    db: &impl ConnectionTrait,
    backend: DbBackend,
    with_hidden: bool,
) -> Result<(), DbErr> {
    let hidden = if with_hidden { "hidden, " } else { "" };
    let create = if backend == DbBackend::Postgres {
        format!(
            "CREATE INDEX idx_posts_newest_searchable ON posts \
             (created_at DESC, id DESC) INCLUDE (published, {hidden}owner_id, title_lower)"
        )
    } else {
        format!(
            "CREATE INDEX idx_posts_newest_searchable ON posts \
             (created_at DESC, id DESC, published, {hidden}owner_id, title_lower)"
        )
    };
    // In one call: as a call of its own, the `CREATE` can be prepared on a pooled SQLite
    // connection whose schema still holds the index ("already exists").
    db.execute_unprepared(&format!("DROP INDEX idx_posts_newest_searchable; {create}"))
        .await?;
    Ok(())
}

#[derive(DeriveIden, Clone, Copy)]
enum Moderation {
    SuspendedUntil,
    SuspensionReason,
    Hidden,
    HiddenReason,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum ModerationLog {
    Table,
    Id,
    At,
    Action,
    ActorId,
    ActorHandle,
    UserId,
    UserHandle,
    PostId,
    PostTitle,
    Reason,
    Role,
    Until,
}
