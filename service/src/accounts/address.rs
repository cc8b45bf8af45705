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
    error::{ServiceError, is_unique_violation},
    mail::{Content, escape_html},
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
    /// verification resend interval.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] when the caller's session has ended,
    /// [`ServiceError::Forbidden`] for a wrong current password,
    /// [`ServiceError::RateLimited`] past the failed-login limits or within the interval,
    /// [`ServiceError::Conflict`] when the address, or one that looks the same, is taken.
    pub async fn request_email_change(
        &self,
        db: &Database,
        caller: &Caller,
        new_email: &Email,
        current_password: &LoginPassword,
        client: Option<IpAddr>,
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
        tokens::not_sooner(
            &txn,
            account.id,
            Purpose::ChangeEmail,
            self.verification.resend_interval,
        )
        .await?;
        let lifetime = self.verification.token_lifetime;
        let token = tokens::issue_for_address(
            &txn,
            account.id,
            Purpose::ChangeEmail,
            lifetime,
            Some(new_email.as_str()),
        )
        .await?;
        let link = self.outbox.link(CONFIRM_PATH, &token);
        let new = new_email.as_str();
        let confirmation = Content {
            subject: "Confirm your new email address".into(),
            text: format!(
                "Hello,\n\nto make {new} the address of your account, open this link:\n\n\
                 {link}\n\nIf you did not ask for this, ignore this mail: nothing changes \
                 without the link.\n"
            ),
            html: format!(
                "<!DOCTYPE html>\n<html><body>\n<p>Hello,</p>\n<p>to make {new} the address of \
                 your account, open this link:</p>\n<p><a href=\"{link}\">Confirm your new \
                 address</a></p>\n<p>{link}</p>\n<p>If you did not ask for this, ignore this \
                 mail: nothing changes without the link.</p>\n</body></html>\n",
                new = escape_html(new),
                link = escape_html(&link),
            ),
        };
        self.outbox
            .record(
                &txn,
                account.id,
                Purpose::ChangeEmail.as_str(),
                new,
                confirmation,
            )
            .await?;
        let notice = Content {
            subject: "Your email address is about to change".into(),
            text: "Hello,\n\nsomeone who knows your password asked to move your account to \
                   another email address. If it was you, confirm with the link sent there. If \
                   it was not, change your password at once (or reset it from the login page) \
                   and end your other sessions: the address changes only with that link.\n"
                .into(),
            html: "<!DOCTYPE html>\n<html><body>\n<p>Hello,</p>\n<p>someone who knows your \
                   password asked to move your account to another email address. If it was \
                   you, confirm with the link sent there. If it was not, change your password \
                   at once (or reset it from the login page) and end your other sessions: the \
                   address changes only with that link.</p>\n</body></html>\n"
                .into(),
        };
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
