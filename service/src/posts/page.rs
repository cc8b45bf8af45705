//! Reading pages of posts: which of `sql::page`'s statements a page takes, and its rows
//! read back as posts.

use std::sync::LazyLock;

use entity::post;
use sea_orm::{DbBackend, FromQueryResult, IdenStatic, QueryResult};

use super::{values::Title, view::PostView};
use crate::{
    accounts::Profile,
    database::Database,
    error::ServiceError,
    sessions::session_ended,
    sql::page::{Cut, OWNER_PREFIX, PageQuery, PostFilter, owner_columns, statement},
};

/// The owner's columns in a page's select list: a [`Profile`]'s.
static OWNER_COLUMNS: LazyLock<String> = LazyLock::new(|| owner_columns(&Profile::COLUMNS));

/// Reads the page.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub(super) async fn read_page(
    db: &Database,
    query: &PageQuery<'_>,
) -> Result<Vec<PostView>, ServiceError> {
    let PostFilter::TitleContains(search) = query.filter else {
        return read(db, query, Cut::from(query.filter)).await;
    };
    // No title holds a NUL character (and PostgreSQL rejects one in a parameter), nor more
    // than a title's characters (and SQLite refuses LIKE patterns over 50,000 bytes).
    if search.contains('\0') || search.chars().count() > Title::MAX_CHARS {
        return read(db, query, Cut::Nothing).await;
    }
    // Most searches match often enough that the newest posts hold the page: on PostgreSQL,
    // which would otherwise plan every search anew, those are answered from a bounded walk
    // whose plan it keeps (SQLite plans a search in microseconds: the walk would only add to
    // it). A full page from the window is the right page, as the window is the start of the
    // listing (or of its part after a cursor); anything less is completed by the search over
    // every post.
    let window = query
        .skip
        .saturating_add(query.limit)
        .saturating_mul(RECENT_SEARCH_POSTS_PER_ROW);
    if db.backend() == DbBackend::Postgres && window <= RECENT_SEARCH_MAX_POSTS {
        let page = read(db, query, Cut::RecentTitleContains { search, window }).await?;
        if page.len() as u64 == query.limit {
            return Ok(page);
        }
    }
    read(db, query, Cut::TitleContains(search)).await
}

/// How many of the newest posts a search looks through first, per row it needs (a term in
/// one title of 200 or more finds its page there), and at most.
const RECENT_SEARCH_POSTS_PER_ROW: u64 = 200;
const RECENT_SEARCH_MAX_POSTS: u64 = 20_000;

async fn read(
    db: &Database,
    query: &PageQuery<'_>,
    cut: Cut<'_>,
) -> Result<Vec<PostView>, ServiceError> {
    let statement = statement(db.backend(), query, cut, &OWNER_COLUMNS);
    let rows = db.read(&statement).await?;
    if rows.is_empty() {
        return Err(session_ended());
    }
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(view) = post_view(row)? {
            page.push(view);
        }
    }
    Ok(page)
}

/// A row of the page: the caller, and a post unless the page is empty.
fn post_view(row: &QueryResult) -> Result<Option<PostView>, ServiceError> {
    let id: Option<i64> = row.try_get("", post::Column::Id.as_str())?;
    if id.is_none() {
        return Ok(None);
    }
    Ok(Some(PostView {
        post: post::Model::from_query_result(row, "")?,
        owner: Profile::from_query_result(row, OWNER_PREFIX)?,
        votes: row.try_get("", "votes")?,
    }))
}
