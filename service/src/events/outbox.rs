//! Reads of the outbox: the newest id, batches bounded in bytes, where a resuming subscriber
//! starts, the transactions still writing to it; and its trim.

use std::{collections::HashSet, time::Duration};

use entity::{event, event_ticket};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::shared::EventPolicy;
use crate::{
    clock::{clock_span, now},
    database::Connection,
    error::ServiceError,
    outbox::newest_id,
    sql,
};

/// How often the feed looks again whether the transactions writing the events of a gap have
/// ended (they are single statements, or a few).
const WRITERS_POLL: Duration = Duration::from_millis(2);

/// The events after `after` through `through`, in id order, as many as `bytes` of text hold
/// (the first whatever its size).
pub(super) async fn read_batch(
    db: &Connection,
    after: i64,
    through: i64,
    bytes: usize,
) -> Result<Vec<event::Model>, ServiceError> {
    let statement = sql::events::batch(db.get_database_backend(), after, through, bytes);
    Ok(event::Entity::find()
        .from_raw_sql(statement)
        .all(db)
        .await?)
}

/// Where a subscription resuming after `seen` starts.
pub(super) enum Resume {
    After(i64),
    /// The events after the id are not all kept, or it is none this service gave: the
    /// subscriber starts over from what the feed has settled.
    Reset,
}

pub(super) async fn resume_point(
    db: &Connection,
    seen: i64,
    settled: i64,
) -> Result<Resume, ServiceError> {
    let (oldest, newest): (Option<i64>, Option<i64>) = event::Entity::find()
        .select_only()
        .column_as(event::Column::Id.min(), "oldest")
        .column_as(event::Column::Id.max(), "newest")
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or_default();
    let newest = newest.unwrap_or(0);
    // The outbox always keeps its newest event, so the ids a subscriber may have missed
    // are all kept when the one after `seen` is. Ids skipped by a write that rolled back
    // look the same as trimmed ones: a needless reset, never a lost event.
    let kept = oldest.is_none_or(|oldest| seen >= oldest - 1);
    Ok(if seen > newest.max(settled) || !kept {
        Resume::Reset
    } else {
        Resume::After(seen)
    })
}

/// Waits until every transaction that is writing events now has ended.
pub(super) async fn wait_for_writers(db: &impl ConnectionTrait) -> Result<(), ServiceError> {
    let running = || async {
        let rows = db.query_all_raw(sql::events::writers_in_flight()).await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "writer"))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(ServiceError::from)
    };
    let writers = running().await?;
    while !writers.is_empty() {
        tokio::time::sleep(WRITERS_POLL).await;
        if running().await?.is_disjoint(&writers) {
            break;
        }
    }
    Ok(())
}

/// Deletes the events older than the replay window, all but the newest (which tells a
/// resuming subscriber where the outbox stands), and the expired tickets.
///
/// Only the oldest end of the outbox goes, up to the first event still in the window:
/// [`resume_point`] replays everything after an id whenever the event after it is kept, so a
/// hole would be a silent loss. Ids follow commit order, but `created_at` need not (PostgreSQL
/// stamps an event with its transaction's start, and clocks step back): deleting by age alone
/// could take an event out from between kept ones.
///
/// The newest id is read first: were it read after finding no event in the window, events
/// written in between (in the window) would fall below it and go.
pub(super) async fn trim(db: &Connection, policy: EventPolicy) -> Result<(), ServiceError> {
    let cutoff = now() - clock_span(policy.replay_window);
    let newest = newest_id(db).await?;
    let first_in_window: Option<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::CreatedAt.gte(cutoff.timestamp()))
        .order_by_asc(event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    let keep_from = first_in_window.unwrap_or(newest);
    event::Entity::delete_many()
        .filter(event::Column::Id.lt(keep_from))
        .exec(db)
        .await?;
    event_ticket::Entity::delete_many()
        .filter(event_ticket::Column::ExpiresAt.lte(now()))
        .exec(db)
        .await?;
    Ok(())
}
