//! Live events: what changed among the posts a caller may see, as it happens, and again
//! after a reconnection.
//!
//! The truth is the `events` table, an outbox written by the database's triggers in the
//! statement of each write (see the migration creating it): an event exists exactly when its
//! write committed. Its ids give one order every subscriber sees, live or replayed: the order
//! of commit for the events of one post.
//!
//! Each instance runs one [`Feed`], which settles the outbox past the last id it has sent
//! and hands each new event to its subscribers. It reads when woken: by this instance's own
//! writes (the database they went through says so), on PostgreSQL by a `NOTIFY` any instance
//! sends after its writes, and once a second whatever happens, so that a notification lost
//! while the listener reconnected delays an event by a second at most, and loses nothing.
//! Reads are a short gap apart, so that the events of writes in quick succession go out
//! together.
//!
//! The feed renders each event once per audience (its post's owner, and everyone else) into
//! bytes that every subscriber's stream shares, and keeps the newest of them in a buffer
//! bounded in bytes ([`EventPolicy::max_lag_bytes`]): a subscriber whose client does not
//! read falls out of it and is ended, and can resume where it was. A subscriber that asks to
//! resume after an id is first sent what followed it from the outbox, read in batches bounded
//! in bytes, each only once the client has taken the last; then it goes on live.
//!
//! The rooms, by job: `feed` is what callers hold; `follow` reads the `outbox` and fills the
//! `buffer`, which `shared` holds; `notify` carries the word between instances;
//! `subscription` opens a stream and replays what it missed; `visibility` decides what each
//! subscriber sees, and `delivery` is what it is sent, of the `kind`s the outbox records;
//! `slots` and `leases` cap the streams; and `tickets` open a stream for a client that cannot
//! send a header.

mod buffer;
mod delivery;
mod feed;
mod follow;
mod kind;
mod leases;
mod notify;
mod outbox;
mod shared;
mod slots;
mod subscription;
#[cfg(test)]
mod tests;
mod tickets;
mod visibility;

pub use delivery::{Change, Delivery, Render, Subscription};
pub use feed::Feed;
pub use kind::EventKind;
pub use shared::EventPolicy;
pub use tickets::{TICKET_LIFETIME, Ticket, issue_ticket, redeem_ticket};
