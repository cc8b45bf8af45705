//! The HTTP face of the social API: typed poem-openapi endpoints, request and response
//! objects, the security scheme, configuration and start-up. No SQL lives here; every rule
//! is a call into the `service` crate.

mod body;
mod endpoints;
mod observe;
mod problem;
mod routes;
mod schemas;
mod security;
mod server;
mod settings;
mod state;

use std::time::Duration;

use anyhow::Context;
use migration::MigratorTrait;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use service::{
    Database,
    accounts::{Accounts, LoginThrottle},
    database::{self, DatabaseOptions},
    passwords::Passwords,
    tokens::Tokens,
};

use observe::TrustedProxies;
pub use routes::{MAX_BODY_BYTES, openapi_json, openapi_yaml};
pub use settings::{AppEnv, LogFormat, Settings};
use state::AppState;

/// A service bound to its address, ready to run.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
    settings: Settings,
}

impl Application {
    /// Connects to the database, runs pending migrations (unless turned off) and binds the
    /// listener, so that [`Application::port`] is known before serving (port 0 picks one).
    ///
    /// # Errors
    /// A one-line reason: a missing secret in production, an unreachable database, a failed
    /// migration, an address in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let secret = settings.signing_secret()?;
        let passwords = Passwords::new(settings.bcrypt_cost, settings.bcrypt_permits())?;
        passwords.prepare();
        let accounts = Accounts::new(
            passwords,
            Tokens::new(&secret, settings.token_lifetime()),
            LoginThrottle {
                max_failures: settings.login_max_failures,
                max_failures_per_address: settings.login_max_failures_per_address,
                window: settings.login_window(),
            },
        );
        let db = Database::open(&database_options(&settings))
            .await
            .with_context(|| cannot_open(&settings))?;
        if settings.migrate_on_start {
            migration::run_pending(&db)
                .await
                .context("cannot migrate the database")?;
        }
        let acceptor = TcpListener::bind(format!("{}:{}", settings.host, settings.port))
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .context("the listener has no TCP address")?;
        tracing::info!(
            address = %format!("http://{}:{port}", settings.host),
            database = %settings.database_backend(),
            mode = ?settings.app_env,
            "serving; docs at /docs"
        );
        Ok(Self {
            acceptor,
            port,
            state: AppState { db, accounts },
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C, then stops accepting and lets in-flight requests
    /// finish within the grace period. Connections are capped and timed (see [`server`]); the
    /// metrics listener, when separate, has the same timeouts and a cap of its own.
    ///
    /// # Errors
    /// A limit is out of range (zero), or the listener fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let limits = server::Limits::from_settings(&self.settings)?;
        let proxies = TrustedProxies::new(
            self.settings
                .trusted_proxies
                .iter()
                .filter_map(|a| a.trim().parse().ok())
                .collect(),
        );
        let metrics_listener = match (self.settings.metrics_enabled, &self.settings.metrics_listen)
        {
            (true, Some(address)) => {
                let metrics = routes::metrics_endpoint(self.state.db.clone());
                let listener = TcpListener::bind(address.clone());
                let limits = server::Limits {
                    max_connections: server::METRICS_MAX_CONNECTIONS,
                    ..limits
                };
                Some(tokio::spawn(async move {
                    let served = match listener.into_acceptor().await {
                        Ok(acceptor) => {
                            server::serve(acceptor, metrics, limits, std::future::pending(), None)
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = served {
                        tracing::error!(%err, "the metrics listener failed");
                    }
                }))
            }
            _ => None,
        };
        let upkeep = self
            .settings
            .metrics_enabled
            .then(|| tokio::spawn(observe::metrics_upkeep()));
        let app = routes::app(&self.settings, self.state, proxies);
        let grace = Duration::from_secs(self.settings.shutdown_grace_seconds);
        let served =
            server::serve(self.acceptor, app, limits, shutdown_signal(), Some(grace)).await;
        for task in [upkeep, metrics_listener].into_iter().flatten() {
            task.abort();
        }
        served
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn connect(settings: &Settings) -> anyhow::Result<service::DatabaseConnection> {
    database::connect(&database_options(settings))
        .await
        .with_context(|| cannot_open(settings))
}

fn database_options(settings: &Settings) -> DatabaseOptions {
    DatabaseOptions {
        url: settings.database_url.clone(),
        max_connections: settings.database_max_connections,
        acquire_timeout: Duration::from_secs(settings.database_acquire_timeout_seconds),
    }
}

fn cannot_open(settings: &Settings) -> String {
    format!(
        "cannot open the {} database (check DATABASE_URL)",
        settings.database_backend()
    )
}

/// What `api migrate` does.
#[derive(Clone, Copy, Debug, clap::Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last applied migration.
    Down,
    /// List the migrations and whether each is applied.
    Status,
    /// Drop every table and migrate from scratch (destroys all data).
    Fresh,
}

/// Runs a migration command on the configured database; returns lines to print.
///
/// # Errors
/// The database cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<Vec<String>> {
    let db = connect(settings).await?;
    match action {
        MigrateAction::Up => migration::Migrator::up(&db, None).await?,
        MigrateAction::Down => migration::Migrator::down(&db, Some(1)).await?,
        MigrateAction::Fresh => migration::Migrator::fresh(&db).await?,
        MigrateAction::Status => {}
    }
    let lines = migration::Migrator::get_migration_with_status(&db)
        .await?
        .iter()
        .map(|m| format!("{:<10} {}", m.status().to_string(), m.name()))
        .collect();
    Ok(lines)
}

/// Fills the configured (and migrated) database with demo data; see `service::seed`.
///
/// # Errors
/// Invalid counts, an unreachable database, or a failed insert.
pub async fn seed(
    settings: &Settings,
    counts: service::seed::SeedCounts,
    password: &str,
    progress: impl FnMut(service::seed::SeedTable, u64, u64),
) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    migration::run_pending(&db).await?;
    let password_hash = Passwords::new(settings.bcrypt_cost, 1)?
        .hash(password)
        .await?;
    service::seed::seed(&db, counts, &password_hash, progress).await?;
    Ok(())
}
