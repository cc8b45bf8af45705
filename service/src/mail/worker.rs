//! The worker that empties the outbox: it claims due mails for a lease (so that across
//! instances one worker sends each, and a killed worker's claim runs out), sends each in a
//! task of its own (a mail that stalls or fails never holds up the others), and deletes it
//! once the server has taken it. A failed attempt is tried again after a backoff that
//! doubles up to [`MAX_BACKOFF`], until the retry period since the mail was recorded is
//! over; then, or when the server refuses it for good, the mail is dropped with a warning
//! naming its id (never its recipient).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::mail;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::Mailbox,
    transport::smtp::Error as SmtpError,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, Order, QueryFilter,
    sea_query::{Condition, Expr, LockBehavior, LockType, Query},
};
use tokio::{sync::Notify, task::JoinSet};

use super::{MailPolicy, message::message};
use crate::{
    clock::{clock_span, now},
    database::Database,
};

/// Mails sent at once by one worker; what it claims in one statement is at most this many.
const MAX_SENDING: usize = 8;

/// How often the worker looks for due mails without being woken: mails recorded by other
/// instances, or left by one that stopped.
const POLL: Duration = Duration::from_secs(5);

/// The wait before the second attempt; it doubles with every further one…
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// …up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What a claim lasts beyond an attempt's timeout: time to record the attempt's outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Where the worker hands mails: an SMTP server, or the log.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

/// The outbox's sender, not yet running; [`MailWorker::start`] runs it.
pub struct MailWorker {
    transport: Transport,
    from: Mailbox,
    retry_for: chrono::Duration,
    send_timeout: Duration,
    wake: Arc<Notify>,
}

/// What every send of a worker needs.
struct Shared {
    db: Database,
    transport: Transport,
    from: Mailbox,
    retry_for: chrono::Duration,
    send_timeout: Duration,
    wake: Arc<Notify>,
}

/// A running worker; dropping it stops the worker and every send it has under way (whose
/// claims then run out, and another pass sends them).
pub struct RunningWorker(tokio::task::JoinHandle<()>);

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one attempt ended, when it did not succeed.
enum Failure {
    /// Try again later (no connection, a timeout, a transient SMTP answer).
    Transient(String),
    /// No attempt will do better (a permanent SMTP answer, a recipient that is no address).
    Permanent(String),
}

impl MailWorker {
    pub(super) fn new(
        policy: &MailPolicy,
        from: Mailbox,
        wake: Arc<Notify>,
    ) -> Result<Self, String> {
        let transport = match &policy.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|err| format!("SMTP_URL is not usable: {err}"))?
                    .timeout(Some(policy.send_timeout))
                    .build(),
            ),
            None => Transport::Log,
        };
        Ok(Self {
            transport,
            from,
            retry_for: clock_span(policy.retry_for),
            send_timeout: policy.send_timeout,
            wake,
        })
    }

    /// Starts the worker on the current runtime, sending what the outbox of `db` holds.
    pub fn start(self, db: Database) -> RunningWorker {
        RunningWorker(tokio::spawn(run(Arc::new(Shared {
            db,
            transport: self.transport,
            from: self.from,
            retry_for: self.retry_for,
            send_timeout: self.send_timeout,
            wake: self.wake,
        }))))
    }
}

async fn run(shared: Arc<Shared>) {
    let mut sending: JoinSet<Option<DateTime<Utc>>> = JoinSet::new();
    // The earliest retry this worker has set: it looks again then, rather than a poll later.
    let mut next_retry: Option<DateTime<Utc>> = None;
    loop {
        let free = MAX_SENDING - sending.len();
        let mut claimed = 0;
        if free > 0 {
            match claim(&shared, free).await {
                Ok(mails) => {
                    claimed = mails.len();
                    for mail in mails {
                        let shared = Arc::clone(&shared);
                        sending.spawn(async move { send(&shared, mail).await });
                    }
                }
                Err(err) => tracing::warn!(%err, "cannot claim mails from the outbox"),
            }
        }
        if claimed > 0 && claimed == free {
            // More may be due; a send ending frees a place for them.
            if let Some(Ok(retry)) = sending.join_next().await {
                next_retry = earliest(next_retry, retry);
            }
            continue;
        }
        let wait = next_retry
            .map(|at| (at - now()).to_std().unwrap_or_default())
            .map_or(POLL, |until| until.min(POLL));
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(wait) => {
                if next_retry.is_some_and(|at| at <= now()) {
                    next_retry = None;
                }
            }
            Some(ended) = sending.join_next(), if !sending.is_empty() => {
                if let Ok(retry) = ended {
                    next_retry = earliest(next_retry, retry);
                }
            }
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Claims up to `limit` due mails, oldest first, for an attempt's timeout and a margin,
/// counting the attempt. On PostgreSQL rows another worker is claiming are skipped; SQLite
/// has one writer.
async fn claim(shared: &Shared, limit: usize) -> Result<Vec<mail::Model>, sea_orm::DbErr> {
    let db = shared.db.connection();
    let now = now();
    let until = now + clock_span(shared.send_timeout + LEASE_MARGIN);
    let mut due = Query::select();
    due.column(mail::Column::Id)
        .from(mail::Entity)
        .and_where(mail::Column::NextAttemptAt.lte(now))
        .cond_where(
            Condition::any()
                .add(mail::Column::ClaimedUntil.is_null())
                .add(mail::Column::ClaimedUntil.lt(now)),
        )
        .order_by(mail::Column::NextAttemptAt, Order::Asc)
        .order_by(mail::Column::Id, Order::Asc)
        .limit(limit as u64);
    if db.get_database_backend() == DbBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    mail::Entity::update_many()
        .col_expr(mail::Column::ClaimedUntil, Expr::value(Some(until)))
        .col_expr(
            mail::Column::Attempts,
            sea_orm::ExprTrait::add(Expr::col(mail::Column::Attempts), 1),
        )
        .filter(mail::Column::Id.in_subquery(due))
        .exec_with_returning(db)
        .await
}

/// One attempt at a claimed mail, and its outcome recorded; returns when the mail is due
/// again, if it stays in the outbox.
async fn send(shared: &Shared, mail: mail::Model) -> Option<DateTime<Utc>> {
    let outcome = attempt(shared, &mail).await;
    let db = shared.db.connection();
    let now = now();
    let deadline = mail.created_at + shared.retry_for;
    let (delete, retry_at) = match &outcome {
        Ok(()) => (true, None),
        Err(Failure::Permanent(reason)) => {
            tracing::warn!(
                mail_id = mail.id,
                attempts = mail.attempts,
                reason = %reason,
                "dropped a mail the SMTP server refused for good"
            );
            (true, None)
        }
        Err(Failure::Transient(reason)) if now >= deadline => {
            tracing::warn!(
                mail_id = mail.id,
                attempts = mail.attempts,
                reason = %reason,
                "gave up on a mail: it failed for the whole of MAIL_RETRY_HOURS"
            );
            (true, None)
        }
        Err(Failure::Transient(reason)) => {
            tracing::debug!(mail_id = mail.id, attempts = mail.attempts, reason = %reason, "a mail will be tried again");
            (false, Some((now + backoff(mail.attempts)).min(deadline)))
        }
    };
    let recorded = if delete {
        mail::Entity::delete_by_id(mail.id).exec(db).await.map(drop)
    } else {
        let reason = match outcome {
            Err(Failure::Transient(reason) | Failure::Permanent(reason)) => reason,
            Ok(()) => String::new(),
        };
        // Only while this worker's claim holds: past it, another worker has the mail.
        mail::Entity::update_many()
            .col_expr(mail::Column::NextAttemptAt, Expr::value(retry_at))
            .col_expr(
                mail::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(mail::Column::LastError, Expr::value(Some(reason)))
            .filter(mail::Column::Id.eq(mail.id))
            .filter(mail::Column::ClaimedUntil.eq(mail.claimed_until))
            .exec(db)
            .await
            .map(drop)
    };
    if let Err(err) = recorded {
        // The claim runs out and the mail is tried again: at least once.
        tracing::warn!(mail_id = mail.id, %err, "cannot record how sending a mail went");
    }
    retry_at
}

/// The wait after the `attempts`-th failed attempt.
fn backoff(attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    clock_span((FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF))
}

/// Hands the mail to the transport, within the attempt's timeout.
async fn attempt(shared: &Shared, mail: &mail::Model) -> Result<(), Failure> {
    let transport = match &shared.transport {
        Transport::Log => {
            tracing::info!(
                mail_id = mail.id,
                to = %mail.recipient,
                subject = %mail.subject,
                body = %mail.text_body,
                "a mail (no SMTP_URL: written to the log instead of sent)"
            );
            return Ok(());
        }
        Transport::Smtp(transport) => transport,
    };
    let message = message(&shared.from, mail).map_err(Failure::Permanent)?;
    match tokio::time::timeout(shared.send_timeout, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(classify(&err)),
        Err(_) => Err(Failure::Transient(format!(
            "no answer within {} seconds",
            shared.send_timeout.as_secs_f64()
        ))),
    }
}

/// Whether an SMTP error is worth another attempt, said by its kind and code only: what the
/// server said may quote the recipient, and this goes to the log.
fn classify(err: &SmtpError) -> Failure {
    let code = err
        .status()
        .map(|code| format!(" ({code})"))
        .unwrap_or_default();
    if err.is_permanent() {
        Failure::Permanent(format!("a permanent SMTP error{code}"))
    } else if err.is_transient() {
        Failure::Transient(format!("a transient SMTP error{code}"))
    } else if err.is_timeout() {
        Failure::Transient("the SMTP server timed out".into())
    } else {
        Failure::Transient(format!("cannot reach the SMTP server: {}", kind(err)))
    }
}

/// An SMTP error without what the server said.
fn kind(err: &SmtpError) -> &'static str {
    if err.is_tls() {
        "TLS failed"
    } else if err.is_client() {
        "the client failed"
    } else if err.is_response() {
        "an answer it cannot read"
    } else {
        "the connection failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), chrono::Duration::seconds(1));
        assert_eq!(backoff(2), chrono::Duration::seconds(2));
        assert_eq!(backoff(5), chrono::Duration::seconds(16));
        assert_eq!(backoff(11), chrono::Duration::seconds(600));
        assert_eq!(backoff(10_000), chrono::Duration::seconds(600));
        assert_eq!(backoff(0), chrono::Duration::seconds(1));
    }
}
