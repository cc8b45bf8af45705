//! Posts: writing, reading, listing with search and paging, and who may see or change what.
//!
//! Visibility: a caller sees every published post and their own drafts; another person's
//! draft does not exist for them (404 everywhere). Only the owner may change a post (403 for
//! a published post of someone else).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use entity::post;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QuerySelect, Set, Statement,
};

use crate::{
    ServiceError, User,
    accounts::account_gone,
    database::Database,
    error::is_foreign_key_violation,
    fields::{self, TITLE_MAX_CHARS},
    now,
};

/// A post as a reader sees it: with its owner and the number of votes it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostView {
    pub post: post::Model,
    pub owner: User,
    pub votes: i64,
}

/// The writable fields of a post, checked by [`fields::title`] (and trimmed) and
/// [`fields::content`].
#[derive(Clone, Debug)]
pub struct PostFields {
    title: String,
    content: String,
    published: bool,
}

impl PostFields {
    /// # Errors
    /// [`ServiceError::Invalid`] naming each field that breaks its rule.
    pub fn new(title: &str, content: String, published: bool) -> Result<Self, ServiceError> {
        let (title, ()) = fields::both(
            ("title", fields::title(title)),
            ("content", fields::content(&content)),
        )?;
        Ok(Self {
            title,
            content,
            published,
        })
    }
}

/// The fields a `PATCH` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct PostChanges {
    title: Option<String>,
    content: Option<String>,
    published: Option<bool>,
}

impl PostChanges {
    /// # Errors
    /// [`ServiceError::Invalid`] naming each given field that breaks its rule.
    pub fn new(
        title: Option<&str>,
        content: Option<String>,
        published: Option<bool>,
    ) -> Result<Self, ServiceError> {
        let (title, _) = fields::both(
            ("title", title.map(fields::title).transpose()),
            (
                "content",
                content.as_deref().map(fields::content).transpose(),
            ),
        )?;
        Ok(Self {
            title,
            content,
            published,
        })
    }

    fn is_empty(&self) -> bool {
        self.title.is_none() && self.content.is_none() && self.published.is_none()
    }
}

/// One page of a listing, newest first.
#[derive(Clone, Debug)]
pub struct PostQuery {
    limit: u64,
    skip: u64,
    search: Option<String>,
}

impl PostQuery {
    /// `limit` and `skip` as [`fields::limit`] and [`fields::skip`] say; `search`, when
    /// given and not empty, keeps the posts whose title contains it, ignoring case, with
    /// `%`, `_` and `\` taken literally.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each of `limit` and `skip` that breaks its rule.
    pub fn new(limit: i64, skip: i64, search: Option<String>) -> Result<Self, ServiceError> {
        let (limit, skip) = fields::both(
            ("limit", fields::limit(limit)),
            ("skip", fields::skip(skip)),
        )?;
        Ok(Self {
            limit,
            skip,
            search: search.filter(|s| !s.is_empty()),
        })
    }
}

/// Lists the posts the caller may see. The caller is named by id only: checking that the
/// account still exists is folded into the page's one statement.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's account is gone.
pub async fn list(
    db: &Database,
    caller_id: i64,
    query: &PostQuery,
) -> Result<Vec<PostView>, ServiceError> {
    let (limit, skip) = (query.limit, query.skip);
    let search = match &query.search {
        None => return read_page(db, caller_id, PageFilter::Everything, limit, skip).await,
        // No title holds a NUL character (and PostgreSQL rejects one in a parameter), nor more
        // than 200 characters (and SQLite refuses LIKE patterns over 50,000 bytes).
        Some(search) if search.contains('\0') || search.chars().count() > TITLE_MAX_CHARS => {
            return read_page(db, caller_id, PageFilter::Nothing, limit, skip).await;
        }
        Some(search) => search,
    };
    // Most searches match often enough that the newest posts hold the page: on PostgreSQL,
    // which would otherwise plan every search anew, those are answered from a bounded walk
    // whose plan it keeps (SQLite plans a search in microseconds: the walk would only add to
    // it). A full page from the window is the right page, as the window is the start of the
    // listing; anything less is completed by the search over every post.
    let window = skip
        .saturating_add(limit)
        .saturating_mul(RECENT_SEARCH_POSTS_PER_ROW);
    if db.get_database_backend() == DbBackend::Postgres && window <= RECENT_SEARCH_MAX_POSTS {
        let recent = PageFilter::RecentTitleContains { search, window };
        let page = read_page(db, caller_id, recent, limit, skip).await?;
        if page.len() as u64 == limit {
            return Ok(page);
        }
    }
    read_page(
        db,
        caller_id,
        PageFilter::TitleContains(search),
        limit,
        skip,
    )
    .await
}

/// How many of the newest posts a search looks through first, per row it needs (a term in
/// one title of 200 or more finds its page there), and at most.
const RECENT_SEARCH_POSTS_PER_ROW: u64 = 200;
const RECENT_SEARCH_MAX_POSTS: u64 = 20_000;

/// # Errors
/// [`ServiceError::NotFound`] when the post does not exist or is someone else's draft,
/// [`ServiceError::Unauthorized`] when the caller's account is gone.
pub async fn get(db: &Database, caller_id: i64, id: i64) -> Result<PostView, ServiceError> {
    read_page(db, caller_id, PageFilter::Id(id), 1, 0)
        .await?
        .pop()
        .ok_or_else(|| not_found(id))
}

/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's account is deleted meanwhile,
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn create(
    db: &DatabaseConnection,
    caller: &User,
    fields: PostFields,
) -> Result<PostView, ServiceError> {
    let created_at = now();
    let post = post::ActiveModel {
        title: Set(fields.title),
        content: Set(fields.content),
        published: Set(fields.published),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        owner_id: Set(caller.id),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|err| {
        // The account was deleted between authenticating the request and this insert: the
        // same 401 as for any request of a deleted account.
        if is_foreign_key_violation(&err) {
            account_gone()
        } else {
            err.into()
        }
    })?;
    Ok(PostView {
        post,
        owner: caller.clone(),
        votes: 0,
    })
}

/// Replaces every writable field of the caller's post.
///
/// # Errors
/// [`ServiceError::NotFound`] or [`ServiceError::Forbidden`] as for any change.
pub async fn replace(
    db: &Database,
    caller: &User,
    id: i64,
    fields: PostFields,
) -> Result<PostView, ServiceError> {
    let changes = PostChanges {
        title: Some(fields.title),
        content: Some(fields.content),
        published: Some(fields.published),
    };
    update(db, caller, id, changes).await
}

/// Changes the given fields of the caller's post.
///
/// # Errors
/// [`ServiceError::NotFound`] when the post does not exist or is someone else's draft,
/// [`ServiceError::Forbidden`] when it is someone else's published post.
pub async fn update(
    db: &Database,
    caller: &User,
    id: i64,
    changes: PostChanges,
) -> Result<PostView, ServiceError> {
    let post = owned_by(db, caller, id).await?;
    if !changes.is_empty() {
        let mut active = post.into_active_model();
        if let Some(title) = changes.title {
            active.title = Set(title);
        }
        if let Some(content) = changes.content {
            active.content = Set(content);
        }
        if let Some(published) = changes.published {
            active.published = Set(published);
        }
        active.updated_at = Set(now());
        active.update(&**db).await.map_err(|err| match err {
            // Deleted between the ownership check and the update.
            DbErr::RecordNotUpdated => not_found(id),
            err => err.into(),
        })?;
    }
    get(db, caller.id, id).await
}

/// Deletes the caller's post; its votes go with it.
///
/// # Errors
/// [`ServiceError::NotFound`] or [`ServiceError::Forbidden`] as for any change.
pub async fn delete(db: &DatabaseConnection, caller: &User, id: i64) -> Result<(), ServiceError> {
    owned_by(db, caller, id).await?;
    post::Entity::delete_many()
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.id))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether `caller` may see the post: it exists and is published or theirs.
pub(crate) async fn is_visible(
    db: &DatabaseConnection,
    caller: &User,
    id: i64,
) -> Result<bool, ServiceError> {
    let found = post::Entity::find()
        .select_only()
        .column(post::Column::Id)
        .filter(post::Column::Id.eq(id))
        .filter(visibility(caller))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

pub(crate) fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("post {id} was not found"))
}

async fn owned_by(
    db: &DatabaseConnection,
    caller: &User,
    id: i64,
) -> Result<post::Model, ServiceError> {
    match post::Entity::find_by_id(id).one(db).await? {
        Some(post) if post.owner_id == caller.id => Ok(post),
        Some(post) if post.published => Err(ServiceError::Forbidden(format!(
            "post {id} belongs to another user; only its owner may change it"
        ))),
        _ => Err(not_found(id)),
    }
}

fn visibility(caller: &User) -> Condition {
    Condition::any()
        .add(post::Column::Published.eq(true))
        .add(post::Column::OwnerId.eq(caller.id))
}

/// Which posts of those visible a page keeps.
enum PageFilter<'a> {
    Everything,
    Nothing,
    Id(i64),
    TitleContains(&'a str),
    /// Titles containing the text among the newest `window` posts.
    RecentTitleContains {
        search: &'a str,
        window: u64,
    },
}

/// A page of the posts the caller may see, newest first, each with its owner and vote
/// count, in one statement:
/// - the caller's account is checked in the same statement: no row at all means it is gone;
/// - the vote count is a correlated subquery, computed for the rows of the page only (after
///   `OFFSET`, not for the rows it skips);
/// - `LIMIT` and `OFFSET` are validated integers written into the SQL, so that PostgreSQL
///   can cache one good plan per page size (a bound `LIMIT` gets a poor generic plan and
///   is re-planned on every execution);
/// - the title search compares the stored `title_lower` with the lower-cased search, so each
///   backend compares them alike.
///
/// `$n` placeholders work on both backends (SQLite reads them as numbered parameters).
async fn read_page(
    db: &Database,
    caller_id: i64,
    filter: PageFilter<'_>,
    limit: u64,
    skip: u64,
) -> Result<Vec<PostView>, ServiceError> {
    let mut values: Vec<sea_orm::Value> = vec![caller_id.into()];
    let source = match filter {
        PageFilter::RecentTitleContains { window, .. } => Cow::Owned(format!(
            "(SELECT id, created_at, published, owner_id, title_lower FROM posts \
             ORDER BY created_at DESC, id DESC LIMIT {window}) p"
        )),
        _ => Cow::Borrowed("posts p"),
    };
    let condition = match filter {
        PageFilter::Everything => "",
        PageFilter::Nothing => " AND FALSE",
        PageFilter::Id(id) => {
            values.push(id.into());
            " AND p.id = $2"
        }
        // The planner sees the term, so that it walks the listing's index for a common one
        // and uses the trigram index for a rare one.
        PageFilter::TitleContains(search) => {
            values.push(like_pattern(search).into());
            " AND p.title_lower LIKE LOWER($2) ESCAPE '\\'"
        }
        // The term is hidden from the planner (a subquery it cannot look into), so the plan
        // is the same for every term and PostgreSQL keeps it instead of planning each search.
        // This walk runs on PostgreSQL only, whose `LIKE` escapes with `\` unless told
        // otherwise: an `ESCAPE` clause would be applied to the hidden pattern anew for every
        // row walked (about a tenth of the walk's cost).
        PageFilter::RecentTitleContains { search, .. } => {
            values.push(like_pattern(search).into());
            " AND p.title_lower LIKE (SELECT LOWER($2))"
        }
    };
    let cut = format!(
        "FROM {source} WHERE (p.published OR p.owner_id = $1){condition} \
         ORDER BY p.created_at DESC, p.id DESC LIMIT {limit} OFFSET {skip}"
    );
    // A search, or a page far down the list, passes over many posts: it takes the page's ids
    // from the index that carries everything it filters on, and reads only the page's rows.
    let passes_over_many = skip > 0
        || matches!(
            filter,
            PageFilter::TitleContains(_) | PageFilter::RecentTitleContains { .. }
        );
    let page = if passes_over_many {
        format!("SELECT {PAGE_COLUMNS} FROM (SELECT p.id {cut}) hit JOIN posts p ON p.id = hit.id")
    } else {
        format!("SELECT {PAGE_COLUMNS} {cut}")
    };
    // The page is cut first and only its rows are joined to their owners and counted: a
    // select-list subquery below OFFSET would run for every skipped row too.
    let sql = format!(
        "WITH caller AS (SELECT id FROM users WHERE id = $1) \
         SELECT caller.id AS caller_id, page.id, page.title, page.content, page.published, \
                page.created_at, page.updated_at, page.owner_id, \
                u.email AS owner_email, u.created_at AS owner_created_at, \
                (SELECT COUNT(*) FROM votes v WHERE v.post_id = page.id) AS votes \
         FROM caller LEFT JOIN ({page}) page ON TRUE \
         LEFT JOIN users u ON u.id = page.owner_id \
         ORDER BY page.created_at DESC, page.id DESC"
    );
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    let rows = db
        .read(statement)
        .await?
        .iter()
        .map(|row| PageRow::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Err(account_gone());
    }
    Ok(rows.into_iter().filter_map(PageRow::into_view).collect())
}

/// The columns of a post that [`read_page`] returns.
const PAGE_COLUMNS: &str =
    "p.id, p.title, p.content, p.published, p.created_at, p.updated_at, p.owner_id";

/// A row of [`read_page`]: the caller, and a post unless the page is empty.
#[derive(FromQueryResult)]
struct PageRow {
    #[allow(
        dead_code,
        reason = "selected so that an empty page still returns a row"
    )]
    caller_id: i64,
    id: Option<i64>,
    title: Option<String>,
    content: Option<String>,
    published: Option<bool>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    owner_id: Option<i64>,
    owner_email: Option<String>,
    owner_created_at: Option<DateTime<Utc>>,
    votes: Option<i64>,
}

impl PageRow {
    fn into_view(self) -> Option<PostView> {
        let owner_id = self.owner_id?;
        Some(PostView {
            owner: User {
                id: owner_id,
                email: self.owner_email?,
                password_hash: String::new(),
                created_at: self.owner_created_at?,
            },
            post: post::Model {
                id: self.id?,
                title: self.title?,
                content: self.content?,
                published: self.published?,
                created_at: self.created_at?,
                updated_at: self.updated_at?,
                owner_id,
            },
            votes: self.votes.unwrap_or(0),
        })
    }
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
    fn titles_are_stored_trimmed() {
        let fields = PostFields::new("  Hello  ", "body".into(), true).unwrap();
        assert_eq!(fields.title, "Hello");
    }

    #[test]
    fn every_broken_field_is_named() {
        let invalid = |result: Result<PostFields, ServiceError>| match result {
            Err(ServiceError::Invalid(errors)) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            other => panic!("accepted: {other:?}"),
        };
        assert_eq!(
            invalid(PostFields::new(" ", "".into(), true)),
            ["title", "content"]
        );
        assert_eq!(invalid(PostFields::new("t", "".into(), true)), ["content"]);
        match PostQuery::new(0, -1, None) {
            Err(ServiceError::Invalid(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn limits_outside_1_to_100_are_rejected() {
        assert!(PostQuery::new(0, 0, None).is_err());
        assert!(PostQuery::new(-1, 0, None).is_err());
        assert!(PostQuery::new(101, 0, None).is_err());
        assert!(PostQuery::new(1, 0, None).is_ok());
        assert!(PostQuery::new(100, i64::MAX, None).is_ok());
    }

    #[test]
    fn a_negative_skip_is_rejected() {
        assert!(PostQuery::new(10, -1, None).is_err());
    }
}
