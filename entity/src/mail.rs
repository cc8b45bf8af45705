use sea_orm::entity::prelude::*;

/// A mail in the outbox: recorded in the transaction of what it tells (with the token it
/// carries), deleted once an SMTP server has taken it, or dropped after the retry period.
/// `message_id` is fixed when it is recorded, so that a mail sent twice (a worker killed
/// after the server took it) is recognisably one. A worker holds it while `claimed_until`
/// is in the future.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mails")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The account it is about, if any: it goes with the account.
    pub user_id: Option<i64>,
    /// What it is for (a token's purpose): a newer one of an account replaces the older.
    pub purpose: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub message_id: String,
    pub created_at: DateTimeUtc,
    pub next_attempt_at: DateTimeUtc,
    pub attempts: i32,
    pub claimed_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
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
