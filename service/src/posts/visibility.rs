//! Who sees a post: its owner, always; anyone else, while it is published. Another person's
//! draft does not exist for them. Reads ask it of the database ([`condition`]; a page's
//! statement writes the same in SQL, `sql::page`), and the live events of the feed in memory
//! ([`sees`]).

use entity::post;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::{error::ServiceError, sessions::Caller};

/// Whether someone sees a post: its owner (`owner`), or anyone while it is published.
pub(crate) fn sees(owner: bool, published: bool) -> bool {
    owner || published
}

/// Whether `caller` may see the post: it exists and is published or theirs.
pub(crate) async fn is_visible(
    db: &DatabaseConnection,
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
        .add(post::Column::Published.eq(true))
        .add(post::Column::OwnerId.eq(caller.user_id()))
}
