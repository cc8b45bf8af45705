//! Hiding a post: it disappears for everyone but its owner, who sees it with the reason,
//! until a moderator restores it. Whatever its owner does meanwhile (editing, publishing), it
//! stays hidden: anyone else sees a post only while it is published and not hidden.

use entity::{post, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{
    Reason, actor,
    log::{Action, NewEntry, append},
    may_act_on,
};
use crate::{
    accounts::Role,
    database::{Database, begin_write},
    error::ServiceError,
    posts::{self, Cursors, PostPage, PostQuery, visibility::not_found},
    sessions::Caller,
};

/// Hides post `id` for everyone but its owner, with `reason` (shown to the owner), and
/// records it.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] for a member, or a post the caller may not act on,
/// [`ServiceError::NotFound`] when the post does not exist,
/// [`ServiceError::Conflict`] when it is hidden already.
pub async fn hide_post(
    db: &Database,
    caller: &Caller,
    id: i64,
    reason: &Reason,
) -> Result<(), ServiceError> {
    set_hidden(db, caller, id, Some(reason)).await
}

/// Makes hidden post `id` visible again as its owner left it, and records it.
///
/// # Errors
/// As [`hide_post`]; [`ServiceError::Conflict`] when it is not hidden.
pub async fn restore_post(db: &Database, caller: &Caller, id: i64) -> Result<(), ServiceError> {
    set_hidden(db, caller, id, None).await
}

/// Hides the post (with a reason) or restores it (without).
async fn set_hidden(
    db: &Database,
    caller: &Caller,
    id: i64,
    reason: Option<&Reason>,
) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let txn = begin_write(db.connection()).await?;
    let actor = actor(&txn, caller, Role::Moderator).await?;
    // Held to the commit: of two steps on the post at once, the second finds the first done.
    let post = post::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| not_found(id))?;
    let owner = user::Entity::find_by_id(post.owner_id)
        .one(&txn)
        .await?
        .ok_or_else(|| not_found(id))?;
    may_act_on(&actor, &owner)?;
    let hide = reason.is_some();
    if post.hidden == hide {
        return Err(ServiceError::Conflict(if hide {
            format!("post {id} is hidden already")
        } else {
            format!("post {id} is not hidden")
        }));
    }
    // A new version: the post as its owner reads it changes, and so does its tag.
    post::Entity::update_many()
        .col_expr(post::Column::Hidden, Expr::value(hide))
        .col_expr(
            post::Column::HiddenReason,
            Expr::value(reason.map(|reason| reason.as_str().to_owned())),
        )
        .col_expr(
            post::Column::Version,
            sea_orm::ExprTrait::add(Expr::col(post::Column::Version), 1),
        )
        .filter(post::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    append(
        &txn,
        NewEntry {
            action: if hide {
                Action::PostHidden
            } else {
                Action::PostRestored
            },
            actor: Some(&actor),
            person: &owner,
            post: Some(&post),
            reason: reason.map(Reason::as_str),
            role: None,
            until: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A page of the hidden posts, newest first, for a moderator or an administrator.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] for a member.
pub async fn hidden_posts(
    db: &Database,
    cursors: &Cursors,
    caller: &Caller,
    query: &PostQuery,
) -> Result<PostPage, ServiceError> {
    actor(db.connection(), caller, Role::Moderator).await?;
    posts::list_hidden(db, cursors, caller, query).await
}
