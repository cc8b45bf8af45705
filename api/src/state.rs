use service::{Database, accounts::Accounts, cursors::Cursors, events::Feed};

/// What every request handler may use: the database pool, the account rules, the key page
/// cursors are signed with, and the feed of live events.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
    pub cursors: Cursors,
    pub feed: Feed,
}
