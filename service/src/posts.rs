//! Posts: writing, reading, listing with search and paging, and who may see or change what.
//!
//! Visibility: a caller sees every published post and their own drafts; another person's
//! draft does not exist for them (404 everywhere). Only the owner may change a post (403 for
//! a published post of someone else).

use entity::post;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set,
};

use crate::{
    Person, ServiceError, User,
    database::Database,
    error::is_foreign_key_violation,
    fields, now,
    sessions::session_ended,
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

/// Lists the posts the caller may see. The caller is named by their token only: checking
/// that their session still exists is folded into the page's one statement.
///
/// # Errors
/// [`ServiceError::Unauthorized`] when the caller's session has ended.
pub async fn list(
    db: &Database,
    caller: Caller,
    query: &PostQuery,
) -> Result<Vec<PostView>, ServiceError> {
    let filter = match &query.search {
        None => PostFilter::Everything,
        Some(search) => PostFilter::TitleContains(search),
    };
    let page = PageQuery {
        caller,
        filter,
        limit: query.limit,
        skip: query.skip,
    };
    read_page(db, &page).await
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
    .map_err(|err| {
        // The account was deleted between authenticating the request and this insert: the
        // same 401 as for any request of a deleted account.
        if is_foreign_key_violation(&err) {
            session_ended()
        } else {
            err.into()
        }
    })?;
    Ok(PostView {
        post,
        owner: Person::from(caller.clone()),
        votes: 0,
    })
}

/// Replaces every writable field of the caller's post.
///
/// # Errors
/// [`ServiceError::NotFound`] or [`ServiceError::Forbidden`] as for any change.
pub async fn replace(
    db: &Database,
    caller: Caller,
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
    caller: Caller,
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
    get(db, caller, id).await
}

/// Deletes the caller's post; its votes go with it.
///
/// # Errors
/// [`ServiceError::NotFound`] or [`ServiceError::Forbidden`] as for any change.
pub async fn delete(db: &DatabaseConnection, caller: Caller, id: i64) -> Result<(), ServiceError> {
    owned_by(db, caller, id).await?;
    post::Entity::delete_many()
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::OwnerId.eq(caller.user_id))
        .exec(db)
        .await?;
    Ok(())
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
