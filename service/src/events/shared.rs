//! What the feed's tasks and its subscriptions share: the buffer, the signals between them,
//! and the open streams.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, watch};

use super::{buffer::Buffer, delivery::Render, leases::Instance};

/// The longest the feed waits before reading the outbox again without being woken.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long the outbox keeps events, how far a stream may fall behind, and how many streams
/// may be open.
#[derive(Clone, Copy, Debug)]
pub struct EventPolicy {
    pub replay_window: Duration,
    /// The bytes of rendered events the feed keeps for subscribers that have not taken them;
    /// a subscriber further behind is ended. A replaying stream reads the outbox in batches
    /// of a quarter of it, leaving the rest to what the connection buffers.
    pub max_lag_bytes: usize,
    /// Open streams of one account, on every instance together.
    pub streams_per_account: usize,
    /// Open streams on this instance, all accounts together.
    pub max_streams: usize,
}

pub(super) struct Shared {
    pub(super) buffer: Mutex<Buffer>,
    /// Raised to the id of the newest event in the buffer after each read of the outbox:
    /// subscribers that have taken everything wait on it.
    pub(super) settled: watch::Sender<i64>,
    /// Another instance wrote.
    pub(super) wake: Notify,
    pub(super) stopped: watch::Sender<bool>,
    pub(super) policy: EventPolicy,
    pub(super) render: Render,
    pub(super) streams: Mutex<OpenStreams>,
    /// A stream's slot was freed.
    pub(super) freed: Notify,
    /// This instance, in the leases its streams hold.
    pub(super) instance: Instance,
    /// The oldest event of the full buffer, which the feed waits for the live streams to take
    /// before it drops it; `i64::MAX` when it waits for none.
    pub(super) awaited: AtomicI64,
    /// A stream took the awaited event.
    pub(super) taken: Notify,
}

impl Shared {
    pub(super) fn buffer(&self) -> MutexGuard<'_, Buffer> {
        // What a panicking holder left is whole: each change is one push or pop.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn streams(&self) -> MutexGuard<'_, OpenStreams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The streams open on this instance, to cap them.
#[derive(Default)]
pub(super) struct OpenStreams {
    /// Where each open stream is: the id of the last event it took from the buffer
    /// (`i64::MAX` until it goes live).
    pub(super) positions: HashMap<u64, Arc<AtomicI64>>,
    pub(super) next_slot: u64,
}

impl OpenStreams {
    /// Whether a live stream that has not fallen out of the buffer has yet to take `oldest`.
    pub(super) fn waiting_for(&self, oldest: i64, dropped_through: i64) -> bool {
        self.positions.values().any(|position| {
            let position = position.load(Ordering::Acquire);
            position >= dropped_through && position < oldest
        })
    }
}
