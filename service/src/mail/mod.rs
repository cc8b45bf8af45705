//! Mail: the outbox, a table every mail is recorded in within the transaction of what it
//! tells (the token it carries), and the [`MailWorker`] that sends what the outbox holds
//! over SMTP, retrying with backoff, or in development without SMTP writes it to the log.
//!
//! A crash, a restart or an SMTP outage delays a mail, never loses it: a mail leaves the
//! outbox only when a server has taken it, when the server refuses it for good, or when it
//! has failed for the whole retry period. A mail is sent at least once, with a
//! `Message-ID` fixed when it is recorded, so that a repeat (a worker killed after the
//! server took it, before it could say so) is recognisably the same mail. Nothing is sent on
//! a request's path: a request records, and wakes the worker of its instance.

mod message;
mod worker;

use std::{sync::Arc, time::Duration};

use entity::mail;
use lettre::message::Mailbox;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use tokio::sync::Notify;

pub use message::escape_html;
pub use worker::{MailWorker, RunningWorker};

use crate::{clock::now, error::ServiceError};

/// Where mails go and how long they are tried.
#[derive(Clone, Debug)]
pub struct MailPolicy {
    /// `smtp://host:port` (plain), `smtps://user:pass@host:465` (TLS), or with
    /// `?tls=required` (STARTTLS); `None` writes each mail to the log instead.
    pub smtp_url: Option<String>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    /// The front end's base URL that links point to.
    pub public_url: String,
    /// How long after it was recorded a failing mail is still tried.
    pub retry_for: Duration,
    /// How long one attempt (connecting, the whole SMTP exchange) may take.
    pub send_timeout: Duration,
}

/// What a mail says, before it is recorded.
pub(crate) struct Content {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A link a mail carries, and the words of its button.
pub(crate) struct Link<'a> {
    pub label: &'a str,
    pub url: &'a str,
}

impl Content {
    /// A greeting, `lead`, the link (as a button and as text), then `closing`: the plain
    /// text and the HTML say the same.
    pub(crate) fn new(subject: &str, lead: &str, link: Option<Link<'_>>, closing: &str) -> Self {
        let mut text = format!("Hello,\n\n{lead}\n");
        let mut html = format!(
            "<!DOCTYPE html>\n<html><body>\n<p>Hello,</p>\n<p>{}</p>\n",
            escape_html(lead)
        );
        if let Some(Link { label, url }) = link {
            text.push_str(&format!("\n{url}\n"));
            let url = escape_html(url);
            html.push_str(&format!(
                "<p><a href=\"{url}\">{}</a></p>\n<p>{url}</p>\n",
                escape_html(label)
            ));
        }
        if !closing.is_empty() {
            text.push_str(&format!("\n{closing}\n"));
            html.push_str(&format!("<p>{}</p>\n", escape_html(closing)));
        }
        html.push_str("</body></html>\n");
        Self {
            subject: subject.to_owned(),
            text,
            html,
        }
    }
}

/// The outbox as requests use it: recording mails in their transaction, and waking the
/// worker of this instance once that transaction has committed.
#[derive(Clone)]
pub struct Outbox {
    public_url: Arc<str>,
    /// The domain of `Message-ID`s: the sender's.
    domain: Arc<str>,
    wake: Arc<Notify>,
}

impl Outbox {
    /// The outbox of `policy` and the worker that empties it (started on a database later),
    /// or why the policy is unusable.
    ///
    /// # Errors
    /// A malformed `SMTP_URL`, `MAIL_FROM` or `PUBLIC_URL`, as a sentence naming it.
    pub fn new(policy: &MailPolicy) -> Result<(Self, MailWorker), String> {
        let from: Mailbox = policy
            .from
            .parse()
            .map_err(|err| format!("MAIL_FROM is not a mail address ({err})"))?;
        let url = policy.public_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err("PUBLIC_URL must be an http:// or https:// URL".into());
        }
        let outbox = Self {
            public_url: url.into(),
            domain: from.email.domain().into(),
            wake: Arc::new(Notify::new()),
        };
        let worker = MailWorker::new(policy, from, Arc::clone(&outbox.wake))?;
        Ok((outbox, worker))
    }

    /// The front end's URL of `path` (which starts with `/`) with `token` as its query.
    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.public_url)
    }

    /// Records a mail to `recipient` about account `user_id` for `purpose` in `txn`; an
    /// unsent earlier one of the same account and purpose is dropped (its token is void), so
    /// that one account never holds more than one mail of a purpose in the outbox. Call
    /// [`Outbox::wake`] after the commit.
    pub(crate) async fn record(
        &self,
        txn: &impl ConnectionTrait,
        user_id: i64,
        purpose: &str,
        recipient: &str,
        content: Content,
    ) -> Result<(), ServiceError> {
        mail::Entity::delete_many()
            .filter(mail::Column::UserId.eq(user_id))
            .filter(mail::Column::Purpose.eq(purpose))
            .exec(txn)
            .await?;
        let now = now();
        mail::ActiveModel {
            user_id: Set(Some(user_id)),
            purpose: Set(Some(purpose.to_owned())),
            recipient: Set(recipient.to_owned()),
            subject: Set(content.subject),
            text_body: Set(content.text),
            html_body: Set(content.html),
            message_id: Set(format!("<{:032x}@{}>", rand::random::<u128>(), self.domain)),
            created_at: Set(now),
            next_attempt_at: Set(now),
            attempts: Set(0),
            claimed_until: Set(None),
            last_error: Set(None),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(())
    }

    /// Tells this instance's worker that a mail was committed.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_says_the_same_in_text_and_html_with_what_html_reads_escaped() {
        let url = "https://app.example/verify-email?token=a&b=<c>";
        let mail = Content::new(
            "Subject",
            "to show that o'neil@example.com is yours, open this link:",
            Some(Link {
                label: "Verify",
                url,
            }),
            "Nothing happens without it.",
        );
        assert_eq!(
            mail.text,
            format!(
                "Hello,\n\nto show that o'neil@example.com is yours, open this link:\n\n{url}\n\n\
                 Nothing happens without it.\n"
            )
        );
        assert!(
            mail.html.contains("o&#39;neil@example.com"),
            "{}",
            mail.html
        );
        assert!(
            mail.html.contains(
                "<a href=\"https://app.example/verify-email?token=a&amp;b=&lt;c&gt;\">Verify</a>"
            ),
            "{}",
            mail.html
        );
        let notice = Content::new("Notice", "Only this.", None, "");
        assert_eq!(notice.text, "Hello,\n\nOnly this.\n");
        assert!(!notice.html.contains("<a "), "{}", notice.html);
    }
}
