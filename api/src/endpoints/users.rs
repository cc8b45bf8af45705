use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};
use service::Person;

use super::ApiTags;
use crate::{
    body::JsonBody,
    fields::{Checked, Id},
    observe::RequestContext,
    problem::{ApiError, CallerErrors, ReadErrors, RegisterErrors},
    schemas::{UserCreate, UserOut},
    security::{CallerAccount, CallerFromToken},
    state::AppState,
};

pub struct UsersApi;

#[derive(ApiResponse)]
enum UserCreated {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<UserOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum UserDeleted {
    /// The account, its posts and its votes are gone.
    #[oai(status = 204)]
    Deleted,
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Register
    ///
    /// Creates an account. The email is stored trimmed and lower-cased; a case variant of a
    /// registered email is taken (409). One client address may register 20 times within 15
    /// minutes; past that, 429 until the oldest of them is 15 minutes old.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        body: JsonBody<UserCreate>,
    ) -> Result<UserCreated, ApiError<RegisterErrors>> {
        let (email, password) = body.0.into_parts()?;
        let user = state
            .accounts
            .register(&state.db, &email, &password, context.client())
            .await?;
        let location = format!("/users/{}", user.id);
        Ok(UserCreated::Created(Json(user.into()), location))
    }

    /// Read the caller's account
    #[oai(path = "/users/me", method = "get", operation_id = "readMe")]
    async fn read_me(
        &self,
        caller: CallerAccount,
    ) -> Result<Json<UserOut>, ApiError<CallerErrors>> {
        Ok(Json(Person::from(caller.0).into()))
    }

    /// Delete the caller's account
    ///
    /// The caller's posts and votes go with it, its failed logins are forgotten, and its
    /// tokens stop working.
    #[oai(path = "/users/me", method = "delete", operation_id = "deleteMe")]
    async fn delete_me(
        &self,
        caller: CallerFromToken,
        state: Data<&AppState>,
    ) -> Result<UserDeleted, ApiError<CallerErrors>> {
        service::accounts::delete_user(&state.db, caller.0).await?;
        Ok(UserDeleted::Deleted)
    }

    /// Read an account
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get_user(
        &self,
        caller: CallerFromToken,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<Json<UserOut>, ApiError<ReadErrors>> {
        let user = service::accounts::find_user(&state.db, caller.0, id.0.named("id")?).await?;
        Ok(Json(user.into()))
    }
}
