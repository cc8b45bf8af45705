//! An example for every part of the spec, so that Swagger UI and ReDoc show what the service
//! really says. They tell one short history on a fresh database: Ann registers (user 1),
//! logs in (session 1), writes post 1, reads and changes it, votes for it and follows the
//! changes. Each response example is what the service answers her then, built from the
//! api's own types; only tokens, tags and times are new at each call.
//!
//! Objects the derive describes carry theirs by `#[oai(example)]` (the `Example` impls
//! here). [`add`] gives the rest theirs: the request objects (whose fields are checked while
//! parsing and never written out), the enum and the union, and each operation's
//! parameters, request bodies, responses and response headers.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem_openapi::types::{Example, MaybeUndefined, ToJSON, Type};
use serde_json::{Value, json};
use service::{
    RateLimit, ServiceError,
    accounts::{DisplayName, Email, Handle, LoginPassword, Password, Role},
    database::ReplicaState,
    events::{Delivery, TICKET_LIFETIME},
    fields::{FieldError, Requirement},
    limits::Allowance,
    moderation::Reason,
    posts::{PageSize, Title},
    votes::VoteDirection,
    writes::WINDOW_SECONDS,
};

use crate::{
    fields::{EventId, Flag, Id, Limit, RefreshToken, Rule, Until, patched},
    problem::{ApiError, ErrorStatus, InvalidField, Problem},
    rate_limit::{policies, remaining},
    schemas::{
        Account, DeletedPost, EmailChange, EmailVerification, EventData, EventTicket, EventType,
        Health, Hiding, LiveEvent, LoginForm, LoginJson, Message, ModerationAction,
        ModerationEntry, NullableText, PasswordChange, PasswordReset, PasswordResetRequest,
        PostCreated, PostIn, PostOut, PostPatch, PostUpdated, Profile, ProfilePatch,
        ProfileUpdated, RefreshForm, RefreshJson, ReplicaHealth, ReplicaUse, RoleName, RoleUpdate,
        Session, StreamReset, SuspensionIn, Timestamp, Token, TokenType, UserCreate, VoteCount,
        VoteIn, VoteResult,
    },
    settings::Settings,
};

// --- the history ------------------------------------------------------------------------

const USER_ID: i64 = 1;
const EMAIL: &str = "ann@example.org";
const HANDLE: &str = "ann";
/// The address Ann asks to move her account to.
const NEW_EMAIL: &str = "ann.lee@example.org";
const DISPLAY_NAME: &str = "Ann Lee";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "correct horse battery staple, again";
const SESSION_ID: i64 = 1;
const POST_ID: i64 = 1;
const TITLE: &str = "Hello, world";
const NEW_TITLE: &str = "Hello again, world";
const CONTENT: &str = "My first post: more to come.";
/// A piece of the title, to search for.
const SEARCH: &str = "hello";
/// Mo, a moderator, who registered after Ann.
const MODERATOR_ID: i64 = 3;
const MODERATOR_HANDLE: &str = "mo";
/// Why Mo hides a post, or suspends an account.
const REASON: &str = "advertising, against the rules of the site";
/// An id of nothing, for the answers about what does not exist.
const MISSING_ID: i64 = 2;
/// A handle no one has.
const MISSING_HANDLE: &str = "nobody";
/// The first event: post 1 was created.
const LAST_EVENT_ID: i64 = 1;
/// When Ann registered (2026-01-15T09:30:00Z); the rest follows within minutes.
const START: i64 = 1_768_469_400;
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:146.0) Gecko/20100101 Firefox/146.0";
const CLIENT_ADDRESS: &str = "203.0.113.7";
/// Opaque values of the forms the service issues (each is new at every call; the cursor is
/// that of a full page of the search, after post 1).
const ACCESS_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwic2lkIjoxLCJpYXQiOjE3Njg0Njk0MDAsImV4cCI6MTc2ODQ3MTIwMH0.UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA_TkB_yOaE";
const REFRESH_TOKEN: &str =
    "dFxMP8sussc-FJNMhn7gV7pySZv6Eh6DayrBVybufWsK9qsTw46SyuDRUFexWZh_lMx0EdcX8UV5sqoQD7uzTw";
const TICKET: &str = "pZP-rtJySLdi46tYBfB2WiucHX4PN8RJIb0_ZWTq338";
/// The token of the link in Ann's verification mail.
const VERIFICATION_TOKEN: &str = "q3W7xY0aJbK2mZ9vT4nRcLpE8sHuFgD1oIeA6wQ5yVt";
/// The token of a password reset mail's link, of the form the service issues.
const RESET_TOKEN: &str = "Wm9rVnQ3c2JnN0pQZlFhR2RrTjJ3cHhUYkZ5UmVzZXQ";
/// The password Ann chooses when she resets hers.
const RESET_PASSWORD: &str = "correct horse battery staple, reset";
const CURSOR: &str =
    "MTc2ODQ2OTQ2MDAwMDAwMC4xLjEwLmFHVnNiRzg.FCpyZoxH4iPRbt2MR7Rq_Fuu4mH1OyYVLSY7qDsDfNQ";
const TAG: &str = "li5DSAEla4henJBR8yCw24PznqetvQ105t7H89-uzI8";
const REQUEST_ID: &str = "646566641a7ba2660f3011fc3570291c";
/// What a 429 asks a client to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 41;

/// `seconds` after [`START`].
fn at(seconds: i64) -> Timestamp {
    Timestamp(DateTime::<Utc>::from_timestamp(START + seconds, 0).expect("a time in range"))
}

fn etag() -> String {
    crate::conditional::quoted(TAG)
}

// --- the objects the derive describes -------------------------------------------------

impl Example for Account {
    fn example() -> Self {
        Self {
            id: USER_ID,
            email: EMAIL.into(),
            email_verified: true,
            handle: HANDLE.into(),
            display_name: NullableText(None),
            role: RoleName::Member,
            created_at: at(0),
        }
    }
}

impl Example for Profile {
    fn example() -> Self {
        Self {
            id: USER_ID,
            handle: HANDLE.into(),
            display_name: NullableText(None),
            created_at: at(0),
        }
    }
}

impl Example for ProfileUpdated {
    fn example() -> Self {
        Self {
            kind: EventType::default(),
            profile: Profile {
                display_name: NullableText(Some(DISPLAY_NAME.into())),
                ..Profile::example()
            },
        }
    }
}

impl Example for Token {
    fn example() -> Self {
        let settings = Settings::default();
        Self {
            access_token: ACCESS_TOKEN.into(),
            token_type: TokenType::Bearer,
            expires_in: settings.token_lifetime().as_secs(),
            refresh_token: REFRESH_TOKEN.into(),
            refresh_expires_in: settings
                .session_policy()
                .expect("the default settings are valid")
                .refresh_lifetime
                .as_secs(),
        }
    }
}

impl Example for Session {
    fn example() -> Self {
        Self {
            id: SESSION_ID,
            created_at: at(30),
            last_used_at: at(30),
            user_agent: NullableText(Some(USER_AGENT.into())),
            client_address: NullableText(Some(CLIENT_ADDRESS.into())),
            current: true,
        }
    }
}

impl Example for PostOut {
    fn example() -> Self {
        Self {
            id: POST_ID,
            title: TITLE.into(),
            content: CONTENT.into(),
            published: true,
            hidden: false,
            hidden_reason: NullableText(None),
            created_at: at(60),
            owner_id: USER_ID,
            owner: Profile::example(),
            votes: 0,
        }
    }
}

impl Example for ModerationEntry {
    fn example() -> Self {
        Self {
            id: 1,
            at: at(300),
            action: ModerationAction::PostHidden,
            actor_id: Some(MODERATOR_ID),
            actor_handle: Some(MODERATOR_HANDLE.into()),
            user_id: USER_ID,
            user_handle: HANDLE.into(),
            post_id: Some(POST_ID),
            post_title: Some(TITLE.into()),
            reason: Some(REASON.into()),
            role: None,
            until: None,
        }
    }
}

impl Example for Message {
    fn example() -> Self {
        Self::start()
    }
}

impl Example for Health {
    fn example() -> Self {
        Self::with_replicas(vec![ReplicaState::InUse])
    }
}

impl Example for ReplicaHealth {
    fn example() -> Self {
        Self {
            replica: 1,
            state: ReplicaUse::InUse,
        }
    }
}

impl Example for VoteResult {
    fn example() -> Self {
        Self::added(POST_ID)
    }
}

impl Example for EventTicket {
    fn example() -> Self {
        Self {
            ticket: TICKET.into(),
            expires_in: TICKET_LIFETIME.as_secs(),
        }
    }
}

impl Example for PostCreated {
    fn example() -> Self {
        Self {
            kind: EventType::default(),
            post: PostOut::example(),
        }
    }
}

impl Example for PostUpdated {
    fn example() -> Self {
        Self {
            kind: EventType::default(),
            post: PostOut {
                title: NEW_TITLE.into(),
                ..PostOut::example()
            },
        }
    }
}

impl Example for DeletedPost {
    fn example() -> Self {
        Self {
            kind: EventType::default(),
            id: POST_ID,
        }
    }
}

impl Example for VoteCount {
    fn example() -> Self {
        Self {
            kind: EventType::default(),
            post_id: POST_ID,
            votes: 1,
        }
    }
}

impl Example for StreamReset {
    fn example() -> Self {
        let EventData::Reset(reset) = LiveEvent::from(Delivery::Reset { id: LAST_EVENT_ID }).data
        else {
            unreachable!("a reset is delivered as a reset")
        };
        reset
    }
}

impl Example for Problem {
    fn example() -> Self {
        invalid("title", refused::<Title>(&json!("  ")))
    }
}

impl Example for InvalidField {
    fn example() -> Self {
        Problem::example()
            .errors
            .and_then(|errors| errors.into_iter().next())
            .expect("a 422 names its field")
    }
}

// --- the examples the derive cannot give ----------------------------------------------

/// The schemas whose derive takes no example, each with its example.
fn schema_examples() -> Vec<(Cow<'static, str>, Value)> {
    let mut examples = request_examples();
    examples.push((TokenType::name(), json!(TokenType::Bearer.to_json())));
    examples.push((RoleName::name(), json!(RoleName::Member.to_json())));
    examples.push((ReplicaUse::name(), json!(ReplicaUse::InUse.to_json())));
    examples.push((
        ModerationAction::name(),
        json!(ModerationAction::PostHidden.to_json()),
    ));
    examples.push((
        EventData::name(),
        json!(EventData::Created(PostCreated::example()).to_json()),
    ));
    examples
}

/// Each request object's example, by schema name.
fn request_examples() -> Vec<(Cow<'static, str>, Value)> {
    vec![
        (
            UserCreate::name(),
            json!({"email": EMAIL, "password": PASSWORD, "handle": HANDLE}),
        ),
        (ProfilePatch::name(), json!({"display_name": DISPLAY_NAME})),
        (
            LoginJson::name(),
            json!({"email": EMAIL, "password": PASSWORD}),
        ),
        (
            LoginForm::name(),
            json!({"username": EMAIL, "password": PASSWORD, "grant_type": "password"}),
        ),
        (RefreshJson::name(), json!({"refresh_token": REFRESH_TOKEN})),
        (
            EmailVerification::name(),
            json!({"token": VERIFICATION_TOKEN}),
        ),
        (PasswordResetRequest::name(), json!({"email": EMAIL})),
        (
            EmailChange::name(),
            json!({"new_email": NEW_EMAIL, "current_password": PASSWORD}),
        ),
        (
            PasswordReset::name(),
            json!({"token": RESET_TOKEN, "new_password": RESET_PASSWORD}),
        ),
        (
            RefreshForm::name(),
            json!({"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}),
        ),
        (
            PasswordChange::name(),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ),
        (
            PostIn::name(),
            json!({"title": TITLE, "content": CONTENT, "published": true}),
        ),
        (PostPatch::name(), json!({"title": NEW_TITLE})),
        (VoteIn::name(), json!({"post_id": POST_ID, "dir": 1})),
        (RoleUpdate::name(), json!({"role": "moderator"})),
        (Hiding::name(), json!({"reason": REASON})),
        (
            SuspensionIn::name(),
            json!({"reason": REASON, "until": "2031-01-15T09:30:00Z"}),
        ),
    ]
}

/// Mo's steps, newest first: made an administrator from the command line, she made Ann a
/// moderator and a member again, hid Ann's post and restored it, suspended Ann until a day
/// in 2031 and lifted it.
fn moderation_log() -> Vec<ModerationEntry> {
    let hidden = ModerationEntry::example();
    let about_ann = ModerationEntry {
        post_id: None,
        post_title: None,
        reason: None,
        ..ModerationEntry::example()
    };
    let role = |id, role| ModerationEntry {
        id,
        action: ModerationAction::RoleChanged,
        role: Some(role),
        ..about_ann.clone()
    };
    vec![
        ModerationEntry {
            id: 7,
            at: at(340),
            action: ModerationAction::SuspensionLifted,
            ..about_ann.clone()
        },
        ModerationEntry {
            id: 6,
            at: at(330),
            action: ModerationAction::Suspended,
            reason: Some(REASON.into()),
            until: Some(at(157_766_400)),
            ..about_ann.clone()
        },
        ModerationEntry {
            id: 5,
            at: at(320),
            action: ModerationAction::PostRestored,
            reason: None,
            ..hidden.clone()
        },
        ModerationEntry { id: 4, ..hidden },
        role(3, RoleName::Member),
        role(2, RoleName::Moderator),
        ModerationEntry {
            id: 1,
            actor_id: None,
            actor_handle: None,
            user_id: MODERATOR_ID,
            user_handle: MODERATOR_HANDLE.into(),
            ..role(1, RoleName::Admin)
        },
    ]
}

/// What `GET /events` sends after [`LAST_EVENT_ID`] (post 1 created): post 1 changed,
/// voted for, deleted.
fn live_events() -> Vec<EventData> {
    vec![
        EventData::Updated(PostUpdated::example()),
        EventData::Vote(VoteCount::example()),
        EventData::Deleted(DeletedPost::example()),
    ]
}

/// The example of parameter `name` of `operation`. Swagger UI's "Try it out" fills every
/// parameter with its example: each is one a request may carry as it is.
fn parameter(operation: &str, name: &str) -> Option<Value> {
    Some(match (operation, name) {
        ("getUser" | "setRole" | "suspendUser" | "liftSuspension", "id") => json!(USER_ID),
        ("getProfile", "handle") => json!(HANDLE),
        ("endSession", "id") => json!(SESSION_ID),
        (_, "id") => json!(POST_ID),
        (_, "limit") => json!(PageSize::DEFAULT.get()),
        (_, "skip") => json!(0),
        (_, "search") => json!(SEARCH),
        // Empty is no cursor: the first page. A cursor is signed by the service, so any other
        // example would be refused.
        (_, "cursor") => json!(""),
        // Any version: the write goes ahead whatever the post's version is.
        (_, "If-Match") => json!("*"),
        // A version the post is not at: the post comes whole.
        (_, "If-None-Match") => json!(etag()),
        (_, "Last-Event-ID" | "last_event_id") => json!(LAST_EVENT_ID),
        _ => return None,
    })
}

/// The body of `operation`'s response of `status`.
fn response(operation: &str, status: u16) -> Option<Value> {
    match (operation, status) {
        ("root", 200) => Message::start().to_json(),
        ("liveness", 200) => Message::alive().to_json(),
        ("health", 200) => Health::example().to_json(),
        ("createUser", 201) => Account {
            email_verified: false,
            ..Account::example()
        }
        .to_json(),
        ("readMe", 200) => Account::example().to_json(),
        ("updateMe", 200) => Account {
            display_name: NullableText(Some(DISPLAY_NAME.into())),
            ..Account::example()
        }
        .to_json(),
        ("getUser" | "getProfile", 200) => Profile::example().to_json(),
        ("login" | "refreshToken", 200) => Token::example().to_json(),
        ("listSessions", 200) => vec![Session::example()].to_json(),
        ("listPosts", 200) => vec![PostOut::example()].to_json(),
        ("createPost", 201) | ("getPost" | "replacePost", 200) => PostOut::example().to_json(),
        ("updatePost", 200) => PostOut {
            title: NEW_TITLE.into(),
            ..PostOut::example()
        }
        .to_json(),
        ("castVote", 201) => VoteResult::added(POST_ID).to_json(),
        ("castVote", 200) => VoteResult::removed(POST_ID).to_json(),
        ("issueEventTicket", 201) => EventTicket::example().to_json(),
        ("streamEvents", 200) => live_events().to_json(),
        ("setRole", 200) => Account {
            role: RoleName::Moderator,
            ..Account::example()
        }
        .to_json(),
        ("listHiddenPosts", 200) => vec![PostOut {
            hidden: true,
            hidden_reason: NullableText(Some(REASON.into())),
            ..PostOut::example()
        }]
        .to_json(),
        ("readModerationLog", 200) => moderation_log().to_json(),
        (_, 400..) => problem(operation, status)?.to_json(),
        _ => None,
    }
}

/// The problem document `operation` answers with `status`.
fn problem(operation: &str, status: u16) -> Option<Problem> {
    let error = match (status, operation) {
        (401, "login") => ServiceError::Unauthorized("the email or password is incorrect".into()),
        (401, "refreshToken") => ServiceError::Unauthorized(
            "the refresh token is invalid, expired or spent; log in again".into(),
        ),
        (401, _) => ServiceError::Unauthorized(
            "a bearer token is required; get one from POST /login".into(),
        ),
        (403, "changePassword" | "changeEmail") => {
            ServiceError::Forbidden("the current password is incorrect".into())
        }
        (403, "createPost" | "castVote" | "updateMe") => {
            ServiceError::Forbidden(service::accounts::VERIFY_FIRST.into())
        }
        (403, "setRole") => ServiceError::Forbidden("this needs the role admin or above".into()),
        (
            403,
            "hidePost" | "restorePost" | "suspendUser" | "liftSuspension" | "listHiddenPosts"
            | "readModerationLog",
        ) => ServiceError::Forbidden("this needs the role moderator or above".into()),
        (403, _) => ServiceError::Forbidden(format!(
            "post {POST_ID} belongs to another user; only its owner may change it"
        )),
        (404, "getUser" | "setRole" | "suspendUser" | "liftSuspension") => {
            ServiceError::NotFound(format!("user {MISSING_ID} was not found"))
        }
        (404, "getProfile") => {
            ServiceError::NotFound(format!("no one has the handle {MISSING_HANDLE}"))
        }
        (404, "endSession") => {
            ServiceError::NotFound(format!("session {MISSING_ID} was not found"))
        }
        (404, _) => ServiceError::NotFound(format!("post {MISSING_ID} was not found")),
        (409, "castVote") => {
            ServiceError::Conflict(format!("you have already voted on post {POST_ID}"))
        }
        (409, "changeEmail" | "verifyEmail") => ServiceError::Conflict(format!(
            "the email {NEW_EMAIL} is taken by another account; choose another"
        )),
        (409, "updateMe") => {
            ServiceError::Conflict(format!("the handle {HANDLE} is taken; choose another"))
        }
        (409, "hidePost") => ServiceError::Conflict(format!("post {POST_ID} is hidden already")),
        (409, "restorePost") => ServiceError::Conflict(format!("post {POST_ID} is not hidden")),
        (409, "suspendUser") => ServiceError::Conflict(format!(
            "user {USER_ID} is suspended already (until lifted); lift the suspension first to \
             change it"
        )),
        (409, "liftSuspension") => {
            ServiceError::Conflict(format!("user {USER_ID} is not suspended"))
        }
        (409, "requestVerification") => {
            ServiceError::Conflict("this account's email address is already verified".into())
        }
        (409, _) => ServiceError::Conflict(format!(
            "the email {EMAIL} is already registered; log in instead"
        )),
        (412, _) => ServiceError::Stale {
            detail: "the post has changed since the version the request names; read it again"
                .into(),
            current_tag: TAG.into(),
        },
        (413, _) => return Some(described(ErrorStatus::PayloadTooLarge)),
        (415, _) => {
            return Some(with_instance(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "A body of type text/plain is not accepted here; see /docs for the types each \
                 operation accepts.",
            )));
        }
        (422, _) => return invalid_request(operation),
        (429, _) => ServiceError::RateLimited {
            limit: match operation {
                "login" | "changePassword" => RateLimit::FailedLoginsForAccount,
                "createUser" => RateLimit::Registrations,
                "streamEvents" => RateLimit::EventStreams,
                "requestVerification" => RateLimit::VerificationMails,
                "changeEmail" => RateLimit::EmailChanges,
                "requestPasswordReset" => RateLimit::PasswordResetsForEmail,
                _ => RateLimit::Writes,
            },
            retry_after_secs: RETRY_AFTER_SECS,
        },
        (503, _) => return Some(described(ErrorStatus::Unavailable)),
        _ => return None,
    };
    Some(answer(error))
}

/// The 422 of `operation` for one broken field, its requirement from the field's own rule.
fn invalid_request(operation: &str) -> Option<Problem> {
    Some(match operation {
        "createUser" => invalid("email", refused::<Email>(&json!("ann"))),
        "login" => invalid("password", refused::<LoginPassword>(&json!(""))),
        "refreshToken" => invalid(
            "refresh_token",
            RefreshToken::check(None).expect_err("a refresh token is required"),
        ),
        "changePassword" => invalid("new_password", refused::<Password>(&json!("short"))),
        "requestPasswordReset" => invalid("email", refused::<Email>(&json!("ann"))),
        "changeEmail" => invalid("new_email", refused::<Email>(&json!("ann"))),
        "verifyEmail" | "resetPassword" => answer(ServiceError::invalid(
            "token",
            "is not a valid token: unknown, already used, or replaced by a newer one",
        )),
        "setRole" => invalid("role", refused::<Role>(&json!("owner"))),
        "hidePost" => invalid("reason", refused::<Reason>(&json!("  "))),
        "suspendUser" => invalid("until", refused::<Until>(&json!("tomorrow"))),
        "listHiddenPosts" | "readModerationLog" => invalid("limit", refused_text::<Limit>("0")),
        "getUser" | "endSession" | "getPost" | "deletePost" | "restorePost" | "liftSuspension" => {
            invalid("id", refused_text::<Id>("0"))
        }
        "listPosts" => invalid("limit", refused_text::<Limit>("0")),
        "getProfile" => invalid("handle", refused_text::<Handle>("a")),
        "updateMe" => invalid("display_name", refused::<DisplayName>(&json!("  "))),
        "createPost" | "replacePost" => invalid("title", refused::<Title>(&json!("  "))),
        "updatePost" => answer(
            patched::<Flag>("published", MaybeUndefined::Null)
                .expect_err("a null field of a PATCH is refused"),
        ),
        "castVote" => invalid("dir", refused::<VoteDirection>(&json!(2))),
        "streamEvents" => invalid("Last-Event-ID", refused_text::<EventId>("-1")),
        _ => return None,
    })
}

/// What rule `R` says of a JSON `value` that breaks it.
fn refused<R: Rule>(value: &Value) -> Requirement {
    R::check(Some(value))
        .err()
        .expect("the example value breaks the rule")
}

/// What rule `R` says of a parameter `text` that breaks it.
fn refused_text<R: Rule>(text: &str) -> Requirement {
    R::check_text(Some(text))
        .err()
        .expect("the example value breaks the rule")
}

fn invalid(field: &'static str, requirement: Requirement) -> Problem {
    answer(ServiceError::Invalid(vec![FieldError::new(
        field,
        requirement,
    )]))
}

/// The problem document the service answers `error` with.
fn answer(error: ServiceError) -> Problem {
    with_instance(ApiError::<()>::from(error).into_problem())
}

/// The problem document whose detail is its status' description.
fn described(status: ErrorStatus) -> Problem {
    with_instance(Problem::new(
        StatusCode::from_u16(status.code()).expect("a status code"),
        status.description(),
    ))
}

/// A problem as a request gets it: naming the request.
fn with_instance(problem: Problem) -> Problem {
    Problem {
        instance: Some(format!("urn:request:{REQUEST_ID}")),
        ..problem
    }
}

/// The limits `operation` is counted against, with the default settings, as a request that
/// gets `status` finds them: a 429 past the account's limit, else the first request of a
/// window.
fn allowances(operation: &str, status: u16) -> Vec<Allowance> {
    let settings = Settings::default();
    let login_window = settings.login_window().as_secs();
    let resend = settings.verification_resend_seconds as u64;
    let limits = match operation {
        "requestPasswordReset" => vec![
            (
                RateLimit::PasswordResetsForEmail,
                settings.password_reset_max_per_email,
                login_window,
            ),
            (
                RateLimit::PasswordResetsFromAddress,
                settings.password_reset_max_per_address,
                login_window,
            ),
        ],
        "requestVerification" | "changeEmail" => vec![
            (
                RateLimit::AccountMailsFromAddress,
                settings.mail_requests_max_per_address,
                login_window,
            ),
            if operation == "changeEmail" {
                (RateLimit::EmailChanges, 1, resend)
            } else {
                (RateLimit::VerificationMails, 1, resend)
            },
        ],
        _ => vec![(
            RateLimit::Writes,
            settings.writes_per_minute,
            WINDOW_SECONDS.unsigned_abs(),
        )],
    };
    let refused = status == 429;
    let last = limits.len() - 1;
    limits
        .into_iter()
        .enumerate()
        .map(|(place, (limit, quota, window_seconds))| {
            let exceeded = refused && place == last;
            Allowance {
                limit,
                quota,
                window_seconds,
                remaining: if exceeded { 0 } else { quota - 1 },
                resets_in_seconds: if exceeded {
                    RETRY_AFTER_SECS
                } else {
                    window_seconds
                },
                exceeded,
            }
        })
        .collect()
}

/// The example of response header `name` of `operation`'s response of `status`.
fn header(operation: &str, status: u16, name: &str) -> Option<Value> {
    let value = match name.to_ascii_lowercase().as_str() {
        "location" => match operation {
            "createUser" => format!("/users/{USER_ID}"),
            "createPost" => format!("/posts/{POST_ID}"),
            _ => return None,
        },
        "etag" => etag(),
        "cache-control" => "no-store".into(),
        "pragma" => "no-cache".into(),
        "www-authenticate" => "Bearer".into(),
        "retry-after" if status == 503 => crate::problem::UNAVAILABLE_RETRY_AFTER.into(),
        "retry-after" => RETRY_AFTER_SECS.to_string(),
        "ratelimit-policy" => policies(&allowances(operation, status)),
        "ratelimit" => remaining(&allowances(operation, status)),
        "link" => {
            format!(
                "</posts?limit={}&search={SEARCH}&cursor={CURSOR}>; rel=\"next\"",
                PageSize::DEFAULT.get()
            )
        }
        "x-accel-buffering" => "no".into(),
        _ => return None,
    };
    Some(json!(value))
}

// --- into the document ------------------------------------------------------------------

/// Puts an example on every schema the derive leaves without one, and on every parameter,
/// request body, response body and response header of every operation.
pub(super) fn add(spec: &mut serde_yaml::Value) {
    let requests = request_examples();
    if let Some(schemas) = spec
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
    {
        for (name, example) in schema_examples() {
            set_example(schemas.get_mut(name.as_ref()), Some(example));
        }
    }
    let Some(paths) = spec
        .get_mut("paths")
        .and_then(serde_yaml::Value::as_mapping_mut)
    else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(serde_yaml::Value::as_mapping_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(id) = operation
            .get("operationId")
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        for parameter_object in items(operation.get_mut("parameters")) {
            let name = text(parameter_object, "name");
            set_example(Some(parameter_object), parameter(&id, &name));
        }
        for media in values(
            operation
                .get_mut("requestBody")
                .and_then(|body| body.get_mut("content")),
        ) {
            let schema = media
                .get("schema")
                .and_then(|schema| schema.get("$ref"))
                .and_then(serde_yaml::Value::as_str)
                .and_then(|reference| reference.rsplit('/').next())
                .unwrap_or_default()
                .to_owned();
            let example = requests
                .iter()
                .find(|(name, _)| *name == schema)
                .map(|(_, example)| example.clone());
            set_example(Some(media), example);
        }
        let responses = operation
            .get_mut("responses")
            .and_then(serde_yaml::Value::as_mapping_mut);
        for (status, response_object) in responses.into_iter().flat_map(|r| r.iter_mut()) {
            let Some(status) = status.as_str().and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            for media in values(response_object.get_mut("content")) {
                set_example(Some(media), response(&id, status));
            }
            if let Some(headers) = response_object
                .get_mut("headers")
                .and_then(serde_yaml::Value::as_mapping_mut)
            {
                for (name, header_object) in headers.iter_mut() {
                    let name = name.as_str().unwrap_or_default();
                    set_example(Some(header_object), header(&id, status, name));
                }
            }
        }
    }
}

fn set_example(target: Option<&mut serde_yaml::Value>, example: Option<Value>) {
    let (Some(target), Some(example)) =
        (target.and_then(serde_yaml::Value::as_mapping_mut), example)
    else {
        return;
    };
    let example = serde_yaml::to_value(example).expect("JSON is a YAML value");
    target.insert("example".into(), example);
}

fn items(list: Option<&mut serde_yaml::Value>) -> impl Iterator<Item = &mut serde_yaml::Value> {
    list.and_then(serde_yaml::Value::as_sequence_mut)
        .into_iter()
        .flatten()
}

fn values(map: Option<&mut serde_yaml::Value>) -> impl Iterator<Item = &mut serde_yaml::Value> {
    map.and_then(serde_yaml::Value::as_mapping_mut)
        .into_iter()
        .flat_map(|map| map.values_mut())
}

fn text(object: &serde_yaml::Value, key: &str) -> String {
    object
        .get(key)
        .and_then(serde_yaml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
