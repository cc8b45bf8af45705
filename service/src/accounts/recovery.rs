//! Recovering an account whose password is forgotten. A request names an address and gets the
//! same answer, in the same time, whether or not an account has it: it records the request
//! (which the limits per address and per client count) and nothing else; the service then
//! turns it into a mail off the request's path, with a token, when the address has an
//! account. The token, posted back with a new password, changes the password and ends every
//! session of the account.

use std::{net::IpAddr, time::Duration};

use entity::{login_failure, password_reset, session, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};

use super::{
    Accounts, Email, Password,
    throttle::{Hits, Window, throttle_address},
    tokens::{self, Purpose},
};
use crate::{
    clock::now,
    database::{Connection, Database, begin_write},
    error::{RateLimit, ServiceError},
    limits::{Allowance, Counted},
    mail::{Content, Link},
};

/// How long a reset link works, and how many requests an address and a client may make
/// within the login throttle's window.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryPolicy {
    pub token_lifetime: Duration,
    /// Requests naming one address; 0 turns the limit off.
    pub max_per_email: u32,
    /// Requests from one client address (an IPv6 client by its /64); 0 turns it off.
    pub max_per_client: u32,
}

/// Where a reset link points, below `PUBLIC_URL`.
const RESET_PATH: &str = "/reset-password";

/// Requests turned into mails in one transaction.
const BATCH: u64 = 64;

/// How long the handling of reset requests waits after the database failed it.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

impl Accounts {
    /// Records a request for a reset mail to `email`, from `client`, for
    /// [`Accounts::handle_password_resets`] to handle in the background. The answer is the
    /// same whether or not an account has the address.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] past the requests allowed for the address or the client
    /// within the window.
    pub async fn request_password_reset(
        &self,
        db: &Database,
        email: &Email,
        client: Option<IpAddr>,
    ) -> Counted<()> {
        let mut allowances = Vec::new();
        let outcome = self
            .record_reset_request(db, email, client, &mut allowances)
            .await;
        Counted {
            allowances,
            outcome,
        }
    }

    async fn record_reset_request(
        &self,
        db: &Database,
        email: &Email,
        client: Option<IpAddr>,
        allowances: &mut Vec<Allowance>,
    ) -> Result<(), ServiceError> {
        let window = self.throttle.window;
        let connection = db.connection();
        let by_email = Window::new(
            RateLimit::PasswordResetsForEmail,
            self.recovery.max_per_email,
            window,
        );
        let by_client = Window::new(
            RateLimit::PasswordResetsFromAddress,
            self.recovery.max_per_client,
            window,
        );
        let client = client.map(throttle_address);
        let mut limits = vec![(by_email, email.as_str())];
        limits.extend(client.as_deref().map(|client| (by_client, client)));
        let hits = Hits::count(connection, &limits).await?;
        let outcome = match hits.check() {
            Ok(()) => self.record_reset_request_row(connection, email).await,
            Err(err) => Err(err),
        };
        hits.settle(connection, outcome, allowances).await
    }

    async fn record_reset_request_row(
        &self,
        db: &Connection,
        email: &Email,
    ) -> Result<(), ServiceError> {
        password_reset::ActiveModel {
            email: Set(email.as_str().to_owned()),
            requested_at: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        self.reset_requests.notify_one();
        Ok(())
    }

    /// Turns reset requests into mails as they are recorded, those a stopped instance left
    /// first; runs until dropped. One such task an instance handles them one batch at a
    /// time, however many come in at once.
    pub async fn handle_password_resets(&self, db: &Database) {
        loop {
            match self.handle_reset_requests(db).await {
                Ok(()) => self.reset_requests.notified().await,
                Err(err) => {
                    tracing::warn!(error = %err, "password reset requests are left for a later pass");
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                }
            }
        }
    }

    /// Turns the requests recorded (every instance's) into reset mails, each with a new
    /// token, for the addresses that have an account; a request is gone once handled.
    async fn handle_reset_requests(&self, db: &Database) -> Result<(), ServiceError> {
        loop {
            let txn = begin_write(db.connection()).await?;
            let ids: Vec<i64> = password_reset::Entity::find()
                .select_only()
                .column(password_reset::Column::Id)
                .order_by_asc(password_reset::Column::Id)
                .limit(BATCH)
                .into_tuple()
                .all(&txn)
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            // Of two instances at once, each request is the one's that deletes it.
            let taken = password_reset::Entity::delete_many()
                .filter(password_reset::Column::Id.is_in(ids))
                .exec_with_returning(&txn)
                .await?;
            for request in &taken {
                let account = user::Entity::find()
                    .filter(user::Column::Email.eq(&request.email))
                    .one(&txn)
                    .await?;
                if let Some(account) = account {
                    self.record_reset_mail(&txn, &account).await?;
                }
            }
            txn.commit().await?;
            self.outbox.wake();
        }
    }

    /// Issues a reset token for `account` and records the mail that carries it, in `txn`.
    async fn record_reset_mail(
        &self,
        txn: &impl ConnectionTrait,
        account: &user::Model,
    ) -> Result<(), ServiceError> {
        let lifetime = self.recovery.token_lifetime;
        let token = tokens::issue(txn, account.id, Purpose::ResetPassword, lifetime).await?;
        let link = self.outbox.link(RESET_PATH, &token);
        let content = Content::new(
            "Reset your password",
            &format!(
                "someone asked to reset the password of the account of {email}. To choose a new \
                 password, open this link within {minutes} minutes:",
                email = account.email,
                minutes = lifetime.as_secs().div_ceil(60),
            ),
            Some(Link {
                label: "Choose a new password",
                url: &link,
            }),
            "If it was not you, ignore this mail: your password stays as it is.",
        );
        self.outbox
            .record(
                txn,
                account.id,
                Purpose::ResetPassword.as_str(),
                &account.email,
                content,
            )
            .await
    }

    /// Sets a new password for the account a reset token was mailed to, and ends every
    /// session of it. The token is used up; the address it reached counts as verified, and
    /// its failed logins are forgotten.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `token` for a token that is unknown, used, voided by a
    /// newer one or expired (checked before the password is hashed),
    /// [`ServiceError::Busy`] when no hashing permit frees up in time.
    pub async fn reset_password(
        &self,
        db: &Database,
        token: &str,
        new_password: &Password,
    ) -> Result<(), ServiceError> {
        let _writing = db.writing();
        let connection = db.connection();
        tokens::check(connection, token, Purpose::ResetPassword).await?;
        let password_hash = self.passwords.hash(new_password.as_str()).await?;
        let txn = begin_write(connection).await?;
        let used = tokens::redeem(&txn, token, Purpose::ResetPassword).await?;
        let account = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(
                user::Column::CredentialsVersion,
                sea_orm::ExprTrait::add(Expr::col(user::Column::CredentialsVersion), 1),
            )
            .col_expr(user::Column::EmailVerified, Expr::value(true))
            .filter(user::Column::Id.eq(used.user_id))
            .exec_with_returning(&txn)
            .await?
            .pop()
            .ok_or_else(|| {
                ServiceError::invalid("token", "is not a valid token: its account is gone")
            })?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(account.id))
            .exec(&txn)
            .await?;
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::Email.eq(&account.email))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
