//! What went wrong, in the domain's words: the service's one error type, and the broken
//! fields of a request.

use std::borrow::Cow;

use sea_orm::{DbBackend, DbErr, RuntimeErr, SqlErr};

/// What a rule says of a value that breaks it, as the end of a sentence that starts with the
/// field's name ("title: must not be empty").
pub type Requirement = Cow<'static, str>;

/// One broken field: its name as the client sent it, and what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub requirement: Requirement,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, requirement: impl Into<Requirement>) -> Self {
        Self {
            field: field.into(),
            requirement: requirement.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.requirement)
    }
}

/// What went wrong, in the domain's words. The `api` crate maps each variant to an HTTP
/// status once; nothing here knows about HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0}")]
    NotFound(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts what is stored (an email taken, a vote already cast).
    #[error("{0}")]
    Conflict(String),
    /// The thing is not in the state the request expects (it changed since the client
    /// read it); `current_tag` names the state it is in.
    #[error("{detail}")]
    Stale { detail: String, current_tag: String },
    /// Values break their rules: every broken field, each named for the client.
    #[error("{}", join_fields(.0))]
    Invalid(Vec<FieldError>),
    /// The credentials or token do not identify anyone.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many attempts of one kind; retry after this many seconds.
    #[error("{}; retry in {retry_after_secs} seconds", limit.what())]
    RateLimited {
        limit: RateLimit,
        retry_after_secs: u64,
    },
    /// Too much work is queued (every password-hashing permit is taken, past the wait), or
    /// the instance has as many event streams open as it takes; retry after this many
    /// seconds.
    #[error("the service is busy; retry in {retry_after_secs} seconds")]
    Busy { retry_after_secs: u64 },
    /// The database cannot be reached or has no free connection.
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    /// Anything else: a bug or a broken invariant. Logged with its causes, never shown to
    /// clients.
    #[error("internal error: {context}")]
    Internal {
        /// What was being done.
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Which limit a [`ServiceError::RateLimited`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Failed logins for one email.
    FailedLoginsForAccount,
    /// Failed logins from one client address, whatever emails they name.
    FailedLoginsFromAddress,
    /// Registrations from one client address.
    Registrations,
    /// Event streams open at once for one account.
    EventStreams,
    /// Writes by one account.
    Writes,
    /// Verification mails one account asked for.
    VerificationMails,
    /// Address changes one account asked for.
    EmailChanges,
    /// Verification and address change mails asked from one client address.
    AccountMailsFromAddress,
    /// Password reset requests naming one address.
    PasswordResetsForEmail,
    /// Password reset requests from one client address.
    PasswordResetsFromAddress,
}

impl RateLimit {
    /// The limit's name: its policy's in the `RateLimit` headers, and the one requests are
    /// counted by in `limit_hits`.
    pub fn policy(self) -> &'static str {
        match self {
            Self::FailedLoginsForAccount => "logins-email",
            Self::FailedLoginsFromAddress => "logins-client",
            Self::Registrations => "registrations",
            Self::EventStreams => "streams",
            Self::Writes => "writes",
            Self::VerificationMails => "verification",
            Self::EmailChanges => "email-change",
            Self::AccountMailsFromAddress => "mails-client",
            Self::PasswordResetsForEmail => "resets-email",
            Self::PasswordResetsFromAddress => "resets-client",
        }
    }

    /// What was too many, as a clause.
    pub fn what(self) -> &'static str {
        match self {
            Self::FailedLoginsForAccount => "too many failed logins for this account",
            Self::FailedLoginsFromAddress => "too many failed logins from this address",
            Self::Registrations => "too many registrations from this address",
            Self::EventStreams => "too many event streams open for this account",
            Self::Writes => "too many writes from this account",
            Self::VerificationMails => "a verification mail was sent to this account a moment ago",
            Self::EmailChanges => "this account asked to change its address a moment ago",
            Self::AccountMailsFromAddress => {
                "too many verification and address change mails asked from this address"
            }
            Self::PasswordResetsForEmail => "too many password resets asked for this address",
            Self::PasswordResetsFromAddress => "too many password resets asked from this address",
        }
    }
}

impl ServiceError {
    /// One broken field.
    pub fn invalid(field: &'static str, requirement: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, requirement.into())])
    }

    /// What went wrong while doing `context`, which no client could have caused.
    pub(crate) fn internal(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            context,
            source: source.into(),
        }
    }
}

fn join_fields(errors: &[FieldError]) -> String {
    let clauses: Vec<String> = errors.iter().map(ToString::to_string).collect();
    clauses.join("; ")
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::internal("a database statement failed", err)
        }
    }
}

/// Errors that mean "no database to talk to right now" rather than "this statement failed".
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            use sea_orm::sqlx::Error;
            matches!(
                e.as_ref(),
                Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::Tls(_)
            ) || is_busy_or_going_away(e)
        }
        _ => false,
    }
}

/// Database errors that say "not now" rather than "never". The code is read as its own
/// backend writes it: PostgreSQL's SQLSTATE is five characters, most of them digits
/// (`57014` is no number to compare), SQLite's is an integer.
fn is_busy_or_going_away(err: &sea_orm::sqlx::Error) -> bool {
    let Some(err) = err.as_database_error() else {
        return false;
    };
    let Some(code) = err.code() else {
        return false;
    };
    let backend = if err
        .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        DbBackend::Postgres
    } else {
        DbBackend::Sqlite
    };
    is_transient_code(backend, &code)
}

/// Whether a backend's error code says "retry later": on PostgreSQL a connection lost
/// (class 08), a serialization failure or a deadlock (40001, 40P01), the server out of
/// connections, memory, disk or lock slots (class 53), a lock not granted in time (55P03),
/// a statement cancelled by its timeout (57014), the server shutting down or refusing
/// connections (57P..); on SQLite busy or locked past its timeout (primary codes 5 and 6,
/// the low byte of an extended code).
fn is_transient_code(backend: DbBackend, code: &str) -> bool {
    match backend {
        DbBackend::Postgres => {
            ["08", "53", "57P"]
                .iter()
                .any(|class| code.starts_with(class))
                || matches!(code, "40001" | "40P01" | "55P03" | "57014")
        }
        _ => code
            .parse::<u32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
    }
}

/// Whether the error is a unique-constraint violation (a duplicate email or vote).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether the error is a unique violation of an index on `column`: both databases name
/// the index or the column in their message (`idx_users_handle`, `users.handle`).
pub(crate) fn is_unique_violation_of(err: &DbErr, column: &str) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(message)) if message.contains(column))
}

/// Whether the error is a foreign-key violation (the row referred to has gone).
pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLSTATEs that read as numbers (`57014`, `40001`, `53300`) are still PostgreSQL's, not
    /// SQLite's codes: each is a reason to retry.
    #[test]
    fn postgres_trouble_is_read_as_its_sqlstate() {
        for code in [
            "57014", "40001", "40P01", "53300", "53200", "55P03", "57P01", "57P03", "08006",
        ] {
            assert!(is_transient_code(DbBackend::Postgres, code), "{code}");
        }
        for code in ["23505", "23503", "22001", "42P01", "00005", "00006"] {
            assert!(!is_transient_code(DbBackend::Postgres, code), "{code}");
        }
    }

    /// SQLite's busy and locked, primary or extended (`SQLITE_BUSY_SNAPSHOT` is 517,
    /// `SQLITE_LOCKED_SHAREDCACHE` 262), are reasons to retry; a constraint (19, 2067) is not.
    #[test]
    fn sqlite_busy_and_locked_are_read_from_the_primary_code() {
        for code in ["5", "6", "517", "262"] {
            assert!(is_transient_code(DbBackend::Sqlite, code), "{code}");
        }
        for code in ["19", "2067", "787", "57014", "40001"] {
            assert!(!is_transient_code(DbBackend::Sqlite, code), "{code}");
        }
    }

    #[test]
    fn a_failed_statement_keeps_its_cause() {
        let err = ServiceError::from(DbErr::Custom("the disk is full".into()));
        assert!(matches!(err, ServiceError::Internal { .. }), "{err:?}");
        let cause = std::error::Error::source(&err).expect("a cause");
        assert!(cause.to_string().contains("the disk is full"), "{cause}");
    }
}
