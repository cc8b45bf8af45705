//! Moderation: roles, hiding posts, suspending accounts, and the log that records each step.
//!
//! A moderator or an administrator acts; the role is read with the caller's session, in the
//! transaction of the step, so a role given or taken counts from the next request on, on
//! every instance. A moderator acts on members only; an administrator on anyone but
//! themselves. Each step locks what it changes, so that two at once are one after the other:
//! the second finds the first done and gets a conflict. Each appends its entry to the
//! moderation log in its own transaction: no step without its entry, no entry without its
//! step.

mod hiding;
mod log;
mod reason;
mod roles;
mod suspending;

use entity::user;
use sea_orm::{ConnectionTrait, EntityTrait, QueryFilter};

pub use hiding::{hidden_posts, hide_post, restore_post};
pub use log::{Action, Entry, LogPage, Named, NamedPost, log_page};
pub use reason::Reason;
pub use roles::{RoleChange, set_role, set_role_from_command_line};
pub use suspending::{lift_suspension, suspend};

use crate::{
    accounts::Role,
    error::ServiceError,
    sessions::{Caller, session_ended, session_is_live},
};

/// The caller's account, read with their session (in `db`, the step's transaction), when
/// their role is at least `needed`.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] when their role is below `needed`.
async fn actor(
    db: &impl ConnectionTrait,
    caller: &Caller,
    needed: Role,
) -> Result<user::Model, ServiceError> {
    let account = user::Entity::find_by_id(caller.user_id())
        .filter(session_is_live(caller))
        .one(db)
        .await?
        .ok_or_else(session_ended)?;
    if Role::from_name(&account.role) < needed {
        return Err(ServiceError::Forbidden(format!(
            "this needs the role {} or above",
            needed.name()
        )));
    }
    Ok(account)
}

/// Whether `actor` may act on `person` (or on their post): not on themselves, and a
/// moderator not on a moderator or an administrator.
///
/// # Errors
/// [`ServiceError::Forbidden`] when they may not.
fn may_act_on(actor: &user::Model, person: &user::Model) -> Result<(), ServiceError> {
    if actor.id == person.id {
        return Err(ServiceError::Forbidden(
            "nobody moderates themselves or their own posts; ask another moderator".into(),
        ));
    }
    if Role::from_name(&actor.role) < Role::Admin
        && Role::from_name(&person.role) >= Role::Moderator
    {
        return Err(ServiceError::Forbidden(
            "a moderator acts on members only; ask an administrator".into(),
        ));
    }
    Ok(())
}

/// What a step on a person who does not exist gets.
fn no_such_person(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("user {id} was not found"))
}
