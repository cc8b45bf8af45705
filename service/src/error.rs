use sea_orm::{DbErr, RuntimeErr, SqlErr};

use crate::fields::FieldError;

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
    /// Too much work is queued (every password-hashing permit is taken, past the wait);
    /// retry after this many seconds.
    #[error("the service is busy hashing passwords; retry in {retry_after_secs} seconds")]
    Busy { retry_after_secs: u64 },
    /// The database cannot be reached or has no free connection.
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    /// Anything else: a bug or a broken invariant. Logged, never shown to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which limit a [`ServiceError::RateLimited`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Failed logins for one email or from one client address.
    FailedLogins,
    /// Registrations from one client address.
    Registrations,
    /// Writes by one account.
    Writes,
}

impl RateLimit {
    /// What was too many, as a clause.
    pub fn what(self) -> &'static str {
        match self {
            Self::FailedLogins => "too many failed logins",
            Self::Registrations => "too many registrations from this address",
            Self::Writes => "too many writes from this account",
        }
    }
}

impl ServiceError {
    /// One broken field.
    pub fn invalid(field: &'static str, requirement: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, requirement.into())])
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
            Self::Internal(err.to_string())
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

/// Database errors that say "not now" rather than "never": PostgreSQL shutting down or
/// refusing connections (57P..), a statement cancelled by its timeout (57014), a lock not
/// granted in time or a deadlock (55P03, 40P01), a serialization failure (40001); SQLite
/// busy or locked past its timeout (primary codes 5 and 6, in the low byte of extended
/// codes).
fn is_busy_or_going_away(err: &sea_orm::sqlx::Error) -> bool {
    let Some(code) = err.as_database_error().and_then(|e| e.code()) else {
        return false;
    };
    if let Ok(sqlite_code) = code.parse::<u32>() {
        return matches!(sqlite_code & 0xff, 5 | 6);
    }
    code.starts_with("57P") || matches!(code.as_ref(), "57014" | "55P03" | "40P01" | "40001")
}

/// Whether the error is a unique-constraint violation (a duplicate email or vote).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether the error is a foreign-key violation (the row referred to has gone).
pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}
