//! [`RelayBuilder`]: how an embedding service starts the relay when [`Relay::start`]
//! (its own thread, its own connections) is not what it wants.
//!
//! Contract:
//! - [`RelayBuilder::database_pool`]: the relay uses the service's bb8 pool as it is,
//!   instead of opening its own from `database_url` (which is then not used). The
//!   relay's session settings (asynchronous commit for acknowledgements, a
//!   `statement_timeout`) are not applied to it; the per-cycle watchdog still bounds
//!   every cycle. Size the pool for the service plus `3 x partitions + 3` relay
//!   connections, or the two wait for each other.
//! - [`RelayBuilder::pulsar_client`]: the service's Pulsar client, for the lookups and
//!   (with `pulsar.producer = "stock"`) the producers. The engine producer opens its own
//!   broker connections from `pulsar.url`.
//! - A pool or client is driven by the runtime that opened it: that runtime must run for
//!   as long as the relay does.
//! - [`RelayBuilder::start`] runs the relay on a thread of its own;
//!   [`RelayBuilder::start_in_current_system`] on a new arbiter of the caller's actix
//!   system (an actix-web server, an `#[actix::main]`), stopped with it.
//!
//! [`Relay::start`]: super::Relay::start

use std::sync::Arc;

use actix::prelude::*;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};

use super::handle::{RelayHandle, Runner};
use super::supervisor::{Provided, Supervisor};
use super::{RelayError, RelayStats};
use crate::config::RelayConfig;
use crate::store::Pool;

/// Starts a relay with the service's own resources; see the module documentation.
///
/// ```no_run
/// # async fn run(pool: outbox_engine::store::Pool) -> Result<(), outbox_engine::RelayError> {
/// use outbox_engine::{Relay, RelayConfig};
///
/// // `pool`: the service's diesel-async bb8 pool, built with room for the relay.
/// let relay = Relay::builder(RelayConfig::default())
///     .database_pool(pool)
///     .start()?;
/// assert!(relay.health().live);
/// relay.shutdown().await?;
/// # Ok(())
/// # }
/// ```
pub struct RelayBuilder {
    config: RelayConfig,
    provided: Provided,
}

impl std::fmt::Debug for RelayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBuilder")
            .field("config", &self.config)
            .field("database_pool", &self.provided.pool.is_some())
            .field("pulsar_client", &self.provided.pulsar.is_some())
            .finish()
    }
}

impl RelayBuilder {
    pub(super) fn new(config: RelayConfig) -> Self {
        RelayBuilder {
            config,
            provided: Provided::default(),
        }
    }

    /// Use the service's database pool instead of opening one from `database_url`.
    pub fn database_pool(mut self, pool: Pool) -> Self {
        self.provided.pool = Some(pool);
        self
    }

    /// Use the service's Pulsar client instead of connecting to `pulsar.url`.
    pub fn pulsar_client(mut self, client: Pulsar<TokioExecutor>) -> Self {
        self.provided.pulsar = Some(client);
        self
    }

    /// Validates the configuration and starts the relay on a thread of its own (an actix
    /// system over a multi-threaded tokio runtime of `worker_threads` threads). Works
    /// from any runtime, or none. Returns at once; the relay connects in the background.
    pub fn start(self) -> Result<RelayHandle, RelayError> {
        self.config.validate()?;
        let shutdown_timeout = self.config.shutdown_timeout();
        let worker_threads = self.config.worker_threads;
        let stats = Arc::new(RelayStats::default());
        let thread_stats = stats.clone();
        let (config, provided) = (self.config, self.provided);
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
                let supervisor = runner.block_on(async move {
                    Supervisor::new(config, thread_stats, provided).start()
                });
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
        Ok(RelayHandle::new(
            supervisor,
            Runner::Thread {
                system,
                thread: Some(thread),
            },
            stats,
            shutdown_timeout,
        ))
    }

    /// Validates the configuration and starts the relay on a new arbiter (a thread with
    /// its own event loop) of the actix system the caller runs in, such as an actix-web
    /// server's. Fails, saying so, outside an actix system: use [`Self::start`] there.
    ///
    /// ```no_run
    /// # #[actix::main]
    /// # async fn main() -> Result<(), outbox_engine::RelayError> {
    /// use outbox_engine::{Relay, RelayConfig};
    ///
    /// let relay = Relay::builder(RelayConfig::default()).start_in_current_system()?;
    /// // ... the service runs; then:
    /// relay.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_in_current_system(self) -> Result<RelayHandle, RelayError> {
        self.config.validate()?;
        if actix_rt::System::try_current().is_none() {
            return Err(RelayError::Start(
                "no actix system runs on this thread: call start_in_current_system from inside \
                 one (actix-web, #[actix::main]), or use start()"
                    .into(),
            ));
        }
        let shutdown_timeout = self.config.shutdown_timeout();
        let stats = Arc::new(RelayStats::default());
        let (config, provided, arbiter_stats) = (self.config, self.provided, stats.clone());
        let arbiter = actix_rt::Arbiter::new();
        let supervisor = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            Supervisor::new(config, arbiter_stats, provided)
        });
        Ok(RelayHandle::new(
            supervisor,
            Runner::Arbiter {
                arbiter: Some(arbiter),
            },
            stats,
            shutdown_timeout,
        ))
    }
}
