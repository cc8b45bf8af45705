use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// A trigram index for the case-insensitive title search (`LOWER(title) LIKE '%…%'`), on
/// PostgreSQL. SQLite has no such index type for `LIKE`; there the search scans the newest
/// posts in order until a page is full.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // pg_trgm is a trusted extension: the database's owner may create it.
        db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_posts_title_trgm ON posts USING gin (LOWER(title) gin_trgm_ops)",
        )
        .await?;
        // A finer histogram of LOWER(title) lets the planner tell a common search (walk the
        // newest posts in order: a page fills fast) from a rare one (use the trigrams).
        db.execute_unprepared(
            "ALTER INDEX idx_posts_title_trgm ALTER COLUMN 1 SET STATISTICS 1000",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // The extension stays: other objects of the database may use it.
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_posts_title_trgm")
            .await?;
        Ok(())
    }
}
