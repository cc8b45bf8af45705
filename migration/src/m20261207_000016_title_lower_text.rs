use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Lets `title_lower` hold the lower case of every title the schema allows, whatever the
/// database's locale: under an ICU collation `LOWER` turns some characters into longer
/// strings (`İ` into `i̇`, two characters), so the lower case of a 200-character title may
/// not fit the `varchar(200)` it was given, and the post's insert failed. The indexes on it
/// stay (the type changes, binary-compatibly, without a rewrite of the table). SQLite does
/// not enforce a declared length.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "text").await
    }

    /// Fails while a stored title's lower case is longer than 200 characters: such a post
    /// cannot be kept under the old type.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "varchar(200)").await
    }
}

async fn set_type(manager: &SchemaManager<'_>, sql_type: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE posts ALTER COLUMN title_lower TYPE {sql_type}"
        ))
        .await?;
    Ok(())
}
