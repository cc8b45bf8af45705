use service::{Database, accounts::Accounts};

/// What every request handler may use: the database pool and the account rules.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub accounts: Accounts,
}
