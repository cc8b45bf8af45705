//! Sessions: one per login, kept alive by refresh tokens that each work once, ended by
//! logging out, from another of the person's sessions, by a password change or with the
//! account.
//!
//! An access token names its session (`sid`). Every authenticated request checks that the
//! session still exists inside a statement it runs anyway, so the tokens of an ended session
//! are refused at once, on every instance sharing the database.
//!
//! Refresh tokens rotate (RFC 9700 §4.14.2), and a session keeps one row whatever the number
//! of refreshes: the generation of its live token and that token's hash. A token names its
//! session and generation and carries a tag of the service's, and its successor is derived
//! from it ([`refresh_tokens`]). Presenting the live token moves the session to the
//! next generation. Presenting the one just spent within the reuse grace of its first use
//! (two tabs of one browser refreshing at once) gets that same successor again, so a session
//! never branches into two live tokens. Any other earlier token is a replay, and ends the
//! session (the thief's copy and the person's alike).
//!
//! Expired sessions are deleted on every login and refresh, so the table holds only what may
//! still be used.

mod caller;
mod refresh_tokens;
pub mod tokens;

use std::{net::IpAddr, time::Duration};

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::{session, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, LockType, Query},
};
use sha2::{Digest, Sha256};

pub use caller::Caller;
pub(crate) use caller::{ended_if_orphaned, own_session, session_ended, session_is_live};

use crate::{
    clock::{clock_span, now},
    database::{Connection, Database, begin_write},
    error::ServiceError,
};
use refresh_tokens::{RefreshKeys, RefreshToken};
use tokens::{IssuedToken, Tokens};

/// How long a refresh token lives after its issue, and how long after its first use it may
/// be used again without ending its session.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub refresh_lifetime: Duration,
    pub reuse_grace: Duration,
}

/// Starts, refreshes and ends sessions, and issues their tokens.
#[derive(Clone)]
pub struct Sessions {
    tokens: Tokens,
    refresh_keys: RefreshKeys,
    policy: SessionPolicy,
}

/// What a login or a refresh gives the client: an access token and the refresh token that
/// gets the next one.
#[derive(Clone, Debug)]
pub struct SessionTokens {
    pub access: IssuedToken,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

/// Where a login comes from, as the person's list of sessions shows it.
#[derive(Clone, Debug, Default)]
pub struct Device {
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
}

/// Longest `User-Agent` kept, in characters; a longer one is cut.
pub const USER_AGENT_MAX_CHARS: usize = 512;

/// A session as its person sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub client_address: Option<String>,
    /// Whether it is the session of the request that asked.
    pub current: bool,
}

/// Random bytes in an event ticket: 256 bits.
const SECRET_BYTES: usize = 32;

impl Sessions {
    /// Sessions whose access tokens live `access_lifetime`, both kinds of token signed with
    /// keys derived from `secret`.
    pub fn new(secret: &[u8], access_lifetime: Duration, policy: SessionPolicy) -> Self {
        Self {
            tokens: Tokens::new(secret, access_lifetime),
            refresh_keys: RefreshKeys::new(secret),
            policy,
        }
    }

    /// The account and session a valid access token names, without asking the database
    /// whether the session still exists: for operations that check it in their own statement.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for an invalid token.
    pub fn verify(&self, access_token: &str) -> Result<Caller, ServiceError> {
        self.tokens.verify(access_token)
    }

    /// Starts a session for `user_id` and issues its first tokens, provided the account's
    /// credentials are still at `credentials_version`, the version read with the password
    /// hash the login checked.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the account was deleted or its password changed
    /// meanwhile.
    pub(crate) async fn start(
        &self,
        db: &Connection,
        user_id: i64,
        credentials_version: i64,
        device: Device,
    ) -> Result<SessionTokens, ServiceError> {
        use session::Column as S;
        let now = now();
        prune(db, now).await?;
        let txn = begin_write(db).await?;
        // The condition is in the insert itself, and the account's row is share-locked by it:
        // a password change either commits first (and this finds the new version and inserts
        // nothing) or waits for this session to commit (and then ends it with the others).
        let account = Query::select()
            .exprs([
                Expr::col(user::Column::Id),
                Expr::val(now),
                Expr::val(now),
                Expr::val(now + self.refresh_lifetime()),
                Expr::val(
                    device
                        .user_agent
                        .map(|agent| agent.chars().take(USER_AGENT_MAX_CHARS).collect::<String>()),
                ),
                Expr::val(device.address.map(|a| a.to_canonical().to_string())),
            ])
            .from(user::Entity)
            .and_where(user::Column::Id.eq(user_id))
            .and_where(user::Column::CredentialsVersion.eq(credentials_version))
            .lock(LockType::Share)
            .to_owned();
        let insert = Query::insert()
            .into_table(session::Entity)
            .columns([
                S::UserId,
                S::CreatedAt,
                S::LastUsedAt,
                S::ExpiresAt,
                S::UserAgent,
                S::ClientAddress,
            ])
            .select_from(account)
            .map_err(|e| ServiceError::internal("building a session's insert", e))?
            .returning_col(S::Id)
            .to_owned();
        let session_id: i64 = txn
            .query_one(&insert)
            .await?
            .ok_or_else(|| ServiceError::Unauthorized("the email or password is incorrect".into()))?
            .try_get("", "id")?;
        let refresh = self.refresh_keys.first(session_id);
        session::Entity::update_many()
            .col_expr(S::RefreshHash, Expr::value(refresh.hash()))
            .filter(S::Id.eq(session_id))
            .exec(&txn)
            .await?;
        let tokens = self.tokens_for(user_id, &refresh)?;
        txn.commit().await?;
        Ok(tokens)
    }

    /// Exchanges a refresh token for a new access token and the token's successor.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`], alike for a malformed, unknown, expired or spent
    /// token and for a replay (which also ends the session).
    pub async fn refresh(
        &self,
        db: &Database,
        refresh_token: &str,
    ) -> Result<SessionTokens, ServiceError> {
        let _writing = db.writing();
        let db = db.connection();
        use session::Column as S;
        let presented = self.refresh_keys.read(refresh_token).ok_or_else(refused)?;
        let now = now();
        prune(db, now).await?;
        let txn = begin_write(db).await?;
        // The session's row first, locked: its refreshes, its end and its replays take turns,
        // and none of them holds a lock on anything else while waiting for it.
        let session = session::Entity::find_by_id(presented.session_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .filter(|session| session.expires_at > now)
            .ok_or_else(refused)?;
        let successor = self.refresh_keys.successor(&presented);
        if presented.generation == session.refresh_generation
            && presented.hash() == session.refresh_hash
        {
            session::Entity::update_many()
                .col_expr(S::RefreshGeneration, Expr::value(successor.generation))
                .col_expr(S::RefreshHash, Expr::value(successor.hash()))
                .col_expr(S::RefreshedAt, Expr::value(now))
                .col_expr(S::LastUsedAt, Expr::value(now))
                .col_expr(S::ExpiresAt, Expr::value(now + self.refresh_lifetime()))
                .filter(S::Id.eq(session.id))
                .exec(&txn)
                .await?;
        } else if successor.generation == session.refresh_generation
            && successor.hash() == session.refresh_hash
            && session
                .refreshed_at
                .is_some_and(|first_use| now - first_use <= self.reuse_grace())
        {
            // The token just spent, again within the grace: the same successor.
            session::Entity::update_many()
                .col_expr(S::LastUsedAt, Expr::value(now))
                .filter(S::Id.eq(session.id))
                .exec(&txn)
                .await?;
        } else if presented.generation < session.refresh_generation {
            session::Entity::delete_by_id(session.id).exec(&txn).await?;
            txn.commit().await?;
            tracing::warn!(
                session = session.id,
                "a spent refresh token was presented again: the session is ended"
            );
            return Err(refused());
        } else {
            return Err(refused());
        }
        let tokens = self.tokens_for(session.user_id, &successor)?;
        txn.commit().await?;
        Ok(tokens)
    }

    /// What the client gets: an access token of the refresh token's session, and that
    /// refresh token.
    fn tokens_for(
        &self,
        user_id: i64,
        refresh: &RefreshToken,
    ) -> Result<SessionTokens, ServiceError> {
        let caller = Caller::named(user_id, refresh.session_id);
        Ok(SessionTokens {
            access: self.tokens.issue(&caller)?,
            refresh_token: refresh.text(),
            refresh_expires_in: self.policy.refresh_lifetime.as_secs(),
        })
    }

    fn refresh_lifetime(&self) -> chrono::Duration {
        clock_span(self.policy.refresh_lifetime)
    }

    fn reuse_grace(&self) -> chrono::Duration {
        clock_span(self.policy.reuse_grace)
    }
}

/// What every refused refresh gets, whatever the reason: a client learns nothing from it.
fn refused() -> ServiceError {
    ServiceError::Unauthorized(
        "the refresh token is invalid, expired or spent; log in again".into(),
    )
}

/// A new bearer secret (an event ticket): base64url of 256 random bits.
pub(crate) fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a well-formed secret (base64url of 256 bits); `None` for anything
/// else, which no secret issued here can be.
pub(crate) fn secret_hash(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    (bytes.len() == SECRET_BYTES).then(|| hash_hex(token))
}

fn hash_hex(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Deletes expired sessions.
async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<(), ServiceError> {
    session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends the caller's own session.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when it has already ended.
pub async fn log_out(db: &Database, caller: &Caller) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let ended = session::Entity::delete_many()
        .filter(own_session(caller))
        .exec(db)
        .await?;
    if ended.rows_affected == 0 {
        return Err(session_ended());
    }
    Ok(())
}

/// The caller's sessions that may still be used, the most recently used first.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's own session has ended.
pub async fn list(db: &Database, caller: &Caller) -> Result<Vec<SessionView>, ServiceError> {
    let db = db.connection();
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(caller.user_id()))
        .filter(session::Column::ExpiresAt.gt(now()))
        .order_by_desc(session::Column::LastUsedAt)
        .order_by_desc(session::Column::Id)
        .all(db)
        .await?;
    if !sessions.iter().any(|s| s.id == caller.session_id()) {
        return Err(session_ended());
    }
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id == caller.session_id(),
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent,
            client_address: s.client_address,
        })
        .collect())
}

/// Ends one of the caller's sessions (their own included, which is logging out).
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's own session has ended,
/// [`ServiceError::NotFound`] when `id` is no session of the caller's.
pub async fn end(db: &Database, caller: &Caller, id: i64) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let txn = begin_write(db).await?;
    check_live(&txn, caller).await?;
    let ended = session::Entity::delete_many()
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::UserId.eq(caller.user_id()))
        .exec(&txn)
        .await?;
    if ended.rows_affected == 0 {
        return Err(ServiceError::NotFound(format!(
            "session {id} was not found"
        )));
    }
    txn.commit().await?;
    Ok(())
}

/// Ends every session of the caller's but the caller's own.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's own session has ended.
pub async fn end_others(db: &Database, caller: &Caller) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let txn = begin_write(db).await?;
    check_live(&txn, caller).await?;
    end_others_in(&txn, caller).await?;
    txn.commit().await?;
    Ok(())
}

/// Ends the caller's other sessions, inside a transaction that has checked the caller's own.
pub(crate) async fn end_others_in(
    txn: &DatabaseTransaction,
    caller: &Caller,
) -> Result<(), ServiceError> {
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(caller.user_id()))
        .filter(session::Column::Id.ne(caller.session_id()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Fails unless the caller's session exists.
async fn check_live(txn: &DatabaseTransaction, caller: &Caller) -> Result<(), ServiceError> {
    session::Entity::find()
        .filter(own_session(caller))
        .one(txn)
        .await?
        .map(drop)
        .ok_or_else(session_ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_of_256_bits_in_base64url_has_a_hash() {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(secret_hash(&token).map(|h| h.len()), Some(64));
        for malformed in [
            String::new(),
            "x".repeat(10_000),
            token[..42].to_owned(),
            format!("{token}A"),
            token.replace(|c: char| c.is_ascii_alphanumeric(), "+"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 31]),
        ] {
            assert_eq!(secret_hash(&malformed), None, "{malformed}");
        }
    }
}
