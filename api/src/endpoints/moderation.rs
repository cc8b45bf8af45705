use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use service::{
    moderation,
    posts::{PostPage, PostQuery, Skip},
};

use super::{ApiTags, posts::next_link};
use crate::{
    body::JsonBody,
    fields::{AllValid, Checked, Cursor, Id, Limit},
    problem::{ApiError, ModerationErrors, ModerationListErrors, ModerationUndoErrors, RoleErrors},
    schemas::{Account, Hiding, ModerationEntry, PostOut, RoleUpdate, SuspensionIn},
    security::Authenticated,
    state::AppState,
};

pub struct ModerationApi;

#[derive(ApiResponse)]
enum Done {
    /// Done, and recorded in the moderation log.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum HiddenList {
    /// A page of hidden posts, newest first.
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
enum LogList {
    /// A page of the moderation log, newest first.
    #[oai(status = 200)]
    Page(
        Json<Vec<ModerationEntry>>,
        /// `<…>; rel="next"` (RFC 8288) on a full page: the URL of the page after it, by
        /// cursor. The last page has none.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

/// A page of a moderation listing, by `limit` and `cursor`.
fn page_query(
    state: &AppState,
    limit: Checked<Limit>,
    cursor: Checked<Cursor>,
) -> Result<PostQuery, service::ServiceError> {
    let (limit, cursor) = (limit.named("limit"), cursor.named("cursor")).all_valid()?;
    PostQuery::new(
        limit,
        Skip::default(),
        None,
        cursor.as_deref(),
        &state.cursors,
    )
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl ModerationApi {
    /// Give a person a role
    ///
    /// Administrators only, on anyone but themselves: `member`, `moderator` or `admin`. The
    /// role counts from the person's next request, on every instance. Giving the role a
    /// person has changes nothing and records nothing; any other change is recorded in the
    /// moderation log. The first administrator is made from the command line (`api admin
    /// grant EMAIL admin`).
    #[oai(path = "/users/:id/role", method = "put", operation_id = "setRole")]
    async fn set_role(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        body: JsonBody<RoleUpdate>,
    ) -> Result<Json<Account>, ApiError<RoleErrors>> {
        let (id, role) = (id.0.named("id"), body.0.into_role()).all_valid()?;
        let account = moderation::set_role(&state.db, &auth.caller, id, role).await?;
        Ok(Json(account.into()))
    }

    /// Hide a post
    ///
    /// Moderators and administrators. The post disappears for everyone but its owner (a 404,
    /// absent from lists and searches, `post.deleted` to subscribers); its owner still sees
    /// it, with `hidden: true` and the reason. Whatever the owner does, it stays hidden until
    /// a moderator restores it. A moderator may hide members' posts only; an administrator
    /// anyone's but their own. A post hidden already is a 409.
    #[oai(path = "/posts/:id/hide", method = "post", operation_id = "hidePost")]
    async fn hide_post(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        body: JsonBody<Hiding>,
    ) -> Result<Done, ApiError<ModerationErrors>> {
        let (id, reason) = (id.0.named("id"), body.0.into_reason()).all_valid()?;
        moderation::hide_post(&state.db, &auth.caller, id, &reason).await?;
        Ok(Done::Done)
    }

    /// Restore a hidden post
    ///
    /// Moderators and administrators, as for hiding it. The post is seen again as its owner
    /// left it (a draft stays a draft). A post that is not hidden is a 409.
    #[oai(
        path = "/posts/:id/hide",
        method = "delete",
        operation_id = "restorePost"
    )]
    async fn restore_post(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<Done, ApiError<ModerationUndoErrors>> {
        moderation::restore_post(&state.db, &auth.caller, id.0.named("id")?).await?;
        Ok(Done::Done)
    }

    /// Suspend an account
    ///
    /// Moderators and administrators. Every session of the account ends at once (its access
    /// and refresh tokens get 401, its event streams end), on every instance. A login with
    /// the right password then gets 403 with the reason and the end; a wrong password gets
    /// the usual 401. `until` ends it by itself; without one, it lasts until lifted (an
    /// `until` already past signs the person out everywhere and refuses no login). Its posts stay as they are. A moderator may suspend
    /// members only; an administrator anyone but themselves. An account suspended already
    /// is a 409.
    #[oai(
        path = "/users/:id/suspend",
        method = "post",
        operation_id = "suspendUser"
    )]
    async fn suspend_user(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
        body: JsonBody<SuspensionIn>,
    ) -> Result<Done, ApiError<ModerationErrors>> {
        let (id, (reason, until)) = (id.0.named("id"), body.0.into_parts()).all_valid()?;
        moderation::suspend(&state.db, &auth.caller, id, &reason, until).await?;
        Ok(Done::Done)
    }

    /// Lift a suspension
    ///
    /// Moderators and administrators, as for suspending. The person may log in again. An
    /// account that is not suspended is a 409.
    #[oai(
        path = "/users/:id/suspend",
        method = "delete",
        operation_id = "liftSuspension"
    )]
    async fn lift_suspension(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<Done, ApiError<ModerationUndoErrors>> {
        moderation::lift_suspension(&state.db, &auth.caller, id.0.named("id")?).await?;
        Ok(Done::Done)
    }

    /// List hidden posts
    ///
    /// Moderators and administrators: every hidden post, whoever's, newest first, with
    /// `hidden_reason`. A full page carries `Link: <…>; rel="next"`, the page after it by
    /// cursor.
    #[oai(
        path = "/moderation/hidden",
        method = "get",
        operation_id = "listHiddenPosts"
    )]
    async fn list_hidden_posts(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        /// How many posts to return: when left out, 10, or with a `cursor` the size of the
        /// page that issued it.
        limit: Query<Checked<Limit>>,
        /// A position: the page after the one whose `Link` gave it; empty is the same as
        /// none.
        cursor: Query<Checked<Cursor>>,
    ) -> Result<HiddenList, ApiError<ModerationListErrors>> {
        let query = page_query(&state, limit.0, cursor.0)?;
        let PostPage { posts, next } =
            moderation::hidden_posts(&state.db, &state.cursors, &auth.caller, &query).await?;
        let link = next.map(|cursor| next_link("/moderation/hidden", &query, &cursor));
        Ok(HiddenList::Page(
            Json(posts.into_iter().map(PostOut::from).collect()),
            link,
        ))
    }

    /// Read the moderation log
    ///
    /// Moderators and administrators: every role change, hide, restore, suspension and
    /// lift, newest first. Nobody can change or delete an entry. A full page carries `Link:
    /// <…>; rel="next"`, the page after it by cursor.
    #[oai(
        path = "/moderation/log",
        method = "get",
        operation_id = "readModerationLog"
    )]
    async fn read_moderation_log(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        /// How many entries to return: when left out, 10, or with a `cursor` the size of the
        /// page that issued it.
        limit: Query<Checked<Limit>>,
        /// A position: the page after the one whose `Link` gave it; empty is the same as
        /// none.
        cursor: Query<Checked<Cursor>>,
    ) -> Result<LogList, ApiError<ModerationListErrors>> {
        let query = page_query(&state, limit.0, cursor.0)?;
        let page = moderation::log_page(&state.db, &state.cursors, &auth.caller, &query).await?;
        let link = page
            .next
            .map(|cursor| next_link("/moderation/log", &query, &cursor));
        Ok(LogList::Page(
            Json(
                page.entries
                    .into_iter()
                    .map(ModerationEntry::from)
                    .collect(),
            ),
            link,
        ))
    }
}
