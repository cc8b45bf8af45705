//! `cargo run -p migration -- up|down|status|fresh`: the sea-orm-migration command line,
//! with `DATABASE_URL` (or `-u URL`) naming the database.

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(migration::Migrator).await;
}
