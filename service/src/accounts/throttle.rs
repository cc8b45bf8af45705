//! The throttles: failed logins lock an email, and a client address, for a while; a client
//! address may register only so many accounts a while.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{login_failure, registration};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::{
    clock::{clock_span, now},
    error::{RateLimit, ServiceError},
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

impl LoginThrottle {
    /// Records a registration from `client`, unless it has already made the most the window
    /// allows; prunes those that have aged out of it.
    pub(super) async fn count_registration(
        &self,
        db: &DatabaseConnection,
        client: IpAddr,
    ) -> Result<(), ServiceError> {
        let max = self.max_registrations_per_address;
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
        let since = attempt.registered_at - self.window_span();
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
    pub(super) fn retry_after(&self, oldest: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
        let wait = (oldest + self.window_span() - now).num_milliseconds();
        u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1)
    }

    /// Seconds until `attempt`'s email and address may both try again, if either is locked,
    /// and which lock ends last (the email's, when both end together).
    pub(super) async fn lockout(
        &self,
        db: &DatabaseConnection,
        attempt: &login_failure::Model,
    ) -> Result<Option<(RateLimit, u64)>, ServiceError> {
        let by_email = self
            .locked_for(
                db,
                attempt,
                login_failure::Column::Email.eq(&attempt.email),
                self.max_failures,
            )
            .await?;
        let by_address = match &attempt.client_address {
            Some(address) => {
                self.locked_for(
                    db,
                    attempt,
                    login_failure::Column::ClientAddress.eq(address),
                    self.max_failures_per_address,
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
            .filter(login_failure::Column::FailedAt.gt(attempt.failed_at - self.window_span()))
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

    /// The window as a span of the clock.
    pub(super) fn window_span(&self) -> chrono::Duration {
        clock_span(self.window)
    }
}

/// Deletes the record of a login attempt that turned out to be no failure.
pub(super) async fn forget(
    db: &DatabaseConnection,
    attempt: &login_failure::Model,
) -> Result<(), ServiceError> {
    login_failure::Entity::delete_by_id(attempt.id)
        .exec(db)
        .await?;
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
