//! The text of refresh tokens: opaque to clients, tamper-evident, and each one's successor
//! follows from it.
//!
//! A token is the base64url of 64 bytes: the session id and the token's generation (8 bytes
//! each, big-endian), 32 secret bytes, and a 128-bit HMAC of those 48 bytes under a key of
//! the service's. A session's first token has random secret bytes (256 bits); each later
//! one's are an HMAC of the token before it, under the same key. So every use of one token
//! yields the same successor without the service storing it, and the tag tells a token the
//! service issued, of any generation, from one made up: an earlier generation presented
//! again is a replay, while a forged one is merely unknown and ends nothing.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::Mac;
use sha2::{Digest, Sha256};

use crate::keys::{DerivedKey, HmacSha256};

const SECRET_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
/// Session id, generation, secret.
const PAYLOAD_BYTES: usize = 8 + 8 + SECRET_BYTES;
const TOKEN_BYTES: usize = PAYLOAD_BYTES + TAG_BYTES;

/// What the two uses of the key are told apart by.
const TAG: &[u8] = b"tag";
const SUCCESSOR: &[u8] = b"next";

/// Mints and reads refresh tokens with a key derived from the service's secret.
#[derive(Clone)]
pub(crate) struct RefreshKeys {
    key: DerivedKey,
}

/// A refresh token the service issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefreshToken {
    pub session_id: i64,
    pub generation: i64,
    bytes: [u8; TOKEN_BYTES],
}

impl RefreshKeys {
    /// Keys derived from `secret` (never the secret itself, which signs access tokens).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: DerivedKey::new(secret, "social-api refresh token"),
        }
    }

    /// The first token of a session: generation 0, random secret bytes.
    pub fn first(&self, session_id: i64) -> RefreshToken {
        self.token(session_id, 0, rand::random())
    }

    /// The token that `token` is exchanged for: always the same one.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        let secret = self.mac(SUCCESSOR, &token.bytes);
        self.token(token.session_id, token.generation + 1, secret)
    }

    /// The token `text` stands for, if this service issued it.
    pub fn read(&self, text: &str) -> Option<RefreshToken> {
        let bytes: [u8; TOKEN_BYTES] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let (payload, tag) = bytes.split_at(PAYLOAD_BYTES);
        self.hmac(TAG, payload).verify_truncated_left(tag).ok()?;
        let number = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        Some(RefreshToken {
            session_id: number(0),
            generation: number(8),
            bytes,
        })
    }

    fn token(&self, session_id: i64, generation: i64, secret: [u8; SECRET_BYTES]) -> RefreshToken {
        let mut bytes = [0; TOKEN_BYTES];
        bytes[..8].copy_from_slice(&session_id.to_be_bytes());
        bytes[8..16].copy_from_slice(&generation.to_be_bytes());
        bytes[16..PAYLOAD_BYTES].copy_from_slice(&secret);
        let tag = self.mac(TAG, &bytes[..PAYLOAD_BYTES]);
        bytes[PAYLOAD_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        RefreshToken {
            session_id,
            generation,
            bytes,
        }
    }

    fn mac(&self, purpose: &[u8], data: &[u8]) -> [u8; 32] {
        self.hmac(purpose, data).finalize().into_bytes().into()
    }

    fn hmac(&self, purpose: &[u8], data: &[u8]) -> HmacSha256 {
        let mut mac = self.key.mac(purpose);
        mac.update(data);
        mac
    }
}

impl RefreshToken {
    /// The token as the client holds it.
    pub fn text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)
    }

    /// What the database keeps of it: the hex SHA-256 of its text.
    pub fn hash(&self) -> String {
        format!("{:x}", Sha256::digest(self.text().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> RefreshKeys {
        RefreshKeys::new(b"a test secret of at least thirty-two bytes")
    }

    #[test]
    fn a_token_reads_back_and_its_successor_is_always_the_same() {
        let first = keys().first(42);
        let read = keys().read(&first.text()).expect("an issued token reads");
        assert_eq!((read.session_id, read.generation), (42, 0));
        assert_eq!(read, first);
        let next = keys().successor(&first);
        assert_eq!((next.session_id, next.generation), (42, 1));
        assert_eq!(next, keys().successor(&read), "one token, one successor");
        assert_eq!(keys().read(&next.text()), Some(next.clone()));
        assert_ne!(next.text(), first.text());
        assert_ne!(keys().first(42), first, "a session's first token is random");
        assert_eq!(first.text().len(), 86);
    }

    #[test]
    fn an_altered_or_foreign_token_does_not_read() {
        let token = keys().first(7);
        let foreign = RefreshKeys::new(b"another deployment's secret, 32 bytes").first(7);
        let mut altered = URL_SAFE_NO_PAD.decode(token.text()).unwrap();
        altered[15] ^= 1; // generation 0 claimed to be 1
        for (text, case) in [
            (foreign.text(), "another deployment's"),
            (URL_SAFE_NO_PAD.encode(&altered), "a generation changed"),
            (token.text()[..85].to_owned(), "cut short"),
            (format!("{}A", token.text()), "made longer"),
            (String::new(), "empty"),
            ("é".repeat(86), "not base64url"),
        ] {
            assert_eq!(keys().read(&text), None, "{case}");
        }
    }
}
