//! Every schema change of the social API, in order. Each step rolls back with `down`.
//!
//! Foreign keys are declared inside `CREATE TABLE`: SQLite cannot add them later.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseConnection, DatabaseTransaction};

mod m20261121_000001_create_users;
mod m20261121_000002_create_posts;
mod m20261121_000003_create_votes;
mod m20261121_000004_create_login_failures;
mod m20261121_000005_index_post_titles;
mod m20261121_000006_login_failures_client_address;
mod m20261121_000007_search_covering_index;
mod m20261130_000008_create_registrations;
mod m20261130_000009_create_sessions;
mod m20261130_000010_post_versions;
mod m20261130_000011_create_events;
mod m20261207_000012_session_generations;
mod m20261207_000013_write_limits;
mod m20261207_000014_event_row_locks;
mod m20261207_000015_email_skeletons;
mod m20261207_000016_title_lower_text;
mod m20261207_000017_event_stream_leases;
mod m20261207_000018_replay_starts;
mod m20261207_000019_profiles;
mod m20261207_000020_mail_outbox;
mod m20261207_000021_password_resets;
mod m20261207_000022_limit_hits;
mod m20261207_000023_moderation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_posts::Migration),
            Box::new(m20261121_000003_create_votes::Migration),
            Box::new(m20261121_000004_create_login_failures::Migration),
            Box::new(m20261121_000005_index_post_titles::Migration),
            Box::new(m20261121_000006_login_failures_client_address::Migration),
            Box::new(m20261121_000007_search_covering_index::Migration),
            Box::new(m20261130_000008_create_registrations::Migration),
            Box::new(m20261130_000009_create_sessions::Migration),
            Box::new(m20261130_000010_post_versions::Migration),
            Box::new(m20261130_000011_create_events::Migration),
            Box::new(m20261207_000012_session_generations::Migration),
            Box::new(m20261207_000013_write_limits::Migration),
            Box::new(m20261207_000014_event_row_locks::Migration),
            Box::new(m20261207_000015_email_skeletons::Migration),
            Box::new(m20261207_000016_title_lower_text::Migration),
            Box::new(m20261207_000017_event_stream_leases::Migration),
            Box::new(m20261207_000018_replay_starts::Migration),
            Box::new(m20261207_000019_profiles::Migration),
            Box::new(m20261207_000020_mail_outbox::Migration),
            Box::new(m20261207_000021_password_resets::Migration),
            Box::new(m20261207_000022_limit_hits::Migration),
            Box::new(m20261207_000023_moderation::Migration),
        ]
    }
}

/// What the operator decides for the data an upgrade carries over.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The addresses of the accounts that exist when address verification is added count
    /// as verified (else they start unverified).
    pub trust_existing_emails: bool,
}

tokio::task_local! {
    static OPTIONS: Options;
}

/// Runs `migrating` (a [`Migrator`] call, or [`run_pending`]) with `options`.
pub async fn with_options<F: Future>(options: Options, migrating: F) -> F::Output {
    OPTIONS.scope(options, migrating).await
}

/// The options the running migration was given (the defaults outside [`with_options`]).
fn options() -> Options {
    OPTIONS.try_with(|options| *options).unwrap_or_default()
}

/// Applies every pending migration, with `options`. On PostgreSQL they run in one
/// transaction, as [`run_pending_in`] runs them.
///
/// # Errors
/// The database cannot be reached or a migration fails.
pub async fn run_pending(db: &DatabaseConnection, options: Options) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{DbBackend, TransactionTrait};

    if db.get_database_backend() != DbBackend::Postgres {
        return with_options(options, Migrator::up(db, None)).await;
    }
    let txn = db.begin().await?;
    run_pending_in(&txn, options).await?;
    txn.commit().await
}

/// Applies every pending migration in `txn`, a PostgreSQL transaction the caller commits,
/// with `options`. It first takes a transaction-scoped advisory lock, so that instances
/// starting together migrate one after the other instead of racing to create the same
/// tables.
///
/// # Errors
/// The database cannot be reached or a migration fails.
pub async fn run_pending_in(txn: &DatabaseTransaction, options: Options) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::ConnectionTrait;

    // Without the requests' statement timeout: a migration rewriting a large table, or an
    // instance waiting for another's, takes as long as it takes.
    txn.execute_unprepared("SET LOCAL statement_timeout = 0")
        .await?;
    // An arbitrary key naming "the social API's migrations".
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(7265462031)")
        .await?;
    with_options(options, Migrator::up(txn, None)).await
}
