//! The database's view of the social API: one SeaORM entity per table, nothing else.
//! Behaviour lives in the `service` crate; HTTP shapes live in `api`.

pub mod account_token;
pub mod event;
pub mod event_stream;
pub mod event_ticket;
pub mod limit_hit;
pub mod login_failure;
pub mod mail;
pub mod moderation_entry;
pub mod password_reset;
pub mod post;
pub mod session;
pub mod user;
pub mod vote;
pub mod write_count;
