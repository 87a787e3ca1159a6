//! The relay: actix actors that publish committed outbox events to Pulsar.
//!
//! ```text
//!              Supervisor ──starts/restarts──▶ Partition 0 (slots 0-255)   ──▶ Pulsar
//!   Watcher ──NewEvents──▶ │  ──Wake──▶        Partition 1 (slots 256-511) ──▶ Pulsar
//!   (polls outbox_seq)     │                   ...
//!                          ◀──Progress / PartitionStopped──
//! ```
//!
//! [`Relay::start`] runs the actors on a dedicated thread (an actix system over a
//! multi-threaded tokio runtime, whose workers drive the database and broker I/O), so it
//! embeds in any service, whatever runtime that service uses. The `outbox-relay` binary
//! is a thin shell around it.

mod acker;
pub mod batch;
mod cycle;
mod maintenance;
mod messages;
mod partition;
mod quarantine;
mod supervisor;
mod wakeup;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix::prelude::*;

use messages::{GetPartitions, Shutdown};
pub use messages::{PartitionState, StopReason};
use supervisor::Supervisor;

use crate::config::{ConfigError, RelayConfig};

/// Counters shared by the relay's actors; read them through [`RelayHandle::stats`].
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events acknowledged by the broker (their delete from the outbox may still be
    /// running in the background).
    pub published: AtomicU64,
    /// Events moved to `outbox_parked`.
    pub parked: AtomicU64,
    /// Cycles that failed (database or broker error) and were retried.
    pub failed_cycles: AtomicU64,
    /// Partition restarts by the supervisor.
    pub restarts: AtomicU64,
    /// Range leases this relay holds now.
    pub leases: AtomicU64,
    /// Leases acquired, released or lost since start.
    pub lease_changes: AtomicU64,
    /// Connected, and the first lease tick done (partitions started for its ranges).
    pub ready: AtomicBool,
    /// The same and more for Prometheus ([`RelayHandle::metrics_text`]).
    pub metrics: crate::metrics::Metrics,
    /// Slot ranges an operator paused (`outbox-relay pause`), as of the last lease round.
    pub paused: std::sync::RwLock<Vec<crate::slots::SlotRange>>,
    /// Topics the broker refuses in a way that may heal, since when: one clock per topic
    /// for the whole relay, so that it survives partition restarts and lease changes and
    /// the grace period really ends.
    pub(crate) refusals: std::sync::Arc<partition::Refusals>,
}

impl RelayStats {
    /// Whether an operator paused any slot of `range`.
    pub fn is_paused(&self, range: crate::slots::SlotRange) -> bool {
        self.paused
            .read()
            .map(|paused| {
                paused
                    .iter()
                    .any(|p| p.start <= range.end && range.start <= p.end)
            })
            .unwrap_or(false)
    }

    /// The metrics in the Prometheus text format, gauges brought up to date.
    pub fn metrics_text(&self) -> String {
        self.metrics
            .leases
            .set(self.leases.load(Ordering::Relaxed) as i64);
        self.metrics.encode()
    }
}

/// Why the relay could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not start the relay thread: {0}")]
    Start(String),
    #[error("the relay stopped unexpectedly")]
    Gone,
    #[error("shutdown did not finish within {0:?}; unacknowledged events stay pending and will be published again")]
    ShutdownTimedOut(Duration),
}

/// Entry point.
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Validates `config` and starts the relay on its own thread. Returns at once; the
    /// relay connects in the background, retrying until PostgreSQL and Pulsar answer.
    pub fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        config.validate()?;
        let shutdown_timeout = config.shutdown_timeout();
        let worker_threads = config.worker_threads;
        let stats = Arc::new(RelayStats::default());
        let thread_stats = stats.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("outbox-relay".into())
            .spawn(move || {
                let runner = actix_rt::System::with_tokio_rt(move || {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(worker_threads)
                        .thread_name("outbox-relay-io")
                        .enable_all()
                        .build()
                        .expect("cannot build the relay's tokio runtime")
                });
                let supervisor =
                    runner.block_on(async move { Supervisor::new(config, thread_stats).start() });
                let _ = tx.send((actix_rt::System::current(), supervisor));
                // After a kill, client objects dropped with the runtime may panic while
                // closing; the relay is going away then, so this is contained here.
                let ended =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || runner.run()));
                match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(%error, "relay system ended with an error"),
                    Err(_) => tracing::warn!("relay system panicked while stopping"),
                }
            })
            .map_err(|e| RelayError::Start(e.to_string()))?;
        let (system, supervisor) = rx
            .recv()
            .map_err(|_| RelayError::Start("relay thread ended during start".into()))?;
        Ok(RelayHandle {
            supervisor,
            system,
            thread: Some(thread),
            stats,
            shutdown_timeout,
        })
    }
}

/// Controls a running relay. Dropping it stops the relay at once (like [`Self::kill`]).
pub struct RelayHandle {
    supervisor: Addr<Supervisor>,
    system: actix_rt::System,
    thread: Option<JoinHandle<()>>,
    stats: Arc<RelayStats>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("stats", &self.stats)
            .finish()
    }
}

impl RelayHandle {
    /// The relay's metrics in the Prometheus text format (what the binary serves on
    /// `/metrics`).
    pub fn metrics_text(&self) -> String {
        self.stats.metrics_text()
    }

    pub fn stats(&self) -> &Arc<RelayStats> {
        &self.stats
    }

    pub fn published(&self) -> u64 {
        self.stats.published.load(Ordering::Relaxed)
    }

    pub fn is_ready(&self) -> bool {
        self.stats.ready.load(Ordering::Acquire)
    }

    /// What the supervisor knows of each partition.
    pub async fn partitions(&self) -> Result<Vec<PartitionState>, RelayError> {
        self.supervisor
            .send(GetPartitions)
            .await
            .map_err(|_| RelayError::Gone)
    }

    /// Graceful stop: no new reads, cycles in flight finish (bounded by
    /// `shutdown_timeout_ms`), progress recorded, thread joined.
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        let answered =
            tokio::time::timeout(self.shutdown_timeout, self.supervisor.send(Shutdown)).await;
        let result = match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(RelayError::Gone),
            Err(_) => Err(RelayError::ShutdownTimedOut(self.shutdown_timeout)),
        };
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }

    /// [`Self::shutdown`] for callers without an async runtime.
    pub fn shutdown_blocking(self) -> Result<(), RelayError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RelayError::Start(e.to_string()))?
            .block_on(self.shutdown())
    }

    /// Stops at once, without waiting for acknowledgements. Nothing is lost: events not
    /// yet recorded as published stay pending and are published again later.
    pub fn kill(mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.system.stop();
            let _ = thread.join();
        }
    }
}
