//! Roles: an administrator gives one over HTTP; the first administrator is made from the
//! command line, on a running service or a stopped one. The role is read with the session,
//! so a change counts from the next request on.

use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::{
    actor,
    log::{Action, NewEntry, append},
    suspending::locked_person,
};
use crate::{
    accounts::{Account, Email, Role},
    database::{Database, begin_write},
    error::ServiceError,
    sessions::Caller,
};

/// A role given: the account as it is now, and the role it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    pub account: Account,
    pub before: Role,
}

/// Gives account `id` `role`, as an administrator, and records it; the account as it is
/// then. Giving the role it has changes and records nothing.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] for a caller who is no administrator, or for their own role,
/// [`ServiceError::NotFound`] when the account does not exist.
pub async fn set_role(
    db: &Database,
    caller: &Caller,
    id: i64,
    role: Role,
) -> Result<Account, ServiceError> {
    let _writing = db.writing();
    let txn = begin_write(db.connection()).await?;
    let actor = actor(&txn, caller, Role::Admin).await?;
    if actor.id == id {
        return Err(ServiceError::Forbidden(
            "an administrator cannot change their own role; ask another".into(),
        ));
    }
    let person = locked_person(&txn, id).await?;
    let changed = give(&txn, Some(&actor), person, role).await?;
    txn.commit().await?;
    Ok(changed.account)
}

/// Gives the account of `email` `role` from the command line (no one is signed in), and
/// records it as the command line's.
///
/// # Errors
/// [`ServiceError::NotFound`] when no account has the address.
pub async fn set_role_from_command_line(
    db: &Database,
    email: &Email,
    role: Role,
) -> Result<RoleChange, ServiceError> {
    let _writing = db.writing();
    let txn = begin_write(db.connection()).await?;
    let person = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!("no account has the email {}", email.as_str()))
        })?;
    let changed = give(&txn, None, person, role).await?;
    txn.commit().await?;
    Ok(changed)
}

async fn give(
    txn: &sea_orm::DatabaseTransaction,
    actor: Option<&user::Model>,
    person: user::Model,
    role: Role,
) -> Result<RoleChange, ServiceError> {
    let before = Role::from_name(&person.role);
    if before == role {
        return Ok(RoleChange {
            account: person.into(),
            before,
        });
    }
    user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(role.name()))
        .filter(user::Column::Id.eq(person.id))
        .exec(txn)
        .await?;
    append(
        txn,
        NewEntry {
            action: Action::RoleChanged,
            actor,
            person: &person,
            post: None,
            reason: None,
            role: Some(role),
            until: None,
        },
    )
    .await?;
    let account = user::Model {
        role: role.name().to_owned(),
        ..person
    };
    Ok(RoleChange {
        account: account.into(),
        before,
    })
}
