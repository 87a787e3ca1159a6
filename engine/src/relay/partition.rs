//! The partition actor: owns one slot range and runs read-publish-acknowledge cycles.
//!
//! Contract:
//! - cycles never overlap (each runs under `ctx.wait`, which also holds back control
//!   messages until it ends), so at most one batch of the range is in flight;
//! - after a cycle that read something it runs the next at once; when idle it waits for
//!   a [`Wake`] or an adaptive poll (`idle_poll_min_ms` doubling to `idle_poll_max_ms`);
//! - a failed cycle is retried with capped exponential backoff; after
//!   `max_consecutive_failures` in a row the actor stops and tells the supervisor, which
//!   restarts it with a fresh publisher. Its durable progress is the outbox itself
//!   (acknowledged rows are gone), so a restart resumes exactly where it must;
//! - a panic inside a cycle is caught and counted as a failed cycle.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::PulsarPublisher;

use super::acker::Acker;
use super::cycle::{finish, run_cycle, CycleError, CycleReport, Worker};
use super::messages::{Cycle, PartitionStopped, Progress, Stop, StopReason, Wake};
use super::supervisor::Supervisor;
use super::RelayStats;
use crate::config::RelayConfig;
use crate::slots::SlotRange;
use crate::store::Pool;

pub struct Partition {
    id: usize,
    range: SlotRange,
    next_start: i32,
    pool: Pool,
    /// Taken out while a cycle runs.
    worker: Option<Worker>,
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    supervisor: Addr<Supervisor>,
    idle_delay: Duration,
    idle_timer: Option<SpawnHandle>,
    consecutive_failures: u32,
    stop_reason: StopReason,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("id", &self.id)
            .field("range", &self.range)
            .finish()
    }
}

impl Partition {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        range: SlotRange,
        pool: Pool,
        pulsar: Pulsar<TokioExecutor>,
        config: Arc<RelayConfig>,
        stats: Arc<RelayStats>,
        supervisor: Addr<Supervisor>,
    ) -> Self {
        Partition {
            id,
            range,
            next_start: range.start,
            pool,
            worker: Some(Worker {
                publisher: PulsarPublisher::with_client(pulsar, config.pulsar.clone()),
                acker: Acker::default(),
            }),
            idle_delay: Duration::from_millis(config.idle_poll_min_ms),
            config,
            stats,
            supervisor,
            idle_timer: None,
            consecutive_failures: 0,
            stop_reason: StopReason::Requested,
        }
    }

    fn min_idle(&self) -> Duration {
        Duration::from_millis(self.config.idle_poll_min_ms)
    }

    fn schedule(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
        self.idle_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.idle_timer = None;
            ctx.notify(Cycle);
        }));
    }

    /// Waits for the acknowledgement in flight and closes the producers before stopping:
    /// a producer dropped after the runtime is gone cannot close itself.
    fn stop_with(&mut self, reason: StopReason, ctx: &mut Context<Self>) {
        self.stop_reason = reason;
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
        match self.worker.take() {
            Some(worker) => {
                ctx.wait(finish(worker).into_actor(self).map(|_, _, ctx| ctx.stop()));
            }
            None => ctx.stop(),
        }
    }

    fn after_cycle(&mut self, result: Result<CycleReport, CycleError>, ctx: &mut Context<Self>) {
        match result {
            Ok(report) => {
                self.consecutive_failures = 0;
                self.next_start = report.next_start;
                if report.published > 0 || report.parked > 0 {
                    self.stats
                        .published
                        .fetch_add(report.published as u64, Ordering::Relaxed);
                    self.stats
                        .parked
                        .fetch_add(report.parked as u64, Ordering::Relaxed);
                    self.supervisor.do_send(Progress {
                        partition: self.id,
                        published: report.published as u64,
                        parked: report.parked as u64,
                        last_seq: report.last_seq,
                    });
                }
                if report.read > 0 {
                    self.idle_delay = self.min_idle();
                    ctx.notify(Cycle);
                } else {
                    let delay = self.idle_delay;
                    self.idle_delay =
                        (delay * 2).min(Duration::from_millis(self.config.idle_poll_max_ms));
                    self.schedule(ctx, delay);
                }
            }
            Err(error) => {
                self.consecutive_failures += 1;
                self.stats.failed_cycles.fetch_add(1, Ordering::Relaxed);
                if self.consecutive_failures >= self.config.max_consecutive_failures {
                    tracing::error!(partition = self.id, range = %self.range, failures = self.consecutive_failures, %error, "partition gives up; the supervisor will restart it");
                    self.stop_with(StopReason::Failed(error.to_string()), ctx);
                } else {
                    let delay = self.config.retry_backoff(self.consecutive_failures);
                    tracing::warn!(partition = self.id, range = %self.range, failures = self.consecutive_failures, retry_in_ms = delay.as_millis() as u64, %error, "cycle failed; unacknowledged events stay pending and are published again");
                    self.schedule(ctx, delay);
                }
            }
        }
    }
}

impl Actor for Partition {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(partition = self.id, range = %self.range, "partition started");
        ctx.notify(Cycle);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.supervisor.do_send(PartitionStopped {
            partition: self.id,
            range: self.range,
            reason: self.stop_reason.clone(),
        });
    }
}

impl Handler<Cycle> for Partition {
    type Result = ();

    fn handle(&mut self, _: Cycle, ctx: &mut Self::Context) {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
        let Some(worker) = self.worker.take() else {
            return; // a cycle is already running
        };
        let work = run_cycle(
            self.pool.clone(),
            self.range,
            self.next_start,
            self.config.batch_size as usize,
            worker,
        );
        let guarded = AssertUnwindSafe(work).catch_unwind();
        ctx.wait(guarded.into_actor(self).map(|outcome, act, ctx| {
            let result = match outcome {
                Ok((worker, result)) => {
                    act.worker = Some(worker);
                    result
                }
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    // The publisher went down with the panic; a restart brings a fresh one.
                    act.stop_reason = StopReason::Failed(format!("cycle panicked: {message}"));
                    ctx.stop();
                    return;
                }
            };
            act.after_cycle(result, ctx);
        }));
    }
}

impl Handler<Wake> for Partition {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.idle_delay = self.min_idle();
        // While failing, the retry backoff wins over wake-ups.
        if self.consecutive_failures > 0 {
            return;
        }
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
            ctx.notify(Cycle);
        }
    }
}

impl Handler<Stop> for Partition {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        self.stop_with(StopReason::Requested, ctx);
    }
}
