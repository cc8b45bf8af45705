//! What each subscriber sees of an event, and how the buffer holds and hands out events.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use entity::event;

use super::{
    buffer::{BATCH_BYTES, Buffer, Next, Rendered},
    delivery::{Change, Delivery, Render},
    kind::EventKind,
    visibility::{Step, change_for, deliver},
};
use crate::sessions::Caller;

fn event(kind: &str, owner: i64, before: bool, after: bool) -> event::Model {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let post_fields = kind != "post.deleted" && kind != "vote";
    event::Model {
        id: 7,
        created_at: 1_700_000_000,
        kind: kind.into(),
        post_id: Some(3),
        owner_id: Some(owner),
        session_id: None,
        public_before: before,
        public_after: after,
        title: post_fields.then(|| "a title".into()),
        content: post_fields.then(|| "some content".into()),
        published: post_fields.then_some(after),
        post_created_at: post_fields.then_some(at),
        post_updated_at: post_fields.then_some(at),
        version: post_fields.then_some(2),
        votes: (kind != "post.deleted").then_some(1),
        owner_handle: post_fields.then(|| "owner".into()),
        owner_display_name: None,
        owner_created_at: post_fields.then_some(at),
        hidden: post_fields.then_some(false),
        hidden_reason: None,
    }
}

fn kind(change: Option<Change>) -> Option<&'static str> {
    change.map(|change| match change {
        Change::PostCreated(_) => "created",
        Change::PostUpdated(_) => "updated",
        Change::PostDeleted { .. } => "deleted",
        Change::Vote { .. } => "vote",
        Change::ProfileUpdated(_) => "profile",
    })
}

const OWNER: i64 = 1;
const OTHER: i64 = 2;

#[test]
fn the_owner_sees_every_change_of_their_post_draft_or_not() {
    for public in [false, true] {
        let seen = |kind_of: &str, before, after| {
            kind(change_for(true, &event(kind_of, OWNER, before, after)))
        };
        assert_eq!(seen("post.created", false, public), Some("created"));
        assert_eq!(seen("post.updated", public, public), Some("updated"));
        assert_eq!(seen("post.updated", public, !public), Some("updated"));
        assert_eq!(seen("post.deleted", public, false), Some("deleted"));
        assert_eq!(seen("vote", public, public), Some("vote"));
    }
}

#[test]
fn others_see_a_post_only_while_it_is_published() {
    let seen = |kind_of: &str, before, after| {
        kind(change_for(false, &event(kind_of, OWNER, before, after)))
    };
    assert_eq!(seen("post.created", false, true), Some("created"));
    assert_eq!(seen("post.created", false, false), None);
    assert_eq!(seen("post.updated", true, true), Some("updated"));
    assert_eq!(seen("post.updated", false, true), Some("created"));
    assert_eq!(seen("post.updated", true, false), Some("deleted"));
    assert_eq!(seen("post.updated", false, false), None);
    assert_eq!(seen("post.deleted", true, false), Some("deleted"));
    assert_eq!(seen("post.deleted", false, false), None);
    assert_eq!(seen("vote", true, true), Some("vote"));
    assert_eq!(seen("vote", false, false), None);
}

#[test]
fn a_session_ending_ends_its_own_streams_only() {
    let mut ended = event(EventKind::SessionEnded.name(), OWNER, false, false);
    ended.post_id = None;
    ended.session_id = Some(5);
    let stream_of = |session_id| Caller::named(OWNER, session_id);
    let render = plain();
    assert!(matches!(deliver(&stream_of(5), &ended, &render), Step::End));
    assert!(matches!(
        deliver(&stream_of(6), &ended, &render),
        Step::Skip
    ));
    let shared = Rendered::new(&ended, &render);
    assert!(matches!(shared.step(&stream_of(5)), Step::End));
    assert!(matches!(shared.step(&stream_of(6)), Step::Skip));
}

/// Renders a delivery as its event's name and id.
fn plain() -> Render {
    Arc::new(|delivery| {
        Bytes::from(match delivery {
            Delivery::Event { id, change } => format!("{} {id}", kind(Some(change)).unwrap()),
            Delivery::Reset { id } => format!("reset {id}"),
        })
    })
}

#[test]
fn both_audiences_share_one_rendering_when_they_see_the_same() {
    let render = plain();
    let same = Rendered::new(&event("post.updated", OWNER, true, true), &render);
    let (owners, others) = (same.to_owner.unwrap(), same.to_others.unwrap());
    assert_eq!(owners.as_ptr(), others.as_ptr(), "one copy of the bytes");
    assert_eq!(same.bytes, owners.len());

    let published = Rendered::new(&event("post.updated", OWNER, false, true), &render);
    assert_eq!(published.to_owner.as_deref(), Some(&b"updated 7"[..]));
    assert_eq!(published.to_others.as_deref(), Some(&b"created 7"[..]));
    assert_eq!(published.bytes, 18);

    let draft = Rendered::new(&event("post.created", OWNER, false, false), &render);
    let stream = |user_id| Caller::named(user_id, 1);
    assert!(matches!(draft.step(&stream(OWNER)), Step::Send(_)));
    assert!(matches!(draft.step(&stream(OTHER)), Step::Skip));
}

#[test]
fn the_buffer_holds_its_bytes_and_tells_who_fell_out_of_it() {
    let render = plain();
    let mut buffer = Buffer::default();
    for id in 1..=10 {
        let mut created = event("post.created", OWNER, false, true);
        created.id = id;
        buffer.push(Rendered::new(&created, &render), 30);
    }
    // Each event is 9 or 10 bytes: three fit in 30.
    assert_eq!(buffer.events.len(), 3, "bounded in bytes");
    assert!(buffer.bytes <= 30);
    assert_eq!((buffer.dropped_through, buffer.newest), (7, 10));
    let stream = Caller::named(OTHER, 1);
    assert!(matches!(buffer.next_after(6, &stream), Next::Behind));
    let Next::Events(batch) = buffer.next_after(7, &stream) else {
        panic!("the events after 7");
    };
    assert_eq!(batch.through, 10);
    assert_eq!(
        batch.joined().as_deref(),
        Some(&b"created 8created 9created 10"[..]),
        "taken together, as one piece"
    );
    assert!(matches!(buffer.next_after(10, &stream), Next::Wait));

    let mut huge = event("post.created", OWNER, false, true);
    huge.id = 11;
    buffer.push(Rendered::new(&huge, &render), 1);
    assert_eq!(
        buffer.events.len(),
        1,
        "the newest stays, whatever its size"
    );
}

#[test]
fn a_stream_takes_at_most_a_batch_of_bytes_at_once() {
    let render = plain();
    let mut buffer = Buffer::default();
    for id in 1..=3000 {
        let mut created = event("post.created", OWNER, false, true);
        created.id = id;
        buffer.push(Rendered::new(&created, &render), usize::MAX);
    }
    let stream = Caller::named(OTHER, 1);
    let Next::Events(first) = buffer.next_after(0, &stream) else {
        panic!("the first events");
    };
    assert!(first.bytes <= BATCH_BYTES, "{} bytes", first.bytes);
    assert!(first.bytes > BATCH_BYTES - 16, "{} bytes", first.bytes);
    let Next::Events(second) = buffer.next_after(first.through, &stream) else {
        panic!("the events after the first batch");
    };
    assert_eq!(
        first.frames.len() + second.frames.len(),
        usize::try_from(second.through).unwrap(),
        "the second batch goes on where the first stopped"
    );
}

#[test]
fn a_recorded_post_reads_back_whole() {
    let Some(Change::PostCreated(view)) =
        change_for(true, &event("post.created", OWNER, false, true))
    else {
        panic!("a creation");
    };
    assert_eq!(view.post.id, 3);
    assert_eq!(view.owner.handle, "owner");
    assert_eq!(view.votes, 1);
    assert_eq!(view.post.version, 2);
}
