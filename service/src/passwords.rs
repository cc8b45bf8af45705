//! Password hashing with bcrypt, off the async threads and with bounded concurrency.

use std::{sync::Arc, time::Duration};

use tokio::sync::{OnceCell, Semaphore};

use crate::ServiceError;

/// Shortest and longest accepted password, in bytes of UTF-8 (bcrypt reads only 72).
pub const MIN_BYTES: usize = 8;
pub const MAX_BYTES: usize = 72;

/// How long a hash waits for a permit unless told otherwise: a queue longer than that means
/// more passwords arrive than the machine can hash, and waiting longer only holds more
/// requests open.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

/// Seconds a client told the service is busy should wait.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// The work factors bcrypt accepts.
const COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Hashes and verifies passwords. Each bcrypt call runs on the blocking pool, and at most
/// `max_concurrent` run at once, so a login storm cannot take every core from other requests.
#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    permits: Arc<Semaphore>,
    /// How long a hash or verification waits for a permit before giving up.
    max_wait: Duration,
    /// A hash of a random password at the same cost, verified when the email is unknown so
    /// that an unknown email and a wrong password take the same time.
    dummy_hash: Arc<OnceCell<String>>,
}

impl Passwords {
    /// # Errors
    /// [`ServiceError::Internal`] when `cost` is outside bcrypt's 4..=31.
    pub fn new(cost: u32, max_concurrent: usize) -> Result<Self, ServiceError> {
        if !COSTS.contains(&cost) {
            return Err(ServiceError::Internal(format!(
                "bcrypt cost must be within {}..={}, not {cost}",
                COSTS.start(),
                COSTS.end()
            )));
        }
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_wait: DEFAULT_MAX_WAIT,
            dummy_hash: Arc::default(),
        })
    }

    /// Waits at most `max_wait` for a hashing permit (by default [`DEFAULT_MAX_WAIT`]); past
    /// it, a hash or verification fails with [`ServiceError::Busy`].
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Checks the length rule.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `password`.
    pub fn check_length(password: &str) -> Result<(), ServiceError> {
        if (MIN_BYTES..=MAX_BYTES).contains(&password.len()) {
            Ok(())
        } else {
            Err(ServiceError::invalid(
                "password",
                format!("must be {MIN_BYTES} to {MAX_BYTES} bytes long"),
            ))
        }
    }

    /// # Errors
    /// [`ServiceError::Internal`] if bcrypt fails.
    pub async fn hash(&self, password: &str) -> Result<String, ServiceError> {
        let (password, cost) = (password.to_owned(), self.cost);
        self.run(move || bcrypt::hash(password, cost)).await
    }

    /// Verifies against `hash`, or against the dummy hash when there is none.
    ///
    /// # Errors
    /// [`ServiceError::Internal`] if bcrypt fails.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ServiceError> {
        let hash = match hash {
            Some(hash) => hash.to_owned(),
            None => self.dummy_hash().await?.to_owned(),
        };
        let password = password.to_owned();
        // A stored hash may be malformed (written by hand); that is a failed login, not a 500.
        self.run(move || Ok(bcrypt::verify(password, &hash).unwrap_or(false)))
            .await
    }

    /// Computes the dummy hash in the background now, so that the first unknown-email login
    /// costs what every later one does, without delaying start-up.
    pub fn prepare(&self) {
        let passwords = self.clone();
        tokio::spawn(async move {
            if let Err(err) = passwords.dummy_hash().await {
                tracing::error!(%err, "cannot compute the dummy password hash");
            }
        });
    }

    async fn dummy_hash(&self) -> Result<&str, ServiceError> {
        self.dummy_hash
            .get_or_try_init(|| self.hash("a password nobody has: equalises login timing"))
            .await
            .map(String::as_str)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _permit = tokio::time::timeout(self.max_wait, self.permits.acquire())
            .await
            .map_err(|_| ServiceError::Busy {
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
            })?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_8_to_72_bytes_are_accepted() {
        for password in ["12345678", &"x".repeat(72), &"é".repeat(36)] {
            assert!(Passwords::check_length(password).is_ok(), "{password}");
        }
    }

    #[test]
    fn passwords_outside_8_to_72_bytes_are_rejected() {
        for password in ["", "1234567", &"x".repeat(73), &"é".repeat(37)] {
            assert!(Passwords::check_length(password).is_err(), "{password}");
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let passwords = Passwords::new(4, 2).unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(
            passwords
                .verify("correct horse", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!passwords.verify("correct horse", None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hash_waits_for_a_permit_no_longer_than_its_bound() {
        let passwords = Passwords::new(4, 1)
            .unwrap()
            .with_max_wait(Duration::from_millis(50));
        let held = Arc::clone(&passwords.permits)
            .acquire_owned()
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let err = passwords.hash("correct horse").await.expect_err("busy");
        assert!(matches!(err, ServiceError::Busy { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(held);
        assert!(passwords.hash("correct horse").await.is_ok());
    }

    #[test]
    fn a_cost_outside_bcrypts_range_is_refused() {
        assert!(Passwords::new(3, 1).is_err());
        assert!(Passwords::new(32, 1).is_err());
    }
}
