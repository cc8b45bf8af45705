use sea_orm::entity::prelude::*;

/// One step of moderation, appended to the log in the transaction of the step itself and
/// never changed (the database refuses it): a role change (`role`), a post hidden (`hide`)
/// or restored (`restore`), an account suspended (`suspend`) or its suspension lifted
/// (`lift`). People and posts are named by id, with their handle and title as they were, and
/// no foreign key: an entry outlives what it names. No actor: the command line did it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "moderation_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub action: String,
    pub actor_id: Option<i64>,
    pub actor_handle: Option<String>,
    /// The person acted on, or the owner of the post acted on.
    pub user_id: i64,
    pub user_handle: String,
    pub post_id: Option<i64>,
    pub post_title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    /// The role given, for a role change.
    pub role: Option<String>,
    /// The end of a suspension, if it has one.
    pub until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
