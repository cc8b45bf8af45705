//! Keys derived from the service's secret, one for each purpose, so that no two uses share a
//! key and none is the secret itself (which signs access tokens).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MACs a [`DerivedKey`] makes: 128 bits.
pub(crate) const MAC_BYTES: usize = 16;

/// A key for one purpose.
#[derive(Clone)]
pub(crate) struct DerivedKey(Vec<u8>);

impl DerivedKey {
    /// The key for `purpose` under `secret`.
    pub(crate) fn new(secret: &[u8], purpose: &str) -> Self {
        let mut derive = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any size");
        derive.update(purpose.as_bytes());
        Self(derive.finalize().into_bytes().to_vec())
    }

    /// A MAC of `payload` under this key, to finish or to verify.
    pub(crate) fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any size");
        mac.update(payload);
        mac
    }

    /// The first [`MAC_BYTES`] of `payload`'s MAC.
    pub(crate) fn sign(&self, payload: &[u8]) -> [u8; MAC_BYTES] {
        let tag = self.mac(payload).finalize().into_bytes();
        let mut signature = [0; MAC_BYTES];
        signature.copy_from_slice(&tag[..MAC_BYTES]);
        signature
    }
}
