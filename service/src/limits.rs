//! What is left of the limits a request was counted against: the service refuses a request
//! past any of them, and the API shows them all (`RateLimit-Policy`, `RateLimit`), whatever
//! the answer, so that a client sees its budget before it runs out.

use crate::error::{RateLimit, ServiceError};

/// One limit a request was counted against, and what is left of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub limit: RateLimit,
    /// Requests a window allows.
    pub quota: u32,
    /// How long a window lasts, in whole seconds (at least one).
    pub window_seconds: u64,
    /// Requests left now.
    pub remaining: u32,
    /// Whole seconds (at least one) until the budget grows again.
    pub resets_in_seconds: u64,
    /// Whether the request just counted is past the quota.
    pub exceeded: bool,
}

impl Allowance {
    /// # Errors
    /// [`ServiceError::RateLimited`] when the request is past the quota.
    pub fn check(&self) -> Result<(), ServiceError> {
        check(std::slice::from_ref(self))
    }
}

/// Refuses a request past any of its limits, naming the one that frees up last.
///
/// # Errors
/// [`ServiceError::RateLimited`] when the request is past a quota.
pub fn check(allowances: &[Allowance]) -> Result<(), ServiceError> {
    match allowances
        .iter()
        .filter(|allowance| allowance.exceeded)
        .max_by_key(|allowance| allowance.resets_in_seconds)
    {
        Some(allowance) => Err(ServiceError::RateLimited {
            limit: allowance.limit,
            retry_after_secs: allowance.resets_in_seconds,
        }),
        None => Ok(()),
    }
}

/// The answer to a request counted against limits, and those limits, whatever the answer.
#[derive(Debug)]
pub struct Counted<T> {
    pub allowances: Vec<Allowance>,
    pub outcome: Result<T, ServiceError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(limit: RateLimit, exceeded: bool, resets_in_seconds: u64) -> Allowance {
        Allowance {
            limit,
            quota: 3,
            window_seconds: 900,
            remaining: if exceeded { 0 } else { 2 },
            resets_in_seconds,
            exceeded,
        }
    }

    #[test]
    fn a_request_past_several_limits_waits_for_the_last_to_free_up() {
        let allowances = [
            allowance(RateLimit::PasswordResetsForEmail, true, 30),
            allowance(RateLimit::PasswordResetsFromAddress, true, 300),
            allowance(RateLimit::Writes, false, 900),
        ];
        match check(&allowances) {
            Err(ServiceError::RateLimited {
                limit,
                retry_after_secs,
            }) => {
                assert_eq!(limit, RateLimit::PasswordResetsFromAddress);
                assert_eq!(retry_after_secs, 300);
            }
            other => panic!("{other:?}"),
        }
        assert!(check(&allowances[2..]).is_ok());
        assert!(allowances[0].check().is_err());
    }
}
