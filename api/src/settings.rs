//! Configuration, layered with the `config` crate: built-in defaults, then an optional
//! `config.toml` in the working directory, then environment variables, then a `.env` file
//! in the working directory. Every setting is in the README's table.

use std::{collections::HashMap, path::Path, time::Duration};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Development (the default: any CORS origin, a random secret if none is set) or
/// production (a real secret of at least 32 bytes is required).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    #[default]
    Development,
    Production,
}

/// Every setting of the service. Names are those of the environment variables, lower-cased.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub app_env: AppEnv,
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before it gets a 503.
    pub database_acquire_timeout_seconds: u64,
    pub migrate_on_start: bool,
    /// The HS256 signing key; never printed.
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretString>,
    pub access_token_expire_minutes: u32,
    pub bcrypt_cost: u32,
    /// How many bcrypt hashes may run at once; 0 means half the cores (at least one).
    pub bcrypt_max_concurrency: usize,
    /// Allowed CORS origins; unset means any origin in development and none in production.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Failed logins for one email within the window before it is locked; 0 turns it off.
    pub login_max_failures: u32,
    /// Failed logins from one client address within the window before it is locked; 0
    /// turns it off.
    pub login_max_failures_per_address: u32,
    pub login_window_minutes: u32,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    pub shutdown_grace_seconds: u64,
    /// `text` or `json`; unset means text in development and JSON lines in production.
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics_enabled: bool,
    /// Serve `/metrics` on this `host:port` instead of the API's own listener.
    pub metrics_listen: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed (their addresses, comma-separated).
    pub trusted_proxies: Vec<String>,
    /// How long a client may take to send a complete request head, from its first byte (from
    /// the accept, for a new connection's first request).
    pub http_header_read_timeout_seconds: u64,
    /// How long a connection may go without a byte read or written: an idle keep-alive
    /// connection, a request body that stopped coming, a response the client stopped reading.
    pub http_idle_timeout_seconds: u64,
    /// Open connections per listener; at the cap the service stops accepting and new
    /// connections wait in the kernel's backlog.
    pub http_max_connections: usize,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            app_env: AppEnv::Development,
            host: "127.0.0.1".into(),
            port: 8000,
            database_url: "sqlite://social.db?mode=rwc".into(),
            database_max_connections: 10,
            database_acquire_timeout_seconds: 5,
            migrate_on_start: true,
            secret_key: None,
            access_token_expire_minutes: 30,
            bcrypt_cost: 12,
            bcrypt_max_concurrency: 0,
            cors_allowed_origins: None,
            login_max_failures: 5,
            login_max_failures_per_address: 100,
            login_window_minutes: 15,
            shutdown_grace_seconds: 10,
            log_format: None,
            metrics_enabled: true,
            metrics_listen: None,
            trusted_proxies: Vec::new(),
            http_header_read_timeout_seconds: 10,
            http_idle_timeout_seconds: 30,
            http_max_connections: 768,
        }
    }
}

/// Shortest secret accepted outside development, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

impl Settings {
    /// Reads the layers from the working directory and the process environment.
    ///
    /// # Errors
    /// A layer cannot be read, or a value has the wrong type.
    pub fn load() -> anyhow::Result<Self> {
        let dotenv: HashMap<String, String> = match dotenvy::from_path_iter(Path::new(".env")) {
            Ok(entries) => entries.collect::<Result<_, _>>()?,
            Err(err) if err.not_found() => HashMap::new(),
            Err(err) => return Err(err.into()),
        };
        let variables = |source: Option<HashMap<String, String>>| {
            Environment::default()
                .source(source)
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("cors_allowed_origins")
                .with_list_parse_key("trusted_proxies")
        };
        let settings = Config::builder()
            .add_source(Config::try_from(&Settings::default())?)
            .add_source(File::new("config.toml", FileFormat::Toml).required(false))
            .add_source(variables(None))
            .add_source(variables(Some(dotenv)))
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }

    /// The signing secret: the configured one, or in development a random one for this
    /// process (tokens then die with it). Outside development a secret of at least 32 bytes
    /// is required.
    ///
    /// # Errors
    /// A one-line reason why the service must not start.
    pub fn signing_secret(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.secret_key, self.app_env) {
            (Some(secret), _) if secret.expose_secret().len() >= MIN_SECRET_BYTES => {
                Ok(secret.expose_secret().as_bytes().to_vec())
            }
            (_, AppEnv::Production) => anyhow::bail!(
                "APP_ENV=production requires SECRET_KEY of at least {MIN_SECRET_BYTES} bytes \
                 (for example: openssl rand -hex 32)"
            ),
            (Some(_), AppEnv::Development) => anyhow::bail!(
                "SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes (for example: openssl rand -hex 32)"
            ),
            (None, AppEnv::Development) => {
                tracing::warn!(
                    "no SECRET_KEY set: using a random secret for this process (development only; tokens die on restart)"
                );
                Ok(rand::random::<[u8; 32]>().to_vec())
            }
        }
    }

    /// Whether logs are JSON lines.
    pub fn log_json(&self) -> bool {
        match self.log_format {
            Some(format) => format == LogFormat::Json,
            None => self.app_env == AppEnv::Production,
        }
    }

    /// The database's kind, for logs: never the URL, which may hold a password.
    pub fn database_backend(&self) -> &str {
        self.database_url.split(':').next().unwrap_or("unknown")
    }

    pub fn token_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.access_token_expire_minutes) * 60)
    }

    pub fn login_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.login_window_minutes) * 60)
    }

    /// The bcrypt concurrency bound, resolving 0 to half the cores (at least one), so that a
    /// login storm leaves the other half to everything else.
    pub fn bcrypt_permits(&self) -> usize {
        match self.bcrypt_max_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
    }
}
