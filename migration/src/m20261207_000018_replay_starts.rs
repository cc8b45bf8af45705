use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

/// Where a replay from `Last-Event-ID: 0` starts for each account: after the last event
/// recorded before the account was created, noted as it is created. Events are stamped in
/// whole seconds, so a cut by time let in what happened earlier in the account's own second.
/// Existing accounts get the cut the time gave them. The default lets a bulk load that knows
/// nothing of it still insert accounts (they are replayed what is kept). `down` drops it.
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
                        ColumnDef::new(Users::LastEventBefore)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let seconds = match db.get_database_backend() {
            DbBackend::Postgres => "FLOOR(EXTRACT(EPOCH FROM users.created_at))::bigint",
            _ => "CAST(strftime('%s', users.created_at) AS INTEGER)",
        };
        db.execute_unprepared(&format!(
            "UPDATE users SET last_event_before = COALESCE(\
               (SELECT MIN(id) - 1 FROM events WHERE created_at >= {seconds}), \
               (SELECT COALESCE(MAX(id), 0) FROM events))"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::LastEventBefore)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    LastEventBefore,
}
