//! A post as readers see it, and the tags that name its states.

use std::collections::HashSet;

use base64::Engine;
use entity::post;

use crate::{accounts::Profile, keys::DerivedKey};

/// A post as a reader sees it: with its owner and the number of votes it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostView {
    pub post: post::Model,
    pub owner: Profile,
    pub votes: i64,
}

/// One state of a post: its version, raised by every change of its fields, and its vote
/// count. Two reads of a post in the same state show the same post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostState {
    pub version: i64,
    pub votes: i64,
}

impl PostView {
    pub fn state(&self) -> PostState {
        PostState {
            version: self.post.version,
            votes: self.votes,
        }
    }
}

/// Names the states of posts with opaque tags (what `ETag` carries), under a key derived from
/// the service's secret: a tag changes whenever the post as a reader sees it changes (its
/// fields, its votes or its owner's profile) and only then, and tells nothing of the post, such as how often it
/// was edited.
#[derive(Clone)]
pub struct PostTags {
    key: DerivedKey,
}

impl PostTags {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: DerivedKey::new(secret, "social-api post tag"),
        }
    }

    /// The tag of the post in the state `view` shows: 128 bits in base64url.
    pub fn tag(&self, view: &PostView) -> String {
        let PostState { version, votes } = view.state();
        let owner = &view.owner;
        // The display name last: it is the one part that may hold any character.
        let signature = self.key.sign(
            format!(
                "{}.{version}.{votes}.{}.{}",
                view.post.id,
                owner.handle,
                owner
                    .display_name
                    .as_deref()
                    .map_or(String::new(), |name| format!("={name}"))
            )
            .as_bytes(),
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    }
}

/// The states a write accepts the post in: any, or those whose tags are named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected<'a> {
    Any,
    OneOf(HashSet<&'a str>),
}
