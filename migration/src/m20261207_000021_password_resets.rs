use sea_orm_migration::{prelude::*, schema::*};

/// Requests for a password reset mail, one row each: the limits per address and per client
/// count them, and the service turns each into a mail (when the address has an account) off
/// the request's path, so that a request costs the same whether or not it has one. A row is
/// kept, handled, until it ages out of the limits' window.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .col(big_pk_auto(PasswordResets::Id))
                    .col(string_len(PasswordResets::Email, 254))
                    // Textual IPv6 with an embedded IPv4 address is at most 45 characters.
                    .col(string_len_null(PasswordResets::ClientAddress, 45))
                    .col(timestamp_with_time_zone(PasswordResets::RequestedAt))
                    .col(boolean(PasswordResets::Handled).default(false))
                    .to_owned(),
            )
            .await?;
        index(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasswordResets::Table).to_owned())
            .await
    }
}

/// The indexes the limits and the handling pass read by.
pub(crate) async fn index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for (name, columns) in [
        (
            "idx_password_resets_email_requested_at",
            vec![PasswordResets::Email, PasswordResets::RequestedAt],
        ),
        (
            "idx_password_resets_client_address_requested_at",
            vec![PasswordResets::ClientAddress, PasswordResets::RequestedAt],
        ),
        (
            "idx_password_resets_handled",
            vec![PasswordResets::Handled, PasswordResets::Id],
        ),
    ] {
        let mut index = Index::create();
        index.name(name).table(PasswordResets::Table);
        for column in columns {
            index.col(column);
        }
        manager.create_index(index.to_owned()).await?;
    }
    Ok(())
}

#[derive(DeriveIden, Clone, Copy)]
enum PasswordResets {
    Table,
    Id,
    Email,
    ClientAddress,
    RequestedAt,
    Handled,
}
