use sea_orm::entity::prelude::*;

/// An open event stream's lease on one of its account's slots, so that the cap on an
/// account's streams holds across every instance of the service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_streams")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: i32,
    /// The instance holding the stream, which renews the lease.
    pub instance: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
