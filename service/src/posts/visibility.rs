//! Who sees a post: its owner, always; anyone else, while it is public: published, and not
//! hidden by a moderator. Another person's draft or hidden post does not exist for them. Reads ask it of the database ([`condition`]; a page's
//! statement writes the same in SQL, `sql::page`), and the live events of the feed in memory
//! ([`sees`]).

use entity::post;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};

use crate::{database::Connection, error::ServiceError, sessions::Caller};

/// Whether someone sees a post: its owner (`owner`), or anyone while it is public.
pub(crate) fn sees(owner: bool, public: bool) -> bool {
    owner || public
}

/// Whether `caller` may see the post: it exists and is public or theirs.
pub(crate) async fn is_visible(
    db: &Connection,
    caller: &Caller,
    id: i64,
) -> Result<bool, ServiceError> {
    let found = post::Entity::find()
        .select_only()
        .column(post::Column::Id)
        .filter(post::Column::Id.eq(id))
        .filter(condition(caller))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

pub(crate) fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("post {id} was not found"))
}

/// [`sees`] as a condition on posts, for the caller.
pub(super) fn condition(caller: &Caller) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(post::Column::Published.eq(true))
                .add(post::Column::Hidden.eq(false)),
        )
        .add(post::Column::OwnerId.eq(caller.user_id()))
}
