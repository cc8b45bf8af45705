//! Findings of the security audit, held: migrations and seeding free of the requests'
//! statement timeout.

use std::time::Duration;

use api_tests::{Backend, TestApp};
use sea_orm::ConnectionTrait;

/// How long the lock is held: past the requests' 15 s statement timeout.
const PAST_THE_STATEMENT_TIMEOUT: Duration = Duration::from_millis(16_500);

/// Holds an exclusive lock on every table of the app's PostgreSQL database for longer than
/// the requests' statement timeout, while `work` runs against it; returns what `work` did.
async fn with_tables_locked<T>(
    app: &TestApp,
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T>
where
    T: Send + 'static,
{
    use sea_orm::TransactionTrait;
    let db = app.database().await;
    let locker = db.begin().await.expect("a transaction to hold the locks");
    let tables = api_tests::query_strings(
        &db,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename <> 'seaql_migrations'",
    )
    .await;
    locker
        .execute_unprepared(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            tables.join(", ")
        ))
        .await
        .expect("the tables are locked");
    let work = tokio::spawn(work);
    tokio::time::sleep(PAST_THE_STATEMENT_TIMEOUT).await;
    locker.commit().await.expect("the locks are released");
    work.await.expect("the work did not panic")
}

fn maintenance_settings(app: &TestApp) -> api::Settings {
    api::Settings {
        database_url: app.database_url.clone(),
        bcrypt_cost: 4,
        database_max_connections: 2,
        ..api::Settings::default()
    }
}

/// A migration that waits (as one rewriting a large table runs) past the requests' statement
/// timeout still completes: `api migrate` is not cut off at 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_outlasting_the_statement_timeout_completes() {
    let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    let settings = maintenance_settings(&app);
    let rolled_back = with_tables_locked(&app, async move {
        api::migrate(&settings, api::MigrateAction::Down).await
    })
    .await;
    let lines = rolled_back.unwrap_or_else(|err| panic!("the migration failed: {err:#}"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Pending")).count(),
        1,
        "{lines:?}"
    );
}

/// `api seed` waiting past the requests' statement timeout still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_outlasting_the_statement_timeout_completes() {
    let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    let settings = maintenance_settings(&app);
    let seeded = with_tables_locked(&app, async move {
        let counts = service::seed::SeedCounts {
            users: 3,
            posts: 5,
            votes: 5,
        };
        api::seed(&settings, counts, "password123", |_, _, _| {}).await
    })
    .await;
    seeded.unwrap_or_else(|err| panic!("seeding failed: {err:#}"));
    let db = app.database().await;
    assert_eq!(
        api_tests::query_i64(&db, "SELECT COUNT(*) FROM users").await,
        3
    );
}
