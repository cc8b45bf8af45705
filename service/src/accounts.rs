//! People: registering, logging in (with a throttle on failures), changing the password,
//! authenticating a bearer token, reading and deleting accounts.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{login_failure, registration, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
    sea_query::{Expr, Func, Query},
};

use crate::{
    RateLimit, ServiceError, User, clock_span,
    database::begin_write,
    error::is_unique_violation,
    events, fields, now,
    passwords::{Passwords, Verified},
    sessions::{self, Device, SessionTokens, Sessions, session_ended, session_is_live},
    tokens::Caller,
};

/// How many failed logins within `window` lock an email, and how many lock a client address
/// (one address guessing across many emails), until the oldest of them ages out of the
/// window; and how many registrations one client address may make within the same window.
/// Client addresses are counted as [`throttle_address`] groups them. 0 turns a limit off.
#[derive(Clone, Copy, Debug)]
pub struct LoginThrottle {
    pub max_failures: u32,
    pub max_failures_per_address: u32,
    pub max_registrations_per_address: u32,
    pub window: Duration,
}

/// The address a client is counted by in the throttle: an IPv4 address itself, an IPv6
/// address by its /64, the network one subscriber is given and in which it may pick a new
/// address for every request. An IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn throttle_address(client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
    }
}

/// Registration, login and token checks, with the secrets and costs they need.
#[derive(Clone)]
pub struct Accounts {
    passwords: Passwords,
    sessions: Sessions,
    throttle: LoginThrottle,
}

impl Accounts {
    pub fn new(passwords: Passwords, sessions: Sessions, throttle: LoginThrottle) -> Self {
        Self {
            passwords,
            sessions,
            throttle,
        }
    }

    /// Computes in the background what a login of an unknown email needs, so that the first
    /// one costs what every later one does ([`Passwords::prepare`]).
    pub fn prepare(&self) {
        self.passwords.prepare();
    }

    /// The sessions logins start.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Creates an account. The email is stored in its normal form ([`fields::email`]); the
    /// database's unique index decides whether it is taken, and [`claim_look_alikes`] whether
    /// one that looks the same is, in the transaction of the insert.
    /// A valid request from `client` is counted against its registration limit before the
    /// password is hashed, so that a flood of them costs no hashing.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each of the email and the password that breaks its
    /// rule ([`fields::email`], [`fields::password`]),
    /// [`ServiceError::RateLimited`] when the address has registered too often within the
    /// window,
    /// [`ServiceError::Busy`] when no hashing permit frees up in time,
    /// [`ServiceError::Conflict`] when the email, or one that looks the same, is taken.
    pub async fn register(
        &self,
        db: &DatabaseConnection,
        email: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Person, ServiceError> {
        let (email, ()) = fields::both(
            ("email", fields::email(email)),
            ("password", fields::password(password)),
        )?;
        if let Some(client) = client {
            self.count_registration(db, client).await?;
        }
        let password_hash = self.passwords.hash(password).await?;
        let email_skeleton = user::email_skeleton(&email);
        let txn = begin_write(db).await?;
        if claim_look_alikes(&txn, &email, &email_skeleton).await? {
            return Err(ServiceError::Conflict(format!(
                "the email {email} cannot be told apart from one already registered; register \
                 another"
            )));
        }
        // Events committed before this account are none of its replay's.
        let last_event_before = events::newest_id(&txn).await?;
        let created = user::ActiveModel {
            email: Set(email.clone()),
            email_skeleton: Set(email_skeleton),
            password_hash: Set(password_hash),
            created_at: Set(now()),
            last_event_before: Set(last_event_before),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                ServiceError::Conflict(format!(
                    "the email {email} is already registered; log in instead"
                ))
            } else {
                err.into()
            }
        })?;
        txn.commit().await?;
        Ok(created.into())
    }

    /// Records a registration from `client`, unless it has already made the most the window
    /// allows; prunes those that have aged out of it.
    async fn count_registration(
        &self,
        db: &DatabaseConnection,
        client: IpAddr,
    ) -> Result<(), ServiceError> {
        let max = self.throttle.max_registrations_per_address;
        // 0 turns the limit off.
        if max == 0 {
            return Ok(());
        }
        let attempt = registration::ActiveModel {
            client_address: Set(throttle_address(client)),
            registered_at: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let since = attempt.registered_at - self.window();
        let earlier: Vec<DateTime<Utc>> = registration::Entity::find()
            .select_only()
            .column(registration::Column::RegisteredAt)
            .filter(registration::Column::ClientAddress.eq(&attempt.client_address))
            .filter(registration::Column::Id.ne(attempt.id))
            .filter(registration::Column::RegisteredAt.gt(since))
            .order_by_desc(registration::Column::RegisteredAt)
            .limit(u64::from(max))
            .into_tuple()
            .all(db)
            .await?;
        if earlier.len() as u64 >= u64::from(max) {
            registration::Entity::delete_by_id(attempt.id)
                .exec(db)
                .await?;
            let oldest = earlier.last().copied().unwrap_or(attempt.registered_at);
            return Err(ServiceError::RateLimited {
                limit: RateLimit::Registrations,
                retry_after_secs: self.retry_after(oldest, attempt.registered_at),
            });
        }
        registration::Entity::delete_many()
            .filter(registration::Column::RegisteredAt.lte(since))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Whole seconds (at least one) from `now` until `oldest` leaves the window.
    fn retry_after(&self, oldest: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
        let wait = (oldest + self.window() - now).num_milliseconds();
        u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1)
    }

    /// Exchanges an email and password for a new session's tokens, from `device`.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for an email or password that no account can have
    /// ([`fields::login_email`], [`fields::login_password`]), named `email` and `password`,
    /// and as [`Accounts::check_password`].
    pub async fn login(
        &self,
        db: &DatabaseConnection,
        email: &str,
        password: &str,
        device: Device,
    ) -> Result<SessionTokens, ServiceError> {
        let (email, ()) = fields::both(
            ("email", fields::login_email(email)),
            ("password", fields::login_password(password)),
        )?;
        let user = self
            .check_password(db, &email, password, device.address)
            .await?;
        self.sessions
            .start(db, user.id, user.credentials_version, device)
            .await
    }

    /// Replaces the caller's password, given the current one, and ends every other session
    /// of theirs. A wrong current password counts as a failed login. The account's
    /// credentials version is raised in the same statement, so that no login that checked
    /// the old password starts a session after it.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `current_password` ([`fields::login_password`]) and
    /// `new_password` ([`fields::password`]),
    /// [`ServiceError::Unauthorized`] when the caller's session has ended,
    /// [`ServiceError::Forbidden`] for a wrong current password,
    /// [`ServiceError::RateLimited`] past the failed-login limits,
    /// [`ServiceError::Busy`] when no hashing permit frees up in time.
    pub async fn change_password(
        &self,
        db: &DatabaseConnection,
        caller: Caller,
        current_password: &str,
        new_password: &str,
        client: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        fields::both(
            ("current_password", fields::login_password(current_password)),
            ("new_password", fields::password(new_password)),
        )?;
        let user = caller_account(db, caller).await?;
        self.check_password(db, &user.email, current_password, client)
            .await
            .map_err(|err| match err {
                ServiceError::Unauthorized(_) => {
                    ServiceError::Forbidden("the current password is incorrect".into())
                }
                err => err,
            })?;
        let password_hash = self.passwords.hash(new_password).await?;
        let txn = begin_write(db).await?;
        let changed = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, password_hash.into())
            .col_expr(
                user::Column::CredentialsVersion,
                sea_orm::ExprTrait::add(Expr::col(user::Column::CredentialsVersion), 1),
            )
            .filter(user::Column::Id.eq(caller.user_id))
            .filter(session_is_live(caller))
            .exec(&txn)
            .await?;
        if changed.rows_affected == 0 {
            return Err(session_ended());
        }
        sessions::end_others_in(&txn, caller).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Returns the account whose email and password these are. A right password whose hash
    /// is of the older form is hashed anew and stored.
    ///
    /// Every attempt is recorded (with the client's address, when known) before the password
    /// is checked and forgotten again on success, so concurrent guesses cannot slip past the
    /// limits; an unknown email is verified against a dummy hash, so it costs the same as a
    /// wrong password.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] once the email or the address has too many recent
    /// failures,
    /// [`ServiceError::Unauthorized`] for an unknown email or a wrong password alike.
    async fn check_password(
        &self,
        db: &DatabaseConnection,
        email: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<User, ServiceError> {
        let attempt = login_failure::ActiveModel {
            email: Set(email.to_owned()),
            client_address: Set(client.map(throttle_address)),
            failed_at: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        if let Some((limit, retry_after_secs)) = self.lockout(db, &attempt).await? {
            forget(db, &attempt).await?;
            return Err(ServiceError::RateLimited {
                limit,
                retry_after_secs,
            });
        }

        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(db)
            .await?;
        let hash = found.as_ref().map(|user| user.password_hash.as_str());
        let verified = match self.passwords.verify(password, hash).await {
            Ok(verified) => verified,
            // No verdict on the password (no hashing slot in time): no failed login either.
            Err(err) => {
                forget(db, &attempt).await?;
                return Err(err);
            }
        };
        match found {
            Some(user) if verified != Verified::Wrong => {
                login_failure::Entity::delete_many()
                    .filter(login_failure::Column::Email.eq(email))
                    .exec(db)
                    .await?;
                if verified == Verified::RightButRehash {
                    self.rehash(db, &user, password).await?;
                }
                Ok(user)
            }
            _ => {
                let cutoff = attempt.failed_at - self.window();
                login_failure::Entity::delete_many()
                    .filter(login_failure::Column::FailedAt.lt(cutoff))
                    .exec(db)
                    .await?;
                Err(ServiceError::Unauthorized(
                    "the email or password is incorrect".into(),
                ))
            }
        }
    }

    /// Stores a hash of the current form for a password just verified against an older one.
    async fn rehash(
        &self,
        db: &DatabaseConnection,
        user: &User,
        password: &str,
    ) -> Result<(), ServiceError> {
        let password_hash = self.passwords.hash(password).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, password_hash.into())
            .filter(user::Column::Id.eq(user.id))
            .filter(user::Column::PasswordHash.eq(&user.password_hash))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Seconds until `attempt`'s email and address may both try again, if either is locked,
    /// and which lock ends last (the email's, when both end together).
    async fn lockout(
        &self,
        db: &DatabaseConnection,
        attempt: &login_failure::Model,
    ) -> Result<Option<(RateLimit, u64)>, ServiceError> {
        let by_email = self
            .locked_for(
                db,
                attempt,
                login_failure::Column::Email.eq(&attempt.email),
                self.throttle.max_failures,
            )
            .await?;
        let by_address = match &attempt.client_address {
            Some(address) => {
                self.locked_for(
                    db,
                    attempt,
                    login_failure::Column::ClientAddress.eq(address),
                    self.throttle.max_failures_per_address,
                )
                .await?
            }
            None => None,
        };
        Ok(match (by_email, by_address) {
            (Some(email), Some(address)) if address > email => {
                Some((RateLimit::FailedLoginsFromAddress, address))
            }
            (Some(email), _) => Some((RateLimit::FailedLoginsForAccount, email)),
            (None, address) => address.map(|secs| (RateLimit::FailedLoginsFromAddress, secs)),
        })
    }

    /// Seconds until the earlier attempts matching `same` fall below `max` within the
    /// window, if they have reached it: when the oldest of the `max` most recent leaves it.
    async fn locked_for(
        &self,
        db: &DatabaseConnection,
        attempt: &login_failure::Model,
        same: impl sea_orm::sea_query::IntoCondition,
        max: u32,
    ) -> Result<Option<u64>, ServiceError> {
        // 0 turns the limit off.
        if max == 0 {
            return Ok(None);
        }
        let max = u64::from(max);
        let earlier: Vec<DateTime<Utc>> = login_failure::Entity::find()
            .select_only()
            .column(login_failure::Column::FailedAt)
            .filter(same)
            .filter(login_failure::Column::Id.ne(attempt.id))
            .filter(login_failure::Column::FailedAt.gt(attempt.failed_at - self.window()))
            .order_by_desc(login_failure::Column::FailedAt)
            .limit(max)
            .into_tuple()
            .all(db)
            .await?;
        if (earlier.len() as u64) < max {
            return Ok(None);
        }
        let oldest = earlier.last().copied().unwrap_or(attempt.failed_at);
        Ok(Some(self.retry_after(oldest, attempt.failed_at)))
    }

    fn window(&self) -> chrono::Duration {
        clock_span(self.throttle.window)
    }

    /// Returns the account and session a valid bearer token names, without asking the
    /// database whether the session still exists: for operations that fold that check into
    /// their own statement.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for an invalid token.
    pub fn token_caller(&self, token: &str) -> Result<Caller, ServiceError> {
        self.sessions.verify(token)
    }

    /// Returns the user a bearer token names, and its session, checked in one query.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for an invalid token or one whose session has ended.
    pub async fn authenticate(
        &self,
        db: &DatabaseConnection,
        token: &str,
    ) -> Result<(User, Caller), ServiceError> {
        let caller = self.sessions.verify(token)?;
        let user = caller_account(db, caller).await?;
        Ok((user, caller))
    }
}

/// The caller's account, if their session still exists.
pub(crate) async fn caller_account(
    db: &DatabaseConnection,
    caller: Caller,
) -> Result<User, ServiceError> {
    user::Entity::find_by_id(caller.user_id)
        .filter(session_is_live(caller))
        .one(db)
        .await?
        .ok_or_else(session_ended)
}

/// Deletes the record of a login attempt that turned out to be no failure.
async fn forget(
    db: &DatabaseConnection,
    attempt: &login_failure::Model,
) -> Result<(), ServiceError> {
    login_failure::Entity::delete_by_id(attempt.id)
        .exec(db)
        .await?;
    Ok(())
}

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
async fn claim_look_alikes(
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
pub async fn fill_look_alike_keys(db: &DatabaseConnection) -> Result<u64, ServiceError> {
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

/// A person as anyone may see them: the account without its password hash.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl Person {
    /// The columns of `users` a [`Person`] is read from.
    pub(crate) const COLUMNS: [user::Column; 3] = [
        user::Column::Id,
        user::Column::Email,
        user::Column::CreatedAt,
    ];
}

impl From<User> for Person {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            created_at: user.created_at,
        }
    }
}

/// Reads the account `id` for the caller, checking in the same query that the caller's
/// session still exists.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::NotFound`] when there is no such user.
pub async fn find_user(
    db: &DatabaseConnection,
    caller: Caller,
    id: i64,
) -> Result<Person, ServiceError> {
    // The caller's own row comes back while their session exists (it cannot outlive the
    // account), so no row at all means the session has ended.
    let found = user::Entity::find()
        .select_only()
        .columns(Person::COLUMNS)
        .filter(user::Column::Id.is_in([caller.user_id, id]))
        .filter(session_is_live(caller))
        .into_model::<Person>()
        .all(db)
        .await?;
    if found.is_empty() {
        return Err(session_ended());
    }
    found
        .into_iter()
        .find(|user| user.id == id)
        .ok_or_else(|| ServiceError::NotFound(format!("user {id} was not found")))
}

/// Deletes the caller's account; its posts, votes and sessions go with it (`ON DELETE
/// CASCADE`), and the failed logins recorded for its email are forgotten in the same
/// transaction.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn delete_user(db: &DatabaseConnection, caller: Caller) -> Result<(), ServiceError> {
    let txn = db.begin().await?;
    let deleted = user::Entity::delete_many()
        .filter(user::Column::Id.eq(caller.user_id))
        .filter(session_is_live(caller))
        .exec_with_returning(&txn)
        .await?
        .pop()
        .ok_or_else(session_ended)?;
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::Email.eq(&deleted.email))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ones_as_ipv4() {
        let address = |text: &str| throttle_address(text.parse().unwrap());
        assert_eq!(address("198.51.100.7"), "198.51.100.7");
        assert_eq!(address("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(address("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(
            address("2001:db8:1:2::ffff"),
            address("2001:db8:1:2:aaaa::1")
        );
        assert_ne!(address("2001:db8:1:2::1"), address("2001:db8:1:3::1"));
        let widest = address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert!(widest.len() <= 45, "{widest}");
    }
}
