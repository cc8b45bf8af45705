//! The feed: this instance's reader of the outbox and its subscribers, as the service's
//! callers see it.

use std::sync::{Arc, Mutex, atomic::AtomicI64};

use sea_orm::DbBackend;
use tokio::sync::{Notify, watch};

use super::{
    buffer::Buffer,
    delivery::{Render, Subscription},
    follow::{follow, renew_leases},
    leases::Instance,
    notify::{announce, listen},
    outbox::wait_for_writers,
    shared::{EventPolicy, OpenStreams, Shared},
    subscription::subscribe,
};
use crate::{database::Database, error::ServiceError, outbox::newest_id, sessions::Caller};

/// This instance's reader of the outbox and its subscribers. It stops, and its streams end,
/// when [`Feed::stop`] is called or its last clone is dropped.
#[derive(Clone)]
pub struct Feed {
    pub(super) running: Arc<Running>,
}

/// What the feed's clones share; its drop stops the feed's tasks, which hold [`Shared`].
pub(super) struct Running {
    pub(super) shared: Arc<Shared>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stopped.send_replace(true);
    }
}

impl Feed {
    /// Starts following the outbox of `db`, read again after each operation that may have
    /// written through `db`; on PostgreSQL, `listen_url` is where to listen for the other
    /// instances' writes (none: their events come by the poll, within a second). `render`
    /// makes the bytes each delivery is sent as.
    ///
    /// # Errors
    /// The outbox cannot be read.
    pub async fn start(
        db: &Database,
        listen_url: Option<&str>,
        policy: EventPolicy,
        render: Render,
    ) -> Result<Self, ServiceError> {
        // One connection for both reads: the pool has just opened its first, and a second
        // statement right after the first would open another while it is still going back.
        let start = db.connection().begin().await?;
        if db.backend() == DbBackend::Postgres {
            // Every event with an id up to the newest is settled once these end.
            wait_for_writers(&start).await?;
        }
        let newest = newest_id(&start).await?;
        start.commit().await?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer {
                dropped_through: newest,
                newest,
                ..Buffer::default()
            }),
            settled: watch::Sender::new(newest),
            wake: Notify::new(),
            stopped: watch::Sender::new(false),
            policy,
            render,
            streams: Mutex::new(OpenStreams::default()),
            freed: Notify::new(),
            instance: Instance::new(),
            awaited: AtomicI64::new(i64::MAX),
            taken: Notify::new(),
        });
        tokio::spawn(follow(shared.clone(), db.clone()));
        tokio::spawn(renew_leases(shared.clone(), db.connection().clone()));
        if db.backend() == DbBackend::Postgres {
            if let Some(url) = listen_url {
                tokio::spawn(listen(shared.clone(), url.to_owned()));
            }
            tokio::spawn(announce(shared.clone(), db.clone()));
        }
        Ok(Self {
            running: Arc::new(Running { shared }),
        })
    }

    /// Ends every subscription and stops following the outbox.
    pub fn stop(&self) {
        self.running.shared.stopped.send_replace(true);
    }

    /// Subscribes the caller: what happens from now on, or, after `last_seen`, every event
    /// since (a [`super::Delivery::Reset`] first when those are not all kept, or when no
    /// event had that id yet). A replay leaves out what was recorded before the caller's
    /// account existed: nothing of it was ever the caller's to see.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when the caller's account has as many streams open (on
    /// every instance together) as it may, [`ServiceError::Busy`] when the instance has, and
    /// [`ServiceError::Unauthorized`] when the caller's session has ended.
    pub async fn subscribe(
        &self,
        db: &Database,
        caller: &Caller,
        last_seen: Option<i64>,
    ) -> Result<Subscription, ServiceError> {
        let db = db.connection();
        subscribe(&self.running.shared, db, caller, last_seen).await
    }
}
