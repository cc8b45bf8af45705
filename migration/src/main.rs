//! `cargo run -p migration -- up|down|status|fresh`: the sea-orm-migration command line,
//! with `DATABASE_URL` (or `-u URL`) naming the database, and `TRUST_EXISTING_EMAILS=true`
//! counting the addresses of existing accounts as verified when verification is added.

#[tokio::main]
async fn main() {
    let options = migration::Options {
        trust_existing_emails: std::env::var("TRUST_EXISTING_EMAILS")
            .is_ok_and(|value| matches!(value.to_ascii_lowercase().as_str(), "true" | "1")),
    };
    migration::with_options(
        options,
        sea_orm_migration::cli::run_cli(migration::Migrator),
    )
    .await;
}
