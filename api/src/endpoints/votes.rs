use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};
use service::votes::{self, VoteDirection};

use super::ApiTags;
use crate::{
    body::JsonBody,
    problem::{ApiError, VoteErrors},
    rate_limit::{Limited, Writer},
    schemas::{VoteIn, VoteResult},
    state::AppState,
};

pub struct VotesApi;

#[derive(ApiResponse)]
enum Voted {
    /// The caller's vote was added (`dir: 1`).
    #[oai(status = 201)]
    Added(Json<VoteResult>),
    /// The caller's vote was removed (`dir: 0`).
    #[oai(status = 200)]
    Removed(Json<VoteResult>),
}

#[OpenApi(tag = "ApiTags::Votes")]
impl VotesApi {
    /// Vote for a post, or take the vote back
    ///
    /// Each person votes a post at most once, whoever wrote it: a second vote is a 409.
    /// Removing a vote that was never cast is a 404.
    // Not `vote`: generators such as orval name the operation's result `VoteResult`, the
    // contract's name of the schema, and two types of one name do not compile.
    #[oai(path = "/vote", method = "post", operation_id = "castVote")]
    async fn vote(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        body: JsonBody<VoteIn>,
    ) -> Result<Limited<Voted>, ApiError<VoteErrors>> {
        let (post_id, direction) = body.0.into_parts()?;
        votes::vote(&state.db, &writer.caller, post_id, direction).await?;
        Ok(Limited(match direction {
            VoteDirection::Add => Voted::Added(Json(VoteResult::added(post_id))),
            VoteDirection::Remove => Voted::Removed(Json(VoteResult::removed(post_id))),
        }))
    }
}
