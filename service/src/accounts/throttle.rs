//! The throttles: failed logins lock an email, and a client address, for a while; other
//! requests (registrations, password resets, verification mails) are limited to so many a
//! key (a client address, an address, an account) within a window, counted in `limit_hits`.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{limit_hit, login_failure};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::{
    clock::{clock_span, now},
    database::Connection,
    error::{RateLimit, ServiceError},
    limits::{self, Allowance},
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
    /// The limit on registrations from one client address.
    pub(super) fn registrations(&self) -> Window {
        Window::new(
            RateLimit::Registrations,
            self.max_registrations_per_address,
            self.window,
        )
    }

    /// Whole seconds (at least one) from `now` until `oldest` leaves the window.
    fn retry_after(&self, oldest: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
        seconds_until(oldest + self.window_span(), now)
    }

    /// Seconds until `attempt`'s email and address may both try again, if either is locked,
    /// and which lock ends last (the email's, when both end together).
    pub(super) async fn lockout(
        &self,
        db: &Connection,
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
        db: &Connection,
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

/// A limit of `quota` requests a key within `window`, counted in `limit_hits` (0 turns it
/// off).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    limit: RateLimit,
    quota: u32,
    window: Duration,
}

impl Window {
    pub(crate) fn new(limit: RateLimit, quota: u32, window: Duration) -> Self {
        Self {
            limit,
            quota,
            window,
        }
    }

    /// Counts a request of `key`'s, unless it is past the quota, and says what is left,
    /// with the row that counts it; prunes the requests that have aged out of the window.
    /// `None` when the limit is off.
    ///
    /// Each request is recorded before the earlier ones are counted, each statement on its
    /// own (never inside a transaction, whose rows others could not see yet): of requests
    /// at once, a later one always sees an earlier, so that no two take the last place.
    async fn count(
        &self,
        db: &Connection,
        key: &str,
    ) -> Result<Option<(Allowance, Option<i64>)>, ServiceError> {
        if self.quota == 0 {
            return Ok(None);
        }
        let policy = self.limit.policy();
        let hit = limit_hit::ActiveModel {
            policy: Set(policy.to_owned()),
            key: Set(key.to_owned()),
            counted_at: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let since = hit.counted_at - clock_span(self.window);
        let quota = u64::from(self.quota);
        let earlier: Vec<DateTime<Utc>> = limit_hit::Entity::find()
            .select_only()
            .column(limit_hit::Column::CountedAt)
            .filter(limit_hit::Column::Policy.eq(policy))
            .filter(limit_hit::Column::Key.eq(key))
            .filter(limit_hit::Column::Id.ne(hit.id))
            .filter(limit_hit::Column::CountedAt.gt(since))
            .order_by_desc(limit_hit::Column::CountedAt)
            .limit(quota)
            .into_tuple()
            .all(db)
            .await?;
        let exceeded = earlier.len() as u64 >= quota;
        if exceeded {
            limit_hit::Entity::delete_by_id(hit.id).exec(db).await?;
        }
        limit_hit::Entity::delete_many()
            .filter(limit_hit::Column::Policy.eq(policy))
            .filter(limit_hit::Column::CountedAt.lte(since))
            .exec(db)
            .await?;
        // The budget grows when the oldest request in the window leaves it.
        let oldest = earlier.last().copied().unwrap_or(hit.counted_at);
        let counted = u32::try_from(earlier.len()).unwrap_or(u32::MAX);
        let allowance = Allowance {
            limit: self.limit,
            quota: self.quota,
            window_seconds: whole_seconds(self.window),
            remaining: if exceeded {
                0
            } else {
                self.quota - counted - 1
            },
            resets_in_seconds: seconds_until(oldest + clock_span(self.window), hit.counted_at),
            exceeded,
        };
        Ok(Some((allowance, (!exceeded).then_some(hit.id))))
    }
}

/// A request counted against limits, each by its key.
pub(crate) struct Hits {
    allowances: Vec<Allowance>,
    /// The rows that count it.
    rows: Vec<i64>,
}

impl Hits {
    /// Counts a request against every limit of `limits` that is on.
    pub(crate) async fn count(
        db: &Connection,
        limits: &[(Window, &str)],
    ) -> Result<Self, ServiceError> {
        let mut hits = Self {
            allowances: Vec::new(),
            rows: Vec::new(),
        };
        for (window, key) in limits {
            if let Some((allowance, row)) = window.count(db, key).await? {
                hits.allowances.push(allowance);
                hits.rows.extend(row);
            }
        }
        Ok(hits)
    }

    /// Refuses the request if it is past any of the limits.
    pub(crate) fn check(&self) -> Result<(), ServiceError> {
        limits::check(&self.allowances)
    }

    /// Takes the request off every limit it was counted against; returns the limits as
    /// they are then.
    async fn take_back(self, db: &Connection) -> Result<Vec<Allowance>, ServiceError> {
        if !self.rows.is_empty() {
            limit_hit::Entity::delete_many()
                .filter(limit_hit::Column::Id.is_in(self.rows))
                .exec(db)
                .await?;
        }
        Ok(self
            .allowances
            .into_iter()
            .map(|allowance| Allowance {
                remaining: if allowance.exceeded {
                    0
                } else {
                    allowance.remaining + 1
                },
                ..allowance
            })
            .collect())
    }

    /// Settles the count by the request's `outcome`: a request refused by a limit (one of
    /// these, or another) is taken back off every one of these, so that it costs none.
    /// `shown` gets these limits first.
    pub(crate) async fn settle<T>(
        self,
        db: &Connection,
        outcome: Result<T, ServiceError>,
        shown: &mut Vec<Allowance>,
    ) -> Result<T, ServiceError> {
        let mine = if matches!(outcome, Err(ServiceError::RateLimited { .. })) {
            self.take_back(db).await?
        } else {
            self.allowances
        };
        shown.splice(0..0, mine);
        outcome
    }
}

/// A span as whole seconds, at least one.
pub(crate) fn whole_seconds(span: Duration) -> u64 {
    span.as_secs_f64().ceil().max(1.0) as u64
}

/// Whole seconds (at least one) from `now` until `then`.
pub(crate) fn seconds_until(then: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((then - now).num_milliseconds())
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// Deletes the record of a login attempt that turned out to be no failure.
pub(super) async fn forget(
    db: &Connection,
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
