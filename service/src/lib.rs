//! The business rules of the social API: registering and authenticating people, their
//! sessions and tokens, writing, listing and voting posts, and the live events of those
//! writes. Operations take a [`Database`], a [`Caller`] that only a verified token or ticket
//! makes, and values that only their rules make; they return domain values or a
//! [`ServiceError`], and know nothing of HTTP.
//!
//! One folder per resource ([`accounts`], [`sessions`], [`posts`], [`votes`], [`events`],
//! [`mail`]), plus the write limit ([`writes`]); below them the plumbing they share: the [`database`],
//! the clock, the errors, the keys, the outbox the triggers write, the rules of fields shared by several resources
//! ([`fields`]), and `sql`, the one door to statements written as SQL text.

pub mod accounts;
mod clock;
pub mod database;
mod error;
pub mod events;
pub mod fields;
mod keys;
pub mod limits;
pub mod mail;
pub mod moderation;
mod outbox;
pub mod posts;
pub mod sessions;
mod sql;
pub mod votes;
pub mod writes;

pub use accounts::User;
pub use database::Database;
pub use error::{RateLimit, ServiceError};
pub use sea_orm::{self, DatabaseConnection};
pub use sessions::Caller;
pub use sql::seed;
