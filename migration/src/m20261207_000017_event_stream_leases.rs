use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

/// The open event streams of every instance, so that the cap on one account's streams holds
/// across instances: a stream holds one of its account's numbered slots (`slot` below the
/// cap) while it is open, its instance renews the lease, and a lease its instance stopped
/// renewing (the instance is gone) expires. Deleting an account takes its leases with it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventStreams::Table)
                    .col(big_integer(EventStreams::UserId))
                    .col(integer(EventStreams::Slot))
                    .col(string_len(EventStreams::Instance, 64))
                    // Seconds since the epoch: integers compare alike on both databases.
                    .col(big_integer(EventStreams::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(EventStreams::UserId)
                            .col(EventStreams::Slot),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EventStreams::Table, EventStreams::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("event_streams_instance")
                    .table(EventStreams::Table)
                    .col(EventStreams::Instance)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventStreams::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum EventStreams {
    Table,
    UserId,
    Slot,
    Instance,
    ExpiresAt,
}
