//! One-time tokens mailed to an account's owner: 256 random bits, kept only as their
//! SHA-256, used once, and one per account and purpose live (a newer one voids the older).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::account_token;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use sha2::{Digest, Sha256};

use super::throttle::{seconds_until, whole_seconds};
use crate::{
    clock::{clock_span, now},
    error::{RateLimit, ServiceError},
    limits::Allowance,
};

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Shows that the account's address is its owner's.
    VerifyEmail,
    /// Lets the address's owner choose a new password.
    ResetPassword,
    /// Shows that a new address is the account owner's, and moves the account to it.
    ChangeEmail,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// Issues a token of `purpose` for account `user_id` in `txn`, voiding any earlier one of the
/// same purpose; returns its text, which only the mail carries.
pub(crate) async fn issue(
    txn: &impl ConnectionTrait,
    user_id: i64,
    purpose: Purpose,
    lifetime: Duration,
) -> Result<String, ServiceError> {
    issue_for_address(txn, user_id, purpose, lifetime, None).await
}

/// As [`issue`], for a token that names the address it was mailed to (an address change's).
pub(crate) async fn issue_for_address(
    txn: &impl ConnectionTrait,
    user_id: i64,
    purpose: Purpose,
    lifetime: Duration,
    new_email: Option<&str>,
) -> Result<String, ServiceError> {
    account_token::Entity::delete_many()
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .exec(txn)
        .await?;
    let text = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let created_at = now();
    account_token::ActiveModel {
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(hash(&text)),
        new_email: Set(new_email.map(str::to_owned)),
        created_at: Set(created_at),
        expires_at: Set(created_at + clock_span(lifetime)),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(text)
}

/// One token of `purpose` an account per `interval`, as the limit `limit`: past it when the
/// account's last was issued sooner than `interval` ago; else the token about to be issued
/// takes the one place until `interval` has passed.
pub(crate) async fn once_per(
    db: &impl ConnectionTrait,
    user_id: i64,
    purpose: Purpose,
    interval: Duration,
    limit: RateLimit,
) -> Result<Allowance, ServiceError> {
    let now = now();
    let free_at = issued_at(db, user_id, purpose)
        .await?
        .map(|issued| issued + clock_span(interval))
        .filter(|free_at| *free_at > now);
    Ok(Allowance {
        limit,
        quota: 1,
        window_seconds: whole_seconds(interval),
        remaining: 0,
        resets_in_seconds: seconds_until(free_at.unwrap_or(now + clock_span(interval)), now),
        exceeded: free_at.is_some(),
    })
}

/// When account `user_id`'s live token of `purpose` was issued, if it has one.
async fn issued_at(
    db: &impl ConnectionTrait,
    user_id: i64,
    purpose: Purpose,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    Ok(account_token::Entity::find()
        .select_only()
        .column(account_token::Column::CreatedAt)
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .order_by_desc(account_token::Column::CreatedAt)
        .into_tuple()
        .one(db)
        .await?)
}

/// Checks that `text` is a live token of `purpose`, without using it up.
///
/// # Errors
/// As [`redeem`].
pub(crate) async fn check(
    db: &impl ConnectionTrait,
    text: &str,
    purpose: Purpose,
) -> Result<(), ServiceError> {
    let found = account_token::Entity::find()
        .filter(account_token::Column::TokenHash.eq(hash(text)))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .one(db)
        .await?;
    live(found).map(|_| ())
}

/// Uses up the token `text` of `purpose`: it is deleted in `txn`, so that of two uses at
/// once only one finds it.
///
/// # Errors
/// [`ServiceError::Invalid`] naming `token` when no live token of the purpose has that
/// text (never issued, used, voided by a newer one, or expired).
pub(crate) async fn redeem(
    txn: &impl ConnectionTrait,
    text: &str,
    purpose: Purpose,
) -> Result<account_token::Model, ServiceError> {
    redeem_any(txn, text, &[purpose]).await
}

/// As [`redeem`], for a token of any of `purposes`.
pub(crate) async fn redeem_any(
    txn: &impl ConnectionTrait,
    text: &str,
    purposes: &[Purpose],
) -> Result<account_token::Model, ServiceError> {
    let used = account_token::Entity::delete_many()
        .filter(account_token::Column::TokenHash.eq(hash(text)))
        .filter(
            account_token::Column::Purpose.is_in(purposes.iter().map(|purpose| purpose.as_str())),
        )
        .exec_with_returning(txn)
        .await?
        .pop();
    live(used)
}

/// The token found, if it is one and has not expired.
fn live(found: Option<account_token::Model>) -> Result<account_token::Model, ServiceError> {
    let token = found.ok_or_else(|| {
        ServiceError::invalid(
            "token",
            "is not a valid token: unknown, already used, or replaced by a newer one",
        )
    })?;
    if token.expires_at <= now() {
        return Err(ServiceError::invalid(
            "token",
            "has expired; ask for a new one",
        ));
    }
    Ok(token)
}

/// The hex SHA-256 of a token's text: what is stored of it.
fn hash(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}
