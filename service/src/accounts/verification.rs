//! Showing that an address is its account's: a token mailed at registration, or anew on
//! request (at most one mail a [`VerificationPolicy::resend_interval`]), which verifies the
//! address when it comes back.

use std::{net::IpAddr, time::Duration};

use entity::user;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    Accounts,
    address::switch_email,
    throttle::{Hits, Window, throttle_address},
    tokens::{self, Purpose},
};
use crate::{
    database::{Database, begin_write},
    error::{RateLimit, ServiceError},
    limits::{Allowance, Counted},
    mail::{Content, Link},
    sessions::{Caller, session_ended, session_is_live},
};

/// How long a verification link works, and how often an account, and a client, may be sent
/// one (or an address change's).
#[derive(Clone, Copy, Debug)]
pub struct VerificationPolicy {
    pub token_lifetime: Duration,
    /// The shortest time between two verification mails to an account (the one sent at
    /// registration included), and between two address changes it asks for: a request
    /// sooner gets 429.
    pub resend_interval: Duration,
    /// Verification and address change mails one client address (an IPv6 client by its
    /// /64) may ask for within the login throttle's window; 0 turns the limit off.
    pub max_mails_per_client: u32,
}

/// Where a verification link points, below `PUBLIC_URL`.
const VERIFY_PATH: &str = "/verify-email";

/// What a caller that must verify first is told.
pub const VERIFY_FIRST: &str = "verify your email address first: open the link in the mail \
     sent when you registered, or ask for a new one with POST /users/me/verification";

impl Accounts {
    /// Issues a verification token for `account` and records the mail that carries it, in
    /// `txn`; the caller wakes the outbox after the commit.
    pub(super) async fn record_verification(
        &self,
        txn: &impl ConnectionTrait,
        account: &user::Model,
    ) -> Result<(), ServiceError> {
        let lifetime = self.verification.token_lifetime;
        let token = tokens::issue(txn, account.id, Purpose::VerifyEmail, lifetime).await?;
        let link = self.outbox.link(VERIFY_PATH, &token);
        let content = Content::new(
            "Verify your email address",
            &format!(
                "to show that {email} is your address, open this link within {within}:",
                email = account.email,
                within = describe(lifetime),
            ),
            Some(Link {
                label: "Verify your email address",
                url: &link,
            }),
            "If you did not register, ignore this mail: nothing happens without the link.",
        );
        self.outbox
            .record(
                txn,
                account.id,
                Purpose::VerifyEmail.as_str(),
                &account.email,
                content,
            )
            .await
    }

    /// Sends the caller a new verification mail, whose token voids the one before: one an
    /// account per resend interval (the one registering sent included), and so many from a
    /// client address within the login window as the policy allows, whatever their accounts.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the caller's session has ended,
    /// [`ServiceError::Conflict`] when the address is already verified,
    /// [`ServiceError::RateLimited`] within the resend interval of the last one, or past the
    /// client address's mails.
    pub async fn request_verification(
        &self,
        db: &Database,
        caller: &Caller,
        client: Option<IpAddr>,
    ) -> Counted<()> {
        let mut allowances = Vec::new();
        let outcome = self
            .send_verification(db, caller, client, &mut allowances)
            .await;
        Counted {
            allowances,
            outcome,
        }
    }

    async fn send_verification(
        &self,
        db: &Database,
        caller: &Caller,
        client: Option<IpAddr>,
        allowances: &mut Vec<Allowance>,
    ) -> Result<(), ServiceError> {
        let hits = self.count_mail_from(db, client).await?;
        let outcome = match hits.check() {
            Ok(()) => {
                self.record_requested_verification(db, caller, allowances)
                    .await
            }
            Err(err) => Err(err),
        };
        hits.settle(db.connection(), outcome, allowances).await
    }

    async fn record_requested_verification(
        &self,
        db: &Database,
        caller: &Caller,
        allowances: &mut Vec<Allowance>,
    ) -> Result<(), ServiceError> {
        let txn = begin_write(db.connection()).await?;
        // The account's row, held to the commit: two requests at once are one after the
        // other, and the second sees the first's token.
        let account = user::Entity::find_by_id(caller.user_id())
            .filter(session_is_live(caller))
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(session_ended)?;
        if account.email_verified {
            return Err(ServiceError::Conflict(
                "this account's email address is already verified".into(),
            ));
        }
        let allowance = tokens::once_per(
            &txn,
            account.id,
            Purpose::VerifyEmail,
            self.verification.resend_interval,
            RateLimit::VerificationMails,
        )
        .await?;
        allowances.push(allowance);
        allowance.check()?;
        self.record_verification(&txn, &account).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Counts a verification or address change mail asked from `client` against the
    /// client's limit.
    pub(super) async fn count_mail_from(
        &self,
        db: &Database,
        client: Option<IpAddr>,
    ) -> Result<Hits, ServiceError> {
        let by_client = Window::new(
            RateLimit::AccountMailsFromAddress,
            self.verification.max_mails_per_client,
            self.throttle.window,
        );
        let client = client.map(throttle_address);
        let limits: Vec<_> = client
            .as_deref()
            .map(|key| (by_client, key))
            .into_iter()
            .collect();
        Hits::count(db.connection(), &limits).await
    }

    /// Marks the address of the account a verification token was mailed to as verified, or,
    /// for an address change's token, moves the account to the new address it was mailed to
    /// ([`switch_email`]); the token is used up.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `token` for a token that is unknown, used, voided by
    /// a newer one or expired,
    /// [`ServiceError::Conflict`] when the new address was taken meanwhile.
    pub async fn verify_email(&self, db: &Database, token: &str) -> Result<(), ServiceError> {
        let txn = begin_write(db.connection()).await?;
        let used =
            tokens::redeem_any(&txn, token, &[Purpose::VerifyEmail, Purpose::ChangeEmail]).await?;
        match used.new_email.as_deref() {
            Some(new_email) => switch_email(&txn, used.user_id, new_email).await?,
            None => {
                user::Entity::update_many()
                    .col_expr(user::Column::EmailVerified, true.into())
                    .filter(user::Column::Id.eq(used.user_id))
                    .exec(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

/// Whether the caller of a write has verified their address, when writes need it.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Forbidden`] when the address is not verified.
pub async fn require_verified(db: &Database, caller: &Caller) -> Result<(), ServiceError> {
    let account = caller.account(db.connection()).await?;
    if account.email_verified {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(VERIFY_FIRST.into()))
    }
}

/// A lifetime as a person reads it: "24 hours", "30 minutes", "5 seconds".
fn describe(lifetime: Duration) -> String {
    let seconds = lifetime.as_secs();
    let (n, unit) = if seconds >= 3600 {
        (seconds / 3600, "hour")
    } else if seconds >= 60 {
        (seconds / 60, "minute")
    } else {
        (seconds.max(1), "second")
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_a_person_says_them() {
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(describe(Duration::from_secs(2)), "2 seconds");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_millis(400)), "1 second");
    }
}
