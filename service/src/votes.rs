//! Votes: each person votes a post at most once, whoever wrote it.

use entity::vote;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::{
    ServiceError,
    error::{is_foreign_key_violation, is_unique_violation},
    posts,
    tokens::Caller,
};

/// Whether a vote adds the caller's vote or takes it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteDirection {
    Add,
    Remove,
}

/// Adds or removes the caller's vote on a post they can see.
///
/// # Errors
/// [`ServiceError::NotFound`] when the post is not visible to the caller, or when removing
/// a vote that was never cast; [`ServiceError::Conflict`] when adding a vote twice (decided
/// by the primary key, so it holds under concurrent requests).
pub async fn vote(
    db: &DatabaseConnection,
    caller: Caller,
    post_id: i64,
    direction: VoteDirection,
) -> Result<(), ServiceError> {
    if !posts::is_visible(db, caller, post_id).await? {
        return Err(posts::not_found(post_id));
    }
    match direction {
        VoteDirection::Add => {
            let added = vote::ActiveModel {
                user_id: Set(caller.user_id),
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
                .filter(vote::Column::UserId.eq(caller.user_id))
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
