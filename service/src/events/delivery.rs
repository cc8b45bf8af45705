//! What a subscription sends: each change as one subscriber sees it, or a reset.

use std::{pin::Pin, sync::Arc};

use bytes::Bytes;
use futures_util::Stream;

use crate::{accounts::Profile, posts::PostView};

/// A change as one subscriber sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A post came into view: written, or published by someone else.
    PostCreated(Box<PostView>),
    PostUpdated(Box<PostView>),
    /// A post left the view: deleted, or made a draft by someone else.
    PostDeleted {
        id: i64,
    },
    Vote {
        post_id: i64,
        votes: i64,
    },
    /// A person's profile as it now is.
    ProfileUpdated(Profile),
}

/// What a subscription sends, before it is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Event {
        id: i64,
        change: Change,
    },
    /// The events after the id the subscriber named are no longer all kept (or that id is
    /// none this service gave): it should list again. Events after `id` follow.
    Reset {
        id: i64,
    },
}

/// Renders a delivery as the bytes a stream sends (the caller's wire format): once per
/// audience for the live events, whose bytes every subscriber shares.
pub type Render = Arc<dyn Fn(Delivery) -> Bytes + Send + Sync>;

/// A subscriber's stream of rendered deliveries; it ends when the subscriber's session ends,
/// when it falls too far behind, or when the service stops. Dropping it frees its slot.
pub type Subscription = Pin<Box<dyn Stream<Item = Bytes> + Send>>;
