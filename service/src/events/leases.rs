//! The cap on one account's open event streams, across every instance of the service.
//!
//! An open stream holds a lease on one of its account's numbered slots in `event_streams`
//! (below the cap): taken by one statement when the stream opens, deleted when it closes.
//! Each instance renews its streams' leases every [`RENEW_INTERVAL`] in one statement, so a
//! lease that is not renewed, because its instance is gone without closing its streams,
//! expires after [`LEASE`] and its slot is free again.

use std::time::Duration;

use entity::event_stream;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr,
};

use crate::{clock::now, database::Connection, error::ServiceError, sql};

/// How long a lease lasts unless renewed.
const LEASE: Duration = Duration::from_secs(30);

/// How often an instance renews its leases: a few renewals fit in one lease, so one that
/// fails or comes late loses nothing.
pub(crate) const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// This instance's name in the leases it holds: random, made at start.
#[derive(Clone, Debug)]
pub(crate) struct Instance(String);

impl Instance {
    pub(crate) fn new() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }
}

/// A slot of an account's, held by one open stream on this instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    user_id: i64,
    slot: i32,
}

fn seconds_now() -> i64 {
    now().timestamp()
}

fn lease_end(now: i64) -> i64 {
    now + i64::try_from(LEASE.as_secs()).unwrap_or(i64::MAX)
}

/// Takes a free slot of `user_id`'s among `cap` for a stream of this instance's; `None`
/// when every slot is held.
pub(crate) async fn take(
    db: &Connection,
    instance: &Instance,
    user_id: i64,
    cap: usize,
) -> Result<Option<Lease>, ServiceError> {
    let cap = i32::try_from(cap).unwrap_or(i32::MAX);
    // A take that loses its slot to a racing one sees it held the next time; each loss is
    // another stream's win, so there are at most as many tries as slots.
    for _ in 0..=cap {
        let now = seconds_now();
        let statement = sql::stream_leases::take_slot(
            db.get_database_backend(),
            user_id,
            cap,
            &instance.0,
            now,
            lease_end(now),
        );
        if let Some(row) = db.query_one_raw(statement).await? {
            let slot: i32 = row.try_get("", "slot")?;
            return Ok(Some(Lease { user_id, slot }));
        }
        if !any_free(db, user_id, cap, now).await? {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Whether `user_id` has fewer than `cap` unexpired leases.
async fn any_free(db: &Connection, user_id: i64, cap: i32, now: i64) -> Result<bool, ServiceError> {
    let held = event_stream::Entity::find()
        .filter(event_stream::Column::UserId.eq(user_id))
        .filter(event_stream::Column::Slot.lt(cap))
        .filter(event_stream::Column::ExpiresAt.gte(now))
        .count(db)
        .await?;
    Ok(held < u64::try_from(cap).unwrap_or(0))
}

/// Gives up a lease of this instance's.
pub(crate) async fn release(
    db: &Connection,
    instance: &Instance,
    lease: Lease,
) -> Result<(), ServiceError> {
    event_stream::Entity::delete_many()
        .filter(event_stream::Column::UserId.eq(lease.user_id))
        .filter(event_stream::Column::Slot.eq(lease.slot))
        .filter(event_stream::Column::Instance.eq(&instance.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Renews every lease of this instance's, and deletes the leases that expired (whichever
/// instance held them).
pub(crate) async fn renew(db: &Connection, instance: &Instance) -> Result<(), ServiceError> {
    let now = seconds_now();
    event_stream::Entity::update_many()
        .col_expr(event_stream::Column::ExpiresAt, Expr::value(lease_end(now)))
        .filter(event_stream::Column::Instance.eq(&instance.0))
        .exec(db)
        .await?;
    event_stream::Entity::delete_many()
        .filter(event_stream::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives up every lease of this instance's, as it stops.
pub(crate) async fn release_all(db: &Connection, instance: &Instance) -> Result<(), ServiceError> {
    event_stream::Entity::delete_many()
        .filter(event_stream::Column::Instance.eq(&instance.0))
        .exec(db)
        .await?;
    Ok(())
}
