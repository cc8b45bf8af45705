//! One `#[OpenApi]` impl per resource. Handlers parse, call one service function, and map
//! the result; the rules live in `service`.

mod auth;
mod events;
mod meta;
mod moderation;
mod posts;
mod users;
mod votes;

pub use auth::AuthApi;
pub use events::EventsApi;
pub use meta::MetaApi;
pub use moderation::ModerationApi;
pub use posts::PostsApi;
pub use users::UsersApi;
pub use votes::VotesApi;

use poem_openapi::Tags;

#[derive(Tags)]
enum ApiTags {
    /// The service itself: where the docs are, whether it is healthy.
    Meta,
    /// Registering, reading and deleting accounts.
    Users,
    /// Logging in.
    Auth,
    /// Writing, reading, listing and searching posts.
    Posts,
    /// Voting for posts.
    Votes,
    /// Following changes as they happen (server-sent events).
    Events,
    /// Roles, hidden posts, suspensions and the log of them: moderators and administrators.
    Moderation,
}
