use sea_orm_migration::prelude::*;

/// Records the client's address with each login attempt, so that the throttle can also
/// limit one address guessing across many emails.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Textual IPv6 with an embedded IPv4 address is at most 45 characters.
        manager
            .alter_table(
                Table::alter()
                    .table(LoginFailures::Table)
                    .add_column(
                        ColumnDef::new(LoginFailures::ClientAddress)
                            .string_len(45)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Counting one address's recent failures.
        manager
            .create_index(
                Index::create()
                    .name("idx_login_failures_client_address_failed_at")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::ClientAddress)
                    .col(LoginFailures::FailedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_login_failures_client_address_failed_at")
                    .table(LoginFailures::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LoginFailures::Table)
                    .drop_column(LoginFailures::ClientAddress)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    ClientAddress,
    FailedAt,
}
