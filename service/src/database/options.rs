//! How the service reaches PostgreSQL: the options, the pool mode, and the settings each
//! connection or transaction carries.

use std::{net::IpAddr, time::Duration};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
use serde::{Deserialize, Serialize};

/// How the service reaches the database.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// `sqlite://file.db?mode=rwc` or `postgres://user@host/db`; the scheme picks the backend.
    pub url: String,
    pub max_connections: u32,
    /// How long a request may wait for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
    /// How long a request's statement may run on PostgreSQL (zero: no limit). Longer, it is
    /// stuck behind a lock or the server is overwhelmed, and the client gets a 503 rather
    /// than a request held open.
    pub statement_timeout: Duration,
    /// Whether `url` is PostgreSQL itself (or a session-mode pooler) or a transaction-mode
    /// pooler.
    pub pool_mode: PoolMode,
    /// Streaming replicas of PostgreSQL that page reads may go to (direct connections).
    pub replica_urls: Vec<String>,
}

/// What a PostgreSQL connection of the service is: the server's for as long as it is open
/// (a direct connection, or a pooler in session mode), or the server's for one transaction
/// at a time (a pooler in transaction mode; see [`Connection`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    #[default]
    Session,
    Transaction,
}

/// Sets the statement timeout for the transaction it runs in.
pub(super) fn set_local_statement_timeout(statement_timeout: Duration) -> String {
    format!(
        "SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis()
    )
}

/// Sets the session's `statement_timeout` (zero turns it off, the server's or the role's
/// own default overridden either way) unless the connection goes through a transaction-mode
/// pooler, which refuses settings in the start-up packet (then each transaction sets its own,
/// and sqlx's statement cache, whose statements would outlive the server connection lent,
/// is off). Connects to a loopback address without TLS
/// unless `url` or `PGSSLMODE` names an `sslmode`: the bytes never leave the machine, and
/// sqlx 0.9 writes a handshake without `TCP_NODELAY`, so that each new connection waits
/// twice for PostgreSQL's delayed ACK, start-up's first connection among them.
pub(super) fn with_session_settings(
    options: PgConnectOptions,
    url: &str,
    pool_mode: PoolMode,
    statement_timeout: Duration,
) -> PgConnectOptions {
    let options = match pool_mode {
        PoolMode::Session => options.options([(
            "statement_timeout",
            format!("{}ms", statement_timeout.as_millis()),
        )]),
        PoolMode::Transaction => options.statement_cache_capacity(0).extra_float_digits(None),
    };
    let mode_chosen = std::env::var_os("PGSSLMODE").is_some() || names_ssl_mode(url);
    if !mode_chosen && is_loopback(options.get_host()) {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// Whether a PostgreSQL URL says how to use TLS (`sslmode`, or sqlx's `ssl-mode`).
fn names_ssl_mode(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        url.query_pairs()
            .any(|(key, _)| key == "sslmode" || key == "ssl-mode")
    })
}

/// `localhost` or a loopback address (a socket's directory, or another host, is not).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// The TLS mode each URL connects with (`PGSSLMODE` unset, as in the tests' runs).
    fn ssl_mode(url: &str) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).expect("a valid URL");
        with_session_settings(options, url, PoolMode::Session, Duration::from_secs(1))
            .get_ssl_mode()
    }

    #[test]
    fn a_loopback_connection_goes_without_tls_unless_the_url_asks_for_it() {
        for plain in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@127.0.0.2/db?application_name=api",
        ] {
            assert!(matches!(ssl_mode(plain), PgSslMode::Disable), "{plain}");
        }
        for chosen in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?ssl-mode=prefer",
            "postgres://u@db.example.org/db",
            "postgres://u@10.0.0.5/db",
        ] {
            assert!(!matches!(ssl_mode(chosen), PgSslMode::Disable), "{chosen}");
        }
    }
}
