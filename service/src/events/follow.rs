//! Following the outbox: settling what committed, handing it to the subscribers through the
//! buffer, trimming what left the replay window, and keeping the streams' leases.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use sea_orm::ConnectionTrait;

use super::{
    buffer::Rendered,
    leases,
    outbox::{read_batch, trim, wait_for_writers},
    shared::{POLL_INTERVAL, Shared},
};
use crate::{
    database::{Connection, Database},
    error::ServiceError,
};

/// How long the feed waits for the live streams to take the oldest event of its full buffer
/// before it drops it (and the streams that have not taken it fall behind).
const LAG_WAIT: Duration = Duration::from_secs(1);

/// The shortest time between two reads of the outbox. A lone write's event goes out at once;
/// the events of writes that come faster go out together, each subscriber's in one write to
/// its connection: waking a subscriber and writing to its socket cost far more than the
/// bytes of one more event, so under load each event costs a fraction of what it would
/// alone, for at most this much more latency.
const SETTLE_GAP: Duration = Duration::from_millis(50);

/// How often the feed deletes what has left the replay window.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Hands what the outbox settles to the subscribers whenever woken (by this instance's writes
/// through `database`, or another's word) but at most once a [`SETTLE_GAP`], and at least
/// once a [`POLL_INTERVAL`], and trims it; until the feed stops.
pub(super) async fn follow(shared: Arc<Shared>, database: Database) {
    let db = database.connection();
    let mut writes = database.watch_writes();
    let mut stopped = shared.stopped.subscribe();
    let mut next_trim = tokio::time::Instant::now();
    loop {
        if let Err(err) = settle(&shared, db).await {
            tracing::warn!(%err, "cannot read the event outbox; trying again");
        }
        if tokio::time::Instant::now() >= next_trim {
            if let Err(err) = trim(db, shared.policy).await {
                tracing::warn!(%err, "cannot trim the event outbox");
            }
            next_trim += TRIM_INTERVAL;
        }
        let next_settle = tokio::time::Instant::now() + SETTLE_GAP;
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = shared.wake.notified() => {}
            // The database outlives the task, which holds it: never an error.
            _ = writes.changed() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep_until(next_settle) => {}
        }
    }
}

/// Renews the leases of this instance's streams every [`leases::RENEW_INTERVAL`]; gives
/// them all up when the feed stops.
pub(super) async fn renew_leases(shared: Arc<Shared>, db: Connection) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => break,
            () = tokio::time::sleep(leases::RENEW_INTERVAL) => {}
        }
        if let Err(err) = leases::renew(&db, &shared.instance).await {
            tracing::warn!(%err, "cannot renew the event streams' leases");
        }
    }
    if let Err(err) = leases::release_all(&db, &shared.instance).await {
        tracing::warn!(%err, "cannot release the event streams' leases");
    }
}

/// Sends every event past the settled one, in id order, as far as the ids are settled.
///
/// On PostgreSQL an event takes its id before its transaction commits, so an id can be
/// missing while a later one is there: its transaction is still running, or rolled back. The
/// events after such a gap wait until every transaction that was writing events when the gap
/// was seen has ended; what of the gap is then still missing was rolled back. (SQLite writes
/// one transaction at a time, and a rolled-back one gives its ids back: it has no gaps.)
async fn settle(shared: &Shared, db: &Connection) -> Result<(), ServiceError> {
    let gaps_wait = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let max_bytes = shared.policy.max_lag_bytes;
    // Ids up to this one are settled, gaps included.
    let mut waited_through = 0;
    loop {
        let settled = shared.buffer().newest;
        let batch = read_batch(db, settled, i64::MAX, max_bytes).await?;
        let Some(newest) = batch.last().map(|event| event.id) else {
            return Ok(());
        };
        let mut expected = settled + 1;
        let mut handed_on = false;
        for event in &batch {
            if gaps_wait && event.id != expected && event.id > waited_through {
                wait_for_writers(db).await?;
                waited_through = newest;
                break;
            }
            expected = event.id + 1;
            // Rendered outside the lock, which every subscriber takes for each event.
            hand_on(shared, Rendered::new(event, &shared.render)).await;
            handed_on = true;
        }
        if handed_on {
            shared.settled.send_replace(expected - 1);
        }
    }
}

/// Puts an event in the buffer. When that drops the oldest one, which a live stream has yet
/// to take, the feed waits for it, up to [`LAG_WAIT`]: a burst of writes larger than the
/// buffer goes at the pace of the streams' clients, and only a client that takes nothing
/// meanwhile falls out of it (its stream ends).
async fn hand_on(shared: &Shared, event: Rendered) {
    let max_bytes = shared.policy.max_lag_bytes;
    let deadline = tokio::time::Instant::now() + LAG_WAIT;
    loop {
        let taken = shared.taken.notified();
        tokio::pin!(taken);
        taken.as_mut().enable();
        {
            let mut buffer = shared.buffer();
            match buffer.events.front().map(|oldest| oldest.id) {
                Some(oldest) if buffer.bytes + event.bytes > max_bytes => {
                    shared.awaited.store(oldest, Ordering::Release);
                    let waited_for = tokio::time::Instant::now() < deadline
                        && shared.streams().waiting_for(oldest, buffer.dropped_through);
                    if !waited_for {
                        buffer.drop_oldest();
                        continue;
                    }
                    // The streams hear of what is in the buffer once a batch is in; this
                    // one is not yet.
                    shared.settled.send_replace(buffer.newest);
                }
                _ => {
                    shared.awaited.store(i64::MAX, Ordering::Release);
                    buffer.push(event, max_bytes);
                    return;
                }
            }
        }
        let _ = tokio::time::timeout_at(deadline, taken).await;
    }
}
