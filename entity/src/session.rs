use sea_orm::entity::prelude::*;

/// A login and what it has been allowed since: access tokens name it (`sid`), refresh tokens
/// extend it. Deleting the row ends the session; `expires_at` is that of its live refresh
/// token. Its refresh state is one row whatever the number of refreshes: the live token's
/// generation and hash, and when a refresh issued it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub created_at: DateTimeUtc,
    /// When the session last logged in or refreshed.
    pub last_used_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub user_agent: Option<String>,
    pub client_address: Option<String>,
    /// How many times the session has been refreshed: the generation of its live token.
    pub refresh_generation: i64,
    /// The hex SHA-256 of the live refresh token.
    pub refresh_hash: String,
    /// When a refresh issued the live token (the first use of the one before it), if one did.
    pub refreshed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
