//! The word between instances on PostgreSQL: `NOTIFY events` after this instance's writes,
//! and a listener that wakes the feed on any instance's.

use std::{convert::Infallible, sync::Arc};

use sea_orm::{ConnectionTrait, DbErr, sqlx::postgres::PgListener};

use super::shared::{POLL_INTERVAL, Shared};
use crate::{
    database::{Connection, Database},
    sql,
};

/// Sends `NOTIFY events` after this instance's writes, one for as many writes as came while
/// the last one was sent. Outside the writes' transactions: a notifying transaction holds a
/// server-wide lock through its commit, which would make every write wait for the one before.
pub(super) async fn announce(shared: Arc<Shared>, database: Database) {
    let mut writes = database.watch_writes();
    let mut stopped = shared.stopped.subscribe();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            // The database outlives the task, which holds it: never an error.
            _ = writes.changed() => {}
        }
        if let Err(err) = notify(database.connection()).await {
            tracing::warn!(%err, "cannot notify the other instances of new events");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// One `NOTIFY events`, committed without waiting for the disk: it holds the server-wide
/// notification lock only that long, and a notification lost in a crash is made up for by the
/// feeds' polling.
async fn notify(db: &Connection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    for statement in sql::events::notify_without_waiting_for_disk() {
        txn.execute_raw(statement).await?;
    }
    txn.commit().await
}

/// Wakes the feed on every `NOTIFY events` (sent after any instance's writes), and when the
/// listener has reconnected, as notifications sent meanwhile are lost.
pub(super) async fn listen(shared: Arc<Shared>, url: String) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        let err = tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            Err(err) = listen_once(&shared, &url) => err,
        };
        tracing::warn!(%err, "the event listener failed; listening again in a second");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn listen_once(shared: &Shared, url: &str) -> Result<Infallible, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen("events").await?;
    shared.wake.notify_one();
    loop {
        if listener.try_recv().await?.is_none() {
            tracing::warn!("the event listener reconnected; catching up");
        }
        shared.wake.notify_one();
    }
}
