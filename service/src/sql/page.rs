//! The page reads of posts: a page of what the caller may see, newest first, each post with
//! its owner and vote count, in one statement.
//!
//! Written by hand because what makes it fast is what sea-query would change:
//! - `LIMIT` and `OFFSET` are validated integers written into the SQL (sea-query binds them),
//!   so that PostgreSQL caches one good plan per page size; a bound `LIMIT` gets a poor
//!   generic plan and is planned anew on every execution;
//! - the caller's session is checked by a `WITH` the page is `LEFT JOIN`ed to `ON TRUE`: no
//!   row at all means the session has ended (or the account is gone, which ends it), with no
//!   second round trip;
//! - a search on PostgreSQL first walks the newest posts with its term hidden from the planner
//!   (`LIKE (SELECT LOWER($3))`), so that one plan serves every term.
//!
//! The column lists come from the entities: a new post column is read with no change here;
//! the owner's columns are the caller's to name.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::{post, user};
use sea_orm::{DbBackend, IdenStatic, Iterable};

use super::ReadStatement;

/// Whether anyone may see the post `p`, not only its owner: published and not hidden, as
/// `posts::visibility` says.
const PUBLIC: &str = "(p.published AND NOT p.hidden)";

/// A page of the posts the caller (an account, reading in one of its sessions) may see:
/// public ones and their own.
#[derive(Clone, Debug)]
pub(crate) struct PageQuery<'a> {
    pub user_id: i64,
    pub session_id: i64,
    pub filter: PostFilter<'a>,
    pub limit: u64,
    pub skip: u64,
    /// Only the posts after this one in the listing (a cursor's page).
    pub after: Option<SortKey>,
}

/// A post's place in the listing, newest first: by `created_at`, then `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

/// Which of the visible posts a page keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PostFilter<'a> {
    Everything,
    Id(i64),
    /// Titles containing the text, ignoring case, with `%`, `_` and `\` taken literally.
    TitleContains(&'a str),
    /// Every hidden post, whoever's: a moderator's listing (the caller's role is checked
    /// before).
    Hidden,
}

/// How the statement cuts the page from the visible posts.
#[derive(Clone, Copy)]
pub(crate) enum Cut<'a> {
    Everything,
    Nothing,
    Id(i64),
    TitleContains(&'a str),
    Hidden,
    /// Titles containing the text among the newest `window` posts (after the cursor, if any).
    RecentTitleContains {
        search: &'a str,
        window: u64,
    },
}

impl<'a> From<PostFilter<'a>> for Cut<'a> {
    fn from(filter: PostFilter<'a>) -> Self {
        match filter {
            PostFilter::Everything => Self::Everything,
            PostFilter::Id(id) => Self::Id(id),
            PostFilter::TitleContains(search) => Self::TitleContains(search),
            PostFilter::Hidden => Self::Hidden,
        }
    }
}

/// The statement, `$n` placeholders on both backends (SQLite reads them as numbered
/// parameters; `$1` is the caller's account, `$2` their session):
/// - the vote count is a correlated subquery computed for the page's rows only: the page is
///   cut first and only then joined to owners and counted (in the select list below
///   `OFFSET` it would run for every skipped row too);
/// - the title search compares the stored `title_lower` with the lower-cased search, so each
///   backend compares them alike.
pub(crate) fn statement(
    backend: DbBackend,
    query: &PageQuery<'_>,
    cut: Cut<'_>,
    owner_columns: &str,
) -> ReadStatement {
    let (limit, skip) = (query.limit, query.skip);
    let mut values: Vec<sea_orm::Value> = vec![query.user_id.into(), query.session_id.into()];
    // Adds a value and names its placeholder.
    let mut bind = |value: sea_orm::Value| {
        values.push(value);
        format!("${}", values.len())
    };
    // A cursor's page: a range of the listing's index, as cheap at any depth.
    let after = query
        .after
        .map(|after| (bind(after.created_at.into()), bind(after.id.into())));
    let source = match cut {
        // The columns the walk filters and sorts on: the listing's covering index holds them.
        // After a cursor, the walk starts there.
        Cut::RecentTitleContains { window, .. } => {
            let start = after.as_ref().map_or(String::new(), |(created_at, id)| {
                format!("WHERE (created_at, id) < ({created_at}, {id}) ")
            });
            format!(
                "(SELECT id, created_at, published, hidden, owner_id, title_lower FROM posts {start}\
                 ORDER BY created_at DESC, id DESC LIMIT {window}) p"
            )
        }
        _ => "posts p".to_owned(),
    };
    let mut condition = match cut {
        Cut::Everything | Cut::Hidden => String::new(),
        Cut::Nothing => " AND FALSE".to_owned(),
        Cut::Id(id) => format!(" AND p.id = {}", bind(id.into())),
        // The planner sees the term, so that it walks the listing's index for a common one
        // and uses the trigram index for a rare one.
        Cut::TitleContains(search) => format!(
            " AND p.title_lower LIKE LOWER({}) ESCAPE '\\'",
            bind(like_pattern(search).into())
        ),
        // The term is hidden from the planner (a subquery it cannot look into), so the plan
        // is the same for every term and PostgreSQL keeps it instead of planning each search.
        // This walk runs on PostgreSQL only, whose `LIKE` escapes with `\` unless told
        // otherwise: an `ESCAPE` clause would be applied to the hidden pattern anew for every
        // row walked.
        Cut::RecentTitleContains { search, .. } => format!(
            " AND p.title_lower LIKE (SELECT LOWER({}))",
            bind(like_pattern(search).into())
        ),
    };
    if let Some((created_at, id)) = &after {
        condition.push_str(&format!(" AND (p.created_at, p.id) < ({created_at}, {id})"));
    }
    let seen = if matches!(cut, Cut::Hidden) {
        "p.hidden".to_owned()
    } else {
        format!("({PUBLIC} OR p.owner_id = $1)")
    };
    let cut_sql = format!(
        "FROM {source} WHERE {seen}{condition} \
         ORDER BY p.created_at DESC, p.id DESC LIMIT {limit} OFFSET {skip}"
    );
    // A search, or a page far down the list, passes over many posts: it takes the page's ids
    // from the index that carries everything it filters on, and reads only the page's rows.
    let passes_over_many =
        skip > 0 || matches!(cut, Cut::TitleContains(_) | Cut::RecentTitleContains { .. });
    let post_columns = &*POST_COLUMNS;
    let page = if passes_over_many {
        format!(
            "SELECT {post_columns} FROM (SELECT p.id {cut_sql}) hit JOIN posts p ON p.id = hit.id"
        )
    } else {
        format!("SELECT {post_columns} {cut_sql}")
    };
    let page_columns = &*PAGE_COLUMNS;
    let sql = format!(
        "WITH caller AS (SELECT user_id FROM sessions WHERE id = $2 AND user_id = $1) \
         SELECT caller.user_id AS caller_id, {page_columns}, {owner_columns}, \
                (SELECT COUNT(*) FROM votes v WHERE v.post_id = page.id) AS votes \
         FROM caller LEFT JOIN ({page}) page ON TRUE \
         LEFT JOIN users u ON u.id = page.owner_id \
         ORDER BY page.created_at DESC, page.id DESC"
    );
    ReadStatement::new(backend, sql, values)
}

/// Every column of a post, as the page's inner select reads it (`p.id, p.title, …`) and as
/// the outer select passes it on (`page.id, page.title, …`).
static POST_COLUMNS: LazyLock<String> = LazyLock::new(|| post_columns("p"));
static PAGE_COLUMNS: LazyLock<String> = LazyLock::new(|| post_columns("page"));

fn post_columns(table: &str) -> String {
    post::Column::iter()
        .map(|column| format!("{table}.{}", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the owner's columns are named with in a page's rows.
pub(crate) const OWNER_PREFIX: &str = "author_";

/// The select list of the owner's `columns` (of `users`, joined as `u`), each named with
/// [`OWNER_PREFIX`]: what [`statement`] takes, made once by its caller.
pub(crate) fn owner_columns(columns: &[user::Column]) -> String {
    columns
        .iter()
        .map(|column| {
            let name = column.as_str();
            format!("u.{name} AS {OWNER_PREFIX}{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `LIKE` pattern matching any text that contains `text`, its wildcards escaped with `\`.
fn like_pattern(text: &str) -> String {
    format!("%{}%", escape_like(text))
}

/// Escapes `LIKE`'s wildcards with `\` so that the search text matches literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }

    #[test]
    fn every_column_is_read_once_under_its_own_name() {
        let query = PageQuery {
            user_id: 1,
            session_id: 2,
            filter: PostFilter::Everything,
            limit: 10,
            skip: 0,
            after: None,
        };
        let owner = [
            user::Column::Id,
            user::Column::Email,
            user::Column::CreatedAt,
        ];
        let sql = statement(
            DbBackend::Postgres,
            &query,
            Cut::Everything,
            &owner_columns(&owner),
        )
        .0
        .sql;
        for column in post::Column::iter() {
            let outer = format!("page.{},", column.as_str());
            assert_eq!(sql.matches(&outer).count(), 1, "{outer} in {sql}");
        }
        assert!(sql.contains("LIMIT 10 OFFSET 0"), "{sql}");
        // The owner's columns are read by name beside the post's: no name may stand twice.
        for column in owner {
            let alias = format!("{OWNER_PREFIX}{}", column.as_str());
            assert!(sql.contains(&format!("AS {alias},")), "{alias} in {sql}");
            assert!(
                post::Column::iter().all(|post_column| post_column.as_str() != alias),
                "{alias} is also a post column"
            );
        }
    }
}
