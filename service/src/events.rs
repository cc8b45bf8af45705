//! Live events: what changed among the posts a caller may see, as it happens, and again
//! after a reconnection.
//!
//! The truth is the `events` table, an outbox written by the database's triggers in the
//! statement of each write (see the migration creating it): an event exists exactly when its
//! write committed. Its ids give one order every subscriber sees, live or replayed: the order
//! of commit for the events of one post.
//!
//! Each instance runs one [`Feed`], which settles the outbox past the last id it has sent (see
//! [`settle`]) and hands each new event to its subscribers. It reads when woken: by this
//! instance's own writes ([`Feed::wake`]), on PostgreSQL by a `NOTIFY` any instance sends
//! after its writes, and once a second whatever happens, so that a notification lost while the
//! listener reconnected delays an event by a second at most, and loses nothing.
//!
//! A subscriber that asks to resume after an id is first sent what followed it from the
//! outbox, then goes on live. The feed keeps a bounded buffer for all its subscribers: one
//! that falls that far behind (it does not read) is dropped, and can resume where it was.

use std::{
    collections::HashSet,
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use entity::{event, event_ticket, post, session};
use futures_util::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use tokio::sync::{Notify, broadcast, watch};

use crate::{
    Person, ServiceError, clock_span,
    database::Database,
    now,
    posts::PostView,
    sessions::{ended_if_orphaned, new_secret, own_session, secret_hash, session_ended},
    tokens::Caller,
};

/// How long the outbox keeps events for subscribers resuming after a gap.
#[derive(Clone, Copy, Debug)]
pub struct EventPolicy {
    pub replay_window: Duration,
}

/// How long a ticket may wait for its stream.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// How many events the feed holds for subscribers that have not taken them yet; a subscriber
/// that falls further behind is dropped.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// The longest the feed waits before reading the outbox again without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often the feed deletes what has left the replay window.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// How often the feed looks again whether the transactions writing the events of a gap have
/// ended (they are single statements, or a few).
const WRITERS_POLL: Duration = Duration::from_millis(2);

/// How many events one read of the outbox takes.
const READ_BATCH: u64 = 512;

/// A change as one subscriber sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A post came into view: written, or published by someone else.
    PostCreated(PostView),
    PostUpdated(PostView),
    /// A post left the view: deleted, or made a draft by someone else.
    PostDeleted {
        id: i64,
    },
    Vote {
        post_id: i64,
        votes: i64,
    },
}

/// What a subscription yields.
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

/// A subscriber's stream of deliveries; it ends when the subscriber's session ends, when it
/// falls too far behind, or when the service stops.
pub type Subscription = Pin<Box<dyn Stream<Item = Delivery> + Send>>;

/// A one-use ticket to open a stream.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub value: String,
    pub expires_in: u64,
}

/// This instance's reader of the outbox and its subscribers. It stops, and its streams end,
/// when [`Feed::stop`] is called or its last clone is dropped.
#[derive(Clone)]
pub struct Feed {
    running: Arc<Running>,
}

/// What the feed's clones share; its drop stops the feed's tasks, which hold [`Shared`].
struct Running {
    shared: Arc<Shared>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stopped.send_replace(true);
    }
}

struct Shared {
    sender: broadcast::Sender<Arc<event::Model>>,
    /// The id of the last event handed to the subscribers (raised before it is sent): every
    /// event up to it is settled, committed or never to be.
    settled: AtomicI64,
    wake: Notify,
    /// This instance wrote: the other instances are to be told.
    written: Notify,
    stopped: watch::Sender<bool>,
    policy: EventPolicy,
}

impl Feed {
    /// Starts following the outbox of `db`; on PostgreSQL, `listen_url` is where to listen
    /// for the other instances' writes.
    ///
    /// # Errors
    /// The outbox cannot be read.
    pub async fn start(
        db: &Database,
        listen_url: &str,
        policy: EventPolicy,
    ) -> Result<Self, ServiceError> {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        // One connection for both reads: the pool has just opened its first, and a second
        // statement right after the first would open another while it is still going back.
        let start = db.begin().await?;
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Every event with an id up to the newest is settled once these end.
            wait_for_writers(&start).await?;
        }
        let newest = newest_id(&start).await?;
        start.commit().await?;
        let shared = Arc::new(Shared {
            sender,
            settled: AtomicI64::new(newest),
            wake: Notify::new(),
            written: Notify::new(),
            stopped: watch::Sender::new(false),
            policy,
        });
        tokio::spawn(follow(shared.clone(), (**db).clone()));
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            tokio::spawn(listen(shared.clone(), listen_url.to_owned()));
            tokio::spawn(announce(shared.clone(), (**db).clone()));
        }
        Ok(Self {
            running: Arc::new(Running { shared }),
        })
    }

    /// Reads the outbox now, and tells the other instances to: this instance has just
    /// written to it.
    pub fn wake(&self) {
        self.running.shared.wake.notify_one();
        self.running.shared.written.notify_one();
    }

    /// Ends every subscription and stops following the outbox.
    pub fn stop(&self) {
        self.running.shared.stopped.send_replace(true);
    }

    /// Subscribes the caller: what happens from now on, or, after `last_seen`, every event
    /// since (a [`Delivery::Reset`] first when those are not all kept, or when no event had
    /// that id yet).
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the caller's session has ended.
    pub async fn subscribe(
        &self,
        db: &DatabaseConnection,
        caller: Caller,
        last_seen: Option<i64>,
    ) -> Result<Subscription, ServiceError> {
        // Listening starts before anything is read, so that no event falls between what the
        // outbox holds and what arrives live; those in both are sent once, by id.
        let mut live = self.running.shared.sender.subscribe();
        let mut stopped = self.running.shared.stopped.subscribe();
        let session = session::Entity::find()
            .filter(own_session(caller))
            .one(db)
            .await?
            .ok_or_else(session_ended)?;
        let expires =
            tokio::time::Instant::now() + (session.expires_at - now()).to_std().unwrap_or_default();
        // What the feed has settled by now is replayed from the outbox; what it settles from
        // now on arrives live.
        let settled = self.running.shared.settled.load(Ordering::Acquire);
        let start = match last_seen {
            Some(seen) => Some(resume_point(db, seen, settled).await?),
            None => None,
        };
        let db = db.clone();
        Ok(Box::pin(async_stream::stream! {
            let mut last = 0;
            match start {
                None => {}
                Some(Resume::Reset) => {
                    last = settled;
                    yield Delivery::Reset { id: settled };
                }
                Some(Resume::After(seen)) => {
                    last = seen;
                    while last < settled {
                        let batch = match read_between(&db, last, settled).await {
                            Ok(batch) => batch,
                            Err(err) => {
                                tracing::warn!(%err, "cannot replay events; ending the stream");
                                return;
                            }
                        };
                        let short = batch.len() < READ_BATCH as usize;
                        for event in batch {
                            last = event.id;
                            match deliver(caller, &event) {
                                Step::Send(delivery) => yield delivery,
                                Step::Skip => {}
                                Step::End => return,
                            }
                        }
                        if short {
                            // The rest of the range holds no event.
                            last = settled;
                        }
                    }
                }
            }
            // One timer for the whole stream, not one per event.
            let expiry = tokio::time::sleep_until(expires);
            tokio::pin!(expiry);
            loop {
                let event = tokio::select! {
                    _ = stopped.wait_for(|stopped| *stopped) => return,
                    () = &mut expiry => return,
                    received = live.recv() => match received {
                        Ok(event) => event,
                        // Too far behind (or the feed is gone): the client resumes from
                        // the last id it received.
                        Err(_) => return,
                    },
                };
                if event.id <= last {
                    continue;
                }
                last = event.id;
                match deliver(caller, &event) {
                    Step::Send(delivery) => yield delivery,
                    Step::Skip => {}
                    Step::End => return,
                }
            }
        }))
    }
}

/// Where a subscription resuming after `seen` starts.
enum Resume {
    After(i64),
    /// The events after the id are not all kept, or it is none this service gave: the
    /// subscriber starts over from what the feed has settled.
    Reset,
}

async fn resume_point(
    db: &DatabaseConnection,
    seen: i64,
    settled: i64,
) -> Result<Resume, ServiceError> {
    let (oldest, newest): (Option<i64>, Option<i64>) = event::Entity::find()
        .select_only()
        .column_as(event::Column::Id.min(), "oldest")
        .column_as(event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or_default();
    let newest = newest.unwrap_or(0);
    // The outbox always keeps its newest event, so the ids a subscriber may have missed
    // are all kept when the one after `seen` is. Ids skipped by a write that rolled back
    // look the same as trimmed ones: a needless reset, never a lost event.
    let kept = oldest.is_none_or(|oldest| seen >= oldest - 1);
    Ok(if seen > newest.max(settled) || !kept {
        Resume::Reset
    } else {
        Resume::After(seen)
    })
}

enum Step {
    Send(Delivery),
    Skip,
    End,
}

/// What an event of the outbox is to a subscriber.
fn deliver(caller: Caller, event: &event::Model) -> Step {
    if event.kind == SESSION_ENDED {
        return if event.session_id == Some(caller.session_id) {
            Step::End
        } else {
            Step::Skip
        };
    }
    match change_for(caller.user_id, event) {
        Some(change) => Step::Send(Delivery::Event {
            id: event.id,
            change,
        }),
        None => Step::Skip,
    }
}

const SESSION_ENDED: &str = "session.ended";

/// An event as `user_id` sees it, if they see it at all: a post's owner sees every change of
/// it; anyone else sees a post only while it is published, so a publication is a creation
/// to them and a return to draft a deletion.
fn change_for(user_id: i64, event: &event::Model) -> Option<Change> {
    let (before, after) = if event.owner_id == Some(user_id) {
        (event.kind != "post.created", event.kind != "post.deleted")
    } else {
        (event.public_before, event.public_after)
    };
    let post_id = event.post_id?;
    match (event.kind.as_str(), before, after) {
        ("vote", _, true) => Some(Change::Vote {
            post_id,
            votes: event.votes?,
        }),
        ("post.created" | "post.updated" | "post.deleted", true, false) => {
            Some(Change::PostDeleted { id: post_id })
        }
        ("post.created" | "post.updated", false, true) => Some(Change::PostCreated(view(event)?)),
        ("post.updated", true, true) => Some(Change::PostUpdated(view(event)?)),
        _ => None,
    }
}

/// The post as an event recorded it.
fn view(event: &event::Model) -> Option<PostView> {
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
        },
        owner: Person {
            id: owner_id,
            email: event.owner_email.clone()?,
            created_at: event.owner_created_at?,
        },
        votes: event.votes?,
    })
}

async fn newest_id(db: &impl ConnectionTrait) -> Result<i64, ServiceError> {
    let newest: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .column_as(event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}

async fn read_between(
    db: &DatabaseConnection,
    after: i64,
    through: i64,
) -> Result<Vec<event::Model>, ServiceError> {
    Ok(event::Entity::find()
        .filter(event::Column::Id.gt(after))
        .filter(event::Column::Id.lte(through))
        .order_by_asc(event::Column::Id)
        .limit(READ_BATCH)
        .all(db)
        .await?)
}

/// Hands what the outbox settles to the subscribers whenever woken, and at least once a
/// [`POLL_INTERVAL`], and trims it; until the feed stops.
async fn follow(shared: Arc<Shared>, db: DatabaseConnection) {
    let mut stopped = shared.stopped.subscribe();
    let mut next_trim = tokio::time::Instant::now();
    loop {
        if let Err(err) = settle(&shared, &db).await {
            tracing::warn!(%err, "cannot read the event outbox; trying again");
        }
        if tokio::time::Instant::now() >= next_trim {
            if let Err(err) = trim(&db, shared.policy).await {
                tracing::warn!(%err, "cannot trim the event outbox");
            }
            next_trim += TRIM_INTERVAL;
        }
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Sends every event past the settled one, in id order, as far as the ids are settled.
///
/// On PostgreSQL an event takes its id before its transaction commits, so an id can be
/// missing while a later one is there: its transaction is still running, or rolled back. The
/// events after such a gap wait until every transaction that was writing events when the gap
/// was seen has ended; what of the gap is then still missing was rolled back. (SQLite writes
/// one transaction at a time, and a rolled-back one gives its ids back: it has no gaps.)
async fn settle(shared: &Shared, db: &DatabaseConnection) -> Result<(), ServiceError> {
    let gaps_wait = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    // Ids up to this one are settled, gaps included.
    let mut waited_through = 0;
    loop {
        let settled = shared.settled.load(Ordering::Acquire);
        let batch = read_between(db, settled, i64::MAX).await?;
        let Some(newest) = batch.last().map(|event| event.id) else {
            return Ok(());
        };
        let full = batch.len() as u64 == READ_BATCH;
        let mut expected = settled + 1;
        for event in batch {
            if gaps_wait && event.id != expected && event.id > waited_through {
                wait_for_writers(db).await?;
                waited_through = newest;
                break;
            }
            expected = event.id + 1;
            // Raised first: a subscriber that starts now replays it if it misses the send.
            shared.settled.store(event.id, Ordering::Release);
            // No subscriber is no error.
            let _ = shared.sender.send(Arc::new(event));
        }
        if !full && shared.settled.load(Ordering::Acquire) == newest {
            return Ok(());
        }
    }
}

/// Waits until every transaction that is writing events now has ended.
async fn wait_for_writers(db: &impl ConnectionTrait) -> Result<(), ServiceError> {
    let running = || async {
        let rows = db
            .query_all_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT writer FROM events_in_flight()",
            ))
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "writer"))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(ServiceError::from)
    };
    let writers = running().await?;
    while !writers.is_empty() {
        tokio::time::sleep(WRITERS_POLL).await;
        if running().await?.is_disjoint(&writers) {
            break;
        }
    }
    Ok(())
}

/// Deletes the events older than the replay window, all but the newest (which tells a
/// resuming subscriber where the outbox stands), and the expired tickets.
///
/// Only the oldest end of the outbox goes, up to the first event still in the window:
/// [`resume_point`] replays everything after an id whenever the event after it is kept, so a
/// hole would be a silent loss. Ids follow commit order, but `created_at` need not (PostgreSQL
/// stamps an event with its transaction's start, and clocks step back): deleting by age alone
/// could take an event out from between kept ones.
async fn trim(db: &DatabaseConnection, policy: EventPolicy) -> Result<(), ServiceError> {
    let cutoff = now() - clock_span(policy.replay_window);
    let first_in_window: Option<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::CreatedAt.gte(cutoff.timestamp()))
        .order_by_asc(event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    let keep_from = match first_in_window {
        Some(id) => id,
        None => newest_id(db).await?,
    };
    event::Entity::delete_many()
        .filter(event::Column::Id.lt(keep_from))
        .exec(db)
        .await?;
    event_ticket::Entity::delete_many()
        .filter(event_ticket::Column::ExpiresAt.lte(now()))
        .exec(db)
        .await?;
    Ok(())
}

/// Sends `NOTIFY events` after this instance's writes, one for as many writes as came while
/// the last one was sent. Outside the writes' transactions: a notifying transaction holds a
/// server-wide lock through its commit, which would make every write wait for the one before.
async fn announce(shared: Arc<Shared>, db: DatabaseConnection) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = shared.written.notified() => {}
        }
        if let Err(err) = notify(&db).await {
            tracing::warn!(%err, "cannot notify the other instances of new events");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// One `NOTIFY events`, committed without waiting for the disk: it holds the server-wide
/// notification lock only that long, and a notification lost in a crash is made up for by the
/// feeds' polling.
async fn notify(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL synchronous_commit = off")
        .await?;
    txn.execute_unprepared("SELECT pg_notify('events', '')")
        .await?;
    txn.commit().await
}

/// Wakes the feed on every `NOTIFY events` (sent after any instance's writes), and when the
/// listener has reconnected, as notifications sent meanwhile are lost.
async fn listen(shared: Arc<Shared>, url: String) {
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

/// Issues a ticket that opens one stream as the caller's session within
/// [`TICKET_LIFETIME`].
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn issue_ticket(db: &DatabaseConnection, caller: Caller) -> Result<Ticket, ServiceError> {
    session::Entity::find()
        .filter(own_session(caller))
        .one(db)
        .await?
        .ok_or_else(session_ended)?;
    let value = new_secret();
    let hash = secret_hash(&value).expect("a new secret has the form of one");
    event_ticket::ActiveModel {
        ticket_hash: Set(hash),
        session_id: Set(caller.session_id),
        expires_at: Set(now() + clock_span(TICKET_LIFETIME)),
    }
    .insert(db)
    .await
    .map_err(ended_if_orphaned)?;
    Ok(Ticket {
        value,
        expires_in: TICKET_LIFETIME.as_secs(),
    })
}

/// Spends a ticket: the caller it was issued to.
///
/// # Errors
/// [`ServiceError::Unauthorized`], alike for a malformed, unknown, spent or expired ticket
/// and for one whose session has ended.
pub async fn redeem_ticket(db: &DatabaseConnection, ticket: &str) -> Result<Caller, ServiceError> {
    let refused = || {
        ServiceError::Unauthorized(
            "the ticket is invalid, spent or expired; get a new one from POST /events/ticket"
                .into(),
        )
    };
    let hash = secret_hash(ticket).ok_or_else(refused)?;
    let spent = event_ticket::Entity::delete_by_id(hash)
        .exec_with_returning(db)
        .await?
        .filter(|ticket| ticket.expires_at > now())
        .ok_or_else(refused)?;
    let session = session::Entity::find_by_id(spent.session_id)
        .one(db)
        .await?
        .ok_or_else(refused)?;
    Ok(Caller {
        user_id: session.user_id,
        session_id: session.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

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
            owner_email: post_fields.then(|| "owner@example.org".into()),
            owner_created_at: post_fields.then_some(at),
        }
    }

    fn kind(change: Option<Change>) -> Option<&'static str> {
        change.map(|change| match change {
            Change::PostCreated(_) => "created",
            Change::PostUpdated(_) => "updated",
            Change::PostDeleted { .. } => "deleted",
            Change::Vote { .. } => "vote",
        })
    }

    const OWNER: i64 = 1;
    const OTHER: i64 = 2;

    #[test]
    fn the_owner_sees_every_change_of_their_post_draft_or_not() {
        for public in [false, true] {
            let seen = |kind_of: &str, before, after| {
                kind(change_for(OWNER, &event(kind_of, OWNER, before, after)))
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
            kind(change_for(OTHER, &event(kind_of, OWNER, before, after)))
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
        let mut ended = event(SESSION_ENDED, OWNER, false, false);
        ended.post_id = None;
        ended.session_id = Some(5);
        let stream_of = |session_id| Caller {
            user_id: OWNER,
            session_id,
        };
        assert!(matches!(deliver(stream_of(5), &ended), Step::End));
        assert!(matches!(deliver(stream_of(6), &ended), Step::Skip));
    }

    #[test]
    fn a_recorded_post_reads_back_whole() {
        let Some(Change::PostCreated(view)) =
            change_for(OWNER, &event("post.created", OWNER, false, true))
        else {
            panic!("a creation");
        };
        assert_eq!(view.post.id, 3);
        assert_eq!(view.owner.email, "owner@example.org");
        assert_eq!(view.votes, 1);
        assert_eq!(view.post.version, 2);
    }
}
