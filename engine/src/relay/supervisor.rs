//! The supervisor actor: connects, starts one partition per slot range, restarts
//! partitions that stop on failure (capped exponential backoff), fans wake-ups out, and
//! drives graceful shutdown.
//!
//! Contract:
//! - it waits for PostgreSQL (schema migrated) and Pulsar before starting partitions,
//!   retrying with backoff and logging what it waits for;
//! - every slot range has exactly one running partition, except while one is being
//!   restarted; ranges never overlap, so a key is never published by two partitions;
//! - [`Shutdown`] stops every partition after its cycle in flight and answers when all
//!   have stopped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};

use super::messages::{
    GetPartitions, NewEvents, PartitionState, PartitionStopped, Progress, Shutdown, Stop,
    StopReason, Wake,
};
use super::partition::Partition;
use super::wakeup::Watcher;
use super::RelayStats;
use crate::config::RelayConfig;
use crate::slots::{self, SlotRange};
use crate::store::{self, Pool, SessionKind, StoreError};

struct Entry {
    range: SlotRange,
    addr: Option<Addr<Partition>>,
    restarts: u32,
    published: u64,
    parked: u64,
    last_seq: i64,
}

#[derive(Clone)]
struct Resources {
    pool: Pool,
    pulsar: Pulsar<TokioExecutor>,
}

pub struct Supervisor {
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    resources: Option<Resources>,
    entries: Vec<Entry>,
    watcher: Option<Addr<Watcher>>,
    shutting_down: bool,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("partitions", &self.entries.len())
            .field("shutting_down", &self.shutting_down)
            .finish()
    }
}

impl Supervisor {
    pub fn new(config: RelayConfig, stats: Arc<RelayStats>) -> Self {
        let entries = slots::split(config.partitions)
            .into_iter()
            .map(|range| Entry {
                range,
                addr: None,
                restarts: 0,
                published: 0,
                parked: 0,
                last_seq: 0,
            })
            .collect();
        Supervisor {
            config: Arc::new(config),
            stats,
            resources: None,
            entries,
            watcher: None,
            shutting_down: false,
            shutdown_waiters: Vec::new(),
        }
    }

    fn start_partition(&mut self, id: usize, ctx: &mut Context<Self>) {
        let Some(resources) = self.resources.clone() else {
            return;
        };
        if self.shutting_down || self.entries[id].addr.is_some() {
            return;
        }
        let partition = Partition::new(
            id,
            self.entries[id].range,
            resources.pool,
            resources.pulsar,
            self.config.clone(),
            self.stats.clone(),
            ctx.address(),
        );
        self.entries[id].addr = Some(partition.start());
    }

    fn running(&self) -> usize {
        self.entries.iter().filter(|e| e.addr.is_some()).count()
    }

    fn finish_shutdown_if_done(&mut self) {
        if self.shutting_down && self.running() == 0 {
            for waiter in self.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

/// Retries until the database answers with the expected schema and the broker accepts a
/// connection, logging what it waits for. Ends early only through shutdown (the actor
/// stops and drops this future).
async fn connect(config: Arc<RelayConfig>) -> Resources {
    let shown_url = store::redact_url(&config.database_url);
    let pool = retry(&config, "PostgreSQL", &shown_url, || try_database(&config)).await;
    let pulsar = retry(&config, "Pulsar", &config.pulsar.url, || {
        outbox_adapters::pulsar::connect(&config.pulsar)
    })
    .await;
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

async fn try_database(config: &RelayConfig) -> Result<Pool, StoreError> {
    let pool = store::pool(
        &config.database_url,
        config.effective_pool_size(),
        SessionKind::Relay,
    )
    .await?;
    {
        let mut conn = pool.get().await?;
        store::check_schema(&mut conn).await?;
    }
    Ok(pool)
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(partitions = self.entries.len(), "relay starting");
        ctx.spawn(
            connect(self.config.clone())
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
                    act.resources = Some(resources);
                    for id in 0..act.entries.len() {
                        act.start_partition(id, ctx);
                    }
                    act.stats.ready.store(true, Ordering::Release);
                }),
        );
    }
}

impl Handler<NewEvents> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: NewEvents, _ctx: &mut Self::Context) {
        for entry in &self.entries {
            if let Some(addr) = &entry.addr {
                addr.do_send(Wake);
            }
        }
    }
}

impl Handler<Progress> for Supervisor {
    type Result = ();

    fn handle(&mut self, progress: Progress, _ctx: &mut Self::Context) {
        if let Some(entry) = self.entries.get_mut(progress.partition) {
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
        let id = stopped.partition;
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        entry.addr = None;
        if self.shutting_down {
            tracing::info!(partition = id, range = %stopped.range, "partition stopped");
            self.finish_shutdown_if_done();
            return;
        }
        entry.restarts += 1;
        let restarts = entry.restarts;
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        let delay = self.config.retry_backoff(restarts);
        let reason = match &stopped.reason {
            StopReason::Requested => "stop requested".to_owned(),
            StopReason::Failed(error) => error.clone(),
        };
        tracing::warn!(partition = id, range = %stopped.range, restarts, restart_in_ms = delay.as_millis() as u64, %reason, "restarting partition");
        ctx.run_later(delay, move |act, ctx| act.start_partition(id, ctx));
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        if !self.shutting_down {
            tracing::info!("relay shutting down: finishing cycles in flight");
        }
        self.shutting_down = true;
        if let Some(watcher) = self.watcher.take() {
            watcher.do_send(Stop);
        }
        for entry in &self.entries {
            if let Some(addr) = &entry.addr {
                addr.do_send(Stop);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.shutdown_waiters.push(tx);
        self.finish_shutdown_if_done();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<GetPartitions> for Supervisor {
    type Result = Vec<PartitionState>;

    fn handle(&mut self, _: GetPartitions, _ctx: &mut Self::Context) -> Self::Result {
        self.entries
            .iter()
            .enumerate()
            .map(|(partition, e)| PartitionState {
                partition,
                range: e.range,
                running: e.addr.is_some(),
                restarts: e.restarts,
                published: e.published,
                parked: e.parked,
                last_seq: e.last_seq,
            })
            .collect()
    }
}
