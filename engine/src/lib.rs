//! # outbox-engine
//!
//! A transactional outbox for PostgreSQL and Apache Pulsar.
//!
//! - **Enqueue** ([`enqueue()`], [`enqueue_batch`]) inside your own diesel-async
//!   transaction; other languages call the SQL function `outbox_enqueue`.
//! - **Relay** ([`Relay::start`]): actix partition actors publish every committed event
//!   to Pulsar, in commit order per key, losing nothing through crashes and restarts.
//! - **Migrate** ([`migrate`]) the schema, embedded in this crate.
//!
//! The guarantees are stated in `docs/guarantees.md`; the design in `docs/architecture.md`.

pub mod config;
pub mod enqueue;
pub mod lease;
pub mod metrics;
pub mod relay;
pub mod replay;
pub mod slots;
pub mod store;

pub use config::{ConfigError, RelayConfig};
pub use enqueue::{enqueue, enqueue_batch, EnqueueError, NewEvent};
pub use outbox_adapters::{full_topic_name, PulsarConfig};
pub use relay::{Relay, RelayError, RelayHandle, RelayStats};
pub use store::{migrate, StoreError};
