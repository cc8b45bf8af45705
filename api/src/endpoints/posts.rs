use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use service::posts::{self, PostQuery};

use super::ApiTags;
use crate::{
    body::JsonBody,
    fields::{AllValid, Checked, Id, Limit, Skip},
    problem::{ApiError, ChangeErrors, CreateErrors, DeleteErrors, ListErrors, ReadErrors},
    schemas::{PostIn, PostOut, PostPatch},
    security::{CallerAccount, CallerFromToken},
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
        caller: CallerFromToken,
        state: Data<&AppState>,
        /// How many posts to return.
        limit: Query<Checked<Limit>>,
        /// How many posts to pass over first.
        skip: Query<Checked<Skip>>,
        /// A piece of the title to look for.
        search: Query<Option<String>>,
    ) -> Result<Json<Vec<PostOut>>, ApiError<ListErrors>> {
        let (limit, skip) = (limit.0.named("limit"), skip.0.named("skip")).all_valid()?;
        let query = PostQuery::new(limit, skip, search.0)?;
        let page = posts::list(&state.db, caller.0, &query).await?;
        Ok(Json(page.into_iter().map(PostOut::from).collect()))
    }

    /// Create a post
    #[oai(path = "/posts", method = "post", operation_id = "createPost")]
    async fn create_post(
        &self,
        caller: CallerAccount,
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
        caller: CallerFromToken,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<Json<PostOut>, ApiError<ReadErrors>> {
        let id = id.0.named("id")?;
        Ok(Json(posts::get(&state.db, caller.0, id).await?.into()))
    }

    /// Replace a post
    ///
    /// Only its owner may. A `published` left out becomes `true`.
    #[oai(path = "/posts/:id", method = "put", operation_id = "replacePost")]
    async fn replace_post(
        &self,
        caller: CallerAccount,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        body: JsonBody<PostIn>,
    ) -> Result<Json<PostOut>, ApiError<ChangeErrors>> {
        let (id, fields) = (id.0.named("id"), body.0.try_into()).all_valid()?;
        let post = posts::replace(&state.db, caller.1, id, fields).await?;
        Ok(Json(post.into()))
    }

    /// Change some fields of a post
    ///
    /// Only its owner may. Fields left out stay as they are; `null` is refused.
    #[oai(path = "/posts/:id", method = "patch", operation_id = "updatePost")]
    async fn update_post(
        &self,
        caller: CallerAccount,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        body: JsonBody<PostPatch>,
    ) -> Result<Json<PostOut>, ApiError<ChangeErrors>> {
        let (id, changes) = (id.0.named("id"), body.0.try_into()).all_valid()?;
        let post = posts::update(&state.db, caller.1, id, changes).await?;
        Ok(Json(post.into()))
    }

    /// Delete a post
    ///
    /// Only its owner may; its votes go with it.
    #[oai(path = "/posts/:id", method = "delete", operation_id = "deletePost")]
    async fn delete_post(
        &self,
        caller: CallerAccount,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<PostDeleted, ApiError<DeleteErrors>> {
        posts::delete(&state.db, caller.1, id.0.named("id")?).await?;
        Ok(PostDeleted::Deleted)
    }
}
