use sea_orm::entity::prelude::*;

/// One request counted against a limit: the limit's policy, the key it counts by (a client
/// address, an IPv6 client by its /64; an address; an account id), and when. Counted in the
/// database so that a limit holds across every instance of the service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "limit_hits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub policy: String,
    pub key: String,
    pub counted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
