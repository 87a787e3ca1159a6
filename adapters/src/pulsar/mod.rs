//! The Apache Pulsar publisher.
//!
//! Contract, for each message:
//! - message key (partition key) and ordering key = the event key, so partitioned topics
//!   and `Key_Shared` consumers keep per-key order;
//! - topic = the event's topic (short names map to `persistent://public/default/<name>`);
//! - payload = the event bytes;
//! - properties `event_id`, `seq` (decimal), `event_type`, plus the event's headers.
//!
//! These names are a public interface: consumers rely on them.

pub mod admin;
mod config;
pub(crate) mod consume;
pub mod engine;
mod error;
pub mod oauth2;
mod publisher;
mod resubscribe;
mod topic;

pub use admin::Deduplication;
pub use config::{Compression, ProducerKind, PulsarConfig, Secret};
pub use consume::{properties_of, ConsumeError, EventConsumer, ReceivedEvent};
pub use error::{PublishError, TopicError};
pub use publisher::{connect, encoded_size, to_message, PublishOutcome, PulsarPublisher};
pub use resubscribe::{ResubscribePolicy, ResubscribingConsumer};
pub use topic::full_topic_name;

/// Message property carrying the event's unique id.
pub const PROPERTY_EVENT_ID: &str = "event_id";
/// Message property carrying the sequence number, in decimal.
pub const PROPERTY_SEQ: &str = "seq";
/// Message property carrying the event type.
pub const PROPERTY_EVENT_TYPE: &str = "event_type";
