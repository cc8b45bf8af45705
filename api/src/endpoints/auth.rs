use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiRequest, ApiResponse, OpenApi, payload::Json};
use service::ServiceError;

use super::ApiTags;
use crate::{
    body::{FormBody, JsonBody},
    observe::RequestContext,
    problem::{ApiError, LoginErrors},
    schemas::{LoginForm, LoginJson, Token},
    state::AppState,
};

pub struct AuthApi;

/// The credentials, as the OAuth2 password form or as JSON.
#[derive(ApiRequest)]
enum LoginRequest {
    Form(FormBody<LoginForm>),
    Json(JsonBody<LoginJson>),
}

impl LoginRequest {
    /// The email and the password.
    fn into_credentials(self) -> Result<(String, String), ServiceError> {
        match self {
            Self::Form(form) => form.0.into_credentials(),
            Self::Json(json) => json.0.into_credentials(),
        }
    }
}

#[derive(ApiResponse)]
enum LoggedIn {
    /// A new access token. Never stored by caches (RFC 6749 §5.1).
    #[oai(status = 200)]
    Token(
        Json<Token>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in
    ///
    /// Exchanges an email and password for an access token. Takes the OAuth2 password form
    /// (`username` is the email) or JSON. An unknown email and a wrong password get the same
    /// 401. After 5 failures for one email within 15 minutes, further attempts get 429 until
    /// the oldest of them is 15 minutes old, whoever sends them; likewise after 100 failures
    /// from one client address, whichever emails they name.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        body: LoginRequest,
    ) -> Result<LoggedIn, ApiError<LoginErrors>> {
        let (email, password) = body.into_credentials()?;
        let token = state
            .accounts
            .login(&state.db, &email, &password, context.client())
            .await?;
        Ok(LoggedIn::Token(
            Json(token.into()),
            "no-store".into(),
            "no-cache".into(),
        ))
    }
}
