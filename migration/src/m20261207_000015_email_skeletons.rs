use entity::user::{email_skeleton, stored_email};
use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

/// Keeps each address's look-alike key (`entity::user::email_skeleton`), indexed, so that an
/// address a person cannot tell from a registered one is refused, and brings the stored
/// addresses to their NFKC form (`entity::user::stored_email`), the one logins now look up.
/// An address whose NFKC form another account already holds keeps its old form. `down`
/// drops the key; the addresses stay in their NFKC form, which the older code reads alike.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Accounts read and rewritten per statement.
const BATCH: u64 = 1000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The default lets a bulk load that knows nothing of the key still insert accounts.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::EmailSkeleton)
                            .string_len(64)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        fill(manager.get_connection()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_email_skeleton")
                    .table(Users::Table)
                    .col(Users::EmailSkeleton)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_email_skeleton")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::EmailSkeleton)
                    .to_owned(),
            )
            .await
    }
}

/// Stores every account's address in its NFKC form, where no other account holds that, and
/// the look-alike key of the address it then has.
async fn fill(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let mut after = 0_i64;
    loop {
        let rows = db
            .query_all(
                Query::select()
                    .columns([Users::Id, Users::Email])
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Id).gt(after))
                    .order_by(Users::Id, Order::Asc)
                    .limit(BATCH),
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("", "id")?;
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let email: String = row.try_get("", "email")?;
            let normal = stored_email(&email);
            let taken = normal != email
                && db
                    .query_one(
                        Query::select()
                            .column(Users::Id)
                            .from(Users::Table)
                            .and_where(Expr::col(Users::Email).eq(&normal)),
                    )
                    .await?
                    .is_some();
            let email = if taken { email } else { normal };
            db.execute(
                Query::update()
                    .table(Users::Table)
                    .value(Users::Email, &email)
                    .value(Users::EmailSkeleton, email_skeleton(&email))
                    .and_where(Expr::col(Users::Id).eq(id)),
            )
            .await?;
        }
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    EmailSkeleton,
}
