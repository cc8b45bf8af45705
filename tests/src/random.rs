//! Random values, so that tests running side by side never pick the same name.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Lower-case letters and digits, usable as a PostgreSQL identifier part or a file name.
pub(crate) fn random_name() -> String {
    let mut rng = rand::rng();
    format!("{:016x}{:08x}", rng.random::<u64>(), rng.random::<u32>())
}

/// `len` random ASCII letters and digits.
pub fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An email address no other test uses.
pub fn unique_email() -> String {
    format!("user-{}@example.com", random_name())
}
