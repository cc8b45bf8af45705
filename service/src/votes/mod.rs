//! Votes: each person votes a post at most once, whoever wrote it.

use entity::vote;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::{
    database::Database,
    error::{Requirement, ServiceError, is_foreign_key_violation, is_unique_violation},
    posts,
    sessions::Caller,
};

/// Whether a vote adds the caller's vote or takes it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteDirection {
    Add,
    Remove,
}

impl VoteDirection {
    pub const ALL: [Self; 2] = [Self::Remove, Self::Add];

    /// How a request names the direction: 1 adds the vote, 0 takes it back.
    pub const fn number(self) -> i64 {
        match self {
            Self::Add => 1,
            Self::Remove => 0,
        }
    }

    /// # Errors
    /// What a direction must be.
    pub fn parse(number: i64) -> Result<Self, Requirement> {
        Self::ALL
            .into_iter()
            .find(|direction| direction.number() == number)
            .ok_or_else(|| {
                format!(
                    "must be {} or {}",
                    Self::Remove.number(),
                    Self::Add.number()
                )
                .into()
            })
    }
}

/// Adds or removes the caller's vote on a post they can see.
///
/// # Errors
/// [`ServiceError::NotFound`] when the post is not visible to the caller, or when removing
/// a vote that was never cast; [`ServiceError::Conflict`] when adding a vote twice (decided
/// by the primary key, so it holds under concurrent requests); [`ServiceError::Unauthorized`]
/// when the caller's session has ended.
pub async fn vote(
    db: &Database,
    caller: &Caller,
    post_id: i64,
    direction: VoteDirection,
) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    caller.account(db).await?;
    if !posts::is_visible(db, caller, post_id).await? {
        return Err(posts::not_found(post_id));
    }
    match direction {
        VoteDirection::Add => {
            let added = vote::ActiveModel {
                user_id: Set(caller.user_id()),
                post_id: Set(post_id),
            }
            .insert(db)
            .await;
            added.map(drop).map_err(|err| {
                if is_unique_violation(&err) {
                    ServiceError::Conflict(format!("you have already voted on post {post_id}"))
                } else if is_foreign_key_violation(&err) {
                    // The post was deleted after the visibility check.
                    posts::not_found(post_id)
                } else {
                    err.into()
                }
            })
        }
        VoteDirection::Remove => {
            let removed = vote::Entity::delete_many()
                .filter(vote::Column::UserId.eq(caller.user_id()))
                .filter(vote::Column::PostId.eq(post_id))
                .exec(db)
                .await?;
            if removed.rows_affected == 0 {
                return Err(ServiceError::NotFound(format!(
                    "you have not voted on post {post_id}"
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direction_is_0_or_1() {
        assert_eq!(VoteDirection::parse(1), Ok(VoteDirection::Add));
        assert_eq!(VoteDirection::parse(0), Ok(VoteDirection::Remove));
        for bad in [-1, 2, i64::MAX] {
            assert!(VoteDirection::parse(bad).is_err(), "{bad}");
        }
    }
}
