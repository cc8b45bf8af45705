//! Posts: writing, reading, listing with search and paging, and who may see or change what.
//!
//! Visibility: a caller sees every published post and their own drafts; another person's
//! draft does not exist for them (404 everywhere). Only the owner may change a post (403 for
//! a published post of someone else).

use std::collections::HashSet;

use base64::Engine;
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
    fields,
    keys::DerivedKey,
    now,
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

    /// Whether `post` already has every given field as given.
    fn hold_in(&self, post: &post::Model) -> bool {
        self.title.as_ref().is_none_or(|title| *title == post.title)
            && self.content.as_ref().is_none_or(|c| *c == post.content)
            && self.published.is_none_or(|p| p == post.published)
    }

    /// The condition on a row that holds when some given field differs from it.
    fn differ(&self) -> Condition {
        let mut differ = Condition::any();
        if let Some(title) = &self.title {
            differ = differ.add(post::Column::Title.ne(title.as_str()));
        }
        if let Some(content) = &self.content {
            differ = differ.add(post::Column::Content.ne(content.as_str()));
        }
        if let Some(published) = self.published {
            differ = differ.add(post::Column::Published.ne(published));
        }
        differ
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
    /// A `cursor` (from a page's [`PostPage::next`]) is a position: the page starts after
    /// the last post of the page that issued it. A `limit` or `search` given beside it is
    /// used; one left out is the cursor's page's. An empty `cursor` is none; with a cursor,
    /// `skip` must be 0.
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
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
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
        Ok(Self {
            limit: limit.unwrap_or(cursor.limit),
            skip: 0,
            search: search.or(cursor.search),
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
    tags: &PostTags,
    caller: Caller,
    id: i64,
    fields: PostFields,
    expected: &Expected<'_>,
) -> Result<PostView, ServiceError> {
    let changes = PostChanges {
        title: Some(fields.title),
        content: Some(fields.content),
        published: Some(fields.published),
    };
    update(db, tags, caller, id, changes, expected).await
}

/// Changes the given fields of the caller's post, if it is in an `expected` state: the
/// state is read and checked against the expected tags first, then required by the update's
/// own statement, so that of two writes expecting one state one succeeds, and the database's
/// work does not grow with the number of tags. A write that changes nothing (the fields are
/// already as given) writes nothing: the version, `updated_at` and the tag stay, and no event
/// is recorded.
///
/// # Errors
/// [`ServiceError::NotFound`] when the post does not exist or is someone else's draft,
/// [`ServiceError::Forbidden`] when it is someone else's published post,
/// [`ServiceError::Stale`] when it is in none of the expected states.
pub async fn update(
    db: &Database,
    tags: &PostTags,
    caller: Caller,
    id: i64,
    changes: PostChanges,
    expected: &Expected<'_>,
) -> Result<PostView, ServiceError> {
    let state = match expected_view(db, tags, caller, id, expected).await? {
        Some(view) if changes.hold_in(&view.post) => return Ok(view),
        view => view.map(|view| view.state()),
    };
    if !changes.is_empty() {
        let mut update = post::Entity::update_many()
            .col_expr(post::Column::UpdatedAt, Expr::value(now()))
            .col_expr(
                post::Column::Version,
                Expr::col(post::Column::Version).add(1),
            )
            .filter(post::Column::Id.eq(id))
            .filter(post::Column::OwnerId.eq(caller.user_id))
            .filter(in_state(id, state))
            // A row already as asked is left alone: no version, no event.
            .filter(changes.differ());
        if let Some(title) = changes.title.clone() {
            update = update.col_expr(post::Column::Title, Expr::value(title));
        }
        if let Some(content) = changes.content.clone() {
            update = update.col_expr(post::Column::Content, Expr::value(content));
        }
        if let Some(published) = changes.published {
            update = update.col_expr(post::Column::Published, Expr::value(published));
        }
        if update.exec(&**db).await?.rows_affected > 0 {
            return get(db, caller, id).await;
        }
    }
    // Nothing was written: the post is not the caller's, it left the expected state, or it
    // was already as asked.
    let view = owned_view(db, caller, id).await?;
    match state {
        Some(state) if state != view.state() || !changes.hold_in(&view.post) => {
            Err(stale(tags, &view))
        }
        _ => Ok(view),
    }
}

/// Deletes the caller's post, if it is in an `expected` state; its votes go with it.
///
/// # Errors
/// As for [`update`].
pub async fn delete(
    db: &Database,
    tags: &PostTags,
    caller: Caller,
    id: i64,
    expected: &Expected<'_>,
) -> Result<(), ServiceError> {
    let state = expected_view(db, tags, caller, id, expected)
        .await?
        .map(|view| view.state());
    let deleted = post::Entity::delete_many()
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.user_id))
        .filter(in_state(id, state))
        .exec(&**db)
        .await?;
    if deleted.rows_affected == 0 {
        let view = owned_view(db, caller, id).await?;
        return Err(stale(tags, &view));
    }
    Ok(())
}

/// The caller's post as it is, when a write expects it in certain states and it is in one
/// of them; `None` when the write expects any state.
async fn expected_view(
    db: &Database,
    tags: &PostTags,
    caller: Caller,
    id: i64,
    expected: &Expected<'_>,
) -> Result<Option<PostView>, ServiceError> {
    let Expected::OneOf(accepted) = expected else {
        return Ok(None);
    };
    let view = owned_view(db, caller, id).await?;
    if !accepted.contains(tags.tag(&view).as_str()) {
        return Err(stale(tags, &view));
    }
    Ok(Some(view))
}

/// The post, if the caller may change it.
async fn owned_view(db: &Database, caller: Caller, id: i64) -> Result<PostView, ServiceError> {
    let view = get(db, caller, id).await?;
    if view.post.owner_id != caller.user_id {
        // Visible and not theirs: published.
        return Err(ServiceError::Forbidden(format!(
            "post {id} belongs to another user; only its owner may change it"
        )));
    }
    Ok(view)
}

fn stale(tags: &PostTags, current: &PostView) -> ServiceError {
    ServiceError::Stale {
        detail: "the post has changed since the version the request names; read it again".into(),
        current_tag: tags.tag(current),
    }
}

/// The condition on post `id`'s row that holds while it is in `state` (any, for `None`): one
/// version and one vote count, whatever number of tags the request named.
fn in_state(id: i64, state: Option<PostState>) -> Condition {
    let Some(state) = state else {
        return Condition::all();
    };
    let votes = Query::select()
        .expr(Expr::col(vote::Column::PostId).count())
        .from(vote::Entity)
        .and_where(vote::Column::PostId.eq(id))
        .to_owned();
    Condition::all()
        .add(post::Column::Version.eq(state.version))
        .add(Expr::SubQuery(None, Box::new(SubQueryStatement::from(votes))).eq(state.votes))
}

/// One state of a post: its version, raised by every change of its fields, and its vote
/// count. Two reads of a post in the same state show the same post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostState {
    pub version: i64,
    pub votes: i64,
}

impl PostView {
    pub fn state(&self) -> PostState {
        PostState {
            version: self.post.version,
            votes: self.votes,
        }
    }
}

/// Names the states of posts with opaque tags (what `ETag` carries), under a key derived from
/// the service's secret: a tag changes whenever the post as a reader sees it changes (its
/// fields or its votes) and only then, and tells nothing of the post, such as how often it
/// was edited.
#[derive(Clone)]
pub struct PostTags {
    key: DerivedKey,
}

impl PostTags {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: DerivedKey::new(secret, "social-api post tag"),
        }
    }

    /// The tag of the post in the state `view` shows: 128 bits in base64url.
    pub fn tag(&self, view: &PostView) -> String {
        let PostState { version, votes } = view.state();
        let signature = self
            .key
            .sign(format!("{}.{version}.{votes}", view.post.id).as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    }
}

/// The states a write accepts the post in: any, or those whose tags are named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected<'a> {
    Any,
    OneOf(HashSet<&'a str>),
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
    fn a_cursor_is_a_position_beside_which_limit_and_search_are_used() {
        let after = SortKey {
            created_at: chrono::DateTime::from_timestamp_micros(1_796_033_088_302_370).unwrap(),
            id: 7,
        };
        let cursor = cursors().encode(&PageCursor {
            after,
            search: Some("abc".into()),
            limit: 5,
        });
        let next = |limit, skip, search: Option<&str>, cursor: &str| {
            PostQuery::new(
                limit,
                skip,
                search.map(str::to_owned),
                Some(cursor),
                &cursors(),
            )
        };
        let page = next(None, 0, None, &cursor).expect("the cursor alone");
        assert_eq!((page.limit(), page.search()), (5, Some("abc")));
        assert_eq!(page.after, Some(after));
        let page = next(Some(7), 0, Some("abd"), &cursor).expect("another limit and search");
        assert_eq!((page.limit(), page.search()), (7, Some("abd")));
        assert_eq!(page.after, Some(after));
        let page = next(Some(3), 0, Some(""), "").expect("an empty cursor is none");
        assert_eq!((page.limit(), page.search(), page.after), (3, None, None));
        for (skip, cursor) in [(1, cursor.as_str()), (0, "garbage")] {
            match next(None, skip, None, cursor) {
                Err(ServiceError::Invalid(errors)) => {
                    assert_eq!(errors[0].field, "cursor", "{skip} {cursor}");
                }
                other => panic!("accepted: {other:?}"),
            }
        }
    }
}
