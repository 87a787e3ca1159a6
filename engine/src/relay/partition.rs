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
//! - a panic inside a cycle, or a cycle the supervisor's watchdog aborts for running past
//!   `cycle_timeout_ms`, stops the actor with a failure (its producers went down with the
//!   cycle); the supervisor restarts it;
//! - it owns its range only through its [`Lease`]: every cycle checks the lease before it
//!   reads and again before it publishes, and every write is fenced by the lease's epoch;
//!   when the lease is gone it stops with [`StopReason::LeaseLost`] and is not restarted;
//! - an event that fails `max_event_attempts` times in a row on a broker that accepted a
//!   producer for it is dead-lettered (with the last error) and its key quarantined, so it
//!   cannot hold its range forever (see [`super::quarantine`]); a refusal that may heal
//!   (not authorised, topic not created yet) is retried for `topic_refusal_grace_ms`
//!   first, with the `outbox_topic_refused` alert up.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::{PublishError, PulsarPublisher};
use std::collections::HashMap;

use super::acker::Acker;
use super::cycle::{finish, run_cycle, CycleError, CycleReport, Poison, Worker};
use super::messages::{Cycle, PartitionStopped, Progress, Stop, StopReason, Wake};
use super::refusal::Source;
use super::supervisor::Supervisor;
use super::RelayStats;
use crate::config::RelayConfig;
use crate::lease::Lease;
use crate::slots::SlotRange;
use crate::store::Pool;

/// What outlives one partition actor of a range (restarts build a new actor): the cycle
/// running now, since when and how to abort it, when the actor last began a cycle (both
/// for the supervisor's watchdog), and the failures of one event counted across
/// restarts.
#[derive(Debug, Default)]
pub struct PartitionHealth {
    running: Mutex<Option<(Instant, AbortHandle)>>,
    /// When the running actor last began a cycle (or looked and found its range paused);
    /// `None` while no actor runs.
    last_cycle: Mutex<Option<Instant>>,
    failing: Mutex<Option<Failing>>,
    poison: Mutex<Option<Poison>>,
}

/// Topics the broker refuses in a way that may heal (not authorised yet, not created
/// yet), with when the refusals began and when the last one was seen. One per relay
/// (in [`RelayStats`]), so that partition restarts and lease changes do not restart the
/// grace period.
/// See [`Refusals::within_grace`].
const REFUSAL_QUIET: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub struct Refusals {
    since: Mutex<HashMap<String, (Instant, Instant)>>,
    /// Whether `since` has entries: read on every successful cycle without the lock
    /// (shared by all partitions of the relay).
    any: std::sync::atomic::AtomicBool,
}

impl Refusals {
    /// True while `failure` is a refusal that may heal and its topic has been refused for
    /// less than `grace`: the cycle is retried with backoff, and the alert metric is up.
    /// A refusal seen again after a quiet period of [`REFUSAL_QUIET`] (or four grace
    /// periods, if longer) starts a new grace period: a topic refused again the next day
    /// gets its grace again, a range that was idle or elsewhere for a while does not.
    pub(crate) fn within_grace(
        &self,
        failure: &PublishError,
        grace: Duration,
        metrics: &crate::metrics::Metrics,
    ) -> bool {
        let Some(topic) = failure.refused_topic_that_may_heal() else {
            return false;
        };
        let now = Instant::now();
        let mut since = locked(&self.since);
        self.any.store(true, std::sync::atomic::Ordering::Relaxed);
        let (first, last) = since.entry(topic.to_owned()).or_insert((now, now));
        if now.duration_since(*last) >= REFUSAL_QUIET.max(grace * 4) {
            *first = now;
        }
        *last = now;
        let within = now.duration_since(*first) < grace;
        metrics.topic_refused(topic, within);
        if within {
            tracing::warn!(topic, refused_for_ms = now.duration_since(*first).as_millis() as u64, grace_ms = grace.as_millis() as u64, %failure, "the broker refuses the topic; retrying until the grace period ends");
        } else {
            tracing::error!(topic, grace_ms = grace.as_millis() as u64, %failure, "the broker still refuses the topic after the grace period: its events are dead-lettered");
        }
        within
    }

    /// The topics of `runs` were published to: their refusals are over.
    pub(crate) fn clear(&self, runs: &[(String, usize)], metrics: &crate::metrics::Metrics) {
        if !self.any.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut since = locked(&self.since);
        for (topic, _) in runs {
            let full = outbox_adapters::full_topic_name(topic).unwrap_or_else(|_| topic.clone());
            if since.remove(&full).is_some() {
                metrics.topic_accepted(&full);
                tracing::info!(topic = %full, "the broker accepts the topic again");
            }
        }
        if since.is_empty() {
            self.any.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl PartitionHealth {
    /// Aborts the running cycle if it started more than `limit` ago; true if it did.
    pub fn abort_if_older_than(&self, limit: Duration) -> bool {
        let running = locked(&self.running);
        match running.as_ref() {
            Some((started, handle)) if started.elapsed() > limit => {
                handle.abort();
                true
            }
            _ => false,
        }
    }

    /// A cycle began (`Some`, which also counts as the actor cycling) or ended.
    fn set(&self, value: Option<(Instant, AbortHandle)>) {
        if let Some((started, _)) = &value {
            self.mark_cycling(*started);
        }
        *locked(&self.running) = value;
    }

    /// The actor is alive: it was just started, looked at a pause, or began a cycle.
    fn mark_cycling(&self, now: Instant) {
        *locked(&self.last_cycle) = Some(now);
    }

    fn mark_gone(&self) {
        *locked(&self.last_cycle) = None;
    }

    /// Alive but stuck: an actor runs, no cycle is running, and none began for longer
    /// than `limit`. A healthy partition begins one at least every `idle_poll_max_ms`
    /// (idle), `retry_backoff_max_ms` (failing) or 250 ms (paused).
    pub fn stalled(&self, now: Instant, limit: Duration) -> bool {
        if locked(&self.running).is_some() {
            return false; // a long cycle is `abort_if_older_than`'s business
        }
        locked(&self.last_cycle).is_some_and(|last| now.saturating_duration_since(last) > limit)
    }

    /// Counts a failure that points at one event; past `max_attempts` in a row the event
    /// becomes poison, parked by the next cycle.
    fn note_event_failure(&self, slot: i32, seq: i64, max_attempts: u32, error: &str) {
        let mut failing = locked(&self.failing);
        let attempts = match failing.as_ref() {
            Some(f) if f.slot == slot && f.seq == seq => f.attempts + 1,
            _ => 1,
        };
        if attempts >= max_attempts {
            *failing = None;
            *locked(&self.poison) = Some(Poison {
                slot,
                seq,
                reason: format!("failed {attempts} times in a row: {error}"),
                attempts,
            });
        } else {
            *failing = Some(Failing {
                slot,
                seq,
                attempts,
            });
        }
    }

    fn take_poison(&self) -> Option<Poison> {
        locked(&self.poison).take()
    }
}

/// Consecutive failures of one event, on a broker that accepted a producer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failing {
    slot: i32,
    seq: i64,
    attempts: u32,
}

pub struct Partition {
    lease: Arc<Lease>,
    range: SlotRange,
    health: Arc<PartitionHealth>,
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
    /// The failure last recorded for `status` (see [`Self::record_error`]), and when.
    error_recorded: Option<(String, Instant)>,
}

/// How often an unchanged failure is recorded again (its time shows it is still there).
const ERROR_RECORD_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("range", &self.range)
            .field("epoch", &self.lease.epoch)
            .finish()
    }
}

impl Partition {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lease: Arc<Lease>,
        health: Arc<PartitionHealth>,
        pool: Pool,
        pulsar: Pulsar<TokioExecutor>,
        config: Arc<RelayConfig>,
        stats: Arc<RelayStats>,
        supervisor: Addr<Supervisor>,
        relay_id: Arc<str>,
    ) -> Self {
        let range = lease.range;
        let refusals = stats.refusals.clone();
        Partition {
            lease,
            range,
            health,
            pool,
            worker: Some(Worker {
                // One stable producer name per range: with the engine producer and broker
                // deduplication, whoever owns the range next resends under the same name.
                publisher: PulsarPublisher::with_client(pulsar.clone(), config.pulsar.clone())
                    .with_producer_name(format!("outbox-{}-{}", range.start, range.end)),
                release_publisher: PulsarPublisher::with_client(pulsar, config.pulsar.clone()),
                quarantine: Default::default(),
                refusals,
                refusal_grace: Duration::from_millis(config.topic_refusal_grace_ms),
                relay_id: relay_id.clone(),
                acker: Acker::new(relay_id),
                position: None,
                deduplication_reported: String::new(),
                deduplication_known: 0,
                stats: stats.clone(),
                prefetch: None,
            }),
            idle_delay: Duration::from_millis(config.idle_poll_min_ms),
            config,
            stats,
            supervisor,
            idle_timer: None,
            consecutive_failures: 0,
            stop_reason: StopReason::Requested,
            error_recorded: None,
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
                self.record_error(None);
                self.stats
                    .database_refusal
                    .answered(Source::Cycles, &self.stats.metrics);
                if report.published > 0 || report.parked > 0 {
                    self.stats
                        .published
                        .fetch_add(report.published as u64, Ordering::Relaxed);
                    self.stats
                        .parked
                        .fetch_add(report.parked as u64, Ordering::Relaxed);
                    self.stats.metrics.parked.inc_by(report.parked as u64);
                    self.supervisor.do_send(Progress {
                        range: self.range,
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
            Err(error) if error.is_lease_lost() => {
                tracing::warn!(range = %self.range, epoch = self.lease.epoch, %error, "partition stops: its lease is gone");
                self.stop_with(StopReason::LeaseLost(error.to_string()), ctx);
            }
            Err(error) => {
                self.note_failure(&error);
                self.record_error(Some(error.to_string()));
                self.consecutive_failures += 1;
                self.stats.failed_cycles.fetch_add(1, Ordering::Relaxed);
                self.stats.metrics.retry(error.class());
                if let CycleError::Store(refusal) = &error {
                    if refusal.is_refusal() {
                        let grace = Duration::from_millis(self.config.database_refusal_grace_ms);
                        if self.stats.database_refusal.refused(
                            Source::Cycles,
                            refusal,
                            grace,
                            &self.stats.metrics,
                        ) {
                            // The supervisor shuts the relay down at its next round.
                            self.stop_with(StopReason::Failed(error.to_string()), ctx);
                            return;
                        }
                    }
                }
                if self.consecutive_failures >= self.config.max_consecutive_failures {
                    tracing::error!(range = %self.range, failures = self.consecutive_failures, %error, "partition gives up; the supervisor will restart it");
                    self.stop_with(StopReason::Failed(error.to_string()), ctx);
                } else {
                    let delay = self.config.retry_backoff(self.consecutive_failures);
                    tracing::warn!(range = %self.range, failures = self.consecutive_failures, retry_in_ms = delay.as_millis() as u64, %error, "cycle failed; unacknowledged events stay pending and are published again");
                    self.schedule(ctx, delay);
                }
            }
        }
    }
}

impl Partition {
    /// Records why the range's cycles fail (or, with `None`, that they succeed again) for
    /// `status`, in the background: only when it changed, or every
    /// [`ERROR_RECORD_EVERY`] while it lasts.
    fn record_error(&mut self, error: Option<String>) {
        let due = match (&error, &self.error_recorded) {
            (None, None) => false,
            (None, Some(_)) => true,
            (Some(now), Some((before, at))) => now != before || at.elapsed() >= ERROR_RECORD_EVERY,
            (Some(_), None) => true,
        };
        if !due {
            return;
        }
        self.error_recorded = error.clone().map(|e| (e, Instant::now()));
        let pool = self.pool.clone();
        let lease = self.lease.clone();
        actix_rt::spawn(async move {
            let written = match pool.get().await {
                Ok(mut conn) => {
                    crate::store::record_range_error(&mut conn, &lease, error.as_deref()).await
                }
                Err(error) => Err(error.into()),
            };
            if let Err(error) = written {
                tracing::debug!(range = %lease.range, %error, "could not record the range's failure for status");
            }
        });
    }

    /// Counts failures that point at one event (across restarts, in the health record).
    fn note_failure(&mut self, error: &CycleError) {
        if let CycleError::FailedAt { slot, seq, error } = error {
            if error.implicates_event() {
                self.health.note_event_failure(
                    *slot,
                    *seq,
                    self.config.max_event_attempts,
                    &error.to_string(),
                );
            }
        }
    }
}

impl Actor for Partition {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(range = %self.range, epoch = self.lease.epoch, "partition started");
        self.health.mark_cycling(Instant::now());
        ctx.notify(Cycle);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.health.set(None);
        self.health.mark_gone();
        self.supervisor.do_send(PartitionStopped {
            range: self.range,
            reason: self.stop_reason.clone(),
        });
    }
}

/// How often a paused partition looks again (pauses are read once per lease round).
const PAUSED_RECHECK: Duration = Duration::from_millis(250);

impl Handler<Cycle> for Partition {
    type Result = ();

    fn handle(&mut self, _: Cycle, ctx: &mut Self::Context) {
        if let Some(timer) = self.idle_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.worker.is_none() {
            return; // a cycle is already running
        }
        if self.stats.is_paused(self.range) {
            // Held by an operator: its events stay pending, in order, until the resume.
            self.health.mark_cycling(Instant::now());
            self.schedule(ctx, PAUSED_RECHECK);
            return;
        }
        let Some(worker) = self.worker.take() else {
            return;
        };
        let work = run_cycle(
            self.pool.clone(),
            self.lease.clone(),
            self.config.batch_size as usize,
            self.health.take_poison(),
            worker,
        );
        let (abort, registration) = AbortHandle::new_pair();
        self.health.set(Some((Instant::now(), abort)));
        let guarded = Abortable::new(AssertUnwindSafe(work).catch_unwind(), registration);
        ctx.wait(guarded.into_actor(self).map(|outcome, act, ctx| {
            act.health.set(None);
            let result = match outcome {
                Ok(Ok((worker, result))) => {
                    act.worker = Some(worker);
                    result
                }
                Err(_aborted) => {
                    let limit = act.config.cycle_timeout_ms;
                    tracing::error!(range = %act.range, cycle_timeout_ms = limit, "cycle aborted by the watchdog: it ran past its deadline");
                    act.stop_reason = StopReason::Failed(format!(
                        "cycle ran longer than cycle_timeout_ms = {limit} and was aborted"
                    ));
                    ctx.stop();
                    return;
                }
                Ok(Err(panic)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_stalled_only_when_alive_idle_and_silent_past_the_limit() {
        let health = PartitionHealth::default();
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        let later = start + Duration::from_secs(61);
        // No actor runs: never stalled.
        assert!(!health.stalled(later, limit));
        health.mark_cycling(start);
        assert!(!health.stalled(start + Duration::from_secs(59), limit));
        assert!(health.stalled(later, limit));
        // A cycle running (however long) is the cycle watchdog's, not a stall.
        let (abort, _registration) = AbortHandle::new_pair();
        health.set(Some((start, abort)));
        assert!(!health.stalled(later, limit));
        health.set(None);
        // A new cycle began: alive again.
        health.mark_cycling(later);
        assert!(!health.stalled(later + Duration::from_secs(1), limit));
        health.mark_gone();
        assert!(!health.stalled(later + Duration::from_secs(600), limit));
    }
}
