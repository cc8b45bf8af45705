use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    ApiRequest, OpenApi,
    payload::{Form, Json},
};
use service::ServiceError;

use super::ApiTags;
use crate::{
    body::JsonBody,
    observe::RequestContext,
    problem::{ApiError, LoginErrors},
    schemas::{LoginForm, LoginJson, Token},
    state::AppState,
};

pub struct AuthApi;

/// The credentials, as the OAuth2 password form or as JSON.
#[derive(ApiRequest)]
enum LoginRequest {
    Form(Form<LoginForm>),
    Json(JsonBody<LoginJson>),
}

impl LoginRequest {
    /// The email and password, checked by hand: poem-openapi runs no validators on forms.
    fn credentials(&self) -> Result<(&str, &str), ServiceError> {
        let (email_field, email, password) = match self {
            Self::Form(form) => {
                if let Some(grant) = &form.grant_type
                    && grant.0 != "password"
                {
                    return Err(invalid("grant_type", "must be `password`"));
                }
                (
                    "username",
                    form.username.0.as_str(),
                    form.password.0.as_str(),
                )
            }
            Self::Json(json) => ("email", json.email.0.as_str(), json.password.0.as_str()),
        };
        if email.trim().is_empty() {
            return Err(invalid(email_field, "is required"));
        }
        if email.contains('\0') {
            return Err(invalid(email_field, "must not contain NUL characters"));
        }
        if password.is_empty() {
            return Err(invalid("password", "is required"));
        }
        Ok((email, password))
    }
}

fn invalid(field: &'static str, message: &str) -> ServiceError {
    ServiceError::Invalid {
        field,
        message: message.into(),
    }
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
    ) -> Result<Json<Token>, ApiError<LoginErrors>> {
        let (email, password) = body.credentials()?;
        let login = state
            .accounts
            .login(&state.db, email, password, context.client());
        match login.await {
            Ok(token) => Ok(Json(token.into())),
            Err(err) => {
                match &err {
                    ServiceError::Unauthorized(_) => {
                        metrics::counter!("login_failures_total").increment(1)
                    }
                    ServiceError::RateLimited { .. } => {
                        metrics::counter!("login_rate_limited_total").increment(1);
                    }
                    _ => {}
                }
                Err(err.into())
            }
        }
    }
}
