//! Databases made for one test, and connections of the test's own to them.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use crate::random::random_name;

/// The administrative PostgreSQL URL used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database the application under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

enum DatabaseKind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

/// A database made for one test (a SQLite file in a directory of its own, or a PostgreSQL
/// database), removed when dropped, panics included.
///
/// With `TEST_POOLER_URL` set (a transaction-mode pooler in front of `TEST_DATABASE_URL`'s
/// server, as `tests/cluster/run` starts one), the service reaches a PostgreSQL database
/// through the pooler, and the test's own checks go to the server directly.
pub struct TestDatabase {
    backend: Backend,
    url: String,
    service_url: String,
    kind: DatabaseKind,
}

impl TestDatabase {
    /// Creates the database, or says why PostgreSQL could not be reached.
    pub async fn create(backend: Backend) -> Result<TestDatabase, String> {
        Self::create_with(backend, "").await
    }

    /// Creates a PostgreSQL database whose collation is ICU's for `icu_locale` (such as
    /// `en-US`), where `LOWER` may make a string longer; `None` as in
    /// [`TestDatabase::create_or_skip`].
    pub async fn create_icu_or_skip(icu_locale: &str) -> Option<TestDatabase> {
        let options = format!(
            " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' LOCALE 'C.UTF-8'"
        );
        or_skip(Self::create_with(Backend::Postgres, &options).await)
    }

    /// Creates the database; on PostgreSQL with `options` after `CREATE DATABASE name`.
    async fn create_with(backend: Backend, options: &str) -> Result<TestDatabase, String> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("api-tests-")
                    .tempdir()
                    .expect("the temporary directory is created");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
                Ok(TestDatabase {
                    backend,
                    service_url: url.clone(),
                    url,
                    kind: DatabaseKind::Sqlite { _dir: dir },
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
                let admin = connect_admin(&admin_url)
                    .await
                    .map_err(|err| format!("PostgreSQL not reachable at {admin_url}: {err}"))?;
                let name = format!("apitest_{}", random_name());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\"{options}"))
                    .await
                    .unwrap_or_else(|err| panic!("could not create database {name}: {err}"));
                let _ = admin.close().await;
                let url = with_database(&admin_url, &name, "TEST_DATABASE_URL")?;
                let service_url = match std::env::var("TEST_POOLER_URL") {
                    Ok(pooler) => with_database(&pooler, &name, "TEST_POOLER_URL")?,
                    Err(_) => url.clone(),
                };
                Ok(TestDatabase {
                    backend,
                    url,
                    service_url,
                    kind: DatabaseKind::Postgres { admin_url, name },
                })
            }
        }
    }

    /// Like [`TestDatabase::create`], but returns `None` (after saying so on stderr) when
    /// PostgreSQL is not reachable and `TEST_REQUIRE_POSTGRES` is not `1`.
    pub async fn create_or_skip(backend: Backend) -> Option<TestDatabase> {
        or_skip(Self::create(backend).await)
    }

    /// The URL of the database itself, for the test's own connections.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL the application connects to: the database's own, or the pooler's.
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// The database on `TEST_REPLICA_URL`'s replica, when that is set, for the application's
    /// page reads.
    pub fn replica_url(&self) -> Option<String> {
        let DatabaseKind::Postgres { name, .. } = &self.kind else {
            return None;
        };
        let replica = std::env::var("TEST_REPLICA_URL").ok()?;
        Some(with_database(&replica, name, "TEST_REPLICA_URL").expect("a valid TEST_REPLICA_URL"))
    }

    /// Whether the application reaches the database through a transaction-mode pooler.
    pub fn pooled(&self) -> bool {
        self.service_url != self.url
    }

    /// Which database this is.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Drops the PostgreSQL database while applications still use it (see
    /// [`crate::TestApp::make_database_unreachable`]). Panics on SQLite, whose open files
    /// cannot be taken away.
    pub(crate) async fn drop_under_its_users(&self) {
        match &self.kind {
            DatabaseKind::Postgres { admin_url, name } => {
                let admin = connect_admin(admin_url)
                    .await
                    .expect("the PostgreSQL admin connection opens");
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("the test database is dropped");
                let _ = admin.close().await;
            }
            DatabaseKind::Sqlite { .. } => panic!("a SQLite database cannot be made unreachable"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A SQLite database's directory removes itself.
        if let DatabaseKind::Postgres { admin_url, name } = &self.kind {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            // Drop cannot await, and may run inside a runtime: use a thread of our own.
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for dropping the test database");
                runtime.block_on(async {
                    if let Ok(admin) = connect_admin(&admin_url).await {
                        if let Err(err) = admin.execute_unprepared(&sql).await {
                            eprintln!("could not run `{sql}`: {err}");
                        }
                        let _ = admin.close().await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}

/// `url` naming the database `name` instead; `variable` is where `url` came from.
fn with_database(url: &str, name: &str, variable: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(url).map_err(|err| format!("{variable} {url:?}: {err}"))?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// The database made, or `None` (after saying so on stderr) when PostgreSQL is not reachable
/// and `TEST_REQUIRE_POSTGRES` is not `1`.
fn or_skip(created: Result<TestDatabase, String>) -> Option<TestDatabase> {
    match created {
        Ok(database) => Some(database),
        Err(reason) if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{reason} (TEST_REQUIRE_POSTGRES=1)")
        }
        Err(reason) => {
            eprintln!("skipping: {reason}");
            None
        }
    }
}

async fn connect_admin(admin_url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let connection = Database::connect(options).await?;
    // The pool may connect lazily: make sure the server answers now.
    connection.execute_unprepared("SELECT 1").await?;
    Ok(connection)
}

/// Opens a small pool of the test's own on `url` (a SQLite file or a PostgreSQL database),
/// to check what the service stored without asking the service.
pub async fn open_database(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|err| panic!("the test cannot open {url}: {err}"))
}
