//! Page cursors: where a listing goes on, carried by the client between pages and signed,
//! so that a cursor the service did not issue (altered, made up, or from another
//! deployment) is told from one it did.
//!
//! A cursor holds the last post's sort key (`created_at`, `id`), the search and the page
//! size. The next page is the posts after that key, whatever was written or deleted
//! meanwhile: none is shown twice, and none that existed when paging began and still
//! exists is missed; each page costs the same at any depth (an index range, not an offset).

use base64::Engine;
use chrono::DateTime;
use hmac::Mac;

use super::values::SEARCH_MAX_CHARS;
pub use crate::sql::page::SortKey;
use crate::{
    fields::Requirement,
    keys::{DerivedKey, MAC_BYTES},
};

/// Where a page ends, and what the listing it belongs to asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub after: SortKey,
    pub search: Option<String>,
    pub limit: u64,
}

/// Signs and reads cursors with a key of their own, derived from the service's secret.
#[derive(Clone)]
pub struct Cursors {
    key: DerivedKey,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The length of base64url text, without padding, of `bytes` bytes.
const fn base64_chars(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// The longest cursor text the service issues: a payload of three numbers of at most 20
/// characters each and the longest search (at most 4 bytes a character), then its MAC.
pub const MAX_CHARS: usize = {
    let search = base64_chars(4 * SEARCH_MAX_CHARS);
    let payload = base64_chars(3 * (20 + 1) + search);
    payload + 1 + base64_chars(MAC_BYTES)
};

impl Cursors {
    /// Cursors signed with a key derived from `secret` (never the secret itself, which signs
    /// access tokens).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: DerivedKey::new(secret, "social-api page cursor"),
        }
    }

    /// The cursor as opaque URL-safe text.
    pub fn encode(&self, cursor: &PageCursor) -> String {
        let payload = format!(
            "{}.{}.{}.{}",
            cursor.after.created_at.timestamp_micros(),
            cursor.after.id,
            cursor.limit,
            BASE64.encode(cursor.search.as_deref().unwrap_or_default()),
        );
        let payload = BASE64.encode(payload);
        format!(
            "{payload}.{}",
            BASE64.encode(self.key.sign(payload.as_bytes()))
        )
    }

    /// The cursor `text` stands for, if the service issued it.
    ///
    /// # Errors
    /// What a cursor must be, for a malformed, altered or foreign one.
    pub fn decode(&self, text: &str) -> Result<PageCursor, Requirement> {
        self.read(text).ok_or_else(|| {
            "is not a cursor of this listing; take it from the last page's `Link`".into()
        })
    }

    fn read(&self, text: &str) -> Option<PageCursor> {
        let (payload, signature) = text.split_once('.')?;
        let signature = BASE64.decode(signature).ok()?;
        if signature.len() != MAC_BYTES {
            return None;
        }
        self.key
            .mac(payload.as_bytes())
            .verify_truncated_left(&signature)
            .ok()?;
        let payload = String::from_utf8(BASE64.decode(payload).ok()?).ok()?;
        let mut parts = payload.splitn(4, '.');
        let micros = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        let limit = parts.next()?.parse().ok()?;
        let search = String::from_utf8(BASE64.decode(parts.next()?).ok()?).ok()?;
        Some(PageCursor {
            after: SortKey {
                created_at: DateTime::from_timestamp_micros(micros)?,
                id,
            },
            search: (!search.is_empty()).then_some(search),
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn cursor(search: Option<&str>) -> PageCursor {
        PageCursor {
            after: SortKey {
                created_at: DateTime::from_timestamp_micros(1_796_033_088_302_370).unwrap(),
                id: 42,
            },
            search: search.map(str::to_owned),
            limit: 10,
        }
    }

    #[test]
    fn an_issued_cursor_reads_back_as_it_was() {
        let cursors = Cursors::new(b"a secret");
        for search in [None, Some("a.b:c%_\\ é 🦀")] {
            let text = cursors.encode(&cursor(search));
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "URL-safe: {text}"
            );
            assert_eq!(cursors.decode(&text), Ok(cursor(search)));
        }
    }

    #[test]
    fn the_longest_cursor_fits_its_bound() {
        let cursors = Cursors::new(b"a secret");
        let longest = PageCursor {
            after: SortKey {
                created_at: DateTime::<Utc>::MIN_UTC,
                id: i64::MIN,
            },
            search: Some("🦀".repeat(SEARCH_MAX_CHARS)),
            limit: u64::MAX,
        };
        assert!(cursors.encode(&longest).len() <= MAX_CHARS);
    }

    #[test]
    fn altered_malformed_and_foreign_cursors_are_refused() {
        let cursors = Cursors::new(b"a secret");
        let text = cursors.encode(&cursor(Some("abc")));
        let (payload, signature) = text.split_once('.').unwrap();
        let forged_payload = BASE64.encode(
            String::from_utf8(BASE64.decode(payload).unwrap())
                .unwrap()
                .replace(".42.", ".43."),
        );
        let cases = [
            String::new(),
            "garbage".to_owned(),
            format!("{forged_payload}.{signature}"),
            format!("{payload}.{}", &signature[..signature.len() - 2]),
            format!("{payload}x.{signature}"),
            format!("{payload}.{signature}AA"),
            Cursors::new(b"another secret").encode(&cursor(Some("abc"))),
            "x".repeat(10_000),
        ];
        for case in cases {
            assert!(cursors.decode(&case).is_err(), "accepted {case:?}");
        }
    }
}
