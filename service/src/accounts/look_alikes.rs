//! Addresses that look alike: a registration is refused when its address cannot be told
//! apart from one already registered.

use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, Func, Query},
};

use crate::{database::Database, error::ServiceError};

/// Advisory lock class (the first key of PostgreSQL's two-key form) of email look-alike
/// keys: every registration holds the lock of its address's key until it commits.
const LOOK_ALIKE_LOCK_CLASS: i32 = 726_560;

/// Whether an account holds an address that looks like `email` (whose look-alike key is
/// `skeleton`): one with the same key, where either address has a character outside ASCII.
/// Two plain-ASCII addresses are two people even when they look alike (`bob1@`, `bobl@`);
/// the very same address is left to the unique index.
///
/// Within `txn`, until it ends, no other registration of the same key can decide the same:
/// on PostgreSQL every registration locks its key first, ASCII ones too (a Latin address
/// and its Cyrillic twin at once: one of them must wait for the other); on SQLite a write
/// transaction has the database to itself.
///
/// One row is enough. While no two accounts share a key unless both are plain ASCII, a key
/// that a non-ASCII address holds is held by it alone: the row found is that one, or the
/// key is held by ASCII addresses only.
pub(super) async fn claim_look_alikes(
    txn: &DatabaseTransaction,
    email: &str,
    skeleton: &str,
) -> Result<bool, ServiceError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        // The key is a SHA-256 in hex: its first 32 bits are as good as any.
        let key = u32::from_str_radix(&skeleton[..8], 16).unwrap_or_default();
        let lock = Query::select()
            .expr(Func::cust("pg_advisory_xact_lock").args([
                Expr::val(LOOK_ALIKE_LOCK_CLASS),
                Expr::val(i32::from_ne_bytes(key.to_ne_bytes())),
            ]))
            .to_owned();
        txn.execute(&lock).await?;
    }
    let holder: Option<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Email)
        .filter(user::Column::EmailSkeleton.eq(skeleton))
        .into_tuple()
        .one(txn)
        .await?;
    Ok(holder.is_some_and(|holder| holder != email && !(holder.is_ascii() && email.is_ascii())))
}

/// Accounts given their look-alike key per transaction.
const KEY_BATCH: u64 = 500;

/// Gives each account without a look-alike key its key: those a bulk load inserted knowing
/// nothing of it (the column's default is empty), which a look-alike registration would not
/// find. The accounts the service registers have theirs from the start. Returns how many
/// were given one.
///
/// # Errors
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn fill_look_alike_keys(db: &Database) -> Result<u64, ServiceError> {
    let db = db.connection();
    let mut filled = 0;
    loop {
        let keyless: Vec<(i64, String)> = user::Entity::find()
            .select_only()
            .columns([user::Column::Id, user::Column::Email])
            .filter(user::Column::EmailSkeleton.eq(""))
            .order_by_asc(user::Column::Id)
            .limit(KEY_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if keyless.is_empty() {
            return Ok(filled);
        }
        let txn = db.begin().await?;
        for (id, email) in keyless {
            user::Entity::update_many()
                .col_expr(
                    user::Column::EmailSkeleton,
                    Expr::value(user::email_skeleton(&email)),
                )
                .filter(user::Column::Id.eq(id))
                .exec(&txn)
                .await?;
            filled += 1;
        }
        txn.commit().await?;
    }
}
