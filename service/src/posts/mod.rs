//! Posts: writing, reading, listing with search and paging, and who may see or change what.
//!
//! Visibility: a caller sees every published post and their own drafts; another person's
//! draft does not exist for them (404 everywhere). Only the owner may change a post (403 for
//! a published post of someone else).

mod changes;
pub mod cursors;
mod page;
mod query;
mod values;
mod view;
pub(crate) mod visibility;

use entity::{post, vote};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, Query, SubQueryStatement},
};

pub use changes::{PostChanges, PostFields};
pub use cursors::{Cursors, PageCursor, SortKey};
pub use query::{PostPage, PostQuery};
pub use values::{Content, PageSize, SEARCH_MAX_CHARS, Skip, Title};
pub use view::{Expected, PostState, PostTags, PostView};
pub(crate) use visibility::{is_visible, not_found};

use crate::{
    accounts::Profile,
    clock::now,
    database::Database,
    error::ServiceError,
    sessions::{Caller, ended_if_orphaned},
    sql::page::{PageQuery, PostFilter},
};
use page::read_page;

/// Lists the posts the caller may see. The caller is named by their token only: checking
/// that their session still exists is folded into the page's one statement.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn list(
    db: &Database,
    cursors: &Cursors,
    caller: &Caller,
    query: &PostQuery,
) -> Result<PostPage, ServiceError> {
    let filter = match &query.search {
        None => PostFilter::Everything,
        Some(search) => PostFilter::TitleContains(search),
    };
    page_of(db, cursors, caller, query, filter).await
}

/// Lists every hidden post, whoever's, newest first: what a moderator pages through (the
/// caller's role is checked before; `query`'s search is not used).
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub(crate) async fn list_hidden(
    db: &Database,
    cursors: &Cursors,
    caller: &Caller,
    query: &PostQuery,
) -> Result<PostPage, ServiceError> {
    page_of(db, cursors, caller, query, PostFilter::Hidden).await
}

async fn page_of(
    db: &Database,
    cursors: &Cursors,
    caller: &Caller,
    query: &PostQuery,
    filter: PostFilter<'_>,
) -> Result<PostPage, ServiceError> {
    let page = PageQuery {
        user_id: caller.user_id(),
        session_id: caller.session_id(),
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
pub async fn get(db: &Database, caller: &Caller, id: i64) -> Result<PostView, ServiceError> {
    let page = PageQuery {
        user_id: caller.user_id(),
        session_id: caller.session_id(),
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
/// [`ServiceError::Unauthorized`] when the caller's session has ended,
/// [`ServiceError::Unavailable`] or [`ServiceError::Internal`] from the database.
pub async fn create(
    db: &Database,
    caller: &Caller,
    fields: PostFields,
) -> Result<PostView, ServiceError> {
    let _writing = db.writing();
    let db = db.connection();
    let author = caller.account(db).await?;
    let created_at = now();
    let post = post::ActiveModel {
        title: Set(fields.title),
        content: Set(fields.content),
        published: Set(fields.published),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        owner_id: Set(author.id),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(ended_if_orphaned)?;
    Ok(PostView {
        post,
        owner: Profile::from(author.into_owned()),
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
    caller: &Caller,
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
/// [`ServiceError::Stale`] when it is in none of the expected states,
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn update(
    db: &Database,
    tags: &PostTags,
    caller: &Caller,
    id: i64,
    changes: PostChanges,
    expected: &Expected<'_>,
) -> Result<PostView, ServiceError> {
    let _writing = db.writing();
    caller.account(db.connection()).await?;
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
            .filter(post::Column::OwnerId.eq(caller.user_id()))
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
        if update.exec(db.connection()).await?.rows_affected > 0 {
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
    caller: &Caller,
    id: i64,
    expected: &Expected<'_>,
) -> Result<(), ServiceError> {
    let _writing = db.writing();
    caller.account(db.connection()).await?;
    let state = expected_view(db, tags, caller, id, expected)
        .await?
        .map(|view| view.state());
    let deleted = post::Entity::delete_many()
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.user_id()))
        .filter(in_state(id, state))
        .exec(db.connection())
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
    caller: &Caller,
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
async fn owned_view(db: &Database, caller: &Caller, id: i64) -> Result<PostView, ServiceError> {
    let view = get(db, caller, id).await?;
    if view.post.owner_id != caller.user_id() {
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
