use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use service::{
    ServiceError,
    posts::{self, PostChanges, PostFields, PostQuery},
};

use super::ApiTags;
use crate::{
    body::JsonBody,
    problem::{ApiError, ChangeErrors, CreateErrors, DeleteErrors, ListErrors, ReadErrors},
    schemas::{PostIn, PostOut, PostPatch},
    security::{Caller, CallerId},
    state::AppState,
};

pub struct PostsApi;

#[derive(ApiResponse)]
enum PostCreated {
    /// The post was created.
    #[oai(status = 201)]
    Created(Json<PostOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum PostDeleted {
    /// The post and its votes are gone.
    #[oai(status = 204)]
    Deleted,
}

fn default_limit() -> i64 {
    10
}

fn default_skip() -> i64 {
    0
}

impl TryFrom<PostIn> for PostFields {
    type Error = ServiceError;

    fn try_from(body: PostIn) -> Result<Self, ServiceError> {
        PostFields::new(&body.title.0, body.content.0, body.published)
    }
}

impl TryFrom<PostPatch> for PostChanges {
    type Error = ServiceError;

    fn try_from(body: PostPatch) -> Result<Self, ServiceError> {
        fn present<T>(
            field: &'static str,
            value: MaybeUndefined<T>,
        ) -> Result<Option<T>, ServiceError> {
            match value {
                MaybeUndefined::Undefined => Ok(None),
                MaybeUndefined::Null => Err(ServiceError::Invalid {
                    field,
                    message: "must not be null; leave the field out to keep it".into(),
                }),
                MaybeUndefined::Value(value) => Ok(Some(value)),
            }
        }
        PostChanges::new(
            present("title", body.title)?.map(|t| t.0).as_deref(),
            present("content", body.content)?.map(|c| c.0),
            present("published", body.published)?,
        )
    }
}

#[OpenApi(tag = "ApiTags::Posts")]
impl PostsApi {
    /// List posts
    ///
    /// Newest first. The caller sees every published post and their own drafts. `search`
    /// keeps the posts whose title contains it, ignoring case; `%` and `_` are ordinary
    /// characters.
    #[oai(path = "/posts", method = "get", operation_id = "listPosts")]
    async fn list_posts(
        &self,
        caller: CallerId,
        state: Data<&AppState>,
        /// How many posts to return, 1 to 100.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// How many posts to pass over first.
        #[oai(default = "default_skip", validator(minimum(value = "0")))]
        skip: Query<i64>,
        /// A piece of the title to look for.
        search: Query<Option<String>>,
    ) -> Result<Json<Vec<PostOut>>, ApiError<ListErrors>> {
        let query = PostQuery::new(limit.0, skip.0, search.0)?;
        let page = posts::list(&state.db, caller.0, &query).await?;
        Ok(Json(page.into_iter().map(PostOut::from).collect()))
    }

    /// Create a post
    #[oai(path = "/posts", method = "post", operation_id = "createPost")]
    async fn create_post(
        &self,
        caller: Caller,
        state: Data<&AppState>,
        body: JsonBody<PostIn>,
    ) -> Result<PostCreated, ApiError<CreateErrors>> {
        let post = posts::create(&state.db, &caller.0, body.0.try_into()?).await?;
        let location = format!("/posts/{}", post.post.id);
        Ok(PostCreated::Created(Json(post.into()), location))
    }

    /// Read a post
    ///
    /// Another person's draft is not found.
    #[oai(path = "/posts/:id", method = "get", operation_id = "getPost")]
    async fn get_post(
        &self,
        caller: CallerId,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] id: Path<i64>,
    ) -> Result<Json<PostOut>, ApiError<ReadErrors>> {
        Ok(Json(posts::get(&state.db, caller.0, id.0).await?.into()))
    }

    /// Replace a post
    ///
    /// Only its owner may. A `published` left out becomes `true`.
    #[oai(path = "/posts/:id", method = "put", operation_id = "replacePost")]
    async fn replace_post(
        &self,
        caller: Caller,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] id: Path<i64>,
        body: JsonBody<PostIn>,
    ) -> Result<Json<PostOut>, ApiError<ChangeErrors>> {
        let post = posts::replace(&state.db, &caller.0, id.0, body.0.try_into()?).await?;
        Ok(Json(post.into()))
    }

    /// Change some fields of a post
    ///
    /// Only its owner may. Fields left out stay as they are; `null` is refused.
    #[oai(path = "/posts/:id", method = "patch", operation_id = "updatePost")]
    async fn update_post(
        &self,
        caller: Caller,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] id: Path<i64>,
        body: JsonBody<PostPatch>,
    ) -> Result<Json<PostOut>, ApiError<ChangeErrors>> {
        let post = posts::update(&state.db, &caller.0, id.0, body.0.try_into()?).await?;
        Ok(Json(post.into()))
    }

    /// Delete a post
    ///
    /// Only its owner may; its votes go with it.
    #[oai(path = "/posts/:id", method = "delete", operation_id = "deletePost")]
    async fn delete_post(
        &self,
        caller: Caller,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "1")))] id: Path<i64>,
    ) -> Result<PostDeleted, ApiError<DeleteErrors>> {
        posts::delete(&state.db, &caller.0, id.0).await?;
        Ok(PostDeleted::Deleted)
    }
}
