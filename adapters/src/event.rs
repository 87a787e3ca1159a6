//! The broker-neutral form of one outbox event on its way out.

use std::collections::BTreeMap;

/// One event as read from the outbox, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// Global sequence number; per key it follows commit order.
    pub seq: i64,
    /// Unique id assigned at enqueue, stable across retries: consumers deduplicate on it.
    pub event_id: String,
    /// Ordering key (message key on the broker).
    pub key: String,
    /// Topic as enqueued: a short name or a full `persistent://tenant/ns/topic`.
    pub topic: String,
    /// What happened (`OrderPlaced`); published as the `event_type` property.
    pub event_type: String,
    /// The event's body, published unchanged as the message payload.
    pub payload: Vec<u8>,
    /// Application headers, published as message properties.
    pub headers: BTreeMap<String, String>,
    /// The broker sequence id the relay assigned (deterministic per range, see the
    /// engine producer); 0 when none was assigned.
    pub sequence_id: u64,
}
