use sea_orm::entity::prelude::*;

/// One failed (or in-progress) login attempt for an email, from a client address when one is
/// known. The login throttle counts these in the database, not in memory, so the limits hold
/// across every instance of the service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email: String,
    pub client_address: Option<String>,
    pub failed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
