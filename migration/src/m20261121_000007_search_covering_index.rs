use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Makes a title search read an index, not the table: `title_lower` holds `LOWER(title)`
/// (computed by the database, so no writer can get it wrong), and an index in the listing's
/// order carries every column the search filters on. A search then walks that index from the
/// newest post and reads the table only for the rows of its page; before, it read every
/// post it looked at and lower-cased each title again. On PostgreSQL the trigram index (for
/// rare search terms) moves to the new column. The new index starts with the listing's order,
/// so it replaces `idx_posts_created_at_id` (one index fewer to keep up on every write; and
/// SQLite would otherwise walk the narrower one and read the table for each title).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE posts ADD COLUMN title_lower varchar(200) \
                     GENERATED ALWAYS AS (LOWER(title)) STORED",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE INDEX idx_posts_newest_searchable ON posts \
                     (created_at DESC, id DESC) INCLUDE (published, owner_id, title_lower)",
                )
                .await?;
                move_trigram_index(
                    db,
                    "title_lower",
                    "ALTER TABLE posts ALTER COLUMN title_lower SET STATISTICS 1000",
                )
                .await?;
            }
            // SQLite adds only VIRTUAL generated columns to a table; an index stores it anyway.
            _ => {
                db.execute_unprepared(
                    "ALTER TABLE posts ADD COLUMN title_lower varchar(200) \
                     GENERATED ALWAYS AS (LOWER(title)) VIRTUAL",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE INDEX idx_posts_newest_searchable ON posts \
                     (created_at DESC, id DESC, published, owner_id, title_lower)",
                )
                .await?;
            }
        }
        db.execute_unprepared("DROP INDEX idx_posts_created_at_id")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX idx_posts_created_at_id ON posts (created_at DESC, id DESC)",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            move_trigram_index(
                db,
                "(LOWER(title))",
                "ALTER INDEX idx_posts_title_trgm ALTER COLUMN 1 SET STATISTICS 1000",
            )
            .await?;
        }
        db.execute_unprepared("DROP INDEX idx_posts_newest_searchable")
            .await?;
        db.execute_unprepared("ALTER TABLE posts DROP COLUMN title_lower")
            .await?;
        Ok(())
    }
}

/// Re-creates the trigram index of title searches on `key`, then sets the finer statistics
/// that let the planner tell a common search term from a rare one.
async fn move_trigram_index(
    db: &SchemaManagerConnection<'_>,
    key: &str,
    statistics: &str,
) -> Result<(), DbErr> {
    db.execute_unprepared("DROP INDEX IF EXISTS idx_posts_title_trgm")
        .await?;
    db.execute_unprepared(&format!(
        "CREATE INDEX idx_posts_title_trgm ON posts USING gin ({key} gin_trgm_ops)"
    ))
    .await?;
    db.execute_unprepared(statistics).await?;
    Ok(())
}
