//! The wake-up watcher: notices new events without any work on the writers' side.
//!
//! A `NOTIFY` per insert would serialise every writer's commit on a cluster-wide lock
//! (see ../shared/design/ordering.md). Instead one actor reads the outbox sequence's last
//! value every `wakeup_interval_ms` (a read of one sequence tuple, no table scan) and,
//! when it moved, tells the supervisor, which wakes idle partitions. The value moves when
//! a number is drawn, which can be before its transaction commits; partitions that find
//! nothing keep looking with a short doubling delay, which catches the commit.

use std::time::Duration;

use actix::prelude::*;

use super::messages::{NewEvents, Stop};
use crate::store::{self, Pool};

pub struct Watcher {
    pool: Pool,
    interval: Duration,
    last_value: Option<i64>,
    busy: bool,
    notify: Recipient<NewEvents>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("interval", &self.interval)
            .field("last_value", &self.last_value)
            .finish()
    }
}

impl Watcher {
    pub fn new(pool: Pool, interval: Duration, notify: Recipient<NewEvents>) -> Self {
        Watcher {
            pool,
            interval,
            last_value: None,
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
            store::sequence_last_value(&mut conn).await
        };
        ctx.spawn(read.into_actor(self).map(|result, act, _ctx| {
            act.busy = false;
            match result {
                Ok(value) => {
                    if act.last_value != Some(value) {
                        act.last_value = Some(value);
                        act.notify.do_send(NewEvents);
                    }
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
