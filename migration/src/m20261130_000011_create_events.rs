use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

use crate::m20261130_000009_create_sessions::Sessions;

/// The outbox of live events, and the tickets a browser's `EventSource` connects with.
///
/// Every event is written by a trigger, in the statement of the write it tells of: an event
/// exists exactly when its write committed, whichever path made it (an account's deletion
/// cascading to its posts, votes and sessions included). An event's row holds what its
/// subscribers are sent (the post as it was then), and who may see it.
///
/// On PostgreSQL ids are taken before commit, so a later id may commit first. The triggers
/// take advisory locks that let readers wait for the events still being written (see
/// `WRITERS_LOCK_CLASS`), and that order the events of one post by commit. (No `NOTIFY` here:
/// a transaction that notifies holds a lock of the whole server through its commit, which
/// would make every write wait for the one before; the service notifies after its writes.)
/// SQLite has one writer at a time, which orders every event by commit already.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let now_seconds = match backend {
            DbBackend::Postgres => "(CAST(EXTRACT(EPOCH FROM NOW()) AS BIGINT))",
            _ => "(unixepoch())",
        };
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    // Seconds since the epoch: only the trimming of the outbox reads it.
                    .col(big_integer(Events::CreatedAt).default(Expr::cust(now_seconds)))
                    .col(string_len(Events::Kind, 16))
                    .col(big_integer_null(Events::PostId))
                    .col(big_integer_null(Events::OwnerId))
                    .col(big_integer_null(Events::SessionId))
                    // Whether people other than the owner could see the post before and
                    // after the write: a draft published is a creation for them.
                    .col(boolean(Events::PublicBefore).default(false))
                    .col(boolean(Events::PublicAfter).default(false))
                    .col(string_len_null(Events::Title, 200))
                    .col(text_null(Events::Content))
                    .col(boolean_null(Events::Published))
                    .col(timestamp_with_time_zone_null(Events::PostCreatedAt))
                    .col(timestamp_with_time_zone_null(Events::PostUpdatedAt))
                    .col(big_integer_null(Events::Version))
                    .col(big_integer_null(Events::Votes))
                    .col(string_len_null(Events::OwnerEmail, 254))
                    .col(timestamp_with_time_zone_null(Events::OwnerCreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_created_at")
                    .table(Events::Table)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventTickets::Table)
                    // The hex SHA-256 of the ticket: the ticket itself is never stored.
                    .col(char_len(EventTickets::TicketHash, 64).primary_key())
                    .col(big_integer(EventTickets::SessionId))
                    .col(timestamp_with_time_zone(EventTickets::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventTickets::Table, EventTickets::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_event_tickets_session_id", EventTickets::SessionId),
            ("idx_event_tickets_expires_at", EventTickets::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(EventTickets::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        for statement in triggers(backend).up {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in triggers(manager.get_database_backend()).down {
            db.execute_unprepared(&statement).await?;
        }
        manager
            .drop_table(Table::drop().table(EventTickets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

/// What each write records, as one `INSERT` per case: the same text on both databases, run
/// by a trigger on each.
pub(crate) struct Recording {
    pub(crate) table: &'static str,
    pub(crate) operation: &'static str,
    /// The id of the post the event is about, if any: its events are written one
    /// transaction at a time.
    pub(crate) post: Option<&'static str>,
    pub(crate) into: String,
    pub(crate) rows: String,
}

/// What a post's event records of its owner: the columns of `events`, the values a trigger
/// reads from the owner's row `u`, and as many `NULL`s for an event that records none.
pub(crate) struct OwnerColumns {
    pub(crate) columns: &'static str,
    pub(crate) values: &'static str,
    pub(crate) nulls: &'static str,
}

/// The owner as this migration recorded it (a later one records the profile instead).
const OWNER_EMAIL: OwnerColumns = OwnerColumns {
    columns: "owner_email, owner_created_at",
    values: "u.email, u.created_at",
    nulls: "NULL, NULL",
};

/// What a post's event records of the post beyond its fields: whether others see it
/// (`public`, of the row named `{row}`), and any more columns with their values from `NEW`.
pub(crate) struct PostColumns {
    pub(crate) public: &'static str,
    pub(crate) columns: &'static str,
    pub(crate) values: &'static str,
    pub(crate) nulls: &'static str,
}

/// The post as this migration recorded it: anyone sees it while it is published.
pub(crate) const PUBLISHED_POST: PostColumns = PostColumns {
    public: "{row}.published",
    columns: "",
    values: "",
    nulls: "",
};

impl PostColumns {
    fn public(&self, row: &str) -> String {
        self.public.replace("{row}", row)
    }
}

fn post_event(owner: &OwnerColumns, post: &PostColumns) -> String {
    format!(
        "INSERT INTO events (kind, post_id, owner_id, public_before, public_after, title, \
         content, published, post_created_at, post_updated_at, version, votes, {}{})",
        owner.columns, post.columns
    )
}

/// A post's vote count after a vote on it was added or taken back (`row` is `NEW` or `OLD`).
/// A vote on a post deleted in the same statement (its votes go with it) tells nothing.
fn vote_rows(row: &str, owner: &OwnerColumns, post: &PostColumns) -> String {
    format!(
        "SELECT 'vote', p.id, p.owner_id, {public}, {public}, NULL, NULL, NULL, NULL, \
         NULL, NULL, (SELECT COUNT(*) FROM votes v WHERE v.post_id = p.id), {}{} \
         FROM posts p WHERE p.id = {row}.post_id",
        owner.nulls,
        post.nulls,
        public = post.public("p"),
    )
}

pub(crate) fn recordings() -> [Recording; 6] {
    recordings_of(&OWNER_EMAIL, &PUBLISHED_POST)
}

/// Every recording, with the owner's columns `owner` and the post's `post`.
pub(crate) fn recordings_of(owner: &OwnerColumns, post: &PostColumns) -> [Recording; 6] {
    [
        Recording {
            table: "posts",
            operation: "INSERT",
            post: Some("NEW.id"),
            into: post_event(owner, post),
            rows: format!(
                "SELECT 'post.created', NEW.id, NEW.owner_id, FALSE, {}, \
                 NEW.title, NEW.content, NEW.published, NEW.created_at, NEW.updated_at, \
                 NEW.version, 0, {}{} FROM users u WHERE u.id = NEW.owner_id",
                post.public("NEW"),
                owner.values,
                post.values
            ),
        },
        Recording {
            table: "posts",
            operation: "UPDATE",
            post: Some("NEW.id"),
            into: post_event(owner, post),
            rows: format!(
                "SELECT 'post.updated', NEW.id, NEW.owner_id, {}, {}, \
                 NEW.title, NEW.content, NEW.published, NEW.created_at, NEW.updated_at, \
                 NEW.version, (SELECT COUNT(*) FROM votes v WHERE v.post_id = NEW.id), {}{} \
                 FROM users u WHERE u.id = NEW.owner_id",
                post.public("OLD"),
                post.public("NEW"),
                owner.values,
                post.values
            ),
        },
        Recording {
            table: "posts",
            operation: "DELETE",
            post: Some("OLD.id"),
            into: post_event(owner, post),
            rows: format!(
                "VALUES ('post.deleted', OLD.id, OLD.owner_id, {}, FALSE, NULL, \
                 NULL, NULL, NULL, NULL, NULL, NULL, {}{})",
                post.public("OLD"),
                owner.nulls,
                post.nulls
            ),
        },
        Recording {
            table: "votes",
            operation: "INSERT",
            post: Some("NEW.post_id"),
            into: post_event(owner, post),
            rows: vote_rows("NEW", owner, post),
        },
        Recording {
            table: "votes",
            operation: "DELETE",
            post: Some("OLD.post_id"),
            into: post_event(owner, post),
            rows: vote_rows("OLD", owner, post),
        },
        // Not sent to anyone: it ends the streams of the session, on every instance.
        Recording {
            table: "sessions",
            operation: "DELETE",
            post: None,
            into: "INSERT INTO events (kind, owner_id, session_id)".into(),
            rows: "VALUES ('session.ended', OLD.user_id, OLD.id)".into(),
        },
    ]
}

/// A PostgreSQL setting a bulk load turns `off` (`SET LOCAL social_api.record_events = off`,
/// or `PGOPTIONS='-c social_api.record_events=off'` for psql) to write no events: loading a
/// million rows of benchmark data is no news to subscribers, and would fill the outbox.
const BULK_LOAD_SETTING: &str = "social_api.record_events";

/// Arbitrary advisory lock classes (the first key of the two-key form) of the social API's
/// events: every transaction writing events holds the first, shared, from before its event
/// gets its id until it ends (so a reader can tell a running writer from a rolled-back one,
/// see `events_in_flight`); the second, exclusive, per post (the second key), so that the
/// events of one post get their ids, and their vote counts, one committed write after another.
const WRITERS_LOCK_CLASS: i32 = 726_546;
const POST_LOCK_CLASS: i32 = 726_547;

struct Statements {
    up: Vec<String>,
    down: Vec<String>,
}

pub(crate) fn statement(recording: &Recording) -> String {
    format!("{} {};", recording.into, recording.rows)
}

/// The PostgreSQL trigger function of a recording, from `FUNCTION` on: it takes the shared
/// writers' lock, then runs `post_lock` (a statement that orders the post's writers, or
/// nothing), then records the event.
pub(crate) fn trigger_function(recording: &Recording, post_lock: &str) -> String {
    format!(
        "FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF current_setting('{BULK_LOAD_SETTING}', TRUE) = 'off' THEN RETURN NULL; \
         END IF; PERFORM pg_advisory_xact_lock_shared({WRITERS_LOCK_CLASS}, 0); \
         {post_lock} {} RETURN NULL; END $$",
        trigger_name(recording),
        statement(recording)
    )
}

/// The exclusive advisory lock of the recording's post, if it is about one.
pub(crate) fn post_lock(recording: &Recording) -> String {
    recording.post.map_or_else(String::new, |post| {
        format!(
            "PERFORM pg_advisory_xact_lock({POST_LOCK_CLASS}, \
             CAST({post} % 2147483647 AS INTEGER));"
        )
    })
}

pub(crate) fn trigger_name(recording: &Recording) -> String {
    format!(
        "{}_{}_event",
        recording.table,
        recording.operation.to_lowercase()
    )
}

fn triggers(backend: DbBackend) -> Statements {
    let mut up = Vec::new();
    let mut down = Vec::new();
    match backend {
        DbBackend::Postgres => {
            for recording in &recordings() {
                let name = trigger_name(recording);
                up.push(format!(
                    "CREATE {}",
                    trigger_function(recording, &post_lock(recording))
                ));
                up.push(format!(
                    "CREATE TRIGGER {name} AFTER {} ON {} FOR EACH ROW EXECUTE FUNCTION {name}()",
                    recording.operation, recording.table
                ));
                down.push(format!("DROP TRIGGER {name} ON {}", recording.table));
                down.push(format!("DROP FUNCTION {name}()"));
            }
            // The transactions of this database that may be writing events now.
            up.push(format!(
                "CREATE FUNCTION events_in_flight() RETURNS TABLE (writer text) LANGUAGE sql \
                 AS $$ SELECT virtualtransaction FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = {WRITERS_LOCK_CLASS} AND objid = 0 AND objsubid = 2 AND granted $$"
            ));
            down.insert(0, "DROP FUNCTION events_in_flight()".into());
        }
        _ => {
            for recording in &recordings() {
                let name = trigger_name(recording);
                up.push(format!(
                    "CREATE TRIGGER {name} AFTER {} ON {} FOR EACH ROW BEGIN {} END",
                    recording.operation,
                    recording.table,
                    statement(recording)
                ));
                down.push(format!("DROP TRIGGER {name}"));
            }
        }
    }
    Statements { up, down }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    CreatedAt,
    Kind,
    PostId,
    OwnerId,
    SessionId,
    PublicBefore,
    PublicAfter,
    Title,
    Content,
    Published,
    PostCreatedAt,
    PostUpdatedAt,
    Version,
    Votes,
    OwnerEmail,
    OwnerCreatedAt,
}

#[derive(DeriveIden)]
enum EventTickets {
    Table,
    TicketHash,
    SessionId,
    ExpiresAt,
}
