use sea_orm_migration::{prelude::*, schema::*};

/// Registrations per client address, for the registration limit: one row per attempt,
/// pruned once it has aged out of the window.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Textual IPv6 with an embedded IPv4 address is at most 45 characters.
        manager
            .create_table(
                Table::create()
                    .table(Registrations::Table)
                    .col(big_pk_auto(Registrations::Id))
                    .col(string_len(Registrations::ClientAddress, 45))
                    .col(timestamp_with_time_zone(Registrations::RegisteredAt))
                    .to_owned(),
            )
            .await?;
        // Counting one address's recent registrations.
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_client_address_registered_at")
                    .table(Registrations::Table)
                    .col(Registrations::ClientAddress)
                    .col(Registrations::RegisteredAt)
                    .to_owned(),
            )
            .await?;
        // Pruning registrations that have aged out of the window.
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_registered_at")
                    .table(Registrations::Table)
                    .col(Registrations::RegisteredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Registrations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    Id,
    ClientAddress,
    RegisteredAt,
}
