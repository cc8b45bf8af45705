use service::{
    Database,
    accounts::Accounts,
    events::Feed,
    posts::{Cursors, PostTags},
};

/// What every request handler may use: the database pool, the account rules, the keys page
/// cursors are signed and posts tagged with, the feed of live events, how many writes an
/// account may make a minute (0: no limit), and whether writes need a verified address.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
    pub cursors: Cursors,
    pub tags: PostTags,
    pub writes_per_minute: u32,
    pub require_verified_email: bool,
    pub feed: Feed,
}
