//! Changing the address of an account: a mail to the new address carries a token that, sent
//! back to `POST /users/verify`, switches the account to it (if no one has taken it
//! meanwhile); a notice to the old address says how to secure the account if the change was
//! not its owner's.

use std::net::IpAddr;

use entity::{account_token, user};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{
    Accounts, Email, LoginPassword,
    look_alikes::claim_look_alikes,
    tokens::{self, Purpose},
};
use crate::{
    database::{Database, begin_write},
    error::{RateLimit, ServiceError, is_unique_violation},
    limits::{Allowance, Counted},
    mail::{Content, Link},
    sessions::{Caller, session_ended, session_is_live},
};

/// Where a confirmation link points, below `PUBLIC_URL`: the verification page, whose token
/// `POST /users/verify` takes.
const CONFIRM_PATH: &str = "/verify-email";

/// The purpose of the notice to the old address, as the outbox names it.
const NOTICE: &str = "change_email_notice";

impl Accounts {
    /// Asks to move the caller's account to `new_email`, given the current password (a wrong
    /// one is a 403 and counts as a failed login): records a mail with a confirmation token
    /// to the new address and a notice to the old one. One such request an account per
    /// verification resend interval, and so many from a client address as its verification
    /// mails allow ([`Accounts::request_verification`]).
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the caller's session has ended,
    /// [`ServiceError::Forbidden`] for a wrong current password,
    /// [`ServiceError::RateLimited`] past the failed-login limits, within the interval or
    /// past the client address's mails,
    /// [`ServiceError::Conflict`] when the address, or one that looks the same, is taken.
    pub async fn request_email_change(
        &self,
        db: &Database,
        caller: &Caller,
        new_email: &Email,
        current_password: &LoginPassword,
        client: Option<IpAddr>,
    ) -> Counted<()> {
        let mut allowances = Vec::new();
        let outcome = self
            .change_email(
                db,
                caller,
                new_email,
                current_password,
                client,
                &mut allowances,
            )
            .await;
        Counted {
            allowances,
            outcome,
        }
    }

    async fn change_email(
        &self,
        db: &Database,
        caller: &Caller,
        new_email: &Email,
        current_password: &LoginPassword,
        client: Option<IpAddr>,
        allowances: &mut Vec<Allowance>,
    ) -> Result<(), ServiceError> {
        let hits = self.count_mail_from(db, client).await?;
        let outcome = match hits.check() {
            Ok(()) => {
                self.record_email_change(
                    db,
                    caller,
                    new_email,
                    current_password,
                    client,
                    allowances,
                )
                .await
            }
            Err(err) => Err(err),
        };
        hits.settle(db.connection(), outcome, allowances).await
    }

    async fn record_email_change(
        &self,
        db: &Database,
        caller: &Caller,
        new_email: &Email,
        current_password: &LoginPassword,
        client: Option<IpAddr>,
        allowances: &mut Vec<Allowance>,
    ) -> Result<(), ServiceError> {
        let connection = db.connection();
        let account = caller.account(connection).await?.into_owned();
        self.check_current_password(connection, &account.email, current_password, client)
            .await?;
        let txn = begin_write(connection).await?;
        // The account's row, held to the commit: two requests at once are one after the other.
        let account = user::Entity::find_by_id(caller.user_id())
            .filter(session_is_live(caller))
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(session_ended)?;
        taken(&txn, new_email).await?;
        let allowance = tokens::once_per(
            &txn,
            account.id,
            Purpose::ChangeEmail,
            self.verification.resend_interval,
            RateLimit::EmailChanges,
        )
        .await?;
        allowances.push(allowance);
        allowance.check()?;
        let token = tokens::issue_for_address(
            &txn,
            account.id,
            Purpose::ChangeEmail,
            self.verification.token_lifetime,
            Some(new_email.as_str()),
        )
        .await?;
        let link = self.outbox.link(CONFIRM_PATH, &token);
        let new = new_email.as_str();
        let confirmation = Content::new(
            "Confirm your new email address",
            &format!("to make {new} the address of your account, open this link:"),
            Some(Link {
                label: "Confirm your new address",
                url: &link,
            }),
            "If you did not ask for this, ignore this mail: nothing changes without the link.",
        );
        self.outbox
            .record(
                &txn,
                account.id,
                Purpose::ChangeEmail.as_str(),
                new,
                confirmation,
            )
            .await?;
        let notice = Content::new(
            "Your email address is about to change",
            "someone who knows your password asked to move your account to another email \
             address. If it was you, confirm with the link sent there. If it was not, change \
             your password at once (or reset it from the login page) and end your other \
             sessions: the address changes only with that link.",
            None,
            "",
        );
        self.outbox
            .record(&txn, account.id, NOTICE, &account.email, notice)
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}

/// Moves the account an address change token was mailed for to its new address, which counts
/// as verified; every other token of the account (a reset link in the old inbox) is void.
///
/// # Errors
/// [`ServiceError::Conflict`] when another account has taken the address meanwhile.
pub(super) async fn switch_email(
    txn: &DatabaseTransaction,
    user_id: i64,
    new_email: &str,
) -> Result<(), ServiceError> {
    let email = Email::parse(new_email)
        .map_err(|_| ServiceError::invalid("token", "names an address no longer valid"))?;
    taken(txn, &email).await?;
    user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(email.as_str()))
        .col_expr(
            user::Column::EmailSkeleton,
            Expr::value(user::email_skeleton(email.as_str())),
        )
        .col_expr(user::Column::EmailVerified, Expr::value(true))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                conflict(&email)
            } else {
                err.into()
            }
        })?;
    account_token::Entity::delete_many()
        .filter(account_token::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Refuses an address another account has, or one that looks the same.
async fn taken(txn: &DatabaseTransaction, email: &Email) -> Result<(), ServiceError> {
    let same: Option<i64> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Email.eq(email.as_str()))
        .into_tuple()
        .one(txn)
        .await?;
    let skeleton = user::email_skeleton(email.as_str());
    if same.is_some() || claim_look_alikes(txn, email.as_str(), &skeleton).await? {
        return Err(conflict(email));
    }
    Ok(())
}

fn conflict(email: &Email) -> ServiceError {
    ServiceError::Conflict(format!(
        "the email {} is taken by another account; choose another",
        email.as_str()
    ))
}
