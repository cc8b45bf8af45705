use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};
use service::{accounts::Handle, sessions};

use super::ApiTags;
use crate::{
    body::JsonBody,
    fields::{Checked, Id},
    observe::RequestContext,
    problem::{
        ApiError, CallerErrors, EmailChangeErrors, PasswordErrors, ProfileErrors, ReadErrors,
        RegisterErrors, VerificationMailErrors, VerifyErrors,
    },
    rate_limit::{Limited, Shown, Writer},
    schemas::{
        Account, EmailChange, EmailVerification, PasswordChange, Profile, ProfilePatch, Session,
        UserCreate,
    },
    security::Authenticated,
    state::AppState,
};

pub struct UsersApi;

#[derive(ApiResponse)]
enum UserCreated {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<Account>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum ProfileChanged {
    /// The caller's account as it now is.
    #[oai(status = 200)]
    Changed(Json<Account>),
}

#[derive(ApiResponse)]
enum EmailChangeQueued {
    /// A confirmation mail is on its way to the new address, and a notice to the old one.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
enum UserDeleted {
    /// The account, its posts and its votes are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum SessionsEnded {
    /// The sessions have ended: their access and refresh tokens no longer work.
    #[oai(status = 204)]
    Ended,
}

#[derive(ApiResponse)]
enum EmailVerified {
    /// The address is verified.
    #[oai(status = 204)]
    Verified,
}

#[derive(ApiResponse)]
enum VerificationMailQueued {
    /// A new verification mail is on its way; the link of any earlier one no longer works.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
enum PasswordChanged {
    /// The password is changed, and every other session of the caller's has ended.
    #[oai(status = 204)]
    Changed,
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Register
    ///
    /// Creates an account. The email is stored trimmed, NFKC-normalised and lower-cased; a
    /// case or fullwidth variant of a registered email is taken (409), and so is an address
    /// a person cannot tell from a registered one where either has a character outside ASCII
    /// (a Cyrillic `е` for a Latin `e`). Two plain-ASCII addresses are never look-alikes of
    /// each other (`bob1@` and `bobl@` are two people). One client address may register
    /// `REGISTER_MAX_PER_ADDRESS` times (20 by default) within `LOGIN_WINDOW_MINUTES` (15 by
    /// default); past that, 429 until the oldest of them leaves the window. The `handle` is
    /// the caller's choice (409 when taken, without regard to case); left out, the account
    /// gets `user_` and random letters and digits, which tell nothing of its email.
    ///
    /// A mail goes to the address with a link to `{PUBLIC_URL}/verify-email?token=…`, valid
    /// `VERIFICATION_TOKEN_HOURS` (24 by default); the front end posts its token to
    /// `POST /users/verify`.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        body: JsonBody<UserCreate>,
    ) -> Result<UserCreated, ApiError<RegisterErrors>> {
        let (email, password, handle) = body.0.into_parts()?;
        let user = state
            .accounts
            .register(&state.db, &email, &password, handle, context.client())
            .await?;
        let location = format!("/users/{}", user.id);
        Ok(UserCreated::Created(Json(user.into()), location))
    }

    /// Read the caller's account
    ///
    /// The account of the token's owner: the only view of an account with its email, and
    /// whether that is verified.
    #[oai(path = "/users/me", method = "get", operation_id = "readMe")]
    async fn read_me(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<Json<Account>, ApiError<CallerErrors>> {
        let me = service::accounts::me(&state.db, &auth.caller).await?;
        Ok(Json(me.into()))
    }

    /// Change the caller's profile
    ///
    /// Changes the handle (409 when someone else has it, without regard to case) or the
    /// display name (`null` takes it away); a field left out stays. Subscribers to events
    /// get one `profile.updated`, and the tags of the caller's posts change, since they show
    /// the profile. Counts against the write budget (`WRITES_PER_MINUTE`, 60 by default), as
    /// the writes of posts and votes do.
    #[oai(path = "/users/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        writer: Writer,
        state: Data<&AppState>,
        body: JsonBody<ProfilePatch>,
    ) -> Result<Limited<ProfileChanged>, ApiError<ProfileErrors>> {
        let changes = body.0.try_into()?;
        let me = service::accounts::update_profile(&state.db, &writer.caller, changes).await?;
        Ok(Limited(ProfileChanged::Changed(Json(me.into()))))
    }

    /// Verify an email address
    ///
    /// Takes the token of the link in a verification mail, which the front end posts back,
    /// and marks the address it was sent to as verified. A token works once; a newer mail's
    /// token voids the older's; a token is valid `VERIFICATION_TOKEN_HOURS` (24 by default).
    /// A token that is unknown, used, voided or expired is a 422 naming `token`.
    #[oai(path = "/users/verify", method = "post", operation_id = "verifyEmail")]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        body: JsonBody<EmailVerification>,
    ) -> Result<EmailVerified, ApiError<VerifyErrors>> {
        let token = body.0.into_token()?;
        state.accounts.verify_email(&state.db, &token).await?;
        Ok(EmailVerified::Verified)
    }

    /// Send a new verification mail
    ///
    /// Mails the caller's address a new verification link (the older one stops working).
    /// One mail an account per `VERIFICATION_RESEND_SECONDS` (60 by default), the one
    /// registering sent included, and `MAIL_REQUESTS_MAX_PER_ADDRESS` (20 by default)
    /// verification and address change mails from one client address within
    /// `LOGIN_WINDOW_MINUTES`: past either, 429 with `Retry-After`; every answer shows both
    /// limits, `mails-client` and `verification`, in `RateLimit-Policy` and `RateLimit`. An
    /// address already verified is a 409. The mail is sent in the background, and retried through mail
    /// server outages.
    #[oai(
        path = "/users/me/verification",
        method = "post",
        operation_id = "requestVerification"
    )]
    async fn request_verification(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        shown: Data<&Arc<Shown>>,
    ) -> Result<Limited<VerificationMailQueued>, ApiError<VerificationMailErrors>> {
        let counted = state
            .accounts
            .request_verification(&state.db, &auth.caller, context.client())
            .await;
        shown.show(counted.allowances);
        counted.outcome?;
        Ok(Limited(VerificationMailQueued::Accepted))
    }

    /// Change the caller's email address
    ///
    /// Needs the current password: a wrong one is a 403 and counts as a failed login (429
    /// past the limit, as for `POST /login`). A mail to the new address carries a link to
    /// `{PUBLIC_URL}/verify-email?token=…`, valid `VERIFICATION_TOKEN_HOURS` (24 by default),
    /// whose token, posted to `POST /users/verify`, moves the account to the address (409 if
    /// another account took it meanwhile); until then the old address stays. A notice goes to
    /// the old address, saying how to secure the account if the change was not its owner's.
    /// An address another account has, or one that looks the same, is a 409. One request an
    /// account per `VERIFICATION_RESEND_SECONDS` (60 by default), and as many from one client
    /// address as its verification mails (`MAIL_REQUESTS_MAX_PER_ADDRESS`): past either, 429
    /// with `Retry-After`; every answer shows both limits, `mails-client` and `email-change`,
    /// in `RateLimit-Policy` and `RateLimit`.
    #[oai(path = "/users/me/email", method = "put", operation_id = "changeEmail")]
    async fn change_email(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        shown: Data<&Arc<Shown>>,
        body: JsonBody<EmailChange>,
    ) -> Result<Limited<EmailChangeQueued>, ApiError<EmailChangeErrors>> {
        let (new_email, current) = body.0.into_parts()?;
        let counted = state
            .accounts
            .request_email_change(
                &state.db,
                &auth.caller,
                &new_email,
                &current,
                context.client(),
            )
            .await;
        shown.show(counted.allowances);
        counted.outcome?;
        Ok(Limited(EmailChangeQueued::Accepted))
    }

    /// Change the caller's password
    ///
    /// Needs the current password: a wrong one is a 403 and counts as a failed login (429
    /// past the limit, as for `POST /login`). Every other session of the caller's ends, and
    /// so does a login still checking the old password when the change is made (it gets
    /// 401); the caller's own session goes on.
    #[oai(
        path = "/users/me/password",
        method = "put",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        context: Data<&Arc<RequestContext>>,
        body: JsonBody<PasswordChange>,
    ) -> Result<PasswordChanged, ApiError<PasswordErrors>> {
        let (current, new) = body.0.into_parts()?;
        state
            .accounts
            .change_password(&state.db, &auth.caller, &current, &new, context.client())
            .await?;
        Ok(PasswordChanged::Changed)
    }

    /// List the caller's sessions
    ///
    /// Every session that may still be used, the most recently used first; `current` marks
    /// the one of the token that asks.
    #[oai(
        path = "/users/me/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn list_sessions(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<Json<Vec<Session>>, ApiError<CallerErrors>> {
        let sessions = sessions::list(&state.db, &auth.caller).await?;
        Ok(Json(sessions.into_iter().map(Session::from).collect()))
    }

    /// End every other session
    ///
    /// Ends each of the caller's sessions but the caller's own.
    #[oai(
        path = "/users/me/sessions",
        method = "delete",
        operation_id = "endOtherSessions"
    )]
    async fn end_other_sessions(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<SessionsEnded, ApiError<CallerErrors>> {
        sessions::end_others(&state.db, &auth.caller).await?;
        Ok(SessionsEnded::Ended)
    }

    /// End a session
    ///
    /// Ends one of the caller's sessions (the caller's own included, which is logging out);
    /// another person's session is not found.
    #[oai(
        path = "/users/me/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_session(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<SessionsEnded, ApiError<ReadErrors>> {
        sessions::end(&state.db, &auth.caller, id.0.named("id")?).await?;
        Ok(SessionsEnded::Ended)
    }

    /// Delete the caller's account
    ///
    /// The caller's posts, votes and sessions go with it, its failed logins are forgotten,
    /// and its tokens stop working.
    #[oai(path = "/users/me", method = "delete", operation_id = "deleteMe")]
    async fn delete_me(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<UserDeleted, ApiError<CallerErrors>> {
        service::accounts::delete_user(&state.db, &auth.caller).await?;
        Ok(UserDeleted::Deleted)
    }

    /// Read a profile by id
    ///
    /// Anyone's profile, by the account's id, for any signed-in caller: no email, the
    /// caller's own included (`GET /users/me` has that); an id no account has is not found.
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get_user(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        id: Path<Checked<Id>>,
    ) -> Result<Json<Profile>, ApiError<ReadErrors>> {
        let user = service::accounts::find_user(&state.db, &auth.caller, id.0.named("id")?).await?;
        Ok(Json(user.into()))
    }

    /// Read a profile by handle
    ///
    /// Anyone's profile, by their handle, without regard to case; a handle no one has is
    /// not found.
    #[oai(
        path = "/profiles/:handle",
        method = "get",
        operation_id = "getProfile"
    )]
    async fn get_profile(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
        handle: Path<Checked<Handle>>,
    ) -> Result<Json<Profile>, ApiError<ReadErrors>> {
        let handle = handle.0.named("handle")?;
        let profile = service::accounts::find_by_handle(&state.db, &auth.caller, &handle).await?;
        Ok(Json(profile.into()))
    }
}
