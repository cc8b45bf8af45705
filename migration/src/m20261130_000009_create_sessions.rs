use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

/// Sessions, one per login, and the refresh tokens each has been issued: a session ends by
/// deleting its row, which takes its refresh tokens with it, and every access token naming
/// it is refused from then on.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(big_pk_auto(Sessions::Id))
                    .col(big_integer(Sessions::UserId))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastUsedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(string_len_null(Sessions::UserAgent, 512))
                    // Textual IPv6 with an embedded IPv4 address is at most 45 characters.
                    .col(string_len_null(Sessions::ClientAddress, 45))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing and ending one person's sessions, and the cascade when an account goes.
        index(
            manager,
            "idx_sessions_user_id",
            Sessions::Table,
            Sessions::UserId,
        )
        .await?;
        // Pruning expired sessions.
        index(
            manager,
            "idx_sessions_expires_at",
            Sessions::Table,
            Sessions::ExpiresAt,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    // The hex SHA-256 of the token: the token itself is never stored.
                    .col(char_len(RefreshTokens::TokenHash, 64).primary_key())
                    .col(big_integer(RefreshTokens::SessionId))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::SpentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The cascade when a session ends.
        index(
            manager,
            "idx_refresh_tokens_session_id",
            RefreshTokens::Table,
            RefreshTokens::SessionId,
        )
        .await?;
        // Pruning expired refresh tokens.
        index(
            manager,
            "idx_refresh_tokens_expires_at",
            RefreshTokens::Table,
            RefreshTokens::ExpiresAt,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

/// Creates the index `name` on one column.
async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(table)
                .col(column)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
pub enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    UserAgent,
    ClientAddress,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    IssuedAt,
    ExpiresAt,
    SpentAt,
}
