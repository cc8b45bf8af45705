use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

use crate::{
    m20261130_000011_create_events::{
        OwnerColumns, PUBLISHED_POST, Recording, recordings, recordings_of, statement,
        trigger_function, trigger_name,
    },
    m20261207_000012_session_generations::{add, drop_column},
    m20261207_000014_event_row_locks::row_lock,
};

/// Profiles: what everyone may see of a person, apart from their email, which only its owner
/// sees from now on.
///
/// - `users.handle`, unique, lower-case: every existing account gets `user_` and twelve
///   random hex digits, which tell nothing of its address. An account inserted without one
///   (a bulk load through `psql`) gets one the same way: a column default on PostgreSQL, a
///   trigger on SQLite (whose `ALTER TABLE` takes no such default).
/// - `users.display_name`, unset at first, and `users.role`, `member` for everyone.
/// - A post's events record its owner's profile instead of the email (existing ones are
///   rewritten, their emails dropped), and a change of handle or display name records one
///   `profile.updated` event.
///
/// `down` puts the emails back into the events and drops the rest.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The owner as a post's events record it from now on.
pub(crate) const OWNER_PROFILE: OwnerColumns = OwnerColumns {
    columns: "owner_handle, owner_display_name, owner_created_at",
    values: "u.handle, u.display_name, u.created_at",
    nulls: "NULL, NULL, NULL",
};

/// A handle nobody chose: `user_` and 48 random bits, as lower-case hex.
fn random_handle(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "('user_' || substr(md5(gen_random_uuid()::text), 1, 12))",
        _ => "('user_' || lower(hex(randomblob(6))))",
    }
}

/// Where the SQLite trigger that gives a handle to an account inserted without one lives.
const SQLITE_HANDLE_TRIGGER: &str = "users_insert_handle";

/// The change of a profile, recorded for every subscriber. (A handle given by SQLite's
/// trigger to an account inserted without one is no change.)
fn profile_recording() -> Recording {
    Recording {
        table: "users",
        operation: "UPDATE",
        post: None,
        into: "INSERT INTO events (kind, owner_id, public_before, public_after, owner_handle, \
               owner_display_name, owner_created_at)"
            .into(),
        rows: "SELECT 'profile.updated', NEW.id, TRUE, TRUE, NEW.handle, NEW.display_name, \
               NEW.created_at WHERE OLD.handle IS NOT NULL AND (NEW.handle IS DISTINCT FROM OLD.handle \
               OR NEW.display_name IS DISTINCT FROM OLD.display_name)"
            .into(),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        add_profile_columns(manager, backend).await?;
        for column in [
            ColumnDef::new(Events::OwnerHandle)
                .string_len(30)
                .null()
                .to_owned(),
            ColumnDef::new(Events::OwnerDisplayName)
                .string_len(50)
                .null()
                .to_owned(),
        ] {
            add(manager, Events::Table, column).await?;
        }
        db.execute_unprepared(
            "UPDATE events SET owner_handle = (SELECT handle FROM users WHERE id = events.owner_id), \
             owner_display_name = (SELECT display_name FROM users WHERE id = events.owner_id) \
             WHERE owner_email IS NOT NULL",
        )
        .await?;
        replace_post_recordings(db, backend, &recordings_of(&OWNER_PROFILE, &PUBLISHED_POST))
            .await?;
        drop_column(manager, Events::Table, Events::OwnerEmail).await?;
        create_profile_trigger(db, backend).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        drop_profile_trigger(db, backend).await?;
        db.execute_unprepared("DELETE FROM events WHERE kind = 'profile.updated'")
            .await?;
        add(
            manager,
            Events::Table,
            ColumnDef::new(Events::OwnerEmail).string_len(254).null(),
        )
        .await?;
        db.execute_unprepared(
            "UPDATE events SET owner_email = (SELECT email FROM users WHERE id = events.owner_id) \
             WHERE owner_handle IS NOT NULL",
        )
        .await?;
        replace_post_recordings(db, backend, &recordings()).await?;
        drop_column(manager, Events::Table, Events::OwnerDisplayName).await?;
        drop_column(manager, Events::Table, Events::OwnerHandle).await?;
        if backend != DbBackend::Postgres {
            db.execute_unprepared(&format!("DROP TRIGGER {SQLITE_HANDLE_TRIGGER}"))
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_handle")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Users::Role, Users::DisplayName, Users::Handle] {
            drop_column(manager, Users::Table, column).await?;
        }
        Ok(())
    }
}

async fn add_profile_columns(manager: &SchemaManager<'_>, backend: DbBackend) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let handle = random_handle(backend);
    let mut handle_column = ColumnDef::new(Users::Handle);
    handle_column.string_len(30);
    if backend == DbBackend::Postgres {
        // A volatile default is evaluated for each existing row as the column is added.
        handle_column.not_null().default(Expr::cust(handle));
    } else {
        handle_column.null();
    }
    for column in [
        handle_column,
        ColumnDef::new(Users::DisplayName)
            .string_len(50)
            .null()
            .to_owned(),
        ColumnDef::new(Users::Role)
            .string_len(16)
            .not_null()
            .default("member")
            .to_owned(),
    ] {
        add(manager, Users::Table, column).await?;
    }
    if backend != DbBackend::Postgres {
        db.execute_unprepared(&format!("UPDATE users SET handle = {handle}"))
            .await?;
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {SQLITE_HANDLE_TRIGGER} AFTER INSERT ON users FOR EACH ROW \
             WHEN NEW.handle IS NULL BEGIN \
             UPDATE users SET handle = {handle} WHERE id = NEW.id; END"
        ))
        .await?;
    }
    manager
        .create_index(
            Index::create()
                .name("idx_users_handle")
                .table(Users::Table)
                .col(Users::Handle)
                .unique()
                .to_owned(),
        )
        .await
}

/// Makes the triggers of a post's events record `recordings` (the post-row lock of
/// `m20261207_000014` ordering the writers on PostgreSQL, as before).
pub(crate) async fn replace_post_recordings(
    db: &impl ConnectionTrait,
    backend: DbBackend,
    recordings: &[Recording],
) -> Result<(), DbErr> {
    for recording in recordings.iter().filter(|r| r.post.is_some()) {
        let name = trigger_name(recording);
        if backend == DbBackend::Postgres {
            let function = trigger_function(recording, &row_lock(recording));
            db.execute_unprepared(&format!("CREATE OR REPLACE {function}"))
                .await?;
        } else {
            // In one call: as a call of its own, the `CREATE` can be prepared on a pooled
            // connection whose schema still holds the trigger ("already exists").
            db.execute_unprepared(&format!(
                "DROP TRIGGER {name}; \
                 CREATE TRIGGER {name} AFTER {} ON {} FOR EACH ROW BEGIN {} END",
                recording.operation,
                recording.table,
                statement(recording)
            ))
            .await?;
        }
    }
    Ok(())
}

/// Only a change of what a profile shows records an event.
const PROFILE_CHANGE: &str = "AFTER UPDATE OF handle, display_name ON users FOR EACH ROW";

async fn create_profile_trigger(
    db: &impl ConnectionTrait,
    backend: DbBackend,
) -> Result<(), DbErr> {
    let recording = profile_recording();
    let name = trigger_name(&recording);
    if backend == DbBackend::Postgres {
        db.execute_unprepared(&format!("CREATE {}", trigger_function(&recording, "")))
            .await?;
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {name} {PROFILE_CHANGE} EXECUTE FUNCTION {name}()"
        ))
        .await?;
    } else {
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {name} {PROFILE_CHANGE} BEGIN {} END",
            statement(&recording)
        ))
        .await?;
    }
    Ok(())
}

async fn drop_profile_trigger(db: &impl ConnectionTrait, backend: DbBackend) -> Result<(), DbErr> {
    let name = trigger_name(&profile_recording());
    if backend == DbBackend::Postgres {
        db.execute_unprepared(&format!("DROP TRIGGER {name} ON users"))
            .await?;
        db.execute_unprepared(&format!("DROP FUNCTION {name}()"))
            .await?;
    } else {
        db.execute_unprepared(&format!("DROP TRIGGER {name}"))
            .await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Handle,
    DisplayName,
    Role,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OwnerEmail,
    OwnerHandle,
    OwnerDisplayName,
}
