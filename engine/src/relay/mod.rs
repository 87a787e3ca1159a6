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
//! embeds in any service, whatever runtime that service uses; [`Relay::builder`] also
//! takes the service's own pool and Pulsar client, or runs the relay on a new arbiter of
//! the service's actix system. The `outbox-relay` binary is a thin shell around it.

mod acker;
// Hot-path conversions, public only for the engine's tests and benches.
#[doc(hidden)]
pub mod batch;
mod builder;
mod cycle;
mod handle;
mod maintenance;
mod messages;
mod partition;
mod prefetch;
mod quarantine;
mod refusal;
mod supervisor;
mod wakeup;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub use builder::RelayBuilder;
pub use handle::{Health, RelayHandle};
pub use messages::{PartitionState, StopReason};

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
    /// How long PostgreSQL has refused the relay's role, and why the relay stopped if
    /// that outlasted `database_refusal_grace_ms`.
    pub database_refusal: refusal::DatabaseRefusal,
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
    /// The configuration was refused at start; the message names the field. Nothing
    /// was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The relay's thread, runtime or arbiter could not be set up (or
    /// [`RelayBuilder::start_in_current_system`] was called outside an actix system).
    /// Nothing was started.
    #[error("could not start the relay: {0}")]
    Start(String),
    /// The relay's actors no longer run (shut down, killed, or their thread died): the
    /// handle can only be dropped. Nothing is lost; start a new relay.
    #[error("the relay stopped unexpectedly")]
    Gone,
    /// A database read on the caller's behalf ([`RelayHandle::status`]) failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// [`RelayHandle::shutdown`] waited `shutdown_timeout_ms` (the value carried) for
    /// cycles in flight and then stopped the relay anyway.
    #[error("shutdown did not finish within {0:?}; unacknowledged events stay pending and will be published again")]
    ShutdownTimedOut(Duration),
}

/// Entry point: [`Relay::start`] with a configuration, or [`Relay::builder`] to hand
/// the relay the service's own database pool or Pulsar client, or to run it inside the
/// service's actix system.
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Validates `config` and starts the relay on a thread of its own (an actix system
    /// over a multi-threaded tokio runtime). Returns at once; the relay connects in the
    /// background, retrying until PostgreSQL and Pulsar answer.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), outbox_engine::RelayError> {
    /// use outbox_engine::{Relay, RelayConfig};
    ///
    /// let config = RelayConfig {
    ///     database_url: "postgres://app:secret@db:5432/orders".into(),
    ///     ..RelayConfig::default()
    /// };
    /// let relay = Relay::start(config)?;
    /// // ... serve requests; on SIGTERM:
    /// relay.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        Self::builder(config).start()
    }

    /// A builder, for what [`Relay::start`] does not cover.
    pub fn builder(config: RelayConfig) -> RelayBuilder {
        RelayBuilder::new(config)
    }
}
