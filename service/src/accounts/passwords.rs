//! Password hashing with bcrypt, off the async threads and with bounded concurrency.
//!
//! bcrypt reads at most 72 bytes, so a password is pre-hashed first: bcrypt is given the
//! base64 of its SHA-256 (44 bytes), and every character of a long password counts. Such
//! hashes are stored as [`PREHASHED`] followed by bcrypt's own string. Hashes written before
//! pre-hashing (bcrypt of the password itself, as `seed.sql` has them) still verify, and are
//! replaced on the next successful login.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::ServiceError;

/// What a stored hash of a pre-hashed password starts with.
pub const PREHASHED: &str = "$bcrypt-sha256$";

/// The longest password a hash of the older form can belong to: bcrypt read no more.
const LEGACY_MAX_BYTES: usize = 72;

/// What checking a password against a stored hash found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The password is wrong (or there was no hash to check it against).
    Wrong,
    /// The password is right, and the hash is of the current form.
    Right,
    /// The password is right, and the hash is of the older form: store a new one.
    RightButRehash,
}

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
            return Err(ServiceError::internal(
                "choosing the password hashing cost",
                format!(
                    "bcrypt cost must be within {}..={}, not {cost}",
                    COSTS.start(),
                    COSTS.end()
                ),
            ));
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

    /// The hash to store for `password`.
    ///
    /// # Errors
    /// [`ServiceError::Internal`] if bcrypt fails.
    pub async fn hash(&self, password: &str) -> Result<String, ServiceError> {
        let (prehashed, cost) = (prehash(password), self.cost);
        self.run(move || bcrypt::hash(prehashed, cost).map(|hash| format!("{PREHASHED}{hash}")))
            .await
    }

    /// Verifies against `hash`, or against the dummy hash when there is none (then the
    /// answer is [`Verified::Wrong`], at the same cost).
    ///
    /// # Errors
    /// [`ServiceError::Internal`] if bcrypt fails.
    pub async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<Verified, ServiceError> {
        let (stored, known) = match hash {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let (input, hash, current) = match stored.strip_prefix(PREHASHED) {
            Some(hash) => (prehash(password), hash.to_owned(), true),
            None => (password.to_owned(), stored, false),
        };
        // An older hash saw only the first 72 bytes, so a longer password is not its own.
        let possible = current || password.len() <= LEGACY_MAX_BYTES;
        // A stored hash may be malformed (written by hand); that is a failed login, not a 500.
        let right = self
            .run(move || Ok(bcrypt::verify(input, &hash).unwrap_or(false)))
            .await?;
        Ok(match (known && right && possible, current) {
            (false, _) => Verified::Wrong,
            (true, true) => Verified::Right,
            (true, false) => Verified::RightButRehash,
        })
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
            .map_err(|e| ServiceError::internal("waiting for a hashing permit", e))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::internal("running a password hash", e))?
            .map_err(|e| ServiceError::internal("hashing a password", e))
    }
}

/// What bcrypt is given for `password`: the base64 of its SHA-256, 44 bytes with no NUL,
/// so that every byte of the password counts.
fn prehash(password: &str) -> String {
    STANDARD.encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let passwords = Passwords::new(4, 2).unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with(PREHASHED), "{hash}");
        let verify = |password| passwords.verify(password, Some(&hash));
        assert_eq!(verify("correct horse").await.unwrap(), Verified::Right);
        assert_eq!(verify("wrong horse").await.unwrap(), Verified::Wrong);
        let dummy = passwords.verify("correct horse", None).await.unwrap();
        assert_eq!(dummy, Verified::Wrong);
    }

    #[tokio::test]
    async fn every_character_of_a_long_password_counts() {
        let passwords = Passwords::new(4, 2).unwrap();
        let long = "x".repeat(128);
        let hash = passwords.hash(&long).await.unwrap();
        let almost = format!("{}y", "x".repeat(127));
        let verify = |password| passwords.verify(password, Some(&hash));
        assert_eq!(verify(&long).await.unwrap(), Verified::Right);
        assert_eq!(verify(&almost).await.unwrap(), Verified::Wrong);
    }

    #[tokio::test]
    async fn a_hash_of_the_older_form_verifies_and_asks_to_be_replaced() {
        let passwords = Passwords::new(4, 2).unwrap();
        let legacy = bcrypt::hash("password123", 4).unwrap();
        let verify = |password| passwords.verify(password, Some(&legacy));
        assert_eq!(
            verify("password123").await.unwrap(),
            Verified::RightButRehash
        );
        assert_eq!(verify("password124").await.unwrap(), Verified::Wrong);
        // bcrypt saw 72 bytes of it; a longer password that starts the same is not it.
        let legacy = bcrypt::hash("x".repeat(72), 4).unwrap();
        let longer = "x".repeat(73);
        let verify = |password| passwords.verify(password, Some(&legacy));
        assert_eq!(verify(&longer).await.unwrap(), Verified::Wrong);
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
