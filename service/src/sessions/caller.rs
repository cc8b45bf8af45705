//! Who is calling, and whether their session is still live.

use std::borrow::Cow;

use entity::{session, user};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, Query},
};

use crate::{
    database::Connection,
    error::{ServiceError, is_foreign_key_violation},
};

/// Who is calling: an account, and the session of it that a token or ticket was issued to.
///
/// Only the service makes one, from a verified token or a redeemed ticket, so every
/// operation that takes it knows its caller was authenticated. Whether the session is still
/// live is checked by each operation, where it costs least: folded into its own statement,
/// or by [`Caller::account`], which reads it once; a caller made by a read of its account
/// carries that account and is not read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    user_id: i64,
    session_id: i64,
    account: Option<user::Model>,
}

impl Caller {
    /// A caller named by a verified token or ticket; their session is not yet checked.
    pub(crate) fn named(user_id: i64, session_id: i64) -> Self {
        Self {
            user_id,
            session_id,
            account: None,
        }
    }

    /// This caller, with their account as a read that found their session live returned it.
    pub(crate) fn with_account(self, account: user::Model) -> Self {
        Self {
            account: Some(account),
            ..self
        }
    }

    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The caller's account while their session lives: the one read when this caller was
    /// made, or else read now.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the caller's session has ended.
    pub(crate) async fn account(
        &self,
        db: &Connection,
    ) -> Result<Cow<'_, user::Model>, ServiceError> {
        match &self.account {
            Some(account) => Ok(Cow::Borrowed(account)),
            None => caller_account(db, self).await.map(Cow::Owned),
        }
    }
}

/// The caller's account, if their session still exists.
async fn caller_account(db: &Connection, caller: &Caller) -> Result<user::Model, ServiceError> {
    user::Entity::find_by_id(caller.user_id())
        .filter(session_is_live(caller))
        .one(db)
        .await?
        .ok_or_else(session_ended)
}

/// A condition that holds while the caller's session exists: for statements that check it
/// alongside their own work, at no extra round trip.
pub(crate) fn session_is_live(caller: &Caller) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(session::Entity)
            .cond_where(own_session(caller))
            .to_owned(),
    ))
}

/// The row of the session a token names: its id, and its account's (a token cannot name
/// another person's session).
pub(crate) fn own_session(caller: &Caller) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(session::Column::Id.eq(caller.session_id()))
        .add(session::Column::UserId.eq(caller.user_id()))
}

/// What a request gets whose session has ended (logged out, ended from another session or
/// by a password change, or gone with its account).
pub(crate) fn session_ended() -> ServiceError {
    ServiceError::Unauthorized(
        "the session of this token has ended (logged out, revoked, or its account deleted); \
         log in again"
            .into(),
    )
}

/// What an insert of a row naming the caller's account or session gets when that row is gone
/// (deleted between authenticating the request and the insert): the same 401 as any request
/// of an ended session.
pub(crate) fn ended_if_orphaned(err: DbErr) -> ServiceError {
    if is_foreign_key_violation(&err) {
        session_ended()
    } else {
        err.into()
    }
}
