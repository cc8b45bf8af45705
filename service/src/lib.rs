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
pub mod passwords;
pub mod posts;
mod refresh_tokens;
pub mod sessions;
mod sql;
pub mod tokens;
pub mod votes;

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

/// A key of its own for one use of the service's secret (`purpose` names it), so that no
/// two uses ever sign with one key.
pub(crate) fn derived_key(secret: &[u8], purpose: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut derive =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any size");
    derive.update(purpose);
    derive.finalize().into_bytes().to_vec()
}

/// The current time, truncated to the microseconds both databases store, so that what an
/// insert returns equals what a later read finds.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
