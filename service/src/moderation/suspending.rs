//! Suspending an account: every session of it ends at once (its streams with them, on every
//! instance), and a login with the right password is refused with the reason and the end,
//! until the suspension ends or is lifted. Its posts stay as they are.

use chrono::{DateTime, Utc};
use entity::{session, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{
    Reason, actor,
    log::{Action, NewEntry, append},
    may_act_on, no_such_person,
};
use crate::{
    accounts::{Role, suspension_of},
    clock::now,
    database::{Database, begin_write},
    error::ServiceError,
    sessions::Caller,
};

/// Suspends account `id` for `reason`, until `until` or until lifted, ending every session
/// of it, and records it. An `until` already past ends the sessions and refuses no login:
/// the person is signed out everywhere.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] for a member, or a person the caller may not act on,
/// [`ServiceError::NotFound`] when the account does not exist,
/// [`ServiceError::Conflict`] when the account is suspended already.
pub async fn suspend(
    db: &Database,
    caller: &Caller,
    id: i64,
    reason: &Reason,
    until: Option<DateTime<Utc>>,
) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let txn = begin_write(db.connection()).await?;
    let actor = actor(&txn, caller, Role::Moderator).await?;
    let person = locked_person(&txn, id).await?;
    may_act_on(&actor, &person)?;
    if let Some(suspension) = suspension_of(&person, now()) {
        let end = suspension.until.map_or_else(
            || "until lifted".to_owned(),
            |until| format!("until {until}"),
        );
        return Err(ServiceError::Conflict(format!(
            "user {id} is suspended already ({end}); lift the suspension first to change it"
        )));
    }
    // A new credentials version: a login that checked the password before this commits
    // starts no session after it.
    user::Entity::update_many()
        .col_expr(user::Column::SuspensionReason, Expr::value(reason.as_str()))
        .col_expr(user::Column::SuspendedUntil, Expr::value(until))
        .col_expr(
            user::Column::CredentialsVersion,
            sea_orm::ExprTrait::add(Expr::col(user::Column::CredentialsVersion), 1),
        )
        .filter(user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    append(
        &txn,
        NewEntry {
            action: Action::Suspended,
            actor: Some(&actor),
            person: &person,
            post: None,
            reason: Some(reason.as_str()),
            role: None,
            until,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Lifts the suspension of account `id`, and records it.
///
/// # Errors
/// As [`suspend`]; [`ServiceError::Conflict`] when it is not suspended.
pub async fn lift_suspension(db: &Database, caller: &Caller, id: i64) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let txn = begin_write(db.connection()).await?;
    let actor = actor(&txn, caller, Role::Moderator).await?;
    let person = locked_person(&txn, id).await?;
    may_act_on(&actor, &person)?;
    if suspension_of(&person, now()).is_none() {
        return Err(ServiceError::Conflict(format!(
            "user {id} is not suspended"
        )));
    }
    user::Entity::update_many()
        .col_expr(
            user::Column::SuspensionReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::SuspendedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    append(
        &txn,
        NewEntry {
            action: Action::SuspensionLifted,
            actor: Some(&actor),
            person: &person,
            post: None,
            reason: None,
            role: None,
            until: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Account `id`, its row held to the commit: of two steps on it at once, the second finds the
/// first done.
pub(super) async fn locked_person(
    txn: &sea_orm::DatabaseTransaction,
    id: i64,
) -> Result<user::Model, ServiceError> {
    user::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| no_such_person(id))
}
