use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261121_000001_create_users::Users, m20261121_000002_create_posts::Posts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Votes::Table)
                    .col(big_integer(Votes::UserId))
                    .col(big_integer(Votes::PostId))
                    // One vote per person and post, decided by the database under concurrency.
                    .primary_key(Index::create().col(Votes::UserId).col(Votes::PostId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Votes::Table, Votes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Votes::Table, Votes::PostId)
                            .to(Posts::Table, Posts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Counting a post's votes, and the cascade when a post goes.
        manager
            .create_index(
                Index::create()
                    .name("idx_votes_post_id")
                    .table(Votes::Table)
                    .col(Votes::PostId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Votes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Votes {
    Table,
    UserId,
    PostId,
}
