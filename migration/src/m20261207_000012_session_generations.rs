use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261121_000001_create_users::Users, m20261130_000009_create_sessions::Sessions};

/// A session keeps its refresh state in its own row, whatever the number of refreshes: the
/// generation of its live refresh token, that token's hash, and when it was issued by a
/// refresh (the first use of the one before it). `refresh_tokens`, one row per refresh, goes.
/// The refresh tokens issued before this step are not carried over (they cannot be: only
/// their hashes were kept), so a session of then refreshes no more; its access tokens work
/// until they expire.
///
/// An account gets a `credentials_version`, raised with every password change in the same
/// statement: a session starts only while the version its login read with the hash holds.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            Users::Table,
            big_integer(Extra::CredentialsVersion).default(0),
        )
        .await?;
        add(
            manager,
            Sessions::Table,
            big_integer(Extra::RefreshGeneration).default(0),
        )
        .await?;
        // No hash of a token is empty: a session carried over refreshes nothing.
        add(
            manager,
            Sessions::Table,
            string_len(Extra::RefreshHash, 64).default(""),
        )
        .await?;
        add(
            manager,
            Sessions::Table,
            timestamp_with_time_zone_null(Extra::RefreshedAt),
        )
        .await?;
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
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
        for (name, column) in [
            ("idx_refresh_tokens_session_id", RefreshTokens::SessionId),
            ("idx_refresh_tokens_expires_at", RefreshTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Extra::RefreshedAt,
            Extra::RefreshHash,
            Extra::RefreshGeneration,
        ] {
            drop_column(manager, Sessions::Table, column).await?;
        }
        drop_column(manager, Users::Table, Extra::CredentialsVersion).await
    }
}

/// Adds one column (SQLite takes one change per `ALTER TABLE`).
pub(crate) async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

pub(crate) async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[derive(DeriveIden)]
enum Extra {
    CredentialsVersion,
    RefreshGeneration,
    RefreshHash,
    RefreshedAt,
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
