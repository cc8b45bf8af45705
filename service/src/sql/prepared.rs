//! A page read as a prepared statement of the server connection's own, for a transaction-mode
//! pooler: prepared once on each server connection, then `EXECUTE`d with the values written
//! as literals, in one simple query.
//!
//! Why: through such a pooler sqlx cannot keep a prepared statement (see
//! `crate::database::Connection`), and a statement planned anew for every read cost the list
//! two thirds of PostgreSQL's work for it (pgbench on its statement: 14,500 reads a second
//! prepared, 5,100 planned each time). A statement prepared under a name of its text's own
//! hash lives on the server connection, whichever client's transaction lands there next.

use sea_orm::Value;
use sha2::{Digest, Sha256};

use super::ReadStatement;

/// How many page reads a server connection keeps prepared: a statement's shape and literal
/// `LIMIT` make its text, so there are hundreds. Past this many, a connection that must
/// prepare one more drops them all first (the direct pools' sqlx caches hold 100 each).
const MAX_PREPARED: usize = 64;

/// A read as a named prepared statement.
pub(crate) struct Prepared {
    /// Prepares it (`PREPARE name(types) AS statement`) unless the server connection has
    /// it, after dropping the others when the connection holds [`MAX_PREPARED`]: it runs
    /// on whichever server connection the message lands on, so it cannot fail for one that
    /// has it, nor for one that has not.
    pub(crate) prepare_if_missing: String,
    /// `EXECUTE name(values)`.
    pub(crate) execute: String,
}

impl ReadStatement {
    /// The statement as [`Prepared`], or `None` when a value cannot be written as a
    /// literal (a type no page read binds, or text holding a NUL character) or the text
    /// cannot be quoted whole.
    pub(crate) fn as_prepared(&self) -> Option<Prepared> {
        if self.0.sql.contains("$$") || self.0.sql.contains(PREPARE_QUOTE) {
            return None;
        }
        let values = self.0.values.as_ref().map_or(&[][..], |values| &values.0);
        let mut types = Vec::with_capacity(values.len());
        let mut literals = Vec::with_capacity(values.len());
        for value in values {
            let (kind, literal) = typed_literal(value)?;
            types.push(kind);
            literals.push(literal);
        }
        let digest = Sha256::digest(self.0.sql.as_bytes());
        let name: String = digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let name = format!("api_{name}");
        let types = types.join(", ");
        let sql = &self.0.sql;
        Some(Prepared {
            prepare_if_missing: format!(
                "DO $$ BEGIN \
                 IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = '{name}') THEN \
                 IF (SELECT COUNT(*) FROM pg_prepared_statements WHERE name LIKE 'api\\_%') \
                 >= {MAX_PREPARED} THEN EXECUTE 'DEALLOCATE ALL'; END IF; \
                 EXECUTE {PREPARE_QUOTE}PREPARE {name}({types}) AS {sql}{PREPARE_QUOTE}; \
                 END IF; END $$"
            ),
            execute: format!("EXECUTE {name}({})", literals.join(", ")),
        })
    }
}

/// The dollar quote the statement's text is given to `PREPARE` in.
const PREPARE_QUOTE: &str = "$prepare$";

/// The SQL type of `value` and `value` as a literal of it.
fn typed_literal(value: &Value) -> Option<(&'static str, String)> {
    fn number(kind: &'static str, value: Option<impl ToString>) -> (&'static str, String) {
        (
            kind,
            value.map_or_else(|| "NULL".to_owned(), |n| n.to_string()),
        )
    }
    Some(match value {
        Value::Bool(b) => number("boolean", *b),
        Value::SmallInt(n) => number("smallint", *n),
        Value::Int(n) => number("integer", *n),
        Value::BigInt(n) => number("bigint", *n),
        Value::String(text) => (
            "text",
            text.as_deref().map_or(Some("NULL".to_owned()), quote)?,
        ),
        Value::ChronoDateTimeUtc(at) => (
            "timestamptz",
            at.map_or(Some("NULL".to_owned()), |at| quote(&at.to_rfc3339()))?,
        ),
        _ => return None,
    })
}

/// `text` as an escape string constant (`E'…'`), read the same whatever the server's
/// `standard_conforming_strings`: quotes and backslashes doubled; `None` for text holding a
/// NUL character, which no PostgreSQL string may.
fn quote(text: &str) -> Option<String> {
    if text.contains('\0') {
        return None;
    }
    Some(format!(
        "E'{}'",
        text.replace('\\', "\\\\").replace('\'', "''")
    ))
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;

    fn statement(values: Vec<Value>) -> ReadStatement {
        ReadStatement::new(DbBackend::Postgres, "SELECT $1, $2, $3".to_owned(), values)
    }

    #[test]
    fn values_become_literals_of_their_types() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-08T01:02:03.5Z")
            .expect("a time")
            .to_utc();
        let prepared = statement(vec![
            Value::BigInt(Some(-7)),
            Value::String(Some("it's a \\ back'slash".into())),
            Value::ChronoDateTimeUtc(Some(at)),
        ])
        .as_prepared()
        .expect("every value has a literal");
        let name = prepared
            .execute
            .strip_prefix("EXECUTE ")
            .and_then(|rest| rest.split('(').next())
            .expect("a name");
        assert!(
            prepared.prepare_if_missing.contains(&format!(
                "EXECUTE $prepare$PREPARE {name}(bigint, text, timestamptz) AS SELECT $1, $2, $3$prepare$;"
            )),
            "{}",
            prepared.prepare_if_missing
        );
        assert_eq!(
            prepared.execute,
            format!(
                "EXECUTE {name}(-7, E'it''s a \\\\ back''slash', E'2026-12-08T01:02:03.500+00:00')"
            )
        );
        assert_eq!(
            Some(name.to_owned()),
            statement(vec![Value::BigInt(None), Value::String(None)])
                .as_prepared()
                .map(|prepared| prepared.execute[8..8 + name.len()].to_owned()),
            "the name is the text's, whatever the values"
        );
    }

    #[test]
    fn text_with_a_nul_or_an_unknown_type_has_no_literal() {
        assert!(
            statement(vec![Value::String(Some("a\0b".into()))])
                .as_prepared()
                .is_none()
        );
        assert!(
            statement(vec![Value::Double(Some(1.5))])
                .as_prepared()
                .is_none()
        );
    }
}
