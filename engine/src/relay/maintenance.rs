//! The maintenance actor: every `maintenance_interval_ms`, one round of
//! [`store::retention::maintain`] (partitions ahead, retire what every range passed and
//! the retention window left behind). Every relay runs one; an advisory lock lets one
//! of them work per round. Failures are logged and retried next round: writers never
//! depend on it (the default partition catches what no partition covers).

use std::time::Duration;

use actix::prelude::*;

use super::messages::Stop;
use crate::store::{self, Pool};

pub struct Maintainer {
    pool: Pool,
    stats: std::sync::Arc<super::RelayStats>,
    interval: Duration,
    retention: Duration,
    busy: bool,
}

impl std::fmt::Debug for Maintainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintainer")
            .field("interval", &self.interval)
            .field("retention", &self.retention)
            .finish()
    }
}

impl Maintainer {
    pub fn new(
        pool: Pool,
        stats: std::sync::Arc<super::RelayStats>,
        interval: Duration,
        retention: Duration,
    ) -> Self {
        Maintainer {
            pool,
            stats,
            interval,
            retention,
            busy: false,
        }
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let pool = self.pool.clone();
        let retention = self.retention;
        let stats = self.stats.clone();
        let work = async move {
            let mut conn = pool.get().await?;
            // Every relay reports the horizon holder (a cheap read), whoever maintains.
            let holder = store::retention::horizon_holder(&mut conn)
                .await
                .ok()
                .flatten();
            let metrics = &stats.metrics;
            metrics
                .horizon_age
                .set(holder.as_ref().map_or(0.0, |h| h.transaction_age_s));
            metrics
                .horizon_query_age
                .set(holder.as_ref().map_or(0.0, |h| h.query_age_s));
            metrics
                .horizon_pid
                .set(holder.as_ref().map_or(0, |h| h.pid as i64));
            if let Some(holder) = holder.filter(|h| h.transaction_age_s > retention.as_secs_f64()) {
                tracing::warn!(pid = holder.pid, transaction_age_s = holder.transaction_age_s, application = %holder.application_name,
                    "a transaction open longer than the retention window holds back the visibility horizon: published events cannot be retired until it ends");
            }
            store::retention::maintain(&mut conn, retention).await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.busy = false;
            match result {
                Ok(report)
                    if report.created + report.sealed > 0
                        || !report.truncated.is_empty()
                        || !report.dropped.is_empty()
                        || report.default_emptied =>
                {
                    tracing::info!(?report, "outbox maintenance");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "outbox maintenance failed; retried next round")
                }
            }
        }));
    }
}

impl Actor for Maintainer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.round(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.round(ctx));
    }
}

impl Handler<Stop> for Maintainer {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
