//! Tickets: a one-use secret that opens a stream as one session, for a client that cannot
//! send an `Authorization` header (a browser's `EventSource`).

use std::time::Duration;

use entity::{event_ticket, session};
use sea_orm::{ActiveModelTrait, EntityTrait, QueryFilter, Set};

use crate::{
    clock::{clock_span, now},
    database::Database,
    error::ServiceError,
    sessions::{Caller, ended_if_orphaned, new_secret, own_session, secret_hash, session_ended},
};

/// How long a ticket may wait for its stream.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// A one-use ticket to open a stream.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub value: String,
    pub expires_in: u64,
}

/// Issues a ticket that opens one stream as the caller's session within
/// [`TICKET_LIFETIME`].
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn issue_ticket(db: &Database, caller: &Caller) -> Result<Ticket, ServiceError> {
    let db = db.connection();
    session::Entity::find()
        .filter(own_session(caller))
        .one(db)
        .await?
        .ok_or_else(session_ended)?;
    let value = new_secret();
    let hash = secret_hash(&value).expect("a new secret has the form of one");
    event_ticket::ActiveModel {
        ticket_hash: Set(hash),
        session_id: Set(caller.session_id()),
        expires_at: Set(now() + clock_span(TICKET_LIFETIME)),
    }
    .insert(db)
    .await
    .map_err(ended_if_orphaned)?;
    Ok(Ticket {
        value,
        expires_in: TICKET_LIFETIME.as_secs(),
    })
}

/// Spends a ticket: the caller it was issued to.
///
/// # Errors
/// [`ServiceError::Unauthorized`], alike for a malformed, unknown, spent or expired ticket
/// and for one whose session has ended.
pub async fn redeem_ticket(db: &Database, ticket: &str) -> Result<Caller, ServiceError> {
    let db = db.connection();
    let refused = || {
        ServiceError::Unauthorized(
            "the ticket is invalid, spent or expired; get a new one from POST /events/ticket"
                .into(),
        )
    };
    let hash = secret_hash(ticket).ok_or_else(refused)?;
    let spent = event_ticket::Entity::delete_by_id(hash)
        .exec_with_returning(db)
        .await?
        .filter(|ticket| ticket.expires_at > now())
        .ok_or_else(refused)?;
    let session = session::Entity::find_by_id(spent.session_id)
        .one(db)
        .await?
        .ok_or_else(refused)?;
    Ok(Caller::named(session.user_id, session.id))
}
