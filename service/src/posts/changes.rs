//! What a write of a post changes: every writable field, or some of them.

use entity::post;
use sea_orm::{ColumnTrait, Condition};

use super::values::{Content, Title};

/// The writable fields of a post.
#[derive(Clone, Debug)]
pub struct PostFields {
    pub(super) title: String,
    pub(super) content: String,
    pub(super) published: bool,
}

impl PostFields {
    pub fn new(title: Title, content: Content, published: bool) -> Self {
        Self {
            title: title.into(),
            content: content.into(),
            published,
        }
    }
}

/// The fields a `PATCH` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct PostChanges {
    pub(super) title: Option<String>,
    pub(super) content: Option<String>,
    pub(super) published: Option<bool>,
}

impl PostChanges {
    pub fn new(title: Option<Title>, content: Option<Content>, published: Option<bool>) -> Self {
        Self {
            title: title.map(String::from),
            content: content.map(String::from),
            published,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.title.is_none() && self.content.is_none() && self.published.is_none()
    }

    /// Whether `post` already has every given field as given.
    pub(super) fn hold_in(&self, post: &post::Model) -> bool {
        self.title.as_ref().is_none_or(|title| *title == post.title)
            && self.content.as_ref().is_none_or(|c| *c == post.content)
            && self.published.is_none_or(|p| p == post.published)
    }

    /// The condition on a row that holds when some given field differs from it.
    pub(super) fn differ(&self) -> Condition {
        let mut differ = Condition::any();
        if let Some(title) = &self.title {
            differ = differ.add(post::Column::Title.ne(title.as_str()));
        }
        if let Some(content) = &self.content {
            differ = differ.add(post::Column::Content.ne(content.as_str()));
        }
        if let Some(published) = self.published {
            differ = differ.add(post::Column::Published.ne(published));
        }
        differ
    }
}
