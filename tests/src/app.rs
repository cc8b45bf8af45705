//! The application under test: started on port 0 against a database of its own.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde_json::Value;

use crate::client::ApiClient;
use crate::databases::{Backend, TestDatabase, open_database};
use crate::random::random_string;

/// A running application on its own database, with a client to talk to it (its
/// [`ApiClient`], through `Deref`).
///
/// Dropping it stops the server; the database goes when the last application using it
/// (see [`TestApp::spawn_sibling`]) is dropped.
pub struct TestApp {
    api: ApiClient,
    pub backend: Backend,
    /// The JWT secret the application was configured with, to forge tokens in tests.
    pub secret: String,
    /// The URL of the application's database, for the test's own connections (the
    /// application may reach it through a pooler).
    pub database_url: String,
    /// The URL the application itself connects to (a pooler's, or the database's).
    pub service_database_url: String,
    /// How many read replicas the application is configured with.
    pub replicas: usize,
    database: Arc<TestDatabase>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    /// Starts the application on a fresh database. Panics if the backend is unreachable.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings changed by `customize` after the test
    /// defaults are filled in.
    pub async fn spawn_with(
        backend: Backend,
        customize: impl FnOnce(&mut api::Settings),
    ) -> TestApp {
        match TestDatabase::create(backend).await {
            Ok(database) => Self::start(Arc::new(database), random_string(48), customize).await,
            Err(reason) => panic!("{reason}"),
        }
    }

    /// Like [`TestApp::spawn`], but returns `None` (after saying so on stderr) when
    /// PostgreSQL is not reachable and `TEST_REQUIRE_POSTGRES` is not `1`.
    pub async fn spawn_or_skip(backend: Backend) -> Option<TestApp> {
        let database = TestDatabase::create_or_skip(backend).await?;
        Some(Self::spawn_on(database).await)
    }

    /// Starts the application on a database the test made (see [`TestDatabase`]).
    pub async fn spawn_on(database: TestDatabase) -> TestApp {
        Self::start(Arc::new(database), random_string(48), |_| {}).await
    }

    /// A second instance of the application on the same database and with the same
    /// secret, as when the service runs behind a load balancer.
    pub async fn spawn_sibling(&self) -> TestApp {
        self.spawn_sibling_with(|_| {}).await
    }

    /// Like [`TestApp::spawn_sibling`], with settings changed by `customize`.
    pub async fn spawn_sibling_with(&self, customize: impl FnOnce(&mut api::Settings)) -> TestApp {
        Self::start(Arc::clone(&self.database), self.secret.clone(), customize).await
    }

    async fn start(
        database: Arc<TestDatabase>,
        secret: String,
        customize: impl FnOnce(&mut api::Settings),
    ) -> TestApp {
        let database_url = database.url().to_owned();
        let mut settings = api::Settings {
            database_url: database.service_url().to_owned(),
            port: 0,
            bcrypt_cost: 4,
            secret_key: Some(secret.clone().into()),
            // Tests run in parallel against one PostgreSQL server: keep each pool small.
            database_max_connections: 5,
            // Suites register many accounts from one address, and write a lot from one
            // account; a test of each limit sets it.
            register_max_per_address: 0,
            writes_per_minute: 0,
            ..api::Settings::default()
        };
        if database.pooled() {
            // As a pooled deployment runs: live events listen on a direct connection.
            settings.database_pool_mode = api::PoolMode::Transaction;
            settings.database_listen_url = Some(database_url.clone());
        }
        settings.database_replica_url = database.replica_url().into_iter().collect();
        customize(&mut settings);
        let replicas = settings.database_replica_url.len();
        let service_database_url = settings.database_url.clone();
        let app = api::Application::build(settings)
            .await
            .unwrap_or_else(|err| {
                panic!("the application did not build on {database_url}: {err:#}")
            });
        let address = format!("http://127.0.0.1:{}", app.port());
        let server = tokio::spawn(app.run_until_stopped());
        TestApp {
            api: ApiClient::new(address, Duration::from_secs(60)),
            backend: database.backend(),
            secret,
            database_url,
            service_database_url,
            replicas,
            database,
            server,
        }
    }

    /// Drops the PostgreSQL database under the running application, so that it finds
    /// its database unreachable. Panics on SQLite, whose open files cannot be taken away.
    pub async fn make_database_unreachable(&self) {
        self.database.drop_under_its_users().await;
    }

    /// Gives the account of `email` `role` (`member`, `moderator`, `admin`) as `api admin
    /// grant` does, on the application's database; returns what it prints.
    pub async fn grant(&self, email: &str, role: &str) -> String {
        let settings = api::Settings {
            database_url: self.database_url.clone(),
            database_max_connections: 1,
            ..api::Settings::default()
        };
        let action = api::AdminAction::Grant {
            email: email.to_owned(),
            role: role.to_owned(),
        };
        api::admin(&settings, action)
            .await
            .unwrap_or_else(|err| panic!("api admin grant {email} {role}: {err:#}"))
    }

    /// A connection of the test's own to the application's database.
    pub async fn database(&self) -> DatabaseConnection {
        open_database(&self.database_url).await
    }

    /// The claims of an access token this application issued, checked to be HS256 and
    /// signed with its secret.
    pub fn claims_of(&self, token: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("the token has a JWT header");
        assert_eq!(
            header.alg,
            jsonwebtoken::Algorithm::HS256,
            "tokens are signed with HS256"
        );
        jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(self.secret.as_bytes()),
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        )
        .expect("the token verifies with the application's secret")
        .claims
    }
}

/// Production mode, with the mail settings it requires: mail goes to a port where nothing
/// listens (tests in production mode read no mail; the outbox keeps it and retries quietly).
pub fn production(settings: &mut api::Settings) {
    settings.app_env = api::AppEnv::Production;
    settings.smtp_url = Some("smtp://127.0.0.1:1".to_owned().into());
    settings.mail_from = Some("noreply@example.org".into());
    settings.public_url = Some("https://app.example.org".into());
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
