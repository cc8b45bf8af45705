use sea_orm::entity::prelude::*;

/// One request for a password reset mail, for the limits per address and per client and for
/// the service to turn into a mail off the request's path (`handled` once it has).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// In its stored form, as `users.email` holds it.
    pub email: String,
    pub client_address: Option<String>,
    pub requested_at: DateTimeUtc,
    pub handled: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
