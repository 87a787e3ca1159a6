//! Broker adapters for the outbox engine.
//!
//! Today one broker: Apache Pulsar ([`pulsar`]); and the consumer side's idempotent
//! [`inbox`]. An adapter takes a batch of events that
//! the engine read from one slot range, in per-key sequence order, publishes them
//! pipelined, and reports how long a *prefix* of the batch the broker acknowledged. The
//! engine records only that prefix as published, so a failure never opens a gap or lets
//! a later event of a key overtake an earlier one.

#![warn(missing_docs)]

pub mod event;
pub mod inbox;
pub mod pulsar;
pub mod verify;

pub use ::pulsar as pulsar_client;
pub use event::OutgoingEvent;
pub use pulsar::{
    full_topic_name, ProducerKind, PublishError, PublishOutcome, PulsarConfig, PulsarPublisher,
    TopicError,
};
