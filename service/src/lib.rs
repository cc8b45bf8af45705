//! The business rules of the social API: registering and authenticating people, their
//! sessions and tokens, writing, listing and voting posts. Functions take a [`DatabaseConnection`] (or
//! a [`Database`], for those that read pages of posts) and plain values, return domain
//! values or a [`ServiceError`], and know nothing of HTTP.

pub mod accounts;
pub mod cursors;
pub mod database;
mod error;
pub mod events;
pub mod fields;
mod keys;
pub mod passwords;
pub mod posts;
mod refresh_tokens;
pub mod sessions;
mod sql;
mod stream_leases;
pub mod tokens;
pub mod votes;
pub mod writes;

pub use accounts::Person;
pub use database::Database;
pub use entity::user::Model as User;
pub use error::{RateLimit, ServiceError};
pub use sea_orm::{self, DatabaseConnection};
pub use sql::seed;
pub use tokens::Caller;

/// A configured span as a span of the clock; one too long for it is as good as forever.
pub(crate) fn clock_span(span: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX)
}

/// The current time, truncated to the microseconds both databases store, so that what an
/// insert returns equals what a later read finds.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
