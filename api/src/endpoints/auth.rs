use std::sync::Arc;

use poem::{Request, http::header, web::Data};
use poem_openapi::{ApiRequest, ApiResponse, OpenApi, payload::Json};
use service::{
    ServiceError,
    accounts::{LoginEmail, LoginPassword},
    sessions::Device,
};

use super::ApiTags;
use crate::{
    body::{FormBody, JsonBody},
    observe::RequestContext,
    problem::{
        ApiError, CallerErrors, LoginErrors, RefreshErrors, ResetErrors, ResetRequestErrors,
    },
    rate_limit::{Limited, Shown},
    schemas::{
        LoginForm, LoginJson, PasswordReset, PasswordResetRequest, RefreshForm, RefreshJson, Token,
    },
    security::Authenticated,
    state::AppState,
};

pub struct AuthApi;

#[derive(ApiResponse)]
enum ResetRequested {
    /// The request is taken: when an account has the address, a mail with a link is on its
    /// way. The same answer whether or not one has it.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
enum PasswordResetDone {
    /// The password is changed, and every session of the account has ended.
    #[oai(status = 204)]
    Done,
}

/// The credentials, as the OAuth2 password form or as JSON.
#[derive(ApiRequest)]
enum LoginRequest {
    Form(FormBody<LoginForm>),
    Json(JsonBody<LoginJson>),
}

impl LoginRequest {
    /// The email and the password.
    fn into_credentials(self) -> Result<(LoginEmail, LoginPassword), ServiceError> {
        match self {
            Self::Form(form) => form.0.into_credentials(),
            Self::Json(json) => json.0.into_credentials(),
        }
    }
}

/// The refresh token, as the OAuth2 refresh form or as JSON.
#[derive(ApiRequest)]
enum RefreshRequest {
    Form(FormBody<RefreshForm>),
    Json(JsonBody<RefreshJson>),
}

impl RefreshRequest {
    fn into_refresh_token(self) -> Result<String, ServiceError> {
        match self {
            Self::Form(form) => form.0.into_refresh_token(),
            Self::Json(json) => json.0.refresh_token.named("refresh_token"),
        }
    }
}

#[derive(ApiResponse)]
enum Issued {
    /// A new access token and refresh token. Never stored by caches (RFC 6749 §5.1).
    #[oai(status = 200)]
    Token(
        Json<Token>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
}

impl From<service::sessions::SessionTokens> for Issued {
    fn from(tokens: service::sessions::SessionTokens) -> Self {
        Self::Token(Json(tokens.into()), "no-store".into(), "no-cache".into())
    }
}

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session has ended: its access and refresh tokens no longer work.
    #[oai(status = 204)]
    Ended,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in
    ///
    /// Starts a session: exchanges an email and password for an access token and a refresh
    /// token. Takes the OAuth2 password form (`username` is the email) or JSON. An unknown
    /// email and a wrong password get the same 401. After `LOGIN_MAX_FAILURES` failures (5 by
    /// default) for one email within `LOGIN_WINDOW_MINUTES` (15 by default), further attempts
    /// get 429 until the oldest of them has left the window, whoever sends them; likewise
    /// after `LOGIN_MAX_FAILURES_PER_ADDRESS` failures (100 by default) from one client
    /// address, whichever emails they name. A 503 (the service too busy to check the
    /// password) is no failure.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        request: &Request,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        body: LoginRequest,
    ) -> Result<Issued, ApiError<LoginErrors>> {
        let (email, password) = body.into_credentials()?;
        let device = Device {
            user_agent: request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|agent| agent.to_str().ok())
                .map(str::to_owned),
            address: context.client(),
        };
        let tokens = state
            .accounts
            .login(&state.db, &email, &password, device)
            .await?;
        Ok(tokens.into())
    }

    /// Refresh the tokens
    ///
    /// Exchanges a refresh token for a new access token and a new refresh token. Each refresh
    /// token works once: presenting a spent one again ends its whole session (it was copied),
    /// unless within `REFRESH_TOKEN_REUSE_GRACE_SECONDS` (10 by default) of its first use (two
    /// tabs refreshing at once): then it gets the same new refresh token as its first use did,
    /// so a session never has two. Takes JSON or the OAuth2 form (`grant_type=refresh_token`).
    /// Unknown, expired, spent and malformed tokens get the same 401.
    #[oai(
        path = "/login/refresh",
        method = "post",
        operation_id = "refreshToken"
    )]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        body: RefreshRequest,
    ) -> Result<Issued, ApiError<RefreshErrors>> {
        let refresh_token = body.into_refresh_token()?;
        let tokens = state
            .accounts
            .sessions()
            .refresh(&state.db, &refresh_token)
            .await?;
        Ok(tokens.into())
    }

    /// Log out
    ///
    /// Ends the caller's session: its access tokens are refused from now on, on every
    /// instance, and its refresh token no longer works.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<LoggedOut, ApiError<CallerErrors>> {
        service::sessions::log_out(&state.db, &auth.caller).await?;
        Ok(LoggedOut::Ended)
    }

    /// Ask for a password reset mail
    ///
    /// When an account has the address, a mail goes to it with a link to
    /// `{PUBLIC_URL}/reset-password?token=…`, valid `PASSWORD_RESET_TOKEN_MINUTES` (30 by
    /// default); the front end posts its token back to `POST /password-reset/confirm`. The
    /// answer, and the time it takes, are the same whether or not an account has the address:
    /// the mail is made and sent in the background. An address may be named
    /// `PASSWORD_RESET_MAX_PER_EMAIL` times (3 by default), and a client address may ask
    /// `PASSWORD_RESET_MAX_PER_ADDRESS` times (20 by default), within `LOGIN_WINDOW_MINUTES`
    /// (15 by default); past that, 429 with `Retry-After`. Every answer shows both limits,
    /// `resets-email` and `resets-client`, in `RateLimit-Policy` and `RateLimit`.
    #[oai(
        path = "/password-reset",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_password_reset(
        &self,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        shown: Data<&Arc<Shown>>,
        body: JsonBody<PasswordResetRequest>,
    ) -> Result<Limited<ResetRequested>, ApiError<ResetRequestErrors>> {
        let email = body.0.email.named("email")?;
        let counted = state
            .accounts
            .request_password_reset(&state.db, &email, context.client())
            .await;
        shown.show(counted.allowances);
        counted.outcome?;
        Ok(Limited(ResetRequested::Accepted))
    }

    /// Reset a password
    ///
    /// Takes the token of a password reset mail's link and a new password: the password is
    /// changed and every session of the account ends (its access and refresh tokens stop
    /// working); the address counts as verified, since the mail reached it. A token works
    /// once, a newer mail's token voids the older's, and one that is unknown, used, voided
    /// or expired is a 422 naming `token`.
    #[oai(
        path = "/password-reset/confirm",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        body: JsonBody<PasswordReset>,
    ) -> Result<PasswordResetDone, ApiError<ResetErrors>> {
        let (token, new_password) = body.0.into_parts()?;
        state
            .accounts
            .reset_password(&state.db, &token, &new_password)
            .await?;
        Ok(PasswordResetDone::Done)
    }
}
