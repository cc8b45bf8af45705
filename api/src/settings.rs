//! Configuration, layered with the `config` crate: built-in defaults, then an optional
//! `config.toml` in the working directory, then an optional `.env` file in the working
//! directory, then environment variables, each overriding the one before (as dotenv,
//! docker and systemd have it: what the process's environment says wins). Every setting is
//! in the README's table.

use std::{collections::HashMap, path::Path, time::Duration};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use service::{
    accounts::{RecoveryPolicy, VerificationPolicy},
    database::PoolMode,
    events::EventPolicy,
    mail::MailPolicy,
    sessions::SessionPolicy,
};

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
    /// How long a request's statement may run on PostgreSQL before it is cancelled with a
    /// 503; 0 turns the limit off. Migrations and seeding run without it.
    pub database_statement_timeout_seconds: u64,
    /// `session` when `DATABASE_URL` is PostgreSQL itself or a pooler in session mode;
    /// `transaction` for a pooler in transaction mode (PgBouncer's `pool_mode =
    /// transaction`, RDS Proxy, Supavisor).
    pub database_pool_mode: PoolMode,
    /// Where live events listen for the other instances' writes on PostgreSQL: a direct
    /// connection (`LISTEN` cannot work through a transaction-mode pooler). Unset, it is
    /// `DATABASE_URL` in session mode, and nowhere in transaction mode (events from other
    /// instances then arrive by the outbox's poll, once a second).
    pub database_listen_url: Option<String>,
    /// Streaming replicas of the PostgreSQL primary (direct connections, comma-separated)
    /// that page reads go to once they have replayed every write committed before the read.
    pub database_replica_url: Vec<String>,
    pub migrate_on_start: bool,
    /// The HS256 signing key; never printed.
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretString>,
    pub access_token_expire_minutes: u32,
    /// How long a refresh token lives after its issue; a session unrefreshed that long ends.
    pub refresh_token_expire_days: u32,
    /// How long after its first use a refresh token may be used again (two tabs refreshing
    /// at once; it gets the first use's successor) before a second use counts as a replay
    /// and ends the session.
    pub refresh_token_reuse_grace_seconds: u64,
    /// How long live events are kept for subscribers resuming after a dropped connection.
    pub event_replay_minutes: u32,
    /// How far behind, in bytes of events, a stream's client may fall before the stream is
    /// ended (it resumes with `Last-Event-ID`); also what a replaying stream may hold.
    pub event_stream_max_lag_bytes: usize,
    /// Event streams one account may have open at once, on every instance together; past
    /// it, 429.
    pub event_streams_per_account: usize,
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
    /// Registrations from one client address within the login window before further ones
    /// get 429; 0 turns it off.
    pub register_max_per_address: u32,
    /// Writes (creating, changing or deleting a post, voting) one account may make a
    /// minute, across every instance; 0 turns the limit off.
    pub writes_per_minute: u32,
    /// How long a request waits for a password-hashing permit before it gets a 503.
    pub bcrypt_max_wait_milliseconds: u64,
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
    /// Where mail goes (`smtp://host:port`, `smtps://user:password@host:465`); unset in
    /// development writes each mail to the log instead. Never printed: it may hold a
    /// password.
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretString>,
    /// The sender of every mail.
    pub mail_from: Option<String>,
    /// The front end's base URL, which mailed links point to.
    pub public_url: Option<String>,
    /// How long a mail that keeps failing is tried, in hours (fractions allowed), before it
    /// is dropped with a log line.
    pub mail_retry_hours: f64,
    /// How long one attempt at sending a mail may take.
    pub mail_send_timeout_seconds: f64,
    /// How long a mailed verification link works, in hours (fractions allowed).
    pub verification_token_hours: f64,
    /// The shortest time between two verification mails to one account; a request for one
    /// sooner gets 429.
    pub verification_resend_seconds: f64,
    /// How long a mailed password reset link works, in minutes (fractions allowed).
    pub password_reset_token_minutes: f64,
    /// Password reset requests naming one address within the login window; 0 turns the
    /// limit off.
    pub password_reset_max_per_email: u32,
    /// Password reset requests from one client address within the login window; 0 turns
    /// the limit off.
    pub password_reset_max_per_address: u32,
    /// Verification and address change mails asked from one client address within the
    /// login window; 0 turns the limit off.
    pub mail_requests_max_per_address: u32,
    /// When the migration that adds address verification runs, count the addresses of the
    /// accounts that exist then as verified.
    pub trust_existing_emails: bool,
    /// Refuse writes (403) from accounts whose address is not verified.
    pub require_verified_email: bool,
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
            database_statement_timeout_seconds: 15,
            database_pool_mode: PoolMode::Session,
            database_listen_url: None,
            database_replica_url: Vec::new(),
            migrate_on_start: true,
            secret_key: None,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: 30,
            refresh_token_reuse_grace_seconds: 10,
            event_replay_minutes: 10,
            event_stream_max_lag_bytes: 1024 * 1024,
            event_streams_per_account: 5,
            bcrypt_cost: 12,
            bcrypt_max_concurrency: 0,
            cors_allowed_origins: None,
            login_max_failures: 5,
            login_max_failures_per_address: 100,
            login_window_minutes: 15,
            register_max_per_address: 20,
            writes_per_minute: 60,
            bcrypt_max_wait_milliseconds: 5_000,
            shutdown_grace_seconds: 10,
            log_format: None,
            metrics_enabled: true,
            metrics_listen: None,
            trusted_proxies: Vec::new(),
            http_header_read_timeout_seconds: 10,
            http_idle_timeout_seconds: 30,
            http_max_connections: 768,
            smtp_url: None,
            mail_from: None,
            public_url: None,
            mail_retry_hours: 24.0,
            mail_send_timeout_seconds: 30.0,
            verification_token_hours: 24.0,
            verification_resend_seconds: 60.0,
            password_reset_token_minutes: 30.0,
            password_reset_max_per_email: 3,
            password_reset_max_per_address: 20,
            mail_requests_max_per_address: 20,
            trust_existing_emails: false,
            require_verified_email: false,
        }
    }
}

/// The smallest `EVENT_STREAM_MAX_LAG_BYTES` accepted: a stream less far behind than one
/// long post's event would be ended for each.
pub const MIN_EVENT_LAG_BYTES: usize = 256 * 1024;

/// Shortest secret accepted outside development, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Fewest distinct bytes a production secret may have. `openssl rand -hex 32` has 16
/// possible characters and shows fewer than 11 of them about once in a billion keys;
/// `openssl rand -hex 16` fewer than 8 about once in 25 million; a word or a name repeated
/// has fewer.
const MIN_DISTINCT_SECRET_BYTES: usize = 8;

/// Keys published in this repository's examples, refused whatever else they look like.
const PUBLISHED_SECRETS: &[&str] =
    &["CHANGE-ME-TO-64-HEX-CHARACTERS-FROM-OPENSSL-RAND-HEX-32-XXXXXXXXXX"];

/// Words that mark a value as one to replace, looked for in the secret's letters and digits
/// lower-cased (so `Change_Me` and `CHANGE-ME` are both found).
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "replaceme",
    "placeholder",
    "yoursecret",
    "example",
    "xxxxxxxx",
];

/// The deployment example, whose `SECRET_KEY` (whatever it is changed to) must never sign.
const DEPLOY_EXAMPLE: &str = include_str!("../../deploy/social-api.env.example");

/// Why `secret` is plainly not random, if it is: the key of a published example, a
/// placeholder word, too few distinct bytes, a short pattern repeated, or anything else a
/// person could guess (words, dates, sequences, keyboard walks), as the `zxcvbn` estimator
/// finds them: it must need more than 10^10 guesses, its top score.
fn weak_secret(secret: &str) -> Option<&'static str> {
    let example = DEPLOY_EXAMPLE.lines().find_map(|line| {
        line.trim()
            .strip_prefix("SECRET_KEY=")
            .map(|value| value.trim().trim_matches(['"', '\'']))
    });
    if PUBLISHED_SECRETS.contains(&secret) || example.is_some_and(|e| !e.is_empty() && e == secret)
    {
        return Some("it is the example's, published with the source");
    }
    let letters: String = secret
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if PLACEHOLDER_WORDS.iter().any(|word| letters.contains(word)) {
        return Some("it is a placeholder, not a key");
    }
    let bytes = secret.as_bytes();
    let distinct = bytes
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if distinct < MIN_DISTINCT_SECRET_BYTES {
        return Some("it has too few distinct characters to be random");
    }
    // A unit of up to half the key, repeated (`abcdabcd...`).
    let repeated = (1..=bytes.len() / 2).any(|unit| bytes[unit..] == bytes[..bytes.len() - unit]);
    if repeated {
        return Some("it is a short pattern repeated");
    }
    if zxcvbn::zxcvbn(secret, &[]).score() < zxcvbn::Score::Four {
        return Some("it is made of words or patterns a person could guess");
    }
    None
}

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
                .with_list_parse_key("database_replica_url")
        };
        let settings = Config::builder()
            .add_source(Config::try_from(&Settings::default())?)
            .add_source(File::new("config.toml", FileFormat::Toml).required(false))
            .add_source(variables(Some(dotenv)))
            .add_source(variables(None))
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }

    /// The signing secret: the configured one, or in development a random one for this
    /// process (tokens then die with it). Outside development a secret of at least 32 bytes
    /// is required, and one that is plainly not random (the deployment example's, a
    /// placeholder, a short pattern repeated) or that a person could guess is refused:
    /// whoever read or guessed it could sign a token for any account.
    ///
    /// # Errors
    /// A one-line reason why the service must not start.
    pub fn signing_secret(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.secret_key, self.app_env) {
            (Some(secret), AppEnv::Production)
                if secret.expose_secret().len() >= MIN_SECRET_BYTES =>
            {
                let secret = secret.expose_secret();
                if let Some(reason) = weak_secret(secret) {
                    anyhow::bail!(
                        "APP_ENV=production refuses this SECRET_KEY: {reason}; make a random one \
                         with: openssl rand -hex 32"
                    );
                }
                Ok(secret.as_bytes().to_vec())
            }
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
    /// Where live events listen for other instances' writes (see
    /// [`Settings::database_listen_url`]).
    pub fn database_listen_url(&self) -> Option<&str> {
        match (&self.database_listen_url, self.database_pool_mode) {
            (Some(url), _) => Some(url),
            (None, PoolMode::Session) => Some(&self.database_url),
            (None, PoolMode::Transaction) => None,
        }
    }

    pub fn database_backend(&self) -> &str {
        self.database_url.split(':').next().unwrap_or("unknown")
    }

    pub fn token_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.access_token_expire_minutes) * 60)
    }

    /// How long refresh tokens live and how long a spent one may be used again.
    ///
    /// # Errors
    /// `REFRESH_TOKEN_EXPIRE_DAYS` is 0: every session would expire as it starts.
    pub fn session_policy(&self) -> anyhow::Result<SessionPolicy> {
        if self.refresh_token_expire_days == 0 {
            anyhow::bail!(
                "REFRESH_TOKEN_EXPIRE_DAYS must be at least 1: a session ends when it has not \
                 refreshed for that many days"
            );
        }
        Ok(SessionPolicy {
            refresh_lifetime: Duration::from_secs(
                u64::from(self.refresh_token_expire_days) * 86_400,
            ),
            reuse_grace: Duration::from_secs(self.refresh_token_reuse_grace_seconds),
        })
    }

    /// The live events' window and bounds. All streams together take at most half of
    /// `HTTP_MAX_CONNECTIONS`, so that other requests always find a connection.
    ///
    /// # Errors
    /// `EVENT_REPLAY_MINUTES` or `EVENT_STREAMS_PER_ACCOUNT` is 0, or
    /// `EVENT_STREAM_MAX_LAG_BYTES` is below [`MIN_EVENT_LAG_BYTES`].
    pub fn event_policy(&self) -> anyhow::Result<EventPolicy> {
        if self.event_replay_minutes == 0 {
            anyhow::bail!(
                "EVENT_REPLAY_MINUTES must be at least 1: a client that reconnects within that \
                 many minutes is sent every event it missed"
            );
        }
        if self.event_streams_per_account == 0 {
            anyhow::bail!("EVENT_STREAMS_PER_ACCOUNT must be at least 1");
        }
        if self.event_stream_max_lag_bytes < MIN_EVENT_LAG_BYTES {
            anyhow::bail!(
                "EVENT_STREAM_MAX_LAG_BYTES must be at least {MIN_EVENT_LAG_BYTES}: one event \
                 of a long post takes up to 80 KB"
            );
        }
        Ok(EventPolicy {
            replay_window: Duration::from_secs(u64::from(self.event_replay_minutes) * 60),
            max_lag_bytes: self.event_stream_max_lag_bytes,
            streams_per_account: self.event_streams_per_account,
            max_streams: (self.http_max_connections / 2).max(1),
        })
    }

    /// Where mail goes, from whom, where its links point, and how long it is tried. Outside
    /// development `SMTP_URL`, `MAIL_FROM` and `PUBLIC_URL` are required: without them the
    /// service would promise mails it never sends, or links to nowhere.
    ///
    /// # Errors
    /// A setting production requires is missing, or a span is not a positive number.
    pub fn mail_policy(&self) -> anyhow::Result<MailPolicy> {
        if self.app_env == AppEnv::Production {
            let missing: Vec<&str> = [
                ("SMTP_URL", self.smtp_url.is_none()),
                ("MAIL_FROM", self.mail_from.is_none()),
                ("PUBLIC_URL", self.public_url.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            if !missing.is_empty() {
                anyhow::bail!(
                    "APP_ENV=production requires {} (mail goes out over SMTP, and its links \
                     point to the front end)",
                    missing.join(", ")
                );
            }
        }
        Ok(MailPolicy {
            smtp_url: self
                .smtp_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
            from: self
                .mail_from
                .clone()
                .unwrap_or_else(|| "Social API <noreply@localhost>".into()),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| "http://localhost:3000".into()),
            retry_for: positive_span("MAIL_RETRY_HOURS", self.mail_retry_hours * 3600.0)?,
            send_timeout: positive_span(
                "MAIL_SEND_TIMEOUT_SECONDS",
                self.mail_send_timeout_seconds,
            )?,
        })
    }

    /// How long a mailed verification link works, and how often one may be sent.
    ///
    /// # Errors
    /// `VERIFICATION_TOKEN_HOURS` or `VERIFICATION_RESEND_SECONDS` is not a positive number.
    pub fn verification_policy(&self) -> anyhow::Result<VerificationPolicy> {
        Ok(VerificationPolicy {
            token_lifetime: positive_span(
                "VERIFICATION_TOKEN_HOURS",
                self.verification_token_hours * 3600.0,
            )?,
            resend_interval: positive_span(
                "VERIFICATION_RESEND_SECONDS",
                self.verification_resend_seconds,
            )?,
            max_mails_per_client: self.mail_requests_max_per_address,
        })
    }

    /// How long a mailed password reset link works, and how many requests an address and a
    /// client may make.
    ///
    /// # Errors
    /// `PASSWORD_RESET_TOKEN_MINUTES` is not a positive number.
    pub fn recovery_policy(&self) -> anyhow::Result<RecoveryPolicy> {
        Ok(RecoveryPolicy {
            token_lifetime: positive_span(
                "PASSWORD_RESET_TOKEN_MINUTES",
                self.password_reset_token_minutes * 60.0,
            )?,
            max_per_email: self.password_reset_max_per_email,
            max_per_client: self.password_reset_max_per_address,
        })
    }

    pub fn login_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.login_window_minutes) * 60)
    }

    pub fn bcrypt_max_wait(&self) -> Duration {
        Duration::from_millis(self.bcrypt_max_wait_milliseconds)
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

/// `seconds` of the setting `name` as a span: a positive number of them.
fn positive_span(name: &str, seconds: f64) -> anyhow::Result<Duration> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(span) if !span.is_zero() => Ok(span),
        _ => anyhow::bail!("{name} must be a positive number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(secret: &str) -> Settings {
        Settings {
            app_env: AppEnv::Production,
            secret_key: Some(secret.to_owned().into()),
            ..Settings::default()
        }
    }

    #[test]
    fn production_refuses_the_example_and_placeholder_keys() {
        for secret in [
            "CHANGE-ME-TO-64-HEX-CHARACTERS-FROM-OPENSSL-RAND-HEX-32-XXXXXXXXXX",
            "change_me_change_me_please_0123456789",
            "replace-me-with-a-key-from-openssl-rand-1",
            "an-example-secret-of-more-than-32-bytes-19",
            &"a".repeat(64),
            &"ab".repeat(32),
            "0123456789abcdef0123456789abcdef0123456789abcdef",
            "passwordpasswordpasswordpassword",
        ] {
            let err = production(secret)
                .signing_secret()
                .expect_err(secret)
                .to_string();
            assert!(err.contains("openssl rand -hex 32"), "{secret}: {err}");
            assert!(
                !err.contains(secret),
                "{secret}: the message repeats the key"
            );
        }
    }

    #[test]
    fn production_refuses_keys_a_person_could_guess() {
        // Each passes the other checks: 32 bytes or more, many distinct, no whole repeat.
        for secret in [
            "passwordpasswordpassword123456789",
            "abcdefghijklmnopqrstuvwxyz123456",
            "qwertyuiopqwertyuiopqwertyuiop123",
            "iloveyouiloveyouiloveyou20202020",
        ] {
            let err = production(secret)
                .signing_secret()
                .expect_err(secret)
                .to_string();
            assert!(
                err.contains("a person could guess") && err.contains("openssl rand -hex 32"),
                "{secret}: {err}"
            );
        }
    }

    #[test]
    fn production_takes_random_keys() {
        for _ in 0..1000 {
            let hex: String = rand::random::<[u8; 32]>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(production(&hex).signing_secret().is_ok(), "{hex}");
            let short: String = hex[..32].to_owned();
            assert!(production(&short).signing_secret().is_ok(), "{short}");
        }
        let made_up = "nginx-test-secret-that-is-at-least-32-bytes";
        assert!(production(made_up).signing_secret().is_ok());
    }

    #[test]
    fn sessions_must_be_able_to_live_a_day() {
        let never = Settings {
            refresh_token_expire_days: 0,
            ..Settings::default()
        };
        let err = never.session_policy().expect_err("0 days").to_string();
        assert!(err.contains("REFRESH_TOKEN_EXPIRE_DAYS"), "{err}");
        let policy = Settings::default().session_policy().expect("the defaults");
        assert_eq!(policy.refresh_lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(policy.reuse_grace, Duration::from_secs(10));
    }

    #[test]
    fn events_are_kept_at_least_a_minute() {
        let never = Settings {
            event_replay_minutes: 0,
            ..Settings::default()
        };
        let err = never.event_policy().expect_err("0 minutes").to_string();
        assert!(err.contains("EVENT_REPLAY_MINUTES"), "{err}");
        let policy = Settings::default().event_policy().expect("the defaults");
        assert_eq!(policy.replay_window, Duration::from_secs(600));
        assert_eq!(policy.max_lag_bytes, 1024 * 1024);
        assert_eq!(policy.streams_per_account, 5);
        assert_eq!(policy.max_streams, 384, "half of HTTP_MAX_CONNECTIONS");
        for broken in [
            Settings {
                event_streams_per_account: 0,
                ..Settings::default()
            },
            Settings {
                event_stream_max_lag_bytes: 1000,
                ..Settings::default()
            },
        ] {
            assert!(broken.event_policy().is_err());
        }
    }

    #[test]
    fn production_requires_the_mail_settings() {
        let mut settings = production(&"ab01".repeat(16));
        let err = settings.mail_policy().expect_err("none set").to_string();
        assert!(err.contains("SMTP_URL, MAIL_FROM, PUBLIC_URL"), "{err}");
        settings.smtp_url = Some("smtp://127.0.0.1:25".to_owned().into());
        settings.mail_from = Some("noreply@example.org".into());
        let err = settings
            .mail_policy()
            .expect_err("no PUBLIC_URL")
            .to_string();
        assert!(
            err.contains("PUBLIC_URL") && !err.contains("SMTP_URL"),
            "{err}"
        );
        settings.public_url = Some("https://example.org".into());
        let policy = settings.mail_policy().expect("all set");
        assert_eq!(policy.retry_for, Duration::from_secs(24 * 3600));
        let development = Settings::default().mail_policy().expect("the defaults");
        assert!(development.smtp_url.is_none(), "development logs mails");
    }

    #[test]
    fn mail_spans_must_be_positive() {
        for hours in [0.0, -1.0, f64::NAN] {
            let settings = Settings {
                mail_retry_hours: hours,
                ..Settings::default()
            };
            let err = settings
                .mail_policy()
                .expect_err("not positive")
                .to_string();
            assert!(err.contains("MAIL_RETRY_HOURS"), "{err}");
        }
        let short = Settings {
            mail_retry_hours: 0.001,
            ..Settings::default()
        };
        assert_eq!(
            short.mail_policy().expect("a fraction").retry_for,
            Duration::from_millis(3600)
        );
    }

    #[test]
    fn development_takes_any_long_enough_key() {
        let settings = Settings {
            secret_key: Some("a".repeat(32).into()),
            ..Settings::default()
        };
        assert!(settings.signing_secret().is_ok());
    }

    #[test]
    fn the_deployment_example_ships_no_usable_key() {
        let example = DEPLOY_EXAMPLE
            .lines()
            .find_map(|line| line.strip_prefix("SECRET_KEY="))
            .expect("the example names SECRET_KEY");
        assert!(production(example).signing_secret().is_err());
    }
}
