//! A recorded mail as the SMTP server gets it: plain text and HTML alternatives, the
//! `Message-ID` and date it was recorded with, no tracking of any kind.

use std::time::SystemTime;

use entity::mail;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};

/// The message of a recorded mail from `from`.
///
/// # Errors
/// The recipient is no address or the message cannot be built: no attempt will do better.
pub(super) fn message(from: &Mailbox, mail: &mail::Model) -> Result<Message, String> {
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|err| format!("the recipient is not a mail address: {err}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .message_id(Some(mail.message_id.clone()))
        .date(SystemTime::from(mail.created_at))
        .multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            mail.html_body.clone(),
        ))
        .map_err(|err| format!("the message cannot be built: {err}"))
}

/// `text` with the characters HTML gives a meaning to written as references.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
