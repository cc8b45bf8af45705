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
//! listener reconnected delays an event by a second at most, and loses nothing. Reads are at
//! least [`SETTLE_GAP`] apart, so that the events of writes in quick succession go out
//! together.
//!
//! The feed renders each event once per audience (its post's owner, and everyone else) into
//! bytes that every subscriber's stream shares, and keeps the newest of them in a buffer
//! bounded in bytes ([`EventPolicy::max_lag_bytes`]): a subscriber whose client does not
//! read falls out of it and is ended, and can resume where it was. A subscriber that asks to
//! resume after an id is first sent what followed it from the outbox, read in batches bounded
//! in bytes, each only once the client has taken the last; then it goes on live.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use entity::{event, event_ticket, post, session, user};
use futures_util::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use tokio::sync::{Notify, watch};

use crate::{
    Person, RateLimit, ServiceError, clock_span,
    database::Database,
    now,
    posts::PostView,
    sessions::{ended_if_orphaned, new_secret, own_session, secret_hash, session_ended},
    sql,
    stream_leases::{self, Instance, Lease},
    tokens::Caller,
};

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

/// How long a ticket may wait for its stream.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// How long a caller refused a stream for the caps should wait: a slot frees as soon as a
/// stream's client goes.
const STREAM_RETRY_AFTER_SECS: u64 = 5;

/// How long a caller at a stream cap waits for a slot to free before it is refused: a client
/// that closes a stream and opens another may be heard opening before closing.
const SLOT_WAIT: Duration = Duration::from_millis(500);

/// How often a caller at the cap on its account's streams looks again whether a slot has
/// freed on another instance (one freed on this instance wakes it at once).
const SLOT_POLL: Duration = Duration::from_millis(100);

/// The most bytes of events a live stream sends as one piece (an event larger than that goes
/// alone, its bytes shared with the other streams): so many that the events of a burst go
/// in a few writes, so few that the copies a stalled client's connection holds stay small.
const BATCH_BYTES: usize = 16 * 1024;

/// How long the feed waits for the live streams to take the oldest event of its full buffer
/// before it drops it (and the streams that have not taken it fall behind).
const LAG_WAIT: Duration = Duration::from_secs(1);

/// The longest the feed waits before reading the outbox again without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time between two reads of the outbox. A lone write's event goes out at once;
/// the events of writes that come faster go out together, each subscriber's in one write to
/// its connection: waking a subscriber and writing to its socket cost far more than the
/// bytes of one more event, so under load each event costs a fraction of what it would
/// alone, for at most this much more latency.
const SETTLE_GAP: Duration = Duration::from_millis(50);

/// How often the feed deletes what has left the replay window.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// How often the feed looks again whether the transactions writing the events of a gap have
/// ended (they are single statements, or a few).
const WRITERS_POLL: Duration = Duration::from_millis(2);

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
    buffer: Mutex<Buffer>,
    /// Raised to the id of the newest event in the buffer after each read of the outbox:
    /// subscribers that have taken everything wait on it.
    settled: watch::Sender<i64>,
    wake: Notify,
    /// This instance wrote: the other instances are to be told.
    written: Notify,
    stopped: watch::Sender<bool>,
    policy: EventPolicy,
    render: Render,
    streams: Mutex<OpenStreams>,
    /// A stream's slot was freed.
    freed: Notify,
    /// This instance, in the leases its streams hold.
    instance: Instance,
    /// The oldest event of the full buffer, which the feed waits for the live streams to take
    /// before it drops it; `i64::MAX` when it waits for none.
    awaited: AtomicI64,
    /// A stream took the awaited event.
    taken: Notify,
}

impl Shared {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // What a panicking holder left is whole: each change is one push or pop.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, OpenStreams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The newest events, rendered, as many as [`EventPolicy::max_lag_bytes`] holds (at least the
/// newest one).
#[derive(Default)]
struct Buffer {
    events: VecDeque<Arc<Rendered>>,
    bytes: usize,
    /// The id of the newest event that left the buffer: a subscriber that has not passed it
    /// fell behind.
    dropped_through: i64,
    /// The id of the last event handed to the subscribers: every event up to it is settled,
    /// committed or never to be.
    newest: i64,
}

impl Buffer {
    fn push(&mut self, event: Rendered, max_bytes: usize) {
        self.bytes += event.bytes;
        self.newest = event.id;
        self.events.push_back(Arc::new(event));
        while self.bytes > max_bytes && self.events.len() > 1 {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(oldest) = self.events.pop_front() {
            self.bytes -= oldest.bytes;
            self.dropped_through = oldest.id;
        }
    }

    /// What `caller`'s stream is to send after `last`: the events the buffer has, as many as
    /// [`BATCH_BYTES`] holds (at least one).
    fn next_after(&self, last: i64, caller: Caller) -> Next {
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

enum Next {
    Events(Batch),
    /// Events the subscriber has not taken have left the buffer.
    Behind,
    /// Nothing after the subscriber's last event yet.
    Wait,
}

/// The events a stream takes from the buffer at once.
struct Batch {
    /// The id of the last of them.
    through: i64,
    /// The bytes of those the stream sends.
    frames: Vec<Bytes>,
    bytes: usize,
    /// The last of them ends the stream.
    ends: bool,
}

impl Batch {
    /// The frames as one piece: each piece costs the stream a pass through its connection
    /// and a write to its socket, which cost far more than copying a few small events.
    fn joined(mut self) -> Option<Bytes> {
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
struct Rendered {
    id: i64,
    owner_id: Option<i64>,
    /// For `session.ended`: the session whose streams it ends.
    ends: Option<Option<i64>>,
    to_owner: Option<Bytes>,
    to_others: Option<Bytes>,
    /// What it holds.
    bytes: usize,
}

impl Rendered {
    fn new(event: &event::Model, render: &Render) -> Self {
        let mut rendered = Self {
            id: event.id,
            owner_id: event.owner_id,
            ends: None,
            to_owner: None,
            to_others: None,
            bytes: 0,
        };
        if event.kind == SESSION_ENDED {
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
    fn step(&self, caller: Caller) -> Step {
        if let Some(session) = self.ends {
            return ended_or_skipped(caller, session);
        }
        let frame = if self.owner_id == Some(caller.user_id) {
            &self.to_owner
        } else {
            &self.to_others
        };
        frame.clone().map_or(Step::Skip, Step::Send)
    }
}

/// The streams open on this instance, to cap them.
#[derive(Default)]
struct OpenStreams {
    /// Where each open stream is: the id of the last event it took from the buffer
    /// (`i64::MAX` until it goes live).
    positions: HashMap<u64, Arc<AtomicI64>>,
    next_slot: u64,
}

impl OpenStreams {
    /// Whether a live stream that has not fallen out of the buffer has yet to take `oldest`.
    fn waiting_for(&self, oldest: i64, dropped_through: i64) -> bool {
        self.positions.values().any(|position| {
            let position = position.load(Ordering::Acquire);
            position >= dropped_through && position < oldest
        })
    }
}

/// An open stream's place among the [`OpenStreams`] and its account's lease; both freed when
/// the stream is dropped (its client gone, its session ended, the service stopping).
struct Slot {
    shared: Arc<Shared>,
    db: DatabaseConnection,
    id: u64,
    position: Arc<AtomicI64>,
    lease: Option<Lease>,
}

impl Slot {
    /// A place for one more stream of `user_id`, within both caps; at a cap, one that frees
    /// within [`SLOT_WAIT`].
    async fn take(
        shared: &Arc<Shared>,
        db: &DatabaseConnection,
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
        db: &DatabaseConnection,
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
            stream_leases::take(db, &shared.instance, user_id, cap)
                .await?
                .ok_or(ServiceError::RateLimited {
                    limit: RateLimit::EventStreams,
                    retry_after_secs: STREAM_RETRY_AFTER_SECS,
                })?,
        );
        Ok(slot)
    }

    /// The stream has taken the live event `id` (or goes live after it).
    fn took(&self, id: i64) {
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
            if let Err(err) = stream_leases::release(&db, &shared.instance, lease).await {
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

impl Feed {
    /// Starts following the outbox of `db`; on PostgreSQL, `listen_url` is where to listen
    /// for the other instances' writes. `render` makes the bytes each delivery is sent as.
    ///
    /// # Errors
    /// The outbox cannot be read.
    pub async fn start(
        db: &Database,
        listen_url: &str,
        policy: EventPolicy,
        render: Render,
    ) -> Result<Self, ServiceError> {
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
            buffer: Mutex::new(Buffer {
                dropped_through: newest,
                newest,
                ..Buffer::default()
            }),
            settled: watch::Sender::new(newest),
            wake: Notify::new(),
            written: Notify::new(),
            stopped: watch::Sender::new(false),
            policy,
            render,
            streams: Mutex::new(OpenStreams::default()),
            freed: Notify::new(),
            instance: Instance::new(),
            awaited: AtomicI64::new(i64::MAX),
            taken: Notify::new(),
        });
        tokio::spawn(follow(shared.clone(), (**db).clone()));
        tokio::spawn(renew_leases(shared.clone(), (**db).clone()));
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
    /// that id yet). A replay leaves out what was recorded before the caller's account
    /// existed: nothing of it was ever the caller's to see.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when the caller's account has as many streams open (on
    /// every instance together) as it may, [`ServiceError::Busy`] when the instance has, and
    /// [`ServiceError::Unauthorized`] when the caller's session has ended.
    pub async fn subscribe(
        &self,
        db: &DatabaseConnection,
        caller: Caller,
        last_seen: Option<i64>,
    ) -> Result<Subscription, ServiceError> {
        let shared = Arc::clone(&self.running.shared);
        let slot = Slot::take(&shared, db, caller.user_id).await?;
        let mut stopped = shared.stopped.subscribe();
        let mut settled_changes = shared.settled.subscribe();
        let (session, account) = session::Entity::find()
            .filter(own_session(caller))
            .find_also_related(user::Entity)
            .one(db)
            .await?
            .ok_or_else(session_ended)?;
        let expires =
            tokio::time::Instant::now() + (session.expires_at - now()).to_std().unwrap_or_default();
        // What the feed has settled by now is replayed from the outbox; what it settles from
        // now on is taken from its buffer.
        let settled = shared.buffer().newest;
        let start = match last_seen {
            Some(seen) => {
                let account = account.ok_or_else(session_ended)?;
                Some(resume_point(db, seen.max(account.last_event_before), settled).await?)
            }
            None => None,
        };
        let db = db.clone();
        Ok(Box::pin(async_stream::stream! {
            let render = Arc::clone(&shared.render);
            let mut last = settled;
            match start {
                None => {}
                Some(Resume::Reset) => yield render(Delivery::Reset { id: settled }),
                Some(Resume::After(seen)) => {
                    last = last.max(seen);
                    let budget = shared.policy.max_lag_bytes / 4;
                    let mut replayed = seen;
                    while replayed < settled {
                        let batch = match read_batch(&db, replayed, settled, budget).await {
                            Ok(batch) if !batch.is_empty() => batch,
                            Ok(_) => break,
                            Err(err) => {
                                tracing::warn!(%err, "cannot replay events; ending the stream");
                                return;
                            }
                        };
                        // Each row goes as soon as it is sent; the next batch is read only
                        // once the client has taken this one.
                        for event in batch {
                            replayed = event.id;
                            match deliver(caller, &event, &render) {
                                Step::Send(frame) => yield frame,
                                Step::Skip => {}
                                Step::End => return,
                            }
                        }
                    }
                }
            }
            // One timer for the whole stream, not one per event.
            let expiry = tokio::time::sleep_until(expires);
            tokio::pin!(expiry);
            slot.took(last);
            loop {
                settled_changes.borrow_and_update();
                let next = shared.buffer().next_after(last, caller);
                match next {
                    Next::Events(batch) => {
                        last = batch.through;
                        slot.took(last);
                        let ends = batch.ends;
                        if let Some(frames) = batch.joined() {
                            yield frames;
                        }
                        if ends {
                            return;
                        }
                        continue;
                    }
                    // Too far behind: the client resumes from the last id it received.
                    Next::Behind => return,
                    Next::Wait => {}
                }
                tokio::select! {
                    _ = stopped.wait_for(|stopped| *stopped) => return,
                    () = &mut expiry => return,
                    changed = settled_changes.changed() => if changed.is_err() {
                        return;
                    },
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
    Send(Bytes),
    Skip,
    End,
}

/// What an event of the outbox is to a subscriber, rendered for it alone (a replay).
fn deliver(caller: Caller, event: &event::Model, render: &Render) -> Step {
    if event.kind == SESSION_ENDED {
        return ended_or_skipped(caller, event.session_id);
    }
    match change_for(event.owner_id == Some(caller.user_id), event) {
        Some(change) => Step::Send(render(Delivery::Event {
            id: event.id,
            change,
        })),
        None => Step::Skip,
    }
}

/// A `session.ended` event ends the streams of its session, and no other.
fn ended_or_skipped(caller: Caller, session: Option<i64>) -> Step {
    if session == Some(caller.session_id) {
        Step::End
    } else {
        Step::Skip
    }
}

const SESSION_ENDED: &str = "session.ended";

/// An event as its post's owner (`owner`) or anyone else sees it, if they see it at all: the
/// owner sees every change of it; anyone else sees a post only while it is published, so a
/// publication is a creation to them and a return to draft a deletion.
fn change_for(owner: bool, event: &event::Model) -> Option<Change> {
    let (before, after) = if owner {
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

/// The id of the newest event recorded, 0 when there is none.
pub(crate) async fn newest_id(db: &impl ConnectionTrait) -> Result<i64, ServiceError> {
    let newest: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .column_as(event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}

/// The events after `after` through `through`, in id order, as many as `bytes` of text hold
/// (the first whatever its size).
async fn read_batch(
    db: &DatabaseConnection,
    after: i64,
    through: i64,
    bytes: usize,
) -> Result<Vec<event::Model>, ServiceError> {
    let statement = sql::events::batch(db.get_database_backend(), after, through, bytes);
    Ok(event::Entity::find()
        .from_raw_sql(statement)
        .all(db)
        .await?)
}

/// Hands what the outbox settles to the subscribers whenever woken (at most once a
/// [`SETTLE_GAP`]), and at least once a [`POLL_INTERVAL`], and trims it; until the feed
/// stops.
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
        let next_settle = tokio::time::Instant::now() + SETTLE_GAP;
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep_until(next_settle) => {}
        }
    }
}

/// Renews the leases of this instance's streams every [`stream_leases::RENEW_INTERVAL`]; gives
/// them all up when the feed stops.
async fn renew_leases(shared: Arc<Shared>, db: DatabaseConnection) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => break,
            () = tokio::time::sleep(stream_leases::RENEW_INTERVAL) => {}
        }
        if let Err(err) = stream_leases::renew(&db, &shared.instance).await {
            tracing::warn!(%err, "cannot renew the event streams' leases");
        }
    }
    if let Err(err) = stream_leases::release_all(&db, &shared.instance).await {
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
async fn settle(shared: &Shared, db: &DatabaseConnection) -> Result<(), ServiceError> {
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
///
/// The newest id is read first: were it read after finding no event in the window, events
/// written in between (in the window) would fall below it and go.
async fn trim(db: &DatabaseConnection, policy: EventPolicy) -> Result<(), ServiceError> {
    let cutoff = now() - clock_span(policy.replay_window);
    let newest = newest_id(db).await?;
    let first_in_window: Option<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::CreatedAt.gte(cutoff.timestamp()))
        .order_by_asc(event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    let keep_from = first_in_window.unwrap_or(newest);
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
        let mut ended = event(SESSION_ENDED, OWNER, false, false);
        ended.post_id = None;
        ended.session_id = Some(5);
        let stream_of = |session_id| Caller {
            user_id: OWNER,
            session_id,
        };
        let render = plain();
        assert!(matches!(deliver(stream_of(5), &ended, &render), Step::End));
        assert!(matches!(deliver(stream_of(6), &ended, &render), Step::Skip));
        let shared = Rendered::new(&ended, &render);
        assert!(matches!(shared.step(stream_of(5)), Step::End));
        assert!(matches!(shared.step(stream_of(6)), Step::Skip));
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
        let stream = |user_id| Caller {
            user_id,
            session_id: 1,
        };
        assert!(matches!(draft.step(stream(OWNER)), Step::Send(_)));
        assert!(matches!(draft.step(stream(OTHER)), Step::Skip));
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
        let stream = Caller {
            user_id: OTHER,
            session_id: 1,
        };
        assert!(matches!(buffer.next_after(6, stream), Next::Behind));
        let Next::Events(batch) = buffer.next_after(7, stream) else {
            panic!("the events after 7");
        };
        assert_eq!(batch.through, 10);
        assert_eq!(
            batch.joined().as_deref(),
            Some(&b"created 8created 9created 10"[..]),
            "taken together, as one piece"
        );
        assert!(matches!(buffer.next_after(10, stream), Next::Wait));

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
        let stream = Caller {
            user_id: OTHER,
            session_id: 1,
        };
        let Next::Events(first) = buffer.next_after(0, stream) else {
            panic!("the first events");
        };
        assert!(first.bytes <= BATCH_BYTES, "{} bytes", first.bytes);
        assert!(first.bytes > BATCH_BYTES - 16, "{} bytes", first.bytes);
        let Next::Events(second) = buffer.next_after(first.through, stream) else {
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
        assert_eq!(view.owner.email, "owner@example.org");
        assert_eq!(view.votes, 1);
        assert_eq!(view.post.version, 2);
    }
}
