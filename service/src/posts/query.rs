//! Which page of the listing a read asks for, and the page it gets.

use super::{
    cursors::Cursors,
    values::{PageSize, Skip},
    view::PostView,
};
use crate::{error::ServiceError, sql::page::SortKey};

/// One page of a listing, newest first: by offset, or after a cursor.
#[derive(Clone, Debug)]
pub struct PostQuery {
    pub(super) limit: u64,
    pub(super) skip: u64,
    pub(super) search: Option<String>,
    pub(super) after: Option<SortKey>,
}

impl PostQuery {
    /// A page of `limit` posts ([`PageSize::DEFAULT`] when left out) after passing over
    /// `skip`; `search`, when given and not empty, keeps the posts whose title contains it,
    /// ignoring case, with `%`, `_` and `\` taken literally.
    ///
    /// A `cursor` (from a page's [`PostPage::next`]) is a position: the page starts after
    /// the last post of the page that issued it. A `limit` or `search` given beside it is
    /// used; one left out is the cursor's page's. An empty `cursor` is none; with a cursor,
    /// `skip` must be 0.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `cursor`, when the service did not issue it or `skip`
    /// is given beside it.
    pub fn new(
        limit: Option<PageSize>,
        skip: Skip,
        search: Option<String>,
        cursor: Option<&str>,
        cursors: &Cursors,
    ) -> Result<Self, ServiceError> {
        let (limit, skip) = (limit.map(PageSize::get), skip.get());
        let search = search.filter(|s| !s.is_empty());
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(Self {
                limit: limit.unwrap_or(PageSize::DEFAULT.get()),
                skip,
                search,
                after: None,
            });
        };
        let invalid = |requirement: String| ServiceError::invalid("cursor", requirement);
        let cursor = cursors
            .decode(cursor)
            .map_err(|e| invalid(e.into_owned()))?;
        if skip > 0 {
            return Err(invalid("cannot be combined with a `skip` above 0".into()));
        }
        Ok(Self {
            limit: limit.unwrap_or(cursor.limit),
            skip: 0,
            search: search.or(cursor.search),
            after: Some(cursor.after),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn search(&self) -> Option<&str> {
        self.search.as_deref()
    }

    pub(crate) fn skip(&self) -> u64 {
        self.skip
    }

    /// Where the page starts, after a cursor.
    pub(crate) fn after(&self) -> Option<SortKey> {
        self.after
    }
}

/// A page of posts, and the cursor of the page after it when this one is full.
#[derive(Clone, Debug)]
pub struct PostPage {
    pub posts: Vec<PostView>,
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posts::cursors::PageCursor;

    fn cursors() -> Cursors {
        Cursors::new(b"a test secret")
    }

    #[test]
    fn a_cursor_is_a_position_beside_which_limit_and_search_are_used() {
        let after = SortKey {
            created_at: chrono::DateTime::from_timestamp_micros(1_796_033_088_302_370).unwrap(),
            id: 7,
        };
        let cursor = cursors().encode(&PageCursor {
            after,
            search: Some("abc".into()),
            limit: 5,
        });
        let size = |limit| Some(PageSize::parse(limit).unwrap());
        let skip = |skip| Skip::parse(skip).unwrap();
        let next = |limit, skip, search: Option<&str>, cursor: &str| {
            PostQuery::new(
                limit,
                skip,
                search.map(str::to_owned),
                Some(cursor),
                &cursors(),
            )
        };
        let page = next(None, skip(0), None, &cursor).expect("the cursor alone");
        assert_eq!((page.limit(), page.search()), (5, Some("abc")));
        assert_eq!(page.after, Some(after));
        let page = next(size(7), skip(0), Some("abd"), &cursor).expect("another limit and search");
        assert_eq!((page.limit(), page.search()), (7, Some("abd")));
        assert_eq!(page.after, Some(after));
        let page = next(size(3), skip(0), Some(""), "").expect("an empty cursor is none");
        assert_eq!((page.limit(), page.search(), page.after), (3, None, None));
        for (skip, cursor) in [(skip(1), cursor.as_str()), (skip(0), "garbage")] {
            match next(None, skip, None, cursor) {
                Err(ServiceError::Invalid(errors)) => {
                    assert_eq!(errors[0].field, "cursor", "{skip:?} {cursor}");
                }
                other => panic!("accepted: {other:?}"),
            }
        }
    }
}
