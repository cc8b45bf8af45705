use sea_orm::entity::prelude::*;

/// One request for a password reset mail, which the service turns into a mail off the
/// request's path (deleting the row in the transaction that records the mail).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// In its stored form, as `users.email` holds it.
    pub email: String,
    pub requested_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
