//! The HTTP face of the social API: typed poem-openapi endpoints, request and response
//! objects, the security scheme, configuration and start-up. No SQL lives here; every rule
//! is a call into the `service` crate.

mod allowed_methods;
mod body;
mod client_address;
mod conditional;
mod cors;
mod endpoints;
mod fields;
mod observe;
mod openapi;
mod problem;
mod rate_limit;
mod routes;
mod schemas;
mod security;
mod server;
mod settings;
mod spec_headers;
mod state;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use migration::MigratorTrait;
use poem::listener::{Acceptor, TcpAcceptor};
use service::sea_orm::{ConnectionTrait, DbBackend, DbErr};
use service::{
    Database,
    accounts::{Accounts, Email, LoginThrottle, Passwords, Role},
    database::{self, Connection, DatabaseOptions},
    events::Feed,
    mail::{MailWorker, Outbox},
    posts::{Cursors, PostTags},
    sessions::Sessions,
};

use client_address::TrustedProxies;
pub use openapi::{openapi_json, openapi_yaml};
pub use routes::MAX_BODY_BYTES;
pub use service::database::PoolMode;
pub use settings::{AppEnv, LogFormat, Settings};
use state::AppState;

/// A service bound to its address, ready to run.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
    settings: Settings,
    proxies: TrustedProxies,
    mail_worker: MailWorker,
}

impl Application {
    /// Connects to the database, runs pending migrations (unless turned off) and binds the
    /// listener, so that [`Application::port`] is known before serving (port 0 picks one).
    ///
    /// # Errors
    /// A one-line reason: a missing or weak secret in production, an entry of
    /// `TRUSTED_PROXIES` that is no address or range, `REFRESH_TOKEN_EXPIRE_DAYS=0`, mail
    /// settings missing in production or malformed, an unreachable database, a failed
    /// migration, an address in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let secret = settings.signing_secret()?;
        let (outbox, mail_worker) =
            Outbox::new(&settings.mail_policy()?).map_err(|reason| anyhow::anyhow!(reason))?;
        let verification = settings.verification_policy()?;
        let recovery = settings.recovery_policy()?;
        let proxies = TrustedProxies::parse(&settings.trusted_proxies)?;
        let passwords = Passwords::new(settings.bcrypt_cost, settings.bcrypt_permits())?
            .with_max_wait(settings.bcrypt_max_wait());
        let sessions = Sessions::new(
            &secret,
            settings.token_lifetime(),
            settings.session_policy()?,
        );
        check_database_url(&settings)?;
        let db = Database::open(&database_options(&settings))
            .await
            .map_err(|err| database_error(&settings, &cannot_open(&settings), err))?;
        let accounts = Accounts::new(
            passwords,
            sessions,
            LoginThrottle {
                max_failures: settings.login_max_failures,
                max_failures_per_address: settings.login_max_failures_per_address,
                max_registrations_per_address: settings.register_max_per_address,
                window: settings.login_window(),
            },
            outbox,
            verification,
            recovery,
        );
        if settings.migrate_on_start {
            // On the service's own pool (a connection of its own would cost a start-up one
            // more connection to wait for): the migrations' transaction lifts the requests'
            // statement timeout for itself.
            run_migrations(db.connection(), migration_options(&settings))
                .await
                .map_err(|err| database_error(&settings, "cannot migrate the database", err))?;
        }
        let listen_url = settings.database_listen_url();
        if listen_url.is_none() && db.backend() == DbBackend::Postgres {
            tracing::warn!(
                "live events cannot LISTEN through a transaction-mode pooler and \
                 DATABASE_LISTEN_URL is unset: other instances' events arrive by the outbox's \
                 poll, within a second"
            );
        }
        let feed = Feed::start(
            &db,
            listen_url,
            settings.event_policy()?,
            Arc::new(schemas::LiveEvent::render),
        )
        .await
        .map_err(|err| anyhow::anyhow!("cannot read the event outbox: {err}"))?;
        let acceptor = server::listen(&format!("{}:{}", settings.host, settings.port))
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
            state: AppState {
                db,
                accounts,
                cursors: Cursors::new(&secret),
                tags: PostTags::new(&secret),
                writes_per_minute: settings.writes_per_minute,
                require_verified_email: settings.require_verified_email,
                feed,
            },
            settings,
            proxies,
            mail_worker,
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
        let proxies = self.proxies;
        let metrics_listener = match (self.settings.metrics_enabled, &self.settings.metrics_listen)
        {
            (true, Some(address)) => {
                let metrics = routes::metrics_endpoint(self.state.db.clone());
                let address = address.clone();
                let limits = server::Limits {
                    max_connections: server::METRICS_MAX_CONNECTIONS,
                    ..limits
                };
                Some(tokio::spawn(async move {
                    let served = match server::listen(&address).await {
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
        let feed = self.state.feed.clone();
        // Sends what the outbox holds, until serving ends (its drop stops it).
        let _mail_worker = self.mail_worker.start(self.state.db.clone());
        // Once serving: a hash at the production cost takes a core for a quarter of a second,
        // which start-up need not wait for.
        self.state.accounts.prepare();
        tokio::spawn(fill_look_alike_keys(self.state.db.clone()));
        let password_resets = {
            let (accounts, db) = (self.state.accounts.clone(), self.state.db.clone());
            tokio::spawn(async move { accounts.handle_password_resets(&db).await })
        };
        let app = routes::app(&self.settings, self.state, proxies);
        let grace = Duration::from_secs(self.settings.shutdown_grace_seconds);
        // Event streams never finish by themselves: they end as shutdown begins.
        let shutdown = async move {
            shutdown_signal().await;
            feed.stop();
        };
        let served = server::serve(self.acceptor, app, limits, shutdown, Some(grace)).await;
        password_resets.abort();
        for task in [upkeep, metrics_listener].into_iter().flatten() {
            task.abort();
        }
        served
    }
}

/// What the settings decide for the data an upgrade carries over.
fn migration_options(settings: &Settings) -> migration::Options {
    migration::Options {
        trust_existing_emails: settings.trust_existing_emails,
    }
}

/// Gives the accounts a bulk load inserted their look-alike keys, in the background.
async fn fill_look_alike_keys(db: Database) {
    match service::accounts::fill_look_alike_keys(&db).await {
        Ok(0) => {}
        Ok(filled) => tracing::info!(filled, "gave look-alike keys to accounts loaded without"),
        Err(err) => {
            tracing::warn!(%err, "cannot give accounts loaded without them look-alike keys")
        }
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

/// A pool for migrations and seeding, without the requests' statement timeout.
async fn connect_for_maintenance(settings: &Settings) -> anyhow::Result<Connection> {
    check_database_url(settings)?;
    database::connect_for_maintenance(&database_options(settings))
        .await
        .map_err(|err| database_error(settings, &cannot_open(settings), err))
}

fn database_options(settings: &Settings) -> DatabaseOptions {
    DatabaseOptions {
        url: settings.database_url.clone(),
        max_connections: settings.database_max_connections,
        acquire_timeout: Duration::from_secs(settings.database_acquire_timeout_seconds),
        statement_timeout: Duration::from_secs(settings.database_statement_timeout_seconds),
        pool_mode: settings.database_pool_mode,
        replica_urls: settings.database_replica_url.clone(),
    }
}

fn cannot_open(settings: &Settings) -> String {
    format!(
        "cannot open the {} database (check DATABASE_URL)",
        settings.database_backend()
    )
}

/// Refuses a URL whose password holds a character that ends the URL's authority (`/`, `?`,
/// `#`): a driver would read part of the password as the host, the port or the database
/// name, and might quote that part in an error.
fn check_database_url(settings: &Settings) -> anyhow::Result<()> {
    let Some(password) = database_url_password(&settings.database_url) else {
        return Ok(());
    };
    if password.contains(['/', '?', '#']) {
        anyhow::bail!(
            "cannot open the {} database: the password in DATABASE_URL must be \
             percent-encoded (`/` as %2F, `?` as %3F, `#` as %23, `@` as %40)",
            settings.database_backend()
        );
    }
    Ok(())
}

/// A database error as one line, `context: cause`, with no trace of `DATABASE_URL`'s
/// password: drivers and sea-orm quote the URL in some of their errors (an unsupported
/// scheme, a malformed URL), and the cause is printed and logged. The error keeps no
/// source, so that nothing printing its chain can reach the original.
fn database_error(
    settings: &Settings,
    context: &str,
    err: impl std::fmt::Display,
) -> anyhow::Error {
    let cause = redact_database_url(&err.to_string(), &settings.database_url);
    anyhow::anyhow!("{context}: {cause}")
}

/// `text` with `url` and its password replaced. The password is found leniently, as what
/// lies between the user name's `:` and the last `@` after the scheme, so that one holding
/// `/`, `#` or `?` (which make the URL unparsable) is found too; when it is too short to be
/// replaced without mangling the text, the whole text is withheld.
fn redact_database_url(text: &str, url: &str) -> String {
    const HIDDEN: &str = "********";
    let Some(password) = database_url_password(url) else {
        return text.to_owned();
    };
    let redacted_url = url.replacen(password, HIDDEN, 1);
    let mut text = text.replace(url, &redacted_url);
    let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
    for form in [password, decoded.as_ref()] {
        if form.is_empty() || !text.contains(form) {
            continue;
        }
        if form.chars().count() < 4 {
            return "the details are withheld, as they would show the password".to_owned();
        }
        text = text.replace(form, HIDDEN);
    }
    text
}

/// The password part of a database URL, if it has one.
fn database_url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
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
    let db = connect_for_maintenance(settings).await?;
    let failed = |err| database_error(settings, "the migration failed", err);
    let options = migration_options(settings);
    if db.get_database_backend() != DbBackend::Postgres {
        return migrate_on(db.pool(), action, options).await.map_err(failed);
    }
    // On PostgreSQL in one transaction, as every transaction of the service begins (behind a
    // transaction-mode pooler, a statement outside one is not safe).
    let txn = db.begin().await.map_err(failed)?;
    let lines = match action {
        MigrateAction::Up => {
            migration::run_pending_in(&txn, options)
                .await
                .map_err(failed)?;
            migrate_on(&txn, MigrateAction::Status, options).await
        }
        action => migrate_on(&txn, action, options).await,
    }
    .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    Ok(lines)
}

/// Runs a migration command through `db`; returns lines to print.
async fn migrate_on<C>(
    db: &C,
    action: MigrateAction,
    options: migration::Options,
) -> Result<Vec<String>, DbErr>
where
    C: ConnectionTrait,
    for<'c> &'c C: migration::IntoSchemaManagerConnection<'c>,
{
    match action {
        MigrateAction::Up => {
            migration::with_options(options, migration::Migrator::up(db, None)).await?
        }
        MigrateAction::Down => migration::Migrator::down(db, Some(1)).await?,
        MigrateAction::Fresh => migration::Migrator::fresh(db).await?,
        MigrateAction::Status => {}
    }
    Ok(migration::Migrator::get_migration_with_status(db)
        .await?
        .iter()
        .map(|m| format!("{:<10} {}", m.status().to_string(), m.name()))
        .collect())
}

/// Applies the pending migrations through the service's own connection: on PostgreSQL in
/// one transaction begun as every transaction of the service is.
async fn run_migrations(db: &Connection, options: migration::Options) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return migration::run_pending(db.pool(), options).await;
    }
    let txn = db.begin().await?;
    migration::run_pending_in(&txn, options).await?;
    txn.commit().await
}

/// What `api admin` does.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum AdminAction {
    /// Give the account of EMAIL a role (`admin`, `moderator` or `member`).
    Grant {
        email: String,
        #[arg(value_parser = ["member", "moderator", "admin"])]
        role: String,
    },
    /// Make the account of EMAIL a member again.
    Revoke { email: String },
}

/// Gives an account a role from the command line, on the configured database (migrated
/// first), whether the service runs or not: the role counts from the account's next
/// request. Recorded in the moderation log as the command line's. Returns what changed.
///
/// # Errors
/// An invalid email, no account with it, an unreachable database.
pub async fn admin(settings: &Settings, action: AdminAction) -> anyhow::Result<String> {
    let (email, role) = match &action {
        AdminAction::Grant { email, role } => (email, Role::from_name(role)),
        AdminAction::Revoke { email } => (email, Role::Member),
    };
    let email = Email::parse(email)
        .map_err(|requirement| anyhow::anyhow!("the email {email} {}", requirement.into_owned()))?;
    let db = Database::open(&database_options(settings))
        .await
        .map_err(|err| database_error(settings, &cannot_open(settings), err))?;
    run_migrations(db.connection(), migration_options(settings))
        .await
        .map_err(|err| database_error(settings, "cannot migrate the database", err))?;
    let change = service::moderation::set_role_from_command_line(&db, &email, role).await?;
    let account = &change.account;
    Ok(if change.before == account.role {
        format!(
            "{} ({}) is {} already: nothing changed",
            account.email,
            account.handle,
            role.name()
        )
    } else {
        format!(
            "{} ({}): {} → {}",
            account.email,
            account.handle,
            change.before.name(),
            account.role.name()
        )
    })
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
    let db = connect_for_maintenance(settings).await?;
    run_migrations(&db, migration_options(settings))
        .await
        .map_err(|err| database_error(settings, "cannot migrate the database", err))?;
    let password_hash = Passwords::new(settings.bcrypt_cost, 1)?
        .hash(password)
        .await?;
    service::seed::seed(&db, counts, &password_hash, progress)
        .await
        .map_err(|err| database_error(settings, "cannot seed the database", err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_urls_password_never_survives_redaction() {
        let url = "postgres://social:pa/ss#w0rd?x@db.internal:5432/social";
        let text = format!("The connection string '{url}' has no supporting driver; pa/ss#w0rd?x");
        let redacted = redact_database_url(&text, url);
        assert!(!redacted.contains("pa/ss#w0rd?x"), "{redacted}");
        assert!(
            redacted.contains("postgres://social:********@db.internal"),
            "{redacted}"
        );

        let encoded = "postgres://social:s%2Fcr%23t-42@db/social";
        let redacted = redact_database_url("password s/cr#t-42 refused", encoded);
        assert!(!redacted.contains("s/cr#t-42"), "{redacted}");

        let short = "postgres://u:pw@db/x";
        let redacted = redact_database_url("no pw here", short);
        assert!(!redacted.contains("pw"), "{redacted}");
        assert_eq!(
            redact_database_url("fine", "sqlite://a.db?mode=rwc"),
            "fine"
        );
    }
}
