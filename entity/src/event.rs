use sea_orm::entity::prelude::*;

/// One change subscribers are told of, written by the database's triggers in the statement
/// of the write itself (see the migration that creates them). Ids grow in commit order.
///
/// `kind` is `post.created`, `post.updated`, `post.deleted` or `vote` as the post's owner
/// sees it, `profile.updated` (the owner's handle or display name changed), or
/// `session.ended`, which ends that session's streams and is sent to no one.
/// The post's fields are as the write left them; `public_before` and `public_after` tell
/// whether people other than the owner could see the post before and after it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Seconds since the epoch.
    pub created_at: i64,
    pub kind: String,
    pub post_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub session_id: Option<i64>,
    pub public_before: bool,
    pub public_after: bool,
    pub title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub content: Option<String>,
    pub published: Option<bool>,
    pub post_created_at: Option<DateTimeUtc>,
    pub post_updated_at: Option<DateTimeUtc>,
    pub version: Option<i64>,
    pub votes: Option<i64>,
    pub owner_handle: Option<String>,
    pub owner_display_name: Option<String>,
    pub owner_created_at: Option<DateTimeUtc>,
    pub hidden: Option<bool>,
    #[sea_orm(column_type = "Text", nullable)]
    pub hidden_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
