//! [`RelayHandle`]: what a service holds while its relay runs: health, status,
//! metrics, a graceful [`RelayHandle::shutdown`], and [`RelayHandle::kill`].
//!
//! Dropping the handle stops the relay at once, like `kill`: nothing is lost (events not
//! yet recorded as published stay pending and go out after the next start), but the
//! ranges are released only when their leases expire.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{GetPartitions, GetStatus, PartitionState, Shutdown};
use super::supervisor::Supervisor;
use super::{RelayError, RelayStats};
use crate::store::Status;

/// Where the relay's actors run.
pub(super) enum Runner {
    /// A thread and actix system of its own ([`super::RelayBuilder::start`]).
    Thread {
        system: actix_rt::System,
        thread: Option<JoinHandle<()>>,
    },
    /// An arbiter of the service's actix system
    /// ([`super::RelayBuilder::start_in_current_system`]).
    Arbiter { arbiter: Option<actix_rt::Arbiter> },
}

impl Runner {
    /// Stops the actors; returns the thread to join, if any.
    fn stop(&mut self) -> Option<Box<dyn FnOnce() + Send>> {
        match self {
            Runner::Thread { system, thread } => {
                system.stop();
                let thread = thread.take()?;
                Some(Box::new(move || {
                    let _ = thread.join();
                }))
            }
            Runner::Arbiter { arbiter } => {
                let arbiter = arbiter.take()?;
                arbiter.stop();
                Some(Box::new(move || {
                    let _ = arbiter.join();
                }))
            }
        }
    }
}

/// Whether the relay runs, and whether it publishes: what `/livez` and `/readyz` answer
/// in the `outbox-relay` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Its actors run (false after a shutdown, or if the relay's thread died).
    pub live: bool,
    /// Connected to PostgreSQL and Pulsar, and its first lease round done.
    pub ready: bool,
}

/// Controls a running relay (see the module documentation).
pub struct RelayHandle {
    supervisor: Addr<Supervisor>,
    runner: Runner,
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
    pub(super) fn new(
        supervisor: Addr<Supervisor>,
        runner: Runner,
        stats: Arc<RelayStats>,
        shutdown_timeout: Duration,
    ) -> Self {
        RelayHandle {
            supervisor,
            runner,
            stats,
            shutdown_timeout,
        }
    }

    /// The relay's metrics in the Prometheus text format (what the binary serves on
    /// `/metrics`); serve them from the service's own endpoint, with the content type
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`.
    ///
    /// ```no_run
    /// # fn f(relay: &outbox_engine::RelayHandle) {
    /// let body = relay.metrics_text();
    /// assert!(body.contains("outbox_events_published_total"));
    /// # }
    /// ```
    pub fn metrics_text(&self) -> String {
        self.stats.metrics_text()
    }

    /// The live counters behind the metrics.
    ///
    /// ```no_run
    /// # fn f(relay: &outbox_engine::RelayHandle) {
    /// use std::sync::atomic::Ordering;
    ///
    /// let stats = relay.stats();
    /// println!(
    ///     "{} leases, {} failed cycles",
    ///     stats.leases.load(Ordering::Relaxed),
    ///     stats.failed_cycles.load(Ordering::Relaxed)
    /// );
    /// # }
    /// ```
    pub fn stats(&self) -> &Arc<RelayStats> {
        &self.stats
    }

    /// Events the broker acknowledged since start.
    ///
    /// ```no_run
    /// # fn f(relay: &outbox_engine::RelayHandle) {
    /// println!("{} events published", relay.published());
    /// # }
    /// ```
    pub fn published(&self) -> u64 {
        self.stats.published.load(Ordering::Relaxed)
    }

    /// Connected, and the first lease round done. Until then (the database or broker not
    /// answering yet) the relay keeps retrying in the background.
    ///
    /// ```no_run
    /// # async fn f(relay: &outbox_engine::RelayHandle) {
    /// while !relay.is_ready() {
    ///     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    /// }
    /// # }
    /// ```
    pub fn is_ready(&self) -> bool {
        self.stats.ready.load(Ordering::Acquire)
    }

    /// Liveness and readiness, for the service's health endpoints.
    ///
    /// ```no_run
    /// # fn f(relay: &outbox_engine::RelayHandle) {
    /// let health = relay.health();
    /// let livez = if health.live { 200 } else { 503 }; // not live: restart the service
    /// let readyz = if health.ready { 200 } else { 503 }; // not ready: still connecting
    /// # let _ = (livez, readyz);
    /// # }
    /// ```
    pub fn health(&self) -> Health {
        Health {
            live: self.supervisor.connected() && self.failure().is_none(),
            ready: self.is_ready(),
        }
    }

    /// Why the relay stopped by itself, if it did: PostgreSQL refused its role
    /// (permission denied, schema missing) for longer than `database_refusal_grace_ms`.
    /// The relay then publishes nothing more; fix the cause and start a new one.
    pub fn failure(&self) -> Option<String> {
        self.stats.database_refusal.reason()
    }

    /// Resolves with [`Self::failure`]'s reason once the relay stops by itself; never
    /// otherwise. The `outbox-relay` binary waits on it beside its signals, and exits 1.
    ///
    /// ```no_run
    /// # async fn f(relay: outbox_engine::RelayHandle) {
    /// tokio::select! {
    ///     reason = relay.failed() => eprintln!("relay stopped: {reason}"),
    ///     _ = tokio::signal::ctrl_c() => { let _ = relay.shutdown().await; }
    /// }
    /// # }
    /// ```
    pub async fn failed(&self) -> String {
        self.stats.database_refusal.stopped().await
    }

    /// The outbox's status, as `outbox-relay status --json` shows it (backlog, ranges,
    /// leases, relays, quarantine), read through the relay's own connections.
    ///
    /// ```no_run
    /// # async fn show(relay: &outbox_engine::RelayHandle) -> Result<(), outbox_engine::RelayError> {
    /// let status = relay.status().await?;
    /// println!("{} events pending, {} ranges", status.pending, status.ranges.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn status(&self) -> Result<Status, RelayError> {
        self.supervisor
            .send(GetStatus)
            .await
            .map_err(|_| RelayError::Gone)?
            .map_err(RelayError::Store)
    }

    /// What the supervisor knows of each partition, one per range this relay leases.
    ///
    /// ```no_run
    /// # async fn f(relay: &outbox_engine::RelayHandle) -> Result<(), outbox_engine::RelayError> {
    /// for partition in relay.partitions().await? {
    ///     println!(
    ///         "slots {}: {} published, lease for {} ms more",
    ///         partition.range, partition.published, partition.lease_remaining_ms
    ///     );
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn partitions(&self) -> Result<Vec<PartitionState>, RelayError> {
        self.supervisor
            .send(GetPartitions)
            .await
            .map_err(|_| RelayError::Gone)
    }

    /// Graceful stop: no new reads, cycles in flight finish (bounded by
    /// `shutdown_timeout_ms`), progress recorded, leases released, the relay's thread
    /// or arbiter stopped. After [`RelayError::ShutdownTimedOut`] the relay is stopped all
    /// the same; what was not acknowledged is published again after the next start.
    ///
    /// ```no_run
    /// # async fn f(relay: outbox_engine::RelayHandle) -> Result<(), outbox_engine::RelayError> {
    /// tokio::signal::ctrl_c().await.ok();
    /// relay.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        let answered =
            tokio::time::timeout(self.shutdown_timeout, self.supervisor.send(Shutdown)).await;
        let result = match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(RelayError::Gone),
            Err(_) => Err(RelayError::ShutdownTimedOut(self.shutdown_timeout)),
        };
        if let Some(join) = self.runner.stop() {
            let _ = tokio::task::spawn_blocking(join).await;
        }
        result
    }

    /// [`Self::shutdown`] for callers without an async runtime (it makes one for the
    /// wait; do not call it from inside an async task).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), outbox_engine::RelayError> {
    /// use outbox_engine::{Relay, RelayConfig};
    ///
    /// let relay = Relay::start(RelayConfig::default())?;
    /// // ... the program's work; then:
    /// relay.shutdown_blocking()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown_blocking(self) -> Result<(), RelayError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RelayError::Start(e.to_string()))?
            .block_on(self.shutdown())
    }

    /// Stops at once, without waiting for acknowledgements. Nothing is lost: events not
    /// yet recorded as published stay pending and are published again later. Its ranges
    /// stay leased until the leases expire (`lease_ms`), so other relays take them over
    /// only then.
    ///
    /// ```no_run
    /// # fn f(relay: outbox_engine::RelayHandle) {
    /// relay.kill();
    /// # }
    /// ```
    pub fn kill(mut self) {
        if let Some(join) = self.runner.stop() {
            join();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(join) = self.runner.stop() {
            join();
        }
    }
}
