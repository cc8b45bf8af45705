//! The outbox of live events that the database's triggers write, as more than one resource
//! reads it: an account's replay starts after the newest event recorded before it, and the
//! feed starts from the newest one.

use entity::event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QuerySelect};

use crate::error::ServiceError;

/// The id of the newest event recorded, 0 when there is none.
pub(crate) async fn newest_id(db: &impl ConnectionTrait) -> Result<i64, ServiceError> {
    let newest: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .column_as(event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}
