//! Recovering an account whose password is forgotten. A request names an address and gets the
//! same answer, in the same time, whether or not an account has it: it records the request
//! (which the limits per address and per client count) and nothing else; the service then
//! turns it into a mail off the request's path, with a token, when the address has an
//! account. The token, posted back with a new password, changes the password and ends every
//! session of the account.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use entity::{login_failure, password_reset, session, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};

use super::{
    Accounts, Email, Password,
    throttle::throttle_address,
    tokens::{self, Purpose},
};
use crate::{
    clock::now,
    database::{Database, begin_write},
    error::{RateLimit, ServiceError},
    mail::{Content, escape_html},
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

impl Accounts {
    /// Records a request for a reset mail to `email`, from `client`, and has it handled in the
    /// background ([`Accounts::handle_password_resets`]). The answer is the same whether or
    /// not an account has the address.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] past the requests allowed for the address or the client
    /// within the window.
    pub async fn request_password_reset(
        &self,
        db: &Database,
        email: &Email,
        client: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        let txn = begin_write(db.connection()).await?;
        let requested_at = now();
        let since = requested_at - self.throttle.window_span();
        password_reset::Entity::delete_many()
            .filter(password_reset::Column::RequestedAt.lte(since))
            .filter(password_reset::Column::Handled.eq(true))
            .exec(&txn)
            .await?;
        let client = client.map(throttle_address);
        let by_email = password_reset::Column::Email.eq(email.as_str());
        self.within_limit(
            &txn,
            by_email,
            self.recovery.max_per_email,
            since,
            RateLimit::PasswordResetsForEmail,
        )
        .await?;
        if let Some(client) = &client {
            let by_client = password_reset::Column::ClientAddress.eq(client.as_str());
            self.within_limit(
                &txn,
                by_client,
                self.recovery.max_per_client,
                since,
                RateLimit::PasswordResetsFromAddress,
            )
            .await?;
        }
        password_reset::ActiveModel {
            email: Set(email.as_str().to_owned()),
            client_address: Set(client),
            requested_at: Set(requested_at),
            handled: Set(false),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        let (accounts, db) = (self.clone(), db.clone());
        tokio::spawn(async move {
            if let Err(err) = accounts.handle_password_resets(&db).await {
                tracing::warn!(error = %err, "password reset requests are left for a later pass");
            }
        });
        Ok(())
    }

    /// Refuses a request past `max` (0: no limit) of those `which` picks since `since`.
    async fn within_limit(
        &self,
        txn: &impl ConnectionTrait,
        which: sea_orm::sea_query::SimpleExpr,
        max: u32,
        since: DateTime<Utc>,
        limit: RateLimit,
    ) -> Result<(), ServiceError> {
        if max == 0 {
            return Ok(());
        }
        let recent: Vec<DateTime<Utc>> = password_reset::Entity::find()
            .select_only()
            .column(password_reset::Column::RequestedAt)
            .filter(which)
            .filter(password_reset::Column::RequestedAt.gt(since))
            .order_by_desc(password_reset::Column::RequestedAt)
            .limit(u64::from(max))
            .into_tuple()
            .all(txn)
            .await?;
        match recent.last() {
            Some(oldest) if recent.len() as u64 >= u64::from(max) => {
                Err(ServiceError::RateLimited {
                    limit,
                    retry_after_secs: self.throttle.retry_after(*oldest, now()),
                })
            }
            _ => Ok(()),
        }
    }

    /// Turns the requests not yet handled (every instance's, those a stopped one left
    /// included) into reset mails, each with a new token, for the addresses that have an
    /// account; the others are only marked handled. Runs after each request, and as the
    /// service starts.
    ///
    /// # Errors
    /// The database fails; the requests are then left for a later pass.
    pub async fn handle_password_resets(&self, db: &Database) -> Result<(), ServiceError> {
        loop {
            let txn = begin_write(db.connection()).await?;
            let ids: Vec<i64> = password_reset::Entity::find()
                .select_only()
                .column(password_reset::Column::Id)
                .filter(password_reset::Column::Handled.eq(false))
                .order_by_asc(password_reset::Column::Id)
                .limit(BATCH)
                .into_tuple()
                .all(&txn)
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            // Of two passes at once, each request is the one's that marks it.
            let taken = password_reset::Entity::update_many()
                .col_expr(password_reset::Column::Handled, Expr::value(true))
                .filter(password_reset::Column::Id.is_in(ids))
                .filter(password_reset::Column::Handled.eq(false))
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
        let minutes = lifetime.as_secs().div_ceil(60);
        let content = Content {
            subject: "Reset your password".into(),
            text: format!(
                "Hello,\n\nsomeone asked to reset the password of the account of {email}. To \
                 choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
                 If it was not you, ignore this mail: your password stays as it is.\n",
                email = account.email,
            ),
            html: format!(
                "<!DOCTYPE html>\n<html><body>\n<p>Hello,</p>\n<p>someone asked to reset the \
                 password of the account of {email}. To choose a new password, open this link \
                 within {minutes} minutes:</p>\n<p><a href=\"{link}\">Choose a new \
                 password</a></p>\n<p>{link}</p>\n<p>If it was not you, ignore this mail: your \
                 password stays as it is.</p>\n</body></html>\n",
                email = escape_html(&account.email),
                link = escape_html(&link),
            ),
        };
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
