use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

use crate::m20261121_000001_create_users::Users;

/// Writes per account in its current window, for the write limit: one row per account (so
/// the table is as large as the accounts, and goes with each), counted by one upsert that
/// starts a new window when the last has passed.
///
/// On PostgreSQL the table is unlogged: a count is not worth a flush of the log at every
/// commit (a write paid for two), and losing the counts in a crash only gives every account
/// a fresh budget.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WriteCounts::Table)
                    .col(big_integer(WriteCounts::UserId).primary_key())
                    // Seconds since the epoch: integers compare alike on both databases.
                    .col(big_integer(WriteCounts::WindowStart))
                    .col(big_integer(WriteCounts::Writes))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WriteCounts::Table, WriteCounts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE write_counts SET UNLOGGED")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WriteCounts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WriteCounts {
    Table,
    UserId,
    WindowStart,
    Writes,
}
