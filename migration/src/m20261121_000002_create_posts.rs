use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .col(big_pk_auto(Posts::Id))
                    .col(string_len(Posts::Title, 200))
                    .col(text(Posts::Content))
                    .col(boolean(Posts::Published).default(true))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .col(timestamp_with_time_zone(Posts::UpdatedAt))
                    .col(big_integer(Posts::OwnerId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Posts::Table, Posts::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The listing's order: newest first, ties broken by id.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created_at_id")
                    .table(Posts::Table)
                    .col((Posts::CreatedAt, IndexOrder::Desc))
                    .col((Posts::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        // A user's own posts (drafts in listings) and the cascade when the user goes.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_owner_id")
                    .table(Posts::Table)
                    .col(Posts::OwnerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Posts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Posts {
    Table,
    Id,
    Title,
    Content,
    Published,
    CreatedAt,
    UpdatedAt,
    OwnerId,
}
