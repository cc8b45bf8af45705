//! Tokens the test makes itself: forged, expired, or signed the wrong way.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(elapsed.as_secs()).expect("the time fits in i64")
}

/// Unpadded base64url, as used in JWTs.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with `algorithm` and `secret`.
pub fn sign(algorithm: jsonwebtoken::Algorithm, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("the token encodes")
}

/// A token whose header says `header_json`, HMAC-signed with `secret` as if it said HS256:
/// the algorithm-confusion attack.
pub fn sign_with_header(header_json: &str, claims: &Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        base64url(header_json.as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("the message signs");
    format!("{message}.{signature}")
}
