use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

/// Writes per account in its current window, for the write limit: one row per account (so
/// the table is as large as the accounts, and goes with each), counted by one upsert that
/// starts a new window when the last has passed.
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
            .await
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
