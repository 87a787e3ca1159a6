//! The wake-up watcher: notices new events without any work on the writers' side.
//!
//! A `NOTIFY` per insert would serialise every writer's commit on a cluster-wide lock
//! (see ../shared/design/ordering.md). Instead one actor polls, every
//! `wakeup_interval_ms`, the outbox sequence's last value and the current snapshot (one
//! sequence tuple, no table scan) and tells the supervisor, which wakes idle partitions:
//! - when the sequence moved: a writer drew a number (its commit may still be coming);
//! - when the snapshot changed (some transaction committed) within
//!   [`SETTLE_WINDOW`] of the last draw: that commit may be the one that makes the drawn
//!   event readable. Without this, the event would wait for a partition's idle backoff.
//!
//! Outside that window commits elsewhere in the database wake nobody.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{NewEvents, Stop};
use crate::store::{self, ActivityMark, Pool};

/// After a sequence number is drawn, commits during this long wake partitions.
pub const SETTLE_WINDOW: Duration = Duration::from_secs(2);

/// Whether the change from `previous` to `current` should wake partitions.
pub fn should_wake(
    previous: Option<&ActivityMark>,
    current: &ActivityMark,
    since_last_draw: Option<Duration>,
) -> bool {
    match previous {
        None => true,
        Some(previous) if previous.last_value != current.last_value => true,
        Some(previous) => {
            previous.snapshot != current.snapshot
                && since_last_draw.is_some_and(|elapsed| elapsed < SETTLE_WINDOW)
        }
    }
}

pub struct Watcher {
    pool: Pool,
    interval: Duration,
    last_mark: Option<ActivityMark>,
    last_draw: Option<Instant>,
    busy: bool,
    notify: Recipient<NewEvents>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("interval", &self.interval)
            .field("last_mark", &self.last_mark)
            .finish()
    }
}

impl Watcher {
    pub fn new(pool: Pool, interval: Duration, notify: Recipient<NewEvents>) -> Self {
        Watcher {
            pool,
            interval,
            last_mark: None,
            last_draw: None,
            busy: false,
            notify,
        }
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let pool = self.pool.clone();
        let read = async move {
            let mut conn = pool.get().await?;
            store::activity_mark(&mut conn).await
        };
        ctx.spawn(read.into_actor(self).map(|result, act, _ctx| {
            act.busy = false;
            match result {
                Ok(mark) => {
                    let drew =
                        act.last_mark.as_ref().map(|m| m.last_value) != Some(mark.last_value);
                    if drew {
                        act.last_draw = Some(Instant::now());
                    }
                    let since_draw = act.last_draw.map(|at| at.elapsed());
                    if should_wake(act.last_mark.as_ref(), &mark, since_draw) {
                        act.notify.do_send(NewEvents);
                    }
                    act.last_mark = Some(mark);
                }
                // Partitions surface database trouble themselves; their polling goes on.
                Err(error) => {
                    tracing::debug!(%error, "wake-up watcher could not read the sequence")
                }
            }
        }));
    }
}

impl Actor for Watcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |act, ctx| act.poll(ctx));
    }
}

impl Handler<Stop> for Watcher {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(last_value: i64, snapshot: &str) -> ActivityMark {
        ActivityMark {
            last_value,
            snapshot: snapshot.to_owned(),
        }
    }

    #[test]
    fn a_draw_always_wakes() {
        assert!(should_wake(None, &mark(1, "5:5:"), None));
        assert!(should_wake(Some(&mark(1, "5:5:")), &mark(2, "5:5:"), None));
    }

    #[test]
    fn a_commit_wakes_only_soon_after_a_draw() {
        let before = mark(7, "10:12:10");
        let after = mark(7, "12:12:");
        assert!(should_wake(
            Some(&before),
            &after,
            Some(Duration::from_millis(3))
        ));
        assert!(!should_wake(Some(&before), &after, Some(SETTLE_WINDOW * 2)));
        assert!(!should_wake(Some(&before), &after, None));
    }

    #[test]
    fn nothing_changed_wakes_nobody() {
        let same = mark(7, "12:12:");
        assert!(!should_wake(
            Some(&same),
            &same.clone(),
            Some(Duration::from_millis(1))
        ));
    }
}
