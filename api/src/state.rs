use service::{DatabaseConnection, accounts::Accounts};

/// What every request handler may use: the database pool and the account rules.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub accounts: Accounts,
}
