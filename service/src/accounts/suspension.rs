//! Whether an account is suspended: a moderator's or an administrator's suspension, with its
//! reason, for good or until a time, after which it is over by itself.

use chrono::{DateTime, Utc};
use entity::user;

use crate::error::ServiceError;

/// A suspension in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub reason: String,
    /// When it ends; `None`: not by itself.
    pub until: Option<DateTime<Utc>>,
}

/// The suspension of `account` in force at `now`, if any.
pub fn suspension_of(account: &user::Model, now: DateTime<Utc>) -> Option<Suspension> {
    let reason = account.suspension_reason.clone()?;
    match account.suspended_until {
        Some(until) if until <= now => None,
        until => Some(Suspension { reason, until }),
    }
}

/// What a suspended person gets who logs in with the right password.
pub(crate) fn suspended(suspension: &Suspension) -> ServiceError {
    let until = suspension.until.map_or_else(
        || "until it is lifted".to_owned(),
        |until| {
            format!(
                "until {}",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        },
    );
    ServiceError::Forbidden(format!(
        "this account is suspended {until}: {}",
        suspension.reason
    ))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn account(reason: Option<&str>, until: Option<DateTime<Utc>>) -> user::Model {
        user::Model {
            id: 1,
            email: "ann@example.org".into(),
            email_skeleton: String::new(),
            password_hash: String::new(),
            created_at: DateTime::UNIX_EPOCH,
            credentials_version: 0,
            last_event_before: 0,
            handle: "ann".into(),
            display_name: None,
            role: "member".into(),
            email_verified: true,
            suspended_until: until,
            suspension_reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_suspension_holds_until_its_end_or_for_good() {
        let now = Utc::now();
        let later = now + TimeDelta::hours(1);
        assert_eq!(suspension_of(&account(None, None), now), None);
        assert_eq!(
            suspension_of(&account(Some("spam"), None), now),
            Some(Suspension {
                reason: "spam".into(),
                until: None
            })
        );
        assert_eq!(
            suspension_of(&account(Some("spam"), Some(later)), now).map(|s| s.until),
            Some(Some(later))
        );
        assert_eq!(suspension_of(&account(Some("spam"), Some(now)), now), None);
        let refused = suspended(&Suspension {
            reason: "spam".into(),
            until: None,
        });
        assert!(refused.to_string().contains("spam"), "{refused}");
    }
}
