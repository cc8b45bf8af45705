//! A subscription: its slot under the caps, where it resumes, the replay from the outbox of
//! what it missed, and then what the feed settles, live from the buffer.

use std::sync::Arc;

use entity::{session, user};
use sea_orm::{EntityTrait, QueryFilter};

use super::{
    buffer::Next,
    delivery::{Delivery, Subscription},
    outbox::{Resume, read_batch, resume_point},
    shared::Shared,
    slots::Slot,
    visibility::{Step, deliver},
};
use crate::{
    clock::now,
    database::Connection,
    error::ServiceError,
    sessions::{Caller, own_session, session_ended},
};

/// Subscribes the caller, as [`super::Feed::subscribe`] says.
pub(super) async fn subscribe(
    shared: &Arc<Shared>,
    db: &Connection,
    caller: &Caller,
    last_seen: Option<i64>,
) -> Result<Subscription, ServiceError> {
    let shared = Arc::clone(shared);
    let slot = Slot::take(&shared, db, caller.user_id()).await?;
    let mut stopped = shared.stopped.subscribe();
    let mut settled_changes = shared.settled.subscribe();
    let (session, account) = session::Entity::find()
        .filter(own_session(caller))
        .find_also_related(user::Entity)
        .one(db)
        .await?
        .ok_or_else(session_ended)?;
    let expires =
        tokio::time::Instant::now() + (session.expires_at - now()).to_std().unwrap_or_default();
    // What the feed has settled by now is replayed from the outbox; what it settles from
    // now on is taken from its buffer.
    let settled = shared.buffer().newest;
    let start = match last_seen {
        Some(seen) => {
            let account = account.ok_or_else(session_ended)?;
            Some(resume_point(db, seen.max(account.last_event_before), settled).await?)
        }
        None => None,
    };
    let db = db.clone();
    let caller = caller.clone();
    Ok(Box::pin(async_stream::stream! {
        let render = Arc::clone(&shared.render);
        let mut last = settled;
        match start {
            None => {}
            Some(Resume::Reset) => yield render(Delivery::Reset { id: settled }),
            Some(Resume::After(seen)) => {
                last = last.max(seen);
                let budget = shared.policy.max_lag_bytes / 4;
                let mut replayed = seen;
                while replayed < settled {
                    let batch = match read_batch(&db, replayed, settled, budget).await {
                        Ok(batch) if !batch.is_empty() => batch,
                        Ok(_) => break,
                        Err(err) => {
                            tracing::warn!(%err, "cannot replay events; ending the stream");
                            return;
                        }
                    };
                    // Each row goes as soon as it is sent; the next batch is read only
                    // once the client has taken this one.
                    for event in batch {
                        replayed = event.id;
                        match deliver(&caller, &event, &render) {
                            Step::Send(frame) => yield frame,
                            Step::Skip => {}
                            Step::End => return,
                        }
                    }
                }
            }
        }
        // One timer for the whole stream, not one per event.
        let expiry = tokio::time::sleep_until(expires);
        tokio::pin!(expiry);
        slot.took(last);
        loop {
            settled_changes.borrow_and_update();
            let next = shared.buffer().next_after(last, &caller);
            match next {
                Next::Events(batch) => {
                    last = batch.through;
                    slot.took(last);
                    let ends = batch.ends;
                    if let Some(frames) = batch.joined() {
                        yield frames;
                    }
                    if ends {
                        return;
                    }
                    continue;
                }
                // Too far behind: the client resumes from the last id it received.
                Next::Behind => return,
                Next::Wait => {}
            }
            tokio::select! {
                _ = stopped.wait_for(|stopped| *stopped) => return,
                () = &mut expiry => return,
                changed = settled_changes.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    }))
}
