//! What an event of the outbox is to each subscriber: the change they see, if any, by the
//! one rule of who sees a post ([`visibility::sees`]).

use entity::{event, post};

use super::{
    delivery::{Change, Delivery, Render},
    kind::EventKind,
};
use crate::{
    accounts::Profile,
    posts::{PostView, visibility},
    sessions::Caller,
};

/// What an event is to one stream.
pub(super) enum Step {
    Send(bytes::Bytes),
    Skip,
    End,
}

/// What an event of the outbox is to a subscriber, rendered for it alone (a replay).
pub(super) fn deliver(caller: &Caller, event: &event::Model, render: &Render) -> Step {
    if EventKind::from_name(&event.kind) == Some(EventKind::SessionEnded) {
        return ended_or_skipped(caller, event.session_id);
    }
    match change_for(event.owner_id == Some(caller.user_id()), event) {
        Some(change) => Step::Send(render(Delivery::Event {
            id: event.id,
            change,
        })),
        None => Step::Skip,
    }
}

/// A `session.ended` event ends the streams of its session, and no other.
pub(super) fn ended_or_skipped(caller: &Caller, session: Option<i64>) -> Step {
    if session == Some(caller.session_id()) {
        Step::End
    } else {
        Step::Skip
    }
}

/// An event as its post's owner (`owner`) or anyone else sees it, if they see it at all; a
/// profile's change is everyone's. The
/// post is seen as [`visibility::sees`] says, before and after the write: its owner sees
/// every change of it; anyone else sees a post only while it is published, so a publication
/// is a creation to them and a return to draft a deletion.
pub(super) fn change_for(owner: bool, event: &event::Model) -> Option<Change> {
    let kind = EventKind::from_name(&event.kind)?;
    if kind == EventKind::ProfileUpdated {
        return profile(event).map(Change::ProfileUpdated);
    }
    let existed = kind != EventKind::PostCreated;
    let exists = kind != EventKind::PostDeleted;
    let before = existed && visibility::sees(owner, event.public_before);
    let after = exists && visibility::sees(owner, event.public_after);
    let post_id = event.post_id?;
    match (kind, before, after) {
        (EventKind::Vote, _, true) => Some(Change::Vote {
            post_id,
            votes: event.votes?,
        }),
        (EventKind::SessionEnded | EventKind::Vote | EventKind::ProfileUpdated, ..) => None,
        (_, true, false) => Some(Change::PostDeleted { id: post_id }),
        (_, false, true) => Some(Change::PostCreated(Box::new(view(event)?))),
        (_, true, true) => Some(Change::PostUpdated(Box::new(view(event)?))),
        (_, false, false) => None,
    }
}

/// The post as an event recorded it.
pub(super) fn view(event: &event::Model) -> Option<PostView> {
    let owner_id = event.owner_id?;
    Some(PostView {
        post: post::Model {
            id: event.post_id?,
            title: event.title.clone()?,
            content: event.content.clone()?,
            published: event.published?,
            created_at: event.post_created_at?,
            updated_at: event.post_updated_at?,
            owner_id,
            version: event.version?,
            // Recorded before posts could be hidden: not hidden.
            hidden: event.hidden.unwrap_or(false),
            hidden_reason: event.hidden_reason.clone(),
        },
        owner: profile(event)?,
        votes: event.votes?,
    })
}

/// The owner's profile as an event recorded it.
fn profile(event: &event::Model) -> Option<Profile> {
    Some(Profile {
        id: event.owner_id?,
        handle: event.owner_handle.clone()?,
        display_name: event.owner_display_name.clone(),
        created_at: event.owner_created_at?,
    })
}
