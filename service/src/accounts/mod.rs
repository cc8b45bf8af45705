//! People: registering, logging in (with a throttle on failures), changing the password,
//! authenticating a bearer token, verifying an address by a mailed token, reading and
//! deleting accounts, and the profiles others see.

mod address;
mod credentials;
mod look_alikes;
pub mod passwords;
mod profiles;
mod recovery;
mod suspension;
mod throttle;
mod tokens;
mod verification;

use std::{net::IpAddr, sync::Arc};

use entity::{login_failure, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, Set, sea_query::Expr,
};

pub use credentials::{Email, LoginEmail, LoginPassword, Password};
pub use entity::user::Model as User;
pub use look_alikes::fill_look_alike_keys;
pub use passwords::Passwords;
pub use profiles::{Account, DisplayName, Handle, Profile, ProfileChanges, Role};
pub use recovery::RecoveryPolicy;
pub use suspension::{Suspension, suspension_of};
pub use throttle::{LoginThrottle, throttle_address};
pub use verification::{VERIFY_FIRST, VerificationPolicy, require_verified};

use crate::{
    clock::now,
    database::{Connection, Database, begin_write},
    error::{ServiceError, is_unique_violation, is_unique_violation_of},
    mail::Outbox,
    outbox,
    sessions::{self, Caller, Device, SessionTokens, Sessions, session_ended, session_is_live},
    sql::ReadStatement,
};
use look_alikes::claim_look_alikes;
use passwords::Verified;
use throttle::{Hits, forget};
use tokio::sync::Notify;

/// Registration, login and token checks, with the secrets and costs they need, and the
/// outbox their mails go to.
#[derive(Clone)]
pub struct Accounts {
    passwords: Passwords,
    sessions: Sessions,
    throttle: LoginThrottle,
    outbox: Outbox,
    verification: VerificationPolicy,
    recovery: RecoveryPolicy,
    /// Wakes this instance's handling of reset requests.
    reset_requests: Arc<Notify>,
}

impl Accounts {
    pub fn new(
        passwords: Passwords,
        sessions: Sessions,
        throttle: LoginThrottle,
        outbox: Outbox,
        verification: VerificationPolicy,
        recovery: RecoveryPolicy,
    ) -> Self {
        Self {
            passwords,
            sessions,
            throttle,
            outbox,
            verification,
            recovery,
            reset_requests: Arc::new(Notify::new()),
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

    /// Creates an account, with `handle` or else one made for it ([`Handle::made`]). The
    /// email is stored in its normal form ([`Email`]); the database's unique indexes decide
    /// whether it or the handle is taken, and [`claim_look_alikes`] whether an email that looks
    /// the same is, in the transaction of the insert, which also records the mail with the
    /// address's verification token.
    /// A valid request from `client` is counted against its registration limit before the
    /// password is hashed, so that a flood of them costs no hashing.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when the address has registered too often within the
    /// window,
    /// [`ServiceError::Busy`] when no hashing permit frees up in time,
    /// [`ServiceError::Conflict`] when the email, or one that looks the same, or the handle is
    /// taken.
    pub async fn register(
        &self,
        db: &Database,
        email: &Email,
        password: &Password,
        handle: Option<Handle>,
        client: Option<IpAddr>,
    ) -> Result<Account, ServiceError> {
        let db = db.connection();
        let email = email.as_str();
        if let Some(client) = client {
            let key = throttle_address(client);
            Hits::count(db, &[(self.throttle.registrations(), &key)])
                .await?
                .check()?;
        }
        let password_hash = self.passwords.hash(password.as_str()).await?;
        let email_skeleton = user::email_skeleton(email);
        let txn = begin_write(db).await?;
        if claim_look_alikes(&txn, email, &email_skeleton).await? {
            return Err(ServiceError::Conflict(format!(
                "the email {email} cannot be told apart from one already registered; register \
                 another"
            )));
        }
        // Events committed before this account are none of its replay's.
        let last_event_before = outbox::newest_id(&txn).await?;
        let handle = handle.unwrap_or_else(Handle::made);
        let created = user::ActiveModel {
            email: Set(email.to_owned()),
            email_skeleton: Set(email_skeleton),
            password_hash: Set(password_hash),
            created_at: Set(now()),
            last_event_before: Set(last_event_before),
            handle: Set(handle.as_str().to_owned()),
            email_verified: Set(false),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            if is_unique_violation_of(&err, "handle") {
                handle_taken(&handle)
            } else if is_unique_violation(&err) {
                ServiceError::Conflict(format!(
                    "the email {email} is already registered; log in instead"
                ))
            } else {
                err.into()
            }
        })?;
        self.record_verification(&txn, &created).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(created.into())
    }

    /// Exchanges an email and password for a new session's tokens, from `device`.
    ///
    /// # Errors
    /// As [`Accounts::check_password`];
    /// [`ServiceError::Forbidden`] with the reason and the end of a suspension in force, for
    /// the right password.
    pub async fn login(
        &self,
        db: &Database,
        email: &LoginEmail,
        password: &LoginPassword,
        device: Device,
    ) -> Result<SessionTokens, ServiceError> {
        let _writing = db.writing();
        let db = db.connection();
        let user = self
            .check_password(db, email.as_str(), password.as_str(), device.address)
            .await?;
        // Only to someone who knows the password: anyone else gets the usual 401.
        if let Some(suspension) = suspension_of(&user, now()) {
            return Err(suspension::suspended(&suspension));
        }
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
    /// [`ServiceError::Unauthorized`] when the caller's session has ended,
    /// [`ServiceError::Forbidden`] for a wrong current password,
    /// [`ServiceError::RateLimited`] past the failed-login limits,
    /// [`ServiceError::Busy`] when no hashing permit frees up in time.
    pub async fn change_password(
        &self,
        db: &Database,
        caller: &Caller,
        current_password: &LoginPassword,
        new_password: &Password,
        client: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        let _writing = db.writing();
        let db = db.connection();
        let user = caller.account(db).await?.into_owned();
        self.check_current_password(db, &user.email, current_password, client)
            .await?;
        let password_hash = self.passwords.hash(new_password.as_str()).await?;
        let txn = begin_write(db).await?;
        let changed = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, password_hash.into())
            .col_expr(
                user::Column::CredentialsVersion,
                sea_orm::ExprTrait::add(Expr::col(user::Column::CredentialsVersion), 1),
            )
            .filter(user::Column::Id.eq(caller.user_id()))
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

    /// Checks the password a caller gives to change their credentials, as a login does (a
    /// wrong one counts as a failed login).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for a wrong password, else as [`Accounts::check_password`].
    async fn check_current_password(
        &self,
        db: &Connection,
        email: &str,
        password: &LoginPassword,
        client: Option<IpAddr>,
    ) -> Result<User, ServiceError> {
        self.check_password(db, email, password.as_str(), client)
            .await
            .map_err(|err| match err {
                ServiceError::Unauthorized(_) => {
                    ServiceError::Forbidden("the current password is incorrect".into())
                }
                err => err,
            })
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
        db: &Connection,
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
        if let Some((limit, retry_after_secs)) = self.throttle.lockout(db, &attempt).await? {
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
                let cutoff = attempt.failed_at - self.throttle.window_span();
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
        db: &Connection,
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

    /// Returns the account and session a valid bearer token names, without asking the
    /// database whether the session still exists: each operation that takes the caller checks
    /// that itself.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for an invalid token.
    pub fn token_caller(&self, token: &str) -> Result<Caller, ServiceError> {
        self.sessions.verify(token)
    }

    /// Returns the caller a bearer token names, with their account, their session checked
    /// live in the same query.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for an invalid token or one whose session has ended.
    pub async fn authenticate(&self, db: &Database, token: &str) -> Result<Caller, ServiceError> {
        let db = db.connection();
        let caller = self.sessions.verify(token)?;
        let account = caller.account(db).await?.into_owned();
        Ok(caller.with_account(account))
    }
}

/// The caller's own account.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn me(db: &Database, caller: &Caller) -> Result<Account, ServiceError> {
    let db = db.connection();
    Ok(Account::from(caller.account(db).await?.into_owned()))
}

/// The profile of the account `id`.
///
/// # Errors
/// As [`find_profile`].
pub async fn find_user(db: &Database, caller: &Caller, id: i64) -> Result<Profile, ServiceError> {
    find_profile(db, caller, ProfileKey::Id(id)).await
}

/// The profile whose handle is `handle`.
///
/// # Errors
/// As [`find_profile`].
pub async fn find_by_handle(
    db: &Database,
    caller: &Caller,
    handle: &Handle,
) -> Result<Profile, ServiceError> {
    find_profile(db, caller, ProfileKey::Handle(handle)).await
}

/// What a profile is looked up by.
enum ProfileKey<'a> {
    Id(i64),
    Handle(&'a Handle),
}

impl ProfileKey<'_> {
    fn condition(&self) -> sea_orm::sea_query::SimpleExpr {
        match self {
            Self::Id(id) => user::Column::Id.eq(*id),
            Self::Handle(handle) => user::Column::Handle.eq(handle.as_str()),
        }
    }

    fn picks(&self, user: &User) -> bool {
        match self {
            Self::Id(id) => user.id == *id,
            Self::Handle(handle) => user.handle == handle.as_str(),
        }
    }

    fn not_found(&self) -> ServiceError {
        ServiceError::NotFound(match self {
            Self::Id(id) => format!("user {id} was not found"),
            Self::Handle(handle) => format!("no one has the handle {}", handle.as_str()),
        })
    }
}

/// Reads the profile `key` names for the caller, checking in the same query that the
/// caller's session still exists.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::NotFound`] when there is no such profile.
async fn find_profile(
    db: &Database,
    caller: &Caller,
    key: ProfileKey<'_>,
) -> Result<Profile, ServiceError> {
    // The caller's own row comes back while their session exists (it cannot outlive the
    // account), so no row at all means the session has ended.
    let find = user::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(user::Column::Id.eq(caller.user_id()))
                .add(key.condition()),
        )
        .filter(session_is_live(caller));
    let rows = db
        .read(&ReadStatement::of_select(db.backend(), find))
        .await?;
    if rows.is_empty() {
        return Err(session_ended());
    }
    for row in &rows {
        let user = User::from_query_result(row, "")?;
        if key.picks(&user) {
            return Ok(Profile::from(user));
        }
    }
    Err(key.not_found())
}

/// Changes the caller's handle and display name as `changes` says, and returns their
/// account as it then is. A change to what the profile already shows writes nothing.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Conflict`] when the handle is someone else's.
pub async fn update_profile(
    db: &Database,
    caller: &Caller,
    changes: ProfileChanges,
) -> Result<Account, ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let mut update = user::Entity::update_many()
        .filter(user::Column::Id.eq(caller.user_id()))
        .filter(session_is_live(caller));
    if let Some(handle) = &changes.handle {
        update = update.col_expr(user::Column::Handle, Expr::value(handle.as_str()));
    }
    if let Some(display_name) = &changes.display_name {
        let value = display_name.as_ref().map(|name| name.as_str().to_owned());
        update = update.col_expr(user::Column::DisplayName, Expr::value(value));
    }
    let mut rows = if changes == ProfileChanges::default() {
        user::Entity::find_by_id(caller.user_id())
            .filter(session_is_live(caller))
            .all(db)
            .await?
    } else {
        update
            .exec_with_returning(db)
            .await
            .map_err(|err| match &changes.handle {
                Some(handle) if is_unique_violation_of(&err, "handle") => handle_taken(handle),
                _ => err.into(),
            })?
    };
    rows.pop().map(Account::from).ok_or_else(session_ended)
}

fn handle_taken(handle: &Handle) -> ServiceError {
    ServiceError::Conflict(format!(
        "the handle {} is taken; choose another",
        handle.as_str()
    ))
}

/// Deletes the caller's account; its posts, votes and sessions go with it (`ON DELETE
/// CASCADE`), and the failed logins recorded for its email are forgotten in the same
/// transaction.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn delete_user(db: &Database, caller: &Caller) -> Result<(), ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let txn = db.begin().await?;
    let deleted = user::Entity::delete_many()
        .filter(user::Column::Id.eq(caller.user_id()))
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
