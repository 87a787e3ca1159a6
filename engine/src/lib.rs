//! # outbox-engine
//!
//! A transactional outbox for PostgreSQL and Apache Pulsar.
//!
//! - **Enqueue** ([`enqueue()`], [`enqueue_batch`]) inside your own diesel-async
//!   transaction; other languages call the SQL function `outbox_enqueue`.
//! - **Relay** ([`Relay::start`], or [`Relay::builder`] with the service's own pool,
//!   Pulsar client or actix system): actix partition actors publish every committed
//!   event to Pulsar, in commit order per key, losing nothing through crashes and
//!   restarts. The [`RelayHandle`] gives health, status, metrics and a draining shutdown.
//! - **Migrate** ([`migrate`]) the schema, embedded in this crate.
//!
//! The guarantees are stated in `docs/guarantees.md`; the design in `docs/architecture.md`.

#![warn(missing_docs)]

pub mod config;
pub mod enqueue;
// Range leases are the relay's internal coordination, public only for the engine's tests.
#[doc(hidden)]
pub mod lease;
pub mod metrics;
pub mod relay;
pub mod replay;
pub mod slots;
pub mod store;

pub use config::{ConfigError, RelayConfig};
pub use enqueue::{enqueue, enqueue_batch, EnqueueError, NewEvent};
pub use outbox_adapters::{full_topic_name, PulsarConfig};
pub use relay::{Health, Relay, RelayBuilder, RelayError, RelayHandle, RelayStats};
pub use store::{migrate, StoreError};
