//! JWT access tokens: HS256 only, `sub`, `sid`, `iat` and `exp` required.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Caller;
use crate::error::ServiceError;

/// Clock skew tolerated between instances, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (JWT's `sub` is a string).
    sub: String,
    /// The session the token was issued to; a token without one is refused.
    sid: i64,
    iat: i64,
    exp: i64,
}

/// A freshly issued token and how many seconds it lives.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// Issues and verifies access tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        // Pinning HS256 rejects `none`, RS256 and every other algorithm a token may claim.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "iat", "exp"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// # Errors
    /// [`ServiceError::Internal`] if signing fails.
    pub fn issue(&self, caller: &Caller) -> Result<IssuedToken, ServiceError> {
        let now = chrono::Utc::now().timestamp();
        let expires_in = self.lifetime.as_secs();
        let claims = Claims {
            sub: caller.user_id().to_string(),
            sid: caller.session_id(),
            iat: now,
            exp: now.saturating_add_unsigned(expires_in),
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|e| ServiceError::internal("signing a token", e))?;
        Ok(IssuedToken {
            access_token,
            expires_in,
        })
    }

    /// Returns the account and session a valid token names.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for a malformed, tampered, expired or not yet valid
    /// token, or one signed with another algorithm or secret.
    pub fn verify(&self, token: &str) -> Result<Caller, ServiceError> {
        let invalid = || {
            ServiceError::Unauthorized(
                "the bearer token is invalid or expired; log in again".into(),
            )
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid())?
            .claims;
        // A token issued in the future was not issued by us.
        if claims.iat
            > chrono::Utc::now()
                .timestamp()
                .saturating_add_unsigned(LEEWAY_SECS)
        {
            return Err(invalid());
        }
        let user_id = claims.sub.parse().map_err(|_| invalid())?;
        Ok(Caller::named(user_id, claims.sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

    fn tokens() -> Tokens {
        Tokens::new(SECRET, Duration::from_secs(1800))
    }

    fn sign(header: &Header, claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn caller(user_id: i64) -> Caller {
        Caller::named(user_id, 7)
    }

    #[test]
    fn an_issued_token_verifies_to_its_user_and_session() {
        let issued = tokens().issue(&caller(42)).unwrap();
        assert_eq!(issued.expires_in, 1800);
        assert_eq!(tokens().verify(&issued.access_token).unwrap(), caller(42));
    }

    #[test]
    fn tokens_that_must_not_verify_are_rejected() {
        let hs256 = Header::new(Algorithm::HS256);
        let valid = serde_json::json!({"sub": "1", "sid": 1, "iat": now(), "exp": now() + 60});
        let cases = [
            ("garbage", "not.a.token".to_owned()),
            (
                "another secret",
                sign(&hs256, &valid, b"another secret entirely, 32 bytes long"),
            ),
            (
                "HS512",
                sign(&Header::new(Algorithm::HS512), &valid, SECRET),
            ),
            (
                "expired",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": 1, "iat": now() - 120, "exp": now() - 60}),
                    SECRET,
                ),
            ),
            (
                "issued in the future",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": 1, "iat": now() + 600, "exp": now() + 900}),
                    SECRET,
                ),
            ),
            (
                "not yet valid",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": 1, "iat": now(), "nbf": now() + 600, "exp": now() + 900}),
                    SECRET,
                ),
            ),
            (
                "no sub",
                sign(
                    &hs256,
                    &serde_json::json!({"sid": 1, "iat": now(), "exp": now() + 60}),
                    SECRET,
                ),
            ),
            (
                "no iat",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": 1, "exp": now() + 60}),
                    SECRET,
                ),
            ),
            (
                "no exp",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": 1, "iat": now()}),
                    SECRET,
                ),
            ),
            (
                "no sid",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "iat": now(), "exp": now() + 60}),
                    SECRET,
                ),
            ),
            (
                "sid not an id",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "1", "sid": "one", "iat": now(), "exp": now() + 60}),
                    SECRET,
                ),
            ),
            (
                "sub not an id",
                sign(
                    &hs256,
                    &serde_json::json!({"sub": "ann", "sid": 1, "iat": now(), "exp": now() + 60}),
                    SECRET,
                ),
            ),
        ];
        for (case, token) in cases {
            assert!(tokens().verify(&token).is_err(), "{case} was accepted");
        }
    }

    #[test]
    fn an_unsigned_token_is_rejected() {
        // {"alg":"none","typ":"JWT"} . {"sub":"1","iat":..,"exp":..} . (no signature)
        let encode = |json: String| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        };
        let token = format!(
            "{}.{}.",
            encode(r#"{"alg":"none","typ":"JWT"}"#.into()),
            encode(format!(
                r#"{{"sub":"1","sid":1,"iat":{},"exp":{}}}"#,
                now(),
                now() + 60
            ))
        );
        assert!(tokens().verify(&token).is_err());
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let issued = tokens().issue(&caller(1)).unwrap().access_token;
        let other = tokens().issue(&caller(2)).unwrap().access_token;
        let mut parts: Vec<&str> = issued.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(tokens().verify(&parts.join(".")).is_err());
    }
}
