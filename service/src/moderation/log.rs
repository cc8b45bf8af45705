//! The moderation log: appended to by each step, in the step's transaction, and read by
//! moderators newest first, a page at a time with cursors as posts are.

use chrono::{DateTime, Utc};
use entity::{moderation_entry, post, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::actor;
use crate::{
    accounts::Role,
    clock::now,
    database::Database,
    error::ServiceError,
    posts::{Cursors, PageCursor, PostQuery, SortKey},
    sessions::Caller,
};

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    RoleChanged,
    PostHidden,
    PostRestored,
    Suspended,
    SuspensionLifted,
}

impl Action {
    pub const ALL: [Self; 5] = [
        Self::RoleChanged,
        Self::PostHidden,
        Self::PostRestored,
        Self::Suspended,
        Self::SuspensionLifted,
    ];

    /// The name the log stores, and the API shows.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RoleChanged => "role_changed",
            Self::PostHidden => "post_hidden",
            Self::PostRestored => "post_restored",
            Self::Suspended => "suspended",
            Self::SuspensionLifted => "suspension_lifted",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }
}

/// A person as an entry names them: by id, with their handle as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub id: i64,
    pub handle: String,
}

/// A post as an entry names it: by id, with its title as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPost {
    pub id: i64,
    pub title: String,
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: Action,
    /// Who acted; `None`: the command line.
    pub actor: Option<Named>,
    /// The person acted on, or the owner of the post acted on.
    pub person: Named,
    pub post: Option<NamedPost>,
    pub reason: Option<String>,
    /// The role given, for a role change.
    pub role: Option<Role>,
    /// The end of a suspension, if it has one.
    pub until: Option<DateTime<Utc>>,
}

/// A page of the log, and the cursor of the page after it when this one is full.
#[derive(Clone, Debug)]
pub struct LogPage {
    pub entries: Vec<Entry>,
    pub next: Option<String>,
}

/// An entry about to be appended.
pub(super) struct NewEntry<'a> {
    pub action: Action,
    pub actor: Option<&'a user::Model>,
    pub person: &'a user::Model,
    pub post: Option<&'a post::Model>,
    pub reason: Option<&'a str>,
    pub role: Option<Role>,
    pub until: Option<DateTime<Utc>>,
}

/// Appends `entry` in `txn`, the transaction of its step.
pub(super) async fn append(
    txn: &impl ConnectionTrait,
    entry: NewEntry<'_>,
) -> Result<(), ServiceError> {
    moderation_entry::ActiveModel {
        at: Set(now()),
        action: Set(entry.action.name().to_owned()),
        actor_id: Set(entry.actor.map(|actor| actor.id)),
        actor_handle: Set(entry.actor.map(|actor| actor.handle.clone())),
        user_id: Set(entry.person.id),
        user_handle: Set(entry.person.handle.clone()),
        post_id: Set(entry.post.map(|post| post.id)),
        post_title: Set(entry.post.map(|post| post.title.clone())),
        reason: Set(entry.reason.map(str::to_owned)),
        role: Set(entry.role.map(|role| role.name().to_owned())),
        until: Set(entry.until),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// A page of the log, newest first, for a moderator or an administrator (`query`'s search
/// is not used).
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] for a member.
pub async fn log_page(
    db: &Database,
    cursors: &Cursors,
    caller: &Caller,
    query: &PostQuery,
) -> Result<LogPage, ServiceError> {
    let connection = db.connection();
    actor(connection, caller, Role::Moderator).await?;
    let mut select = moderation_entry::Entity::find()
        .order_by_desc(moderation_entry::Column::At)
        .order_by_desc(moderation_entry::Column::Id)
        .limit(query.limit())
        .offset(query.skip());
    if let Some(after) = query.after() {
        select = select.filter(
            Condition::any()
                .add(moderation_entry::Column::At.lt(after.created_at))
                .add(
                    Condition::all()
                        .add(moderation_entry::Column::At.eq(after.created_at))
                        .add(moderation_entry::Column::Id.lt(after.id)),
                ),
        );
    }
    let entries: Vec<Entry> = select
        .all(connection)
        .await?
        .into_iter()
        .map(entry)
        .collect();
    let next = match entries.last() {
        Some(last) if entries.len() as u64 == query.limit() => Some(cursors.encode(&PageCursor {
            after: SortKey {
                created_at: last.at,
                id: last.id,
            },
            search: None,
            limit: query.limit(),
        })),
        _ => None,
    };
    Ok(LogPage { entries, next })
}

/// An entry as it is read back.
fn entry(row: moderation_entry::Model) -> Entry {
    Entry {
        id: row.id,
        at: row.at,
        // Only this module writes the log, with these names.
        action: Action::from_name(&row.action).unwrap_or(Action::RoleChanged),
        actor: row.actor_id.map(|id| Named {
            id,
            handle: row.actor_handle.unwrap_or_default(),
        }),
        person: Named {
            id: row.user_id,
            handle: row.user_handle,
        },
        post: row.post_id.map(|id| NamedPost {
            id,
            title: row.post_title.unwrap_or_default(),
        }),
        reason: row.reason,
        role: row.role.as_deref().map(Role::from_name),
        until: row.until,
    }
}
