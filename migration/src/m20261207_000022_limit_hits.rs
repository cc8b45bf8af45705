use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261130_000008_create_registrations as registrations,
    m20261207_000012_session_generations::{add, drop_column},
    m20261207_000021_password_resets as password_resets,
};

/// One table counts every request limited per client, address or account within a window
/// (registrations, password reset requests, verification and address change mails): a row
/// per request counted, named by the limit's policy and the key it counts by, pruned once it
/// has aged out of the window. `registrations` goes, its rows carried over; a password reset
/// request is no longer counted by its own row, which now lives only until it is handled.
/// `down` brings both back, with the rows of the limits they counted.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The policies whose rows existed before, as the service names them.
const REGISTRATIONS: &str = "registrations";
const RESETS_FOR_EMAIL: &str = "resets-email";
const RESETS_FROM_CLIENT: &str = "resets-client";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LimitHits::Table)
                    .col(big_pk_auto(LimitHits::Id))
                    .col(string_len(LimitHits::Policy, 32))
                    // An address (254 characters at most), a client address or an account id.
                    .col(string_len(LimitHits::Key, 254))
                    .col(timestamp_with_time_zone(LimitHits::CountedAt))
                    .to_owned(),
            )
            .await?;
        // Counting one key's recent requests; pruning those that aged out of a window.
        for (name, columns) in [
            (
                "idx_limit_hits_policy_key_counted_at",
                vec![LimitHits::Policy, LimitHits::Key, LimitHits::CountedAt],
            ),
            (
                "idx_limit_hits_policy_counted_at",
                vec![LimitHits::Policy, LimitHits::CountedAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(LimitHits::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO limit_hits (policy, key, counted_at) \
             SELECT '{REGISTRATIONS}', client_address, registered_at FROM registrations"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO limit_hits (policy, key, counted_at) \
             SELECT '{RESETS_FOR_EMAIL}', email, requested_at FROM password_resets"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO limit_hits (policy, key, counted_at) \
             SELECT '{RESETS_FROM_CLIENT}', client_address, requested_at FROM password_resets \
             WHERE client_address IS NOT NULL"
        ))
        .await?;
        manager
            .drop_table(Table::drop().table(Registrations::Table).to_owned())
            .await?;
        db.execute_unprepared("DELETE FROM password_resets WHERE handled")
            .await?;
        for index in [
            "idx_password_resets_email_requested_at",
            "idx_password_resets_client_address_requested_at",
            "idx_password_resets_handled",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(PasswordResets::Table)
                        .to_owned(),
                )
                .await?;
        }
        drop_column(
            manager,
            PasswordResets::Table,
            PasswordResets::ClientAddress,
        )
        .await?;
        drop_column(manager, PasswordResets::Table, PasswordResets::Handled).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            PasswordResets::Table,
            string_len_null(PasswordResets::ClientAddress, 45),
        )
        .await?;
        add(
            manager,
            PasswordResets::Table,
            boolean(PasswordResets::Handled).default(false),
        )
        .await?;
        let db = manager.get_connection();
        // The requests counted, as handled rows again (their client counted apart is lost).
        db.execute_unprepared(&format!(
            "INSERT INTO password_resets (email, requested_at, handled) \
             SELECT key, counted_at, TRUE FROM limit_hits WHERE policy = '{RESETS_FOR_EMAIL}'"
        ))
        .await?;
        password_resets::index(manager).await?;
        registrations::Migration.up(manager).await?;
        db.execute_unprepared(&format!(
            "INSERT INTO registrations (client_address, registered_at) \
             SELECT key, counted_at FROM limit_hits WHERE policy = '{REGISTRATIONS}'"
        ))
        .await?;
        manager
            .drop_table(Table::drop().table(LimitHits::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum LimitHits {
    Table,
    Id,
    Policy,
    Key,
    CountedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Registrations {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum PasswordResets {
    Table,
    ClientAddress,
    Handled,
}
