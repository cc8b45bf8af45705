//! The kinds of event the outbox records.

/// What an outbox row records. Its `kind` column holds [`EventKind::name`], written by the
/// triggers of the migrations (a test holds their text to these names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    PostCreated,
    PostUpdated,
    PostDeleted,
    Vote,
    /// A person's handle or display name changed: sent to everyone.
    ProfileUpdated,
    /// A session ended: its streams end with it. No subscriber is sent it.
    SessionEnded,
}

impl EventKind {
    pub const ALL: [Self; 6] = [
        Self::PostCreated,
        Self::PostUpdated,
        Self::PostDeleted,
        Self::Vote,
        Self::ProfileUpdated,
        Self::SessionEnded,
    ];

    /// The name the outbox stores, and the one a stream's event of this kind is sent as.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PostCreated => "post.created",
            Self::PostUpdated => "post.updated",
            Self::PostDeleted => "post.deleted",
            Self::Vote => "vote",
            Self::ProfileUpdated => "profile.updated",
            Self::SessionEnded => "session.ended",
        }
    }

    /// The kind a stored name stands for; `None` for a name no trigger writes.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::from_name("post.moved"), None);
    }
}
