use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use service::posts::{self, PostPage, PostQuery, PostTags, PostView, Skip};

use super::ApiTags;
use crate::{
    body::JsonBody,
    conditional::{etag, if_match, none_match, quoted},
    fields::{AllValid, Checked, Cursor, EntityTags, Id, Limit, Search},
    problem::{ApiError, ChangeErrors, CreateErrors, DeleteErrors, ListErrors, ReadErrors},
    rate_limit::{Limited, Writer},
    schemas::{PostIn, PostOut, PostPatch},
    security::Authenticated,
    state::AppState,
};

pub struct PostsApi;

#[derive(ApiResponse)]
enum PostList {
    /// A page of posts, newest first.
    #[oai(status = 200)]
    Page(
        Json<Vec<PostOut>>,
        /// `<…>; rel="next"` (RFC 8288) on a full page: the URL of the page after it, by
        /// cursor. The last page has none.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum PostCreated {
    /// The post was created.
    #[oai(status = 201)]
    Created(
        Json<PostOut>,
        #[oai(header = "Location")] String,
        /// The post's version, for `If-Match` and `If-None-Match`.
        #[oai(header = "ETag")]
        String,
    ),
}

#[derive(ApiResponse)]
enum PostRead {
    /// The post.
    #[oai(status = 200)]
    Found(
        Json<PostOut>,
        /// The post's version, for `If-Match` and `If-None-Match`.
        #[oai(header = "ETag")]
        String,
    ),
    /// The post is as the `If-None-Match` version says: no body.
    #[oai(status = 304)]
    NotModified(
        /// The post's version.
        #[oai(header = "ETag")]
        String,
    ),
}

#[derive(ApiResponse)]
enum PostChanged {
    /// The post as it is now.
    #[oai(status = 200)]
    Changed(
        Json<PostOut>,
        /// The post's new version.
        #[oai(header = "ETag")]
        String,
    ),
}

impl PostChanged {
    fn new(tags: &PostTags, view: PostView) -> Self {
        let tag = etag(tags, &view);
        Self::Changed(Json(view.into()), tag)
    }
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
    /// characters. A full page carries `Link: <…>; rel="next"`, the page after it by
    /// cursor: paging by cursor never shows a post twice, never misses one that existed when
    /// paging began and still exists, and costs the same at any depth.
    #[oai(path = "/posts", method = "get", operation_id = "listPosts")]
    async fn list_posts(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        /// How many posts to return: when left out, 10, or with a `cursor` the size of the
        /// page that issued it.
        limit: Query<Checked<Limit>>,
        /// How many posts to pass over first; with a `cursor`, 0.
        skip: Query<Checked<Skip>>,
        /// A piece of the title to look for; when left out with a `cursor`, the search of the
        /// page that issued it.
        search: Query<Checked<Search>>,
        /// A position: the page after the one whose `Link` gave it. A `limit` or `search`
        /// given beside it is used; empty is the same as none.
        cursor: Query<Checked<Cursor>>,
    ) -> Result<PostList, ApiError<ListErrors>> {
        let ((limit, skip), (search, cursor)) = (
            (limit.0.named("limit"), skip.0.named("skip")).all_valid(),
            (search.0.named("search"), cursor.0.named("cursor")).all_valid(),
        )
            .all_valid()?;
        let query = PostQuery::new(limit, skip, search, cursor.as_deref(), &state.cursors)?;
        let PostPage { posts, next } =
            posts::list(&state.db, &state.cursors, &auth.caller, &query).await?;
        let link = next.map(|cursor| next_link("/posts", &query, &cursor));
        Ok(PostList::Page(
            Json(posts.into_iter().map(PostOut::from).collect()),
            link,
        ))
    }

    /// Create a post
    ///
    /// The caller is its owner. `published: false` makes a draft, which only its owner sees.
    /// `Location` names the new post, `ETag` its version.
    #[oai(path = "/posts", method = "post", operation_id = "createPost")]
    async fn create_post(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        body: JsonBody<PostIn>,
    ) -> Result<Limited<PostCreated>, ApiError<CreateErrors>> {
        let post = posts::create(&state.db, &writer.caller, body.0.try_into()?).await?;
        let location = format!("/posts/{}", post.post.id);
        let tag = etag(&state.tags, &post);
        Ok(Limited(PostCreated::Created(
            Json(post.into()),
            location,
            tag,
        )))
    }

    /// Read a post
    ///
    /// Another person's draft is not found. With `If-None-Match` naming the post's current
    /// version, 304 and no body.
    #[oai(path = "/posts/:id", method = "get", operation_id = "getPost")]
    async fn get_post(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        /// `ETag`s of versions the caller holds (weak comparison), or `*`.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Checked<EntityTags>>,
    ) -> Result<PostRead, ApiError<ReadErrors>> {
        let (id, if_none_match) =
            (id.0.named("id"), if_none_match.0.named("If-None-Match")).all_valid()?;
        let post = posts::get(&state.db, &auth.caller, id).await?;
        let tag = state.tags.tag(&post);
        if none_match(if_none_match.as_deref(), &tag) {
            return Ok(PostRead::NotModified(quoted(&tag)));
        }
        let tag = quoted(&tag);
        Ok(PostRead::Found(Json(post.into()), tag))
    }

    /// Replace a post
    ///
    /// Only its owner may. A `published` left out becomes `true`. With `If-Match`, only if
    /// the post is at one of the versions it names (else 412, and nothing changes).
    #[oai(path = "/posts/:id", method = "put", operation_id = "replacePost")]
    async fn replace_post(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        /// `ETag`s of the versions the change is meant for (strong comparison), or `*`.
        #[oai(name = "If-Match")]
        if_match_header: Header<Checked<EntityTags>>,
        body: JsonBody<PostIn>,
    ) -> Result<Limited<PostChanged>, ApiError<ChangeErrors>> {
        let (id, if_match_header, fields) = (
            id.0.named("id"),
            if_match_header.0.named("If-Match"),
            body.0.try_into(),
        )
            .all_valid()?;
        let expected = if_match(if_match_header.as_deref());
        let post = posts::replace(
            &state.db,
            &state.tags,
            &writer.caller,
            id,
            fields,
            &expected,
        )
        .await?;
        Ok(Limited(PostChanged::new(&state.tags, post)))
    }

    /// Change some fields of a post
    ///
    /// Only its owner may. Fields left out stay as they are; `null` is refused. With
    /// `If-Match`, only if the post is at one of the versions it names (else 412, and
    /// nothing changes).
    #[oai(path = "/posts/:id", method = "patch", operation_id = "updatePost")]
    async fn update_post(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        /// `ETag`s of the versions the change is meant for (strong comparison), or `*`.
        #[oai(name = "If-Match")]
        if_match_header: Header<Checked<EntityTags>>,
        body: JsonBody<PostPatch>,
    ) -> Result<Limited<PostChanged>, ApiError<ChangeErrors>> {
        let (id, if_match_header, changes) = (
            id.0.named("id"),
            if_match_header.0.named("If-Match"),
            body.0.try_into(),
        )
            .all_valid()?;
        let expected = if_match(if_match_header.as_deref());
        let post = posts::update(
            &state.db,
            &state.tags,
            &writer.caller,
            id,
            changes,
            &expected,
        )
        .await?;
        Ok(Limited(PostChanged::new(&state.tags, post)))
    }

    /// Delete a post
    ///
    /// Only its owner may; its votes go with it. With `If-Match`, only if the post is at
    /// one of the versions it names (else 412, and nothing changes).
    #[oai(path = "/posts/:id", method = "delete", operation_id = "deletePost")]
    async fn delete_post(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        /// `ETag`s of the versions the deletion is meant for (strong comparison), or `*`.
        #[oai(name = "If-Match")]
        if_match_header: Header<Checked<EntityTags>>,
    ) -> Result<Limited<PostDeleted>, ApiError<DeleteErrors>> {
        let (id, if_match_header) =
            (id.0.named("id"), if_match_header.0.named("If-Match")).all_valid()?;
        let expected = if_match(if_match_header.as_deref());
        posts::delete(&state.db, &state.tags, &writer.caller, id, &expected).await?;
        Ok(Limited(PostDeleted::Deleted))
    }
}

/// `Link` to the page after `query`'s, by `cursor`: a relative URL (it resolves against
/// wherever the service is reached, any host or proxy) that repeats the page size and the
/// search.
/// The `Link` to the page after a full one of the listing at `path`, by cursor.
pub(super) fn next_link(path: &str, query: &PostQuery, cursor: &str) -> String {
    let limit = query.limit().to_string();
    let mut params = vec![("limit", limit.as_str())];
    if let Some(search) = query.search() {
        params.push(("search", search));
    }
    params.push(("cursor", cursor));
    let params = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("<{path}?{params}>; rel=\"next\"")
}
