//! The supervisor actor: joins the relays sharing this database, owns the ranges its
//! leases grant, runs one partition per owned range, restarts partitions that fail, gives
//! up ranges that stay unhealthy, and drives graceful shutdown.
//!
//! Contract:
//! - it waits for PostgreSQL (schema migrated) and Pulsar before taking any lease,
//!   retrying with backoff and logging what it waits for;
//! - every `lease_renew_interval_ms` it runs a membership tick (`store::leases::tick`):
//!   heartbeat, plan, claims and renewals. A partition runs only for a range whose lease
//!   this relay holds, and only while the lease's local deadline (renewal sent + three
//!   quarters of the lease) has not passed;
//! - a range the plan gives to another relay is handed off cleanly: its partition
//!   finishes its batch and waits for its acknowledgements, then the lease is released,
//!   so the next owner starts exactly after what was published (no duplicates);
//! - a partition that stops on failure (errors, a panic, a cycle the watchdog aborted
//!   for running past `cycle_timeout_ms`) is restarted with capped backoff; after
//!   `max_partition_restarts` restarts without progress its range is released as
//!   unhealthy, so that a healthy relay takes it;
//! - [`Shutdown`] stops every partition after its cycle in flight, releases every lease,
//!   leaves the group, and answers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::channel::oneshot;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};

use super::maintenance::Maintainer;
use super::messages::{
    GetPartitions, GetStatus, NewEvents, PartitionState, PartitionStopped, Progress, Shutdown,
    Stop, StopReason, Tick, Wake,
};
use super::partition::{Partition, PartitionHealth};
use super::refusal::Source;
use super::wakeup::Watcher;
use super::RelayStats;
use crate::config::RelayConfig;
use crate::lease::Lease;
use crate::store::leases::{self, Member, TickOutcome};
use crate::store::{self, Pool, SessionKind, StoreError};

/// One owned range.
struct Entry {
    lease: Arc<Lease>,
    health: Arc<PartitionHealth>,
    addr: Option<Addr<Partition>>,
    restarts: u32,
    /// The plan (or shutdown) wants it released once its partition has stopped.
    releasing: bool,
    /// Given up as unhealthy: released with a hint to the planner.
    unhealthy: bool,
    /// The lease is gone (expired or taken over): drop the entry when the partition stops.
    lost: bool,
    published: u64,
    parked: u64,
    last_seq: i64,
}

#[derive(Clone)]
struct Resources {
    pool: Pool,
    pulsar: Pulsar<TokioExecutor>,
}

/// What an embedding service hands the relay instead of letting it connect: its own
/// database pool and Pulsar client ([`crate::relay::RelayBuilder`]).
#[derive(Clone, Default)]
pub struct Provided {
    pub pool: Option<Pool>,
    pub pulsar: Option<Pulsar<TokioExecutor>>,
}

pub struct Supervisor {
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    member: Member,
    resources: Option<Resources>,
    provided: Provided,
    /// Owned ranges by their first slot.
    entries: BTreeMap<i32, Entry>,
    watcher: Option<Addr<Watcher>>,
    maintainer: Option<Addr<Maintainer>>,
    ticking: bool,
    layout_requested: bool,
    database_down_since: Option<Instant>,
    shutting_down: bool,
    left: bool,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("relay_id", &self.member.relay_id)
            .field("ranges", &self.entries.len())
            .field("shutting_down", &self.shutting_down)
            .finish()
    }
}

/// A name unique to this process start: host, pid and a clock reading.
fn relay_identity() -> (String, String, i32) {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (format!("{host}-{pid}-{nanos:08x}"), host, pid as i32)
}

impl Supervisor {
    pub fn new(config: RelayConfig, stats: Arc<RelayStats>, provided: Provided) -> Self {
        let (relay_id, host, pid) = relay_identity();
        let member = Member {
            relay_id,
            host,
            pid,
            lease_ms: config.lease_ms as i64,
        };
        Supervisor {
            config: Arc::new(config),
            stats,
            member,
            resources: None,
            provided,
            entries: BTreeMap::new(),
            watcher: None,
            maintainer: None,
            ticking: false,
            layout_requested: false,
            database_down_since: None,
            shutting_down: false,
            left: false,
            shutdown_waiters: Vec::new(),
        }
    }

    fn start_partition(&mut self, start: i32, ctx: &mut Context<Self>) {
        let Some(resources) = self.resources.clone() else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&start) else {
            return;
        };
        if self.shutting_down || entry.addr.is_some() || entry.releasing || entry.lost {
            return;
        }
        let partition = Partition::new(
            entry.lease.clone(),
            entry.health.clone(),
            resources.pool,
            resources.pulsar,
            self.config.clone(),
            self.stats.clone(),
            ctx.address(),
            self.member.relay_id.as_str().into(),
        );
        entry.addr = Some(partition.start());
    }

    /// Once PostgreSQL has refused the relay past `database_refusal_grace_ms` (see
    /// `refusal.rs`), shuts the relay down; true if it did or already does.
    fn shut_down_if_refused(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.stats.database_refusal.reason().is_none() {
            return false;
        }
        if !self.shutting_down {
            ctx.address().do_send(Shutdown);
        }
        true
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.shut_down_if_refused(ctx) {
            return;
        }
        let Some(resources) = &self.resources else {
            return;
        };
        if self.ticking || self.left {
            return;
        }
        self.ticking = true;
        let pool = resources.pool.clone();
        let member = self.member.clone();
        let leaving = self.shutting_down;
        let target = (!self.layout_requested).then_some(self.config.partitions);
        let sent_at = Instant::now();
        let lock_timeout = self.config.lease_lock_timeout();
        let stats = self.stats.clone();
        let work = async move {
            let mut conn = pool.get().await?;
            let outcome = leases::tick(&mut conn, &member, leaving, target, lock_timeout).await?;
            // Operator pauses ride on the lease round: one small read a second.
            match store::pause::paused(&mut conn).await {
                Ok(paused) => {
                    let ranges: Vec<crate::slots::SlotRange> = paused
                        .iter()
                        .map(|p| crate::slots::SlotRange {
                            start: p.lo,
                            end: p.hi,
                        })
                        .collect();
                    stats.metrics.paused.set(ranges.len() as i64);
                    if let Ok(mut shared) = stats.paused.write() {
                        if *shared != ranges {
                            tracing::info!(paused = ?ranges, "operator pauses changed");
                            *shared = ranges;
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "could not read operator pauses"),
            }
            // Quarantine counts for the metrics: a partial index, small by design.
            match store::dead_letters::counts(&mut conn).await {
                Ok(counts) => {
                    stats.metrics.quarantined_keys.set(counts.quarantined_keys);
                    stats.metrics.dead_letters.set(counts.dead_letters);
                    stats.metrics.held_events.set(counts.held);
                }
                Err(error) => tracing::debug!(%error, "could not count dead letters"),
            }
            Ok(outcome)
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            act.ticking = false;
            match result {
                Ok(outcome) => {
                    act.layout_requested |= target.is_some();
                    act.after_tick(outcome, sent_at, ctx);
                }
                Err(error) => {
                    act.tick_failed(error, ctx);
                    act.finish_shutdown_if_done(ctx);
                }
            }
        }));
    }

    fn tick_failed(&mut self, error: StoreError, ctx: &mut Context<Self>) {
        if error.is_refusal() {
            let grace = Duration::from_millis(self.config.database_refusal_grace_ms);
            let refusal = &self.stats.database_refusal;
            if refusal.refused(Source::Leases, &error, grace, &self.stats.metrics) {
                self.shut_down_if_refused(ctx);
            }
            return;
        }
        match self.database_down_since {
            None => {
                self.database_down_since = Some(Instant::now());
                tracing::warn!(%error, publish_window_ms = self.config.publish_window().as_millis() as u64,
                    "cannot renew range leases (PostgreSQL unreachable or the group's lock held); partitions stop publishing when their leases run out");
            }
            Some(since) => {
                tracing::debug!(%error, down_ms = since.elapsed().as_millis() as u64, "lease renewal failed again");
            }
        }
    }

    fn after_tick(&mut self, outcome: TickOutcome, sent_at: Instant, ctx: &mut Context<Self>) {
        self.stats
            .database_refusal
            .answered(Source::Leases, &self.stats.metrics);
        if let Some(since) = self.database_down_since.take() {
            tracing::info!(
                down_ms = since.elapsed().as_millis() as u64,
                "PostgreSQL reachable again: leases renewed"
            );
        }
        let valid_until = sent_at + self.config.publish_window();
        let mut seen = Vec::with_capacity(outcome.owned.len());
        for owned in &outcome.owned {
            let start = owned.range.start;
            seen.push(start);
            match self.entries.get_mut(&start) {
                Some(entry)
                    if entry.lease.epoch == owned.epoch && entry.lease.range == owned.range =>
                {
                    entry.lease.extend_to(valid_until);
                    if !owned.keep && !entry.releasing {
                        tracing::info!(range = %owned.range, epoch = owned.epoch, "handing range off to another relay");
                        entry.releasing = true;
                        self.stop_or_release(start, ctx);
                    }
                }
                Some(entry) => {
                    // Owned again under another epoch: the old partition is fenced; let it go.
                    entry.lease.revoke();
                    entry.lost = true;
                    if let Some(addr) = &entry.addr {
                        addr.do_send(Stop);
                    }
                }
                None => {
                    let lease = Arc::new(Lease::new(owned.range, owned.epoch, valid_until));
                    let keep = owned.keep && !self.shutting_down;
                    self.stats.lease_changes.fetch_add(1, Ordering::Relaxed);
                    self.stats.metrics.lease_changes.inc();
                    tracing::info!(range = %owned.range, epoch = owned.epoch, relays = outcome.live_relays, "range lease acquired");
                    self.entries.insert(
                        start,
                        Entry {
                            lease,
                            health: Arc::default(),
                            addr: None,
                            restarts: 0,
                            releasing: !keep,
                            unhealthy: false,
                            lost: false,
                            published: 0,
                            parked: 0,
                            last_seq: 0,
                        },
                    );
                    if keep {
                        self.start_partition(start, ctx);
                    } else {
                        self.stop_or_release(start, ctx);
                    }
                }
            }
        }
        let gone: Vec<i32> = self
            .entries
            .keys()
            .filter(|start| !seen.contains(start))
            .copied()
            .collect();
        for start in gone {
            let Some(entry) = self.entries.get_mut(&start) else {
                continue;
            };
            if entry.lost {
                continue;
            }
            tracing::warn!(range = %entry.lease.range, epoch = entry.lease.epoch, "range lease lost (expired or taken over); its partition stops");
            entry.lease.revoke();
            entry.lost = true;
            self.stats.lease_changes.fetch_add(1, Ordering::Relaxed);
            self.stats.metrics.lease_changes.inc();
            match &entry.addr {
                Some(addr) => addr.do_send(Stop),
                None => {
                    self.entries.remove(&start);
                }
            }
        }
        self.stats
            .leases
            .store(self.entries.len() as u64, Ordering::Relaxed);
        self.stats.ready.store(true, Ordering::Release);
        self.stats.metrics.ready.set(1);
        self.finish_shutdown_if_done(ctx);
    }

    /// Stops the range's partition (the release follows when it has stopped), or
    /// releases at once when none runs.
    fn stop_or_release(&mut self, start: i32, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get(&start) else {
            return;
        };
        match &entry.addr {
            Some(addr) => addr.do_send(Stop),
            None => self.release(start, ctx),
        }
    }

    /// Releases the range's lease in the database, then forgets the entry. A failed
    /// release is only logged: the lease then expires by itself.
    fn release(&mut self, start: i32, ctx: &mut Context<Self>) {
        let (Some(resources), Some(entry)) = (&self.resources, self.entries.get(&start)) else {
            self.entries.remove(&start);
            return;
        };
        let pool = resources.pool.clone();
        let relay_id = self.member.relay_id.clone();
        let (range, epoch, unhealthy) = (entry.lease.range, entry.lease.epoch, entry.unhealthy);
        entry.lease.revoke();
        let work = async move {
            let mut conn = pool.get().await?;
            leases::release(&mut conn, &relay_id, range, epoch, unhealthy).await
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(true) => tracing::info!(range = %range, epoch, unhealthy, "range lease released"),
                Ok(false) => tracing::info!(range = %range, epoch, "range lease was already gone"),
                Err(error) => tracing::warn!(range = %range, epoch, %error, "could not release the range lease; it expires by itself"),
            }
            act.stats.lease_changes.fetch_add(1, Ordering::Relaxed);
            act.stats.metrics.lease_changes.inc();
            act.entries.remove(&start);
            act.stats
                .leases
                .store(act.entries.len() as u64, Ordering::Relaxed);
            act.finish_shutdown_if_done(ctx);
        }));
    }

    /// Every 500 ms: aborts a cycle running past `cycle_timeout_ms` (the partition then
    /// stops and is restarted), and stops a partition that is alive but has begun no
    /// cycle for longer than any healthy one waits (it is restarted the same way).
    fn watchdog(&mut self) {
        let limit = Duration::from_millis(self.config.cycle_timeout_ms);
        let stall_limit = self.stall_limit();
        let now = Instant::now();
        for entry in self.entries.values() {
            let Some(addr) = &entry.addr else {
                continue;
            };
            if entry.health.abort_if_older_than(limit) {
                tracing::error!(range = %entry.lease.range, "partition stuck in one cycle; aborted");
            } else if !entry.releasing && entry.health.stalled(now, stall_limit) {
                tracing::error!(range = %entry.lease.range, stalled_ms = stall_limit.as_millis() as u64, "partition alive but no longer cycling; restarting it");
                addr.do_send(Stop);
            }
        }
    }

    /// Longer than any healthy pause between two cycles: the idle poll, the retry
    /// backoff, a stop waiting for acknowledgements (bounded by the cycle timeout).
    fn stall_limit(&self) -> Duration {
        Duration::from_millis(
            self.config.cycle_timeout_ms
                + self
                    .config
                    .idle_poll_max_ms
                    .max(self.config.retry_backoff_max_ms),
        )
    }

    fn finish_shutdown_if_done(&mut self, ctx: &mut Context<Self>) {
        // A tick sent before the shutdown may still claim ranges: leave after it.
        if !self.shutting_down || !self.entries.is_empty() || self.left || self.ticking {
            return;
        }
        self.left = true;
        let Some(resources) = &self.resources else {
            for waiter in self.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
            return;
        };
        let pool = resources.pool.clone();
        let relay_id = self.member.relay_id.clone();
        let work = async move {
            let mut conn = pool.get().await?;
            leases::leave(&mut conn, &relay_id).await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _ctx| {
            match result {
                Ok(()) => tracing::info!(relay = %act.member.relay_id, "left the relay group"),
                Err(error) => tracing::warn!(%error, "could not leave the relay group; its row expires by itself"),
            }
            for waiter in act.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }));
    }
}

/// Retries until the database answers with the expected schema and the broker accepts a
/// connection, logging what it waits for. Ends early only through shutdown (the actor
/// stops and drops this future).
async fn connect(config: Arc<RelayConfig>, provided: Provided) -> Resources {
    let shown_url = store::redact_url(&config.database_url);
    let pool = match provided.pool {
        Some(pool) => {
            retry(&config, "PostgreSQL", "the service's pool", || {
                check_provided_pool(&pool)
            })
            .await
        }
        None => retry(&config, "PostgreSQL", &shown_url, || try_database(&config)).await,
    };
    let pulsar = match provided.pulsar {
        Some(pulsar) => pulsar,
        None => {
            retry(&config, "Pulsar", &config.pulsar.url, || {
                outbox_adapters::pulsar::connect(&config.pulsar)
            })
            .await
        }
    };
    tracing::info!(database = %shown_url, pulsar = %config.pulsar.url, "connected");
    Resources { pool, pulsar }
}

/// Calls `attempt` until it succeeds, with the configured backoff, logging each wait.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    config: &RelayConfig,
    service: &str,
    address: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => {
                failures += 1;
                let delay = config.retry_backoff(failures);
                tracing::warn!(%service, %address, %error, retry_in_ms = delay.as_millis() as u64, "waiting for {service}");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A pool the service built: used as it is (the relay's session settings are not
/// applied to it), once the schema is there.
async fn check_provided_pool(pool: &Pool) -> Result<Pool, StoreError> {
    let mut conn = pool.get().await?;
    store::check_schema(&mut conn).await?;
    Ok(pool.clone())
}

async fn try_database(config: &RelayConfig) -> Result<Pool, StoreError> {
    let session = if config.transaction_pooler {
        SessionKind::Pooled
    } else {
        SessionKind::Relay {
            idle_in_transaction_ms: config.lease_lock_timeout().as_millis() as u64,
            statement_timeout_ms: config.effective_statement_timeout_ms(),
        }
    };
    let pool = store::pool(&config.database_url, config.effective_pool_size(), session).await?;
    {
        let mut conn = pool.get().await?;
        store::check_schema(&mut conn).await?;
        if config.transaction_pooler
            && store::statement_timeout(&mut conn).await?.as_deref() == Some("0")
        {
            tracing::warn!(
                "no statement_timeout reaches the relay's sessions through the transaction pooler: \
                 set it on the relay's role (ALTER ROLE ... SET statement_timeout = '30s'), see docs/operations.md"
            );
        }
    }
    Ok(pool)
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(relay = %self.member.relay_id, partitions = self.config.partitions, lease_ms = self.config.lease_ms, "relay starting");
        ctx.spawn(
            connect(self.config.clone(), self.provided.clone())
                .into_actor(self)
                .map(|resources, act, ctx| {
                    if act.shutting_down {
                        return;
                    }
                    act.watcher = Some(
                        Watcher::new(
                            resources.pool.clone(),
                            Duration::from_millis(act.config.wakeup_interval_ms),
                            ctx.address().recipient(),
                        )
                        .start(),
                    );
                    act.maintainer = Some(
                        Maintainer::new(
                            resources.pool.clone(),
                            act.stats.clone(),
                            Duration::from_millis(act.config.maintenance_interval_ms),
                            Duration::from_millis(act.config.retention_ms),
                        )
                        .start(),
                    );
                    act.resources = Some(resources);
                    act.tick(ctx);
                    let every = Duration::from_millis(act.config.lease_renew_interval_ms);
                    ctx.run_interval(every, |act, ctx| act.tick(ctx));
                    ctx.run_interval(Duration::from_millis(500), |act, _| act.watchdog());
                }),
        );
    }
}

impl Handler<Tick> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        self.tick(ctx);
    }
}

impl Handler<NewEvents> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: NewEvents, _ctx: &mut Self::Context) {
        for entry in self.entries.values() {
            if let Some(addr) = &entry.addr {
                addr.do_send(Wake);
            }
        }
    }
}

impl Handler<Progress> for Supervisor {
    type Result = ();

    fn handle(&mut self, progress: Progress, _ctx: &mut Self::Context) {
        if let Some(entry) = self.entries.get_mut(&progress.range.start) {
            entry.published += progress.published;
            entry.parked += progress.parked;
            entry.last_seq = entry.last_seq.max(progress.last_seq);
            // Progress proves the partition healthy again: restart backoff starts over.
            entry.restarts = 0;
        }
    }
}

impl Handler<PartitionStopped> for Supervisor {
    type Result = ();

    fn handle(&mut self, stopped: PartitionStopped, ctx: &mut Self::Context) {
        let start = stopped.range.start;
        let refused = self.shut_down_if_refused(ctx);
        let Some(entry) = self.entries.get_mut(&start) else {
            return;
        };
        entry.addr = None;
        if entry.lost {
            self.entries.remove(&start);
            self.finish_shutdown_if_done(ctx);
            return;
        }
        if entry.releasing || self.shutting_down || refused {
            tracing::info!(range = %stopped.range, "partition stopped");
            self.release(start, ctx);
            return;
        }
        let reason = match &stopped.reason {
            StopReason::Requested => "stop requested".to_owned(),
            StopReason::Failed(error) | StopReason::LeaseLost(error) => error.clone(),
        };
        if let StopReason::LeaseLost(_) = stopped.reason {
            // Not renewed in time (database unreachable?): the next tick that succeeds
            // takes the range again, under a new entry, if it is still ours.
            self.entries.remove(&start);
            return;
        }
        entry.restarts += 1;
        let restarts = entry.restarts;
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.stats.metrics.restarts.inc();
        if restarts > self.config.max_partition_restarts {
            tracing::error!(range = %stopped.range, restarts, %reason, "partition keeps failing; giving its range up so that a healthy relay takes it");
            entry.unhealthy = true;
            entry.releasing = true;
            self.release(start, ctx);
            return;
        }
        let delay = self.config.retry_backoff(restarts);
        tracing::warn!(range = %stopped.range, restarts, restart_in_ms = delay.as_millis() as u64, %reason, "restarting partition");
        ctx.run_later(delay, move |act, ctx| act.start_partition(start, ctx));
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        if !self.shutting_down {
            tracing::info!(
                "relay shutting down: finishing cycles in flight, then releasing its ranges"
            );
        }
        self.shutting_down = true;
        if let Some(maintainer) = self.maintainer.take() {
            maintainer.do_send(Stop);
        }
        if let Some(watcher) = self.watcher.take() {
            watcher.do_send(Stop);
        }
        let starts: Vec<i32> = self.entries.keys().copied().collect();
        for start in starts {
            if let Some(entry) = self.entries.get_mut(&start) {
                if entry.releasing {
                    continue;
                }
                entry.releasing = true;
            }
            self.stop_or_release(start, ctx);
        }
        let (tx, rx) = oneshot::channel();
        self.shutdown_waiters.push(tx);
        self.finish_shutdown_if_done(ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<GetStatus> for Supervisor {
    type Result = ResponseFuture<Result<store::Status, StoreError>>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        let pool = self.resources.as_ref().map(|r| r.pool.clone());
        Box::pin(async move {
            let Some(pool) = pool else {
                return Err(StoreError::Unavailable(
                    "the relay is still connecting to PostgreSQL".into(),
                ));
            };
            let mut conn = pool.get().await?;
            store::status(&mut conn).await
        })
    }
}

impl Handler<GetPartitions> for Supervisor {
    type Result = Vec<PartitionState>;

    fn handle(&mut self, _: GetPartitions, _ctx: &mut Self::Context) -> Self::Result {
        self.entries
            .values()
            .map(|e| PartitionState {
                range: e.lease.range,
                epoch: e.lease.epoch,
                lease_remaining_ms: e.lease.remaining().as_millis() as u64,
                running: e.addr.is_some(),
                releasing: e.releasing,
                restarts: e.restarts,
                published: e.published,
                parked: e.parked,
                last_seq: e.last_seq,
            })
            .collect()
    }
}
