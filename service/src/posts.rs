//! Posts: writing, reading, listing with search and paging, and who may see or change what.
//!
//! Visibility: a caller sees every published post and their own drafts; another person's
//! draft does not exist for them (404 everywhere). Only the owner may change a post (403 for
//! a published post of someone else).

use entity::{post, vote};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query, SubQueryStatement},
};

use crate::{
    Person, ServiceError, User,
    cursors::{Cursors, PageCursor, SortKey},
    database::Database,
    fields, now,
    sessions::ended_if_orphaned,
    sql::page::{PageQuery, PostFilter, read_page},
    tokens::Caller,
};

/// A post as a reader sees it: with its owner and the number of votes it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostView {
    pub post: post::Model,
    pub owner: Person,
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

/// One page of a listing, newest first: by offset, or after a cursor.
#[derive(Clone, Debug)]
pub struct PostQuery {
    limit: u64,
    skip: u64,
    search: Option<String>,
    after: Option<SortKey>,
}

impl PostQuery {
    /// `limit` and `skip` as [`fields::limit`] and [`fields::skip`] say (`limit` left out is
    /// [`fields::LIMIT_DEFAULT`]); `search`, when given and not empty, keeps the posts whose
    /// title contains it, ignoring case, with `%`, `_` and `\` taken literally.
    ///
    /// A `cursor` (from a page's [`PostPage::next`]) asks for the page after the one that
    /// issued it, with its search and page size: `search` and `limit`, when given, must be
    /// those, and `skip` must be 0.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each of `limit`, `skip` and `cursor` that breaks its
    /// rule.
    pub fn new(
        limit: Option<i64>,
        skip: i64,
        search: Option<String>,
        cursor: Option<&str>,
        cursors: &Cursors,
    ) -> Result<Self, ServiceError> {
        let (limit, skip) = fields::both(
            ("limit", limit.map(fields::limit).transpose()),
            ("skip", fields::skip(skip)),
        )?;
        let search = search.filter(|s| !s.is_empty());
        let Some(cursor) = cursor else {
            return Ok(Self {
                limit: limit.unwrap_or(fields::LIMIT_DEFAULT.unsigned_abs()),
                skip,
                search,
                after: None,
            });
        };
        let invalid = |requirement: String| ServiceError::invalid("cursor", requirement);
        let cursor = cursors
            .decode(cursor)
            .map_err(|e| invalid(e.into_owned()))?;
        if skip > 0 {
            return Err(invalid("cannot be combined with a `skip` above 0".into()));
        }
        if search.is_some() && search != cursor.search {
            return Err(invalid(
                "belongs to another search; leave `search` out, or list from the start".into(),
            ));
        }
        if limit.is_some_and(|limit| limit != cursor.limit) {
            return Err(invalid(format!(
                "belongs to pages of {} posts; leave `limit` out, or list from the start",
                cursor.limit
            )));
        }
        Ok(Self {
            limit: cursor.limit,
            skip: 0,
            search: cursor.search,
            after: Some(cursor.after),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn search(&self) -> Option<&str> {
        self.search.as_deref()
    }
}

/// A page of posts, and the cursor of the page after it when this one is full.
#[derive(Clone, Debug)]
pub struct PostPage {
    pub posts: Vec<PostView>,
    pub next: Option<String>,
}

/// Lists the posts the caller may see. The caller is named by their token only: checking
/// that their session still exists is folded into the page's one statement.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn list(
    db: &Database,
    cursors: &Cursors,
    caller: Caller,
    query: &PostQuery,
) -> Result<PostPage, ServiceError> {
    let filter = match &query.search {
        None => PostFilter::Everything,
        Some(search) => PostFilter::TitleContains(search),
    };
    let page = PageQuery {
        caller,
        filter,
        limit: query.limit,
        skip: query.skip,
        after: query.after,
    };
    let posts = read_page(db, &page).await?;
    let next = match posts.last() {
        Some(last) if posts.len() as u64 == query.limit => Some(cursors.encode(&PageCursor {
            after: SortKey {
                created_at: last.post.created_at,
                id: last.post.id,
            },
            search: query.search.clone(),
            limit: query.limit,
        })),
        _ => None,
    };
    Ok(PostPage { posts, next })
}

/// # Errors
/// [`ServiceError::NotFound`] when the post does not exist or is someone else's draft,
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn get(db: &Database, caller: Caller, id: i64) -> Result<PostView, ServiceError> {
    let page = PageQuery {
        caller,
        filter: PostFilter::Id(id),
        limit: 1,
        skip: 0,
        after: None,
    };
    read_page(db, &page)
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
    .map_err(ended_if_orphaned)?;
    Ok(PostView {
        post,
        owner: Person::from(caller.clone()),
        votes: 0,
    })
}

/// Replaces every writable field of the caller's post, if it is in an `expected` state.
///
/// # Errors
/// As for [`update`].
pub async fn replace(
    db: &Database,
    caller: Caller,
    id: i64,
    fields: PostFields,
    expected: &Expected,
) -> Result<PostView, ServiceError> {
    let changes = PostChanges {
        title: Some(fields.title),
        content: Some(fields.content),
        published: Some(fields.published),
    };
    update(db, caller, id, changes, expected).await
}

/// Changes the given fields of the caller's post, if it is in an `expected` state: decided
/// by the update's own statement, so that of two writes expecting one state, one succeeds.
///
/// # Errors
/// [`ServiceError::NotFound`] when the post does not exist or is someone else's draft,
/// [`ServiceError::Forbidden`] when it is someone else's published post,
/// [`ServiceError::Stale`] when it is in none of the expected states.
pub async fn update(
    db: &Database,
    caller: Caller,
    id: i64,
    changes: PostChanges,
    expected: &Expected,
) -> Result<PostView, ServiceError> {
    if changes.is_empty() {
        // Nothing to write: the post as it is, if the caller may change it.
        owned_by(db, caller, id).await?;
        let view = get(db, caller, id).await?;
        if !expected.admits(view.state()) {
            return Err(stale(view.state()));
        }
        return Ok(view);
    }
    let mut update = post::Entity::update_many()
        .col_expr(post::Column::UpdatedAt, Expr::value(now()))
        .col_expr(
            post::Column::Version,
            Expr::col(post::Column::Version).add(1),
        )
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.user_id))
        .filter(expected.condition(id));
    if let Some(title) = changes.title {
        update = update.col_expr(post::Column::Title, Expr::value(title));
    }
    if let Some(content) = changes.content {
        update = update.col_expr(post::Column::Content, Expr::value(content));
    }
    if let Some(published) = changes.published {
        update = update.col_expr(post::Column::Published, Expr::value(published));
    }
    if update.exec(&**db).await?.rows_affected == 0 {
        return Err(why_unchanged(db, caller, id).await);
    }
    get(db, caller, id).await
}

/// Deletes the caller's post, if it is in an `expected` state; its votes go with it.
///
/// # Errors
/// As for [`update`].
pub async fn delete(
    db: &Database,
    caller: Caller,
    id: i64,
    expected: &Expected,
) -> Result<(), ServiceError> {
    let deleted = post::Entity::delete_many()
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.user_id))
        .filter(expected.condition(id))
        .exec(&**db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(why_unchanged(db, caller, id).await);
    }
    Ok(())
}

/// Why a conditional write of the caller's changed no row: the post is not there for them,
/// not theirs, or in another state than expected.
async fn why_unchanged(db: &Database, caller: Caller, id: i64) -> ServiceError {
    if let Err(err) = owned_by(db, caller, id).await {
        return err;
    }
    match get(db, caller, id).await {
        Ok(view) => stale(view.state()),
        Err(err) => err,
    }
}

fn stale(current: PostState) -> ServiceError {
    ServiceError::Stale {
        detail: "the post has changed since the version the request names; read it again".into(),
        current_tag: current.tag(),
    }
}

/// One state of a post: its version, raised by every change of its fields, and its vote
/// count. Two reads of a post in the same state show the same post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostState {
    pub version: i64,
    pub votes: i64,
}

impl PostState {
    /// The state as an opaque tag (what `ETag` carries): `{version}.{votes}`.
    pub fn tag(self) -> String {
        format!("{}.{}", self.version, self.votes)
    }

    /// The state a tag names; `None` for text no state was ever tagged with.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let (version, votes) = tag.split_once('.')?;
        let number = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        Some(Self {
            version: number(version)?,
            votes: number(votes)?,
        })
    }
}

impl PostView {
    pub fn state(&self) -> PostState {
        PostState {
            version: self.post.version,
            votes: self.votes,
        }
    }
}

/// The states a write accepts the post in: any, or one of those named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    Any,
    OneOf(Vec<PostState>),
}

impl Expected {
    fn admits(&self, state: PostState) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(states) => states.contains(&state),
        }
    }

    /// The condition on post `id`'s row that holds when it is in an accepted state.
    fn condition(&self, id: i64) -> Condition {
        let Self::OneOf(states) = self else {
            return Condition::all();
        };
        let votes = Query::select()
            .expr(Expr::col(vote::Column::PostId).count())
            .from(vote::Entity)
            .and_where(vote::Column::PostId.eq(id))
            .to_owned();
        let votes = Expr::SubQuery(None, Box::new(SubQueryStatement::from(votes)));
        states.iter().fold(
            // No state named: no row qualifies.
            Condition::any().add(Expr::value(false)),
            |any, state| {
                any.add(
                    Condition::all()
                        .add(post::Column::Version.eq(state.version))
                        .add(votes.clone().eq(state.votes)),
                )
            },
        )
    }
}

/// Whether `caller` may see the post: it exists and is published or theirs.
pub(crate) async fn is_visible(
    db: &DatabaseConnection,
    caller: Caller,
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
    caller: Caller,
    id: i64,
) -> Result<post::Model, ServiceError> {
    match post::Entity::find_by_id(id).one(db).await? {
        Some(post) if post.owner_id == caller.user_id => Ok(post),
        Some(post) if post.published => Err(ServiceError::Forbidden(format!(
            "post {id} belongs to another user; only its owner may change it"
        ))),
        _ => Err(not_found(id)),
    }
}

fn visibility(caller: Caller) -> Condition {
    Condition::any()
        .add(post::Column::Published.eq(true))
        .add(post::Column::OwnerId.eq(caller.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        match PostQuery::new(Some(0), -1, None, None, &cursors()) {
            Err(ServiceError::Invalid(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("accepted: {other:?}"),
        }
    }

    fn cursors() -> Cursors {
        Cursors::new(b"a test secret")
    }

    fn query(limit: i64, skip: i64) -> Result<PostQuery, ServiceError> {
        PostQuery::new(Some(limit), skip, None, None, &cursors())
    }

    #[test]
    fn limits_outside_1_to_100_are_rejected() {
        assert!(query(0, 0).is_err());
        assert!(query(-1, 0).is_err());
        assert!(query(101, 0).is_err());
        assert!(query(1, 0).is_ok());
        assert!(query(100, i64::MAX).is_ok());
    }

    #[test]
    fn a_negative_skip_is_rejected() {
        assert!(query(10, -1).is_err());
    }

    #[test]
    fn a_cursor_carries_its_search_and_limit_and_takes_no_skip() {
        let cursor = cursors().encode(&PageCursor {
            after: SortKey {
                created_at: chrono::Utc::now(),
                id: 7,
            },
            search: Some("abc".into()),
            limit: 5,
        });
        let next = |limit, skip, search: Option<&str>| {
            PostQuery::new(
                limit,
                skip,
                search.map(str::to_owned),
                Some(&cursor),
                &cursors(),
            )
        };
        let page = next(None, 0, None).expect("the cursor alone");
        assert_eq!((page.limit(), page.search()), (5, Some("abc")));
        assert!(
            next(Some(5), 0, Some("abc")).is_ok(),
            "the same limit and search"
        );
        for (limit, skip, search) in [(None, 1, None), (None, 0, Some("abd")), (Some(6), 0, None)] {
            match next(limit, skip, search) {
                Err(ServiceError::Invalid(errors)) => {
                    assert_eq!(errors[0].field, "cursor", "{limit:?} {skip} {search:?}");
                }
                other => panic!("accepted: {other:?}"),
            }
        }
    }
}
