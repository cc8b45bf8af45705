//! The caps on open streams: a place among this instance's streams (at most
//! `EventPolicy::max_streams`) and a lease on one of its account's slots (at most
//! `EventPolicy::streams_per_account` on every instance together).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use super::{
    leases::{self, Lease},
    shared::Shared,
};
use crate::{
    database::Connection,
    error::{RateLimit, ServiceError},
};

/// How long a caller refused a stream for the caps should wait: a slot frees as soon as a
/// stream's client goes.
const STREAM_RETRY_AFTER_SECS: u64 = 5;

/// How long a caller at a stream cap waits for a slot to free before it is refused: a client
/// that closes a stream and opens another may be heard opening before closing.
const SLOT_WAIT: Duration = Duration::from_millis(500);

/// How often a caller at the cap on its account's streams looks again whether a slot has
/// freed on another instance (one freed on this instance wakes it at once).
const SLOT_POLL: Duration = Duration::from_millis(100);

/// An open stream's place among the [`OpenStreams`] and its account's lease; both freed when
/// the stream is dropped (its client gone, its session ended, the service stopping).
pub(super) struct Slot {
    shared: Arc<Shared>,
    db: Connection,
    id: u64,
    position: Arc<AtomicI64>,
    lease: Option<Lease>,
}

impl Slot {
    /// A place for one more stream of `user_id`, within both caps; at a cap, one that frees
    /// within [`SLOT_WAIT`].
    pub(super) async fn take(
        shared: &Arc<Shared>,
        db: &Connection,
        user_id: i64,
    ) -> Result<Self, ServiceError> {
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        loop {
            let freed = shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let refused = match Self::try_take(shared, db, user_id).await {
                Err(refused @ (ServiceError::Busy { .. } | ServiceError::RateLimited { .. })) => {
                    refused
                }
                taken => return taken,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(refused);
            }
            // Another instance's streams free their slots without a word to this one.
            let look_again = match refused {
                ServiceError::RateLimited { .. } => deadline.min(now + SLOT_POLL),
                _ => deadline,
            };
            let _ = tokio::time::timeout_at(look_again, freed).await;
        }
    }

    async fn try_take(
        shared: &Arc<Shared>,
        db: &Connection,
        user_id: i64,
    ) -> Result<Self, ServiceError> {
        let mut slot = {
            let mut streams = shared.streams();
            if streams.positions.len() >= shared.policy.max_streams {
                return Err(ServiceError::Busy {
                    retry_after_secs: STREAM_RETRY_AFTER_SECS,
                });
            }
            let id = streams.next_slot;
            streams.next_slot += 1;
            let position = Arc::new(AtomicI64::new(i64::MAX));
            streams.positions.insert(id, Arc::clone(&position));
            Self {
                shared: Arc::clone(shared),
                db: db.clone(),
                id,
                position,
                lease: None,
            }
        };
        let cap = shared.policy.streams_per_account;
        slot.lease = Some(
            leases::take(db, &shared.instance, user_id, cap)
                .await?
                .ok_or(ServiceError::RateLimited {
                    limit: RateLimit::EventStreams,
                    retry_after_secs: STREAM_RETRY_AFTER_SECS,
                })?,
        );
        Ok(slot)
    }

    /// The stream has taken the live event `id` (or goes live after it).
    pub(super) fn took(&self, id: i64) {
        self.position.store(id, Ordering::Release);
        if id >= self.shared.awaited.load(Ordering::Acquire) {
            self.shared.taken.notify_waiters();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.streams().positions.remove(&self.id);
        let shared = Arc::clone(&self.shared);
        let Some(lease) = self.lease.take() else {
            shared.freed.notify_waiters();
            return;
        };
        let db = self.db.clone();
        let release = async move {
            if let Err(err) = leases::release(&db, &shared.instance, lease).await {
                // The lease expires unless renewed; a failed release only holds it that long.
                tracing::warn!(%err, "cannot release an event stream's lease");
            }
            shared.freed.notify_waiters();
        };
        // A runtime shutting down drops its streams outside a task; the instance's leases are
        // given up as the feed stops.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }
}
