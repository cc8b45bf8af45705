use service::{Database, accounts::Accounts, cursors::Cursors};

/// What every request handler may use: the database pool, the account rules, and the key
/// page cursors are signed with.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
    pub cursors: Cursors,
}
