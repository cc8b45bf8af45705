//! Page reads on streaming replicas, as fresh as on the primary.
//!
//! One rule keeps every guarantee: a read goes to a replica only once that replica has
//! replayed the primary's log past where it stood when the read began, so it sees every
//! write committed before the request arrived: the caller's own, the others' (an
//! unpublished draft, a deleted or hidden post, a deleted account), and the end of a
//! session (the session check runs in the read's statement). The price is one statement
//! on the primary per read, and a short wait when the replica is just behind; a replica that
//! does not catch up within [`REPLAY_WAIT`], or does not answer, is passed over (the read
//! goes to the primary) until a [`CHECK_INTERVAL`] check finds it current again.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering},
    },
    time::Duration,
};

use sea_orm::{DbErr, QueryResult};

use super::{
    options::{DatabaseOptions, PoolMode},
    pages::PageConnections,
};
use crate::sql::{ReadStatement, replication};

/// How long a read waits for a replica just behind the primary before it goes to the
/// primary.
const REPLAY_WAIT: Duration = Duration::from_millis(50);

/// How often each replica is checked: whether it answers, and keeps up.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The replicas reads may go to.
pub(super) struct Replicas {
    replicas: Vec<Replica>,
    /// Where the next read starts looking, so that reads spread over the replicas.
    next: AtomicUsize,
}

/// What a replica is good for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplicaState {
    /// Reads go to it.
    InUse = 0,
    /// It answers but fell behind (its replay paused, or slower than the writes): reads go
    /// to the primary until it has caught up.
    Lagging = 1,
    /// It does not answer.
    Unreachable = 2,
}

impl ReplicaState {
    fn from_u8(state: u8) -> Self {
        match state {
            0 => Self::InUse,
            1 => Self::Lagging,
            _ => Self::Unreachable,
        }
    }
}

struct Replica {
    pages: PageConnections,
    /// The furthest replay position seen on it; replay only moves forward.
    replayed: AtomicI64,
    state: AtomicU8,
}

impl Replicas {
    /// The replicas at `urls`, each with connections as the primary's page reads have (but
    /// direct: a replica is not behind the primary's pooler), checked in the background
    /// while the returned value lives.
    pub(super) fn new(
        urls: &[String],
        options: &DatabaseOptions,
        primary: &PageConnections,
    ) -> Result<Arc<Self>, DbErr> {
        let replicas = urls
            .iter()
            .map(|url| {
                let pages = PageConnections::new(&DatabaseOptions {
                    url: url.clone(),
                    pool_mode: PoolMode::Session,
                    ..options.clone()
                })?;
                Ok(Replica {
                    pages,
                    replayed: AtomicI64::new(i64::MIN),
                    // Unknown until the first check: reads wait for it rather than guess.
                    state: AtomicU8::new(ReplicaState::Lagging as u8),
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        let replicas = Arc::new(Self {
            replicas,
            next: AtomicUsize::new(0),
        });
        tokio::spawn(check_replicas(Arc::downgrade(&replicas), primary.clone()));
        Ok(replicas)
    }

    /// Each replica's state, in the order of the URLs.
    pub(super) fn states(&self) -> Vec<ReplicaState> {
        self.replicas.iter().map(Replica::state).collect()
    }

    /// Reads `statement` on a replica that has replayed past `position` (the primary's,
    /// read when the read began), if one has or catches up soon; `None` sends the read to
    /// the primary.
    pub(super) async fn read(
        &self,
        position: i64,
        statement: &ReadStatement,
    ) -> Option<Vec<QueryResult>> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let replica = &self.replicas[(start + offset) % count];
            if replica.state() != ReplicaState::InUse || !replica.reaches(position).await {
                continue;
            }
            match replica.pages.read(statement).await {
                Ok(rows) => return Some(rows),
                Err(err) => {
                    // A statement that failed on the replica (cancelled by its replay, say)
                    // is asked of the primary; a replica that stopped answering is marked.
                    tracing::warn!(%err, "a read on a replica failed; reading on the primary");
                    if let Err(err) = replica.position().await {
                        replica.mark(ReplicaState::Unreachable, &err);
                    }
                    return None;
                }
            }
        }
        None
    }
}

impl Replica {
    fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn mark(&self, state: ReplicaState, why: &dyn std::fmt::Display) {
        let before = self.state.swap(state as u8, Ordering::Relaxed);
        match state {
            _ if before == state as u8 => {}
            ReplicaState::InUse => tracing::info!(reason = %why, "a read replica is in use"),
            _ => tracing::warn!(?state, reason = %why, "a read replica is passed over"),
        }
    }

    /// Whether the replica has replayed past `position`, waiting up to [`REPLAY_WAIT`]
    /// for it; one that does not is marked lagging.
    async fn reaches(&self, position: i64) -> bool {
        if self.replayed.load(Ordering::Relaxed) >= position {
            return true;
        }
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.position().await {
                Ok(replayed) if replayed >= position => return true,
                Ok(_) => {}
                Err(err) => {
                    self.mark(ReplicaState::Unreachable, &err);
                    return false;
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                self.mark(
                    ReplicaState::Lagging,
                    &"it did not catch up with the primary",
                );
                return false;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// Asks the replica how far it has replayed, and remembers it. (A replica whose replay
    /// is paused is as good as any while the primary writes nothing.)
    async fn position(&self) -> Result<i64, DbErr> {
        let rows = self.pages.read(&replication::replica_position()).await?;
        let row = rows
            .first()
            .ok_or_else(|| DbErr::Custom("the replica gave no replay position".into()))?;
        let replayed = row
            .try_get_by_index::<Option<i64>>(0)?
            .ok_or_else(|| DbErr::Custom("the server is not replaying a primary".into()))?;
        Ok(self
            .replayed
            .fetch_max(replayed, Ordering::Relaxed)
            .max(replayed))
    }
}

/// Where the primary's log stands now; see [`replication::primary_position`].
pub(super) async fn primary_position(primary: &PageConnections) -> Result<i64, DbErr> {
    let rows = primary.read(&replication::primary_position()).await?;
    rows.first()
        .ok_or_else(|| DbErr::Custom("the primary gave no log position".into()))?
        .try_get_by_index(0)
}

/// Every [`CHECK_INTERVAL`], puts back in use each replica that answers and has replayed
/// past where the primary stood at the check before (it keeps up), and marks the others;
/// until the replicas are dropped.
async fn check_replicas(replicas: Weak<Replicas>, primary: PageConnections) {
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = None;
    loop {
        interval.tick().await;
        let Some(replicas) = replicas.upgrade() else {
            return;
        };
        for replica in &replicas.replicas {
            match replica.position().await {
                Err(err) => replica.mark(ReplicaState::Unreachable, &err),
                Ok(replayed) if previous.is_some_and(|previous| replayed >= previous) => {
                    replica.mark(ReplicaState::InUse, &"it keeps up with the primary");
                }
                Ok(_) => replica.mark(ReplicaState::Lagging, &"it is behind the primary"),
            }
        }
        previous = primary_position(&primary).await.ok();
    }
}
