//! The feed's buffer: the newest events, each rendered once per audience, bounded in bytes,
//! and what a live stream takes from it at once.

use std::{collections::VecDeque, sync::Arc};

use bytes::Bytes;
use entity::event;

use super::{
    delivery::{Delivery, Render},
    kind::EventKind,
    visibility::{Step, change_for, ended_or_skipped},
};
use crate::sessions::Caller;

/// The most bytes of events a live stream sends as one piece (an event larger than that goes
/// alone, its bytes shared with the other streams): so many that the events of a burst go
/// in a few writes, so few that the copies a stalled client's connection holds stay small.
pub(super) const BATCH_BYTES: usize = 16 * 1024;

/// The newest events, rendered, as many as `EventPolicy::max_lag_bytes` holds (at least the
/// newest one).
#[derive(Default)]
pub(super) struct Buffer {
    pub(super) events: VecDeque<Arc<Rendered>>,
    pub(super) bytes: usize,
    /// The id of the newest event that left the buffer: a subscriber that has not passed it
    /// fell behind.
    pub(super) dropped_through: i64,
    /// The id of the last event handed to the subscribers: every event up to it is settled,
    /// committed or never to be.
    pub(super) newest: i64,
}

impl Buffer {
    pub(super) fn push(&mut self, event: Rendered, max_bytes: usize) {
        self.bytes += event.bytes;
        self.newest = event.id;
        self.events.push_back(Arc::new(event));
        while self.bytes > max_bytes && self.events.len() > 1 {
            self.drop_oldest();
        }
    }

    pub(super) fn drop_oldest(&mut self) {
        if let Some(oldest) = self.events.pop_front() {
            self.bytes -= oldest.bytes;
            self.dropped_through = oldest.id;
        }
    }

    /// What `caller`'s stream is to send after `last`: the events the buffer has, as many as
    /// [`BATCH_BYTES`] holds (at least one).
    pub(super) fn next_after(&self, last: i64, caller: &Caller) -> Next {
        if last < self.dropped_through {
            return Next::Behind;
        }
        let at = self.events.partition_point(|event| event.id <= last);
        let mut batch = Batch {
            through: last,
            frames: Vec::new(),
            bytes: 0,
            ends: false,
        };
        for event in self.events.range(at..) {
            if batch.through > last && batch.bytes + event.bytes > BATCH_BYTES {
                break;
            }
            batch.through = event.id;
            match event.step(caller) {
                Step::Send(frame) => {
                    batch.bytes += frame.len();
                    batch.frames.push(frame);
                }
                Step::Skip => {}
                Step::End => {
                    batch.ends = true;
                    break;
                }
            }
        }
        if batch.through == last {
            Next::Wait
        } else {
            Next::Events(batch)
        }
    }
}

pub(super) enum Next {
    Events(Batch),
    /// Events the subscriber has not taken have left the buffer.
    Behind,
    /// Nothing after the subscriber's last event yet.
    Wait,
}

/// The events a stream takes from the buffer at once.
pub(super) struct Batch {
    /// The id of the last of them.
    pub(super) through: i64,
    /// The bytes of those the stream sends.
    pub(super) frames: Vec<Bytes>,
    pub(super) bytes: usize,
    /// The last of them ends the stream.
    pub(super) ends: bool,
}

impl Batch {
    /// The frames as one piece: each piece costs the stream a pass through its connection
    /// and a write to its socket, which cost far more than copying a few small events.
    pub(super) fn joined(mut self) -> Option<Bytes> {
        if self.frames.len() <= 1 {
            return self.frames.pop();
        }
        let mut joined = bytes::BytesMut::with_capacity(self.bytes);
        for frame in &self.frames {
            joined.extend_from_slice(frame);
        }
        Some(joined.freeze())
    }
}

/// An event of the outbox rendered for both its audiences; the two share their bytes when
/// they see the same.
pub(super) struct Rendered {
    pub(super) id: i64,
    owner_id: Option<i64>,
    /// For `session.ended`: the session whose streams it ends.
    ends: Option<Option<i64>>,
    pub(super) to_owner: Option<Bytes>,
    pub(super) to_others: Option<Bytes>,
    /// What it holds.
    pub(super) bytes: usize,
}

impl Rendered {
    pub(super) fn new(event: &event::Model, render: &Render) -> Self {
        let mut rendered = Self {
            id: event.id,
            owner_id: event.owner_id,
            ends: None,
            to_owner: None,
            to_others: None,
            bytes: 0,
        };
        if EventKind::from_name(&event.kind) == Some(EventKind::SessionEnded) {
            rendered.ends = Some(event.session_id);
            return rendered;
        }
        let owners = event.owner_id.and(change_for(true, event));
        let others = change_for(false, event);
        let frame = |change| {
            render(Delivery::Event {
                id: event.id,
                change,
            })
        };
        if owners == others {
            rendered.to_owner = owners.map(frame);
            rendered.to_others.clone_from(&rendered.to_owner);
            rendered.bytes = rendered.to_owner.as_ref().map_or(0, Bytes::len);
        } else {
            rendered.to_owner = owners.map(frame);
            rendered.to_others = others.map(frame);
            rendered.bytes = [&rendered.to_owner, &rendered.to_others]
                .into_iter()
                .flatten()
                .map(Bytes::len)
                .sum();
        }
        rendered
    }

    /// What it is to `caller`'s stream: the shared bytes of its audience, if any.
    pub(super) fn step(&self, caller: &Caller) -> Step {
        if let Some(session) = self.ends {
            return ended_or_skipped(caller, session);
        }
        let frame = if self.owner_id == Some(caller.user_id()) {
            &self.to_owner
        } else {
            &self.to_others
        };
        frame.clone().map_or(Step::Skip, Step::Send)
    }
}
