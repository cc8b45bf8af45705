use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

/// The mail outbox, the one-time tokens that mails carry, and whether an account's address
/// is verified: the accounts that exist start unverified, or verified when the operator
/// trusts their addresses ([`crate::Options::trust_existing_emails`]).
///
/// A mail is a row of `mails` from the transaction that records it (with the token it
/// carries) until a worker has handed it to the SMTP server: a crash or an outage delays it,
/// never loses it. A worker claims due mails for a while (`claimed_until`), so that across
/// instances one sends each, and the claim of a worker killed mid-send runs out. A mail to
/// an account goes with the account.
///
/// `account_tokens` keeps only the SHA-256 of each token; one per account and purpose is
/// live (a newer one replaces the older). `new_email` is for the address change that will
/// use them. `down` drops the tables and the column.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(UsersVerified::EmailVerified)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        if crate::options().trust_existing_emails {
            // The operator vouches for the addresses the accounts have now.
            manager
                .get_connection()
                .execute_unprepared("UPDATE users SET email_verified = TRUE")
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Mails::Table)
                    .col(big_pk_auto(Mails::Id))
                    .col(big_integer_null(Mails::UserId))
                    .col(string_len_null(Mails::Purpose, 32))
                    .col(text(Mails::Recipient))
                    .col(text(Mails::Subject))
                    .col(text(Mails::TextBody))
                    .col(text(Mails::HtmlBody))
                    .col(string_len(Mails::MessageId, 255))
                    .col(timestamp_with_time_zone(Mails::CreatedAt))
                    .col(timestamp_with_time_zone(Mails::NextAttemptAt))
                    .col(integer(Mails::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(Mails::ClaimedUntil))
                    .col(text_null(Mails::LastError))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Mails::Table, Mails::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The worker's claim: the due mails, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_mails_next_attempt_at")
                    .table(Mails::Table)
                    .col(Mails::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // An account's earlier mails of a purpose, replaced by a newer one; the cascade.
        manager
            .create_index(
                Index::create()
                    .name("idx_mails_user_id")
                    .table(Mails::Table)
                    .col(Mails::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(big_pk_auto(AccountTokens::Id))
                    .col(big_integer(AccountTokens::UserId))
                    .col(string_len(AccountTokens::Purpose, 32))
                    // The hex SHA-256 of the token: the token itself is never stored.
                    .col(char_len(AccountTokens::TokenHash, 64).unique_key())
                    .col(string_len_null(AccountTokens::NewEmail, 254))
                    .col(timestamp_with_time_zone(AccountTokens::CreatedAt))
                    .col(timestamp_with_time_zone(AccountTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // An account's token of a purpose: replaced by a newer one, and the resend limit.
        manager
            .create_index(
                Index::create()
                    .name("idx_account_tokens_user_purpose")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::UserId)
                    .col(AccountTokens::Purpose)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Mails::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(UsersVerified::EmailVerified)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UsersVerified {
    EmailVerified,
}

#[derive(DeriveIden)]
enum Mails {
    Table,
    Id,
    UserId,
    Purpose,
    Recipient,
    Subject,
    TextBody,
    HtmlBody,
    MessageId,
    CreatedAt,
    NextAttemptAt,
    Attempts,
    ClaimedUntil,
    LastError,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    Id,
    UserId,
    Purpose,
    TokenHash,
    NewEmail,
    CreatedAt,
    ExpiresAt,
}
