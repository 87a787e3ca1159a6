//! Reading outbox events back from Pulsar: the consumer side of the message contract.
//! Used by the tests, the demo and the load driver; services can use it too.
//!
//! Contract: [`EventConsumer`] acknowledges only what it has handed out. A broker batch
//! is one entry of the topic's ledger, and the broker takes an acknowledgement without
//! an ack set (this client sends none) for the whole entry, whatever its batch index; so
//! an entry is acknowledged only once its last message has been handed out. A consumer
//! dropped in the middle of a batch (a resubscribe, see [`super::ResubscribingConsumer`])
//! gets the whole batch again: duplicates, never a gap.

use std::collections::HashMap;
use std::time::Duration;

use futures::TryStreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::{Consumer, Pulsar, SubType, TokioExecutor};

use super::{full_topic_name, PROPERTY_EVENT_ID, PROPERTY_EVENT_TYPE, PROPERTY_SEQ};
use crate::verify::Delivery;

/// One outbox event as a consumer sees it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// The full topic name it came from (`persistent://tenant/namespace/topic`).
    pub topic: String,
    /// The event's ordering key (the message key).
    pub key: String,
    /// The outbox sequence number (property `seq`): per key it follows commit order.
    pub seq: i64,
    /// The event's unique id (property `event_id`), stable across resends: deduplicate
    /// on it.
    pub event_id: String,
    /// The event type given at enqueue (property `event_type`).
    pub event_type: String,
    /// The payload, as enqueued.
    pub payload: Vec<u8>,
    /// Every property, the three above included.
    pub properties: HashMap<String, String>,
}

impl ReceivedEvent {
    /// Its key and sequence number, for a [`crate::verify::DeliveryLedger`].
    pub fn delivery(&self) -> Delivery {
        Delivery {
            key: self.key.clone(),
            seq: self.seq,
        }
    }
}

/// Why reading events failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The broker refused the subscription, or could not be reached.
    #[error("cannot subscribe to {topic}: {reason}")]
    Subscribe {
        /// The topic subscribed to.
        topic: String,
        /// The client's or broker's error.
        reason: String,
    },
    /// The connection failed while receiving: subscribe again (the broker's cursor
    /// keeps the position).
    #[error("receiving from Pulsar failed: {0}")]
    Receive(String),
    /// A message without the outbox's properties (published by something else).
    #[error("message {message_id} is not an outbox event: {reason}")]
    NotAnOutboxEvent {
        /// The broker's id of the message.
        message_id: String,
        /// Which property is missing or malformed.
        reason: String,
    },
    /// A [`super::ResubscribingConsumer`] spent its resubscribes.
    #[error("consumer keeps failing after {resubscribes} resubscribes: {last}")]
    GaveUp {
        /// How many times it subscribed again.
        resubscribes: u32,
        /// The last error.
        last: String,
    },
}

/// A received message's properties as a map.
pub fn properties_of(message: &pulsar::consumer::Message<Vec<u8>>) -> HashMap<String, String> {
    message
        .metadata()
        .properties
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

/// Builds a consumer of `topics` (full names) from the earliest retained message.
pub(crate) async fn build_consumer(
    client: &Pulsar<TokioExecutor>,
    topics: &[String],
    subscription: &str,
    sub_type: SubType,
) -> Result<Consumer<Vec<u8>, TokioExecutor>, pulsar::Error> {
    client
        .consumer()
        .with_topics(topics)
        .with_subscription(subscription)
        .with_subscription_type(sub_type)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build()
        .await
}

/// Messages acknowledged together: one cumulative acknowledgement per this many
/// messages (and whenever the stream goes quiet) instead of one per message, which cost
/// the consumer and the broker as much as receiving.
const ACK_EVERY: u32 = 256;

/// Whether a message is the last of its broker entry: a message outside a batch, or the
/// last member of a batch (members arrive in index order). Only then may the entry be
/// acknowledged.
fn ends_its_entry(batch_index: Option<i32>, batch_size: Option<i32>) -> bool {
    match (batch_index, batch_size) {
        (Some(index), Some(size)) => index + 1 >= size,
        _ => true,
    }
}

/// A subscription that acknowledges as it hands messages out, whole entries only (see
/// the module docs): cumulatively on an exclusive or failover subscription (after a
/// reconnect up to `ACK_EVERY` (256) messages, plus the rest of a batch, may be delivered
/// again), entry by entry on a shared or key-shared one, where the broker does not
/// accept cumulative acknowledgements.
pub struct EventConsumer {
    consumer: Consumer<Vec<u8>, TokioExecutor>,
    cumulative: bool,
    /// Messages handed out since the last cumulative acknowledgement.
    unacked: u32,
    /// Per topic, the id of the last message handed out that ended its entry, not
    /// acknowledged yet (cumulative mode only).
    complete: HashMap<String, pulsar::message::proto::MessageIdData>,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer").finish()
    }
}

impl EventConsumer {
    /// Subscribes to `topics` from the earliest retained message, as the only consumer
    /// of the subscription.
    pub async fn subscribe(
        client: &Pulsar<TokioExecutor>,
        topics: &[&str],
        subscription: &str,
    ) -> Result<Self, ConsumeError> {
        Self::subscribe_as(client, topics, subscription, SubType::Exclusive).await
    }

    /// Subscribes with the given subscription type: `KeyShared` spreads keys over the
    /// subscription's consumers, each key to one of them (publish with
    /// `pulsar.batch_by_key` so that broker batches carry their key).
    pub async fn subscribe_as(
        client: &Pulsar<TokioExecutor>,
        topics: &[&str],
        subscription: &str,
        sub_type: SubType,
    ) -> Result<Self, ConsumeError> {
        let names = topics
            .iter()
            .map(|t| full_topic_name(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConsumeError::Subscribe {
                topic: topics.join(","),
                reason: e.to_string(),
            })?;
        let consumer = build_consumer(client, &names, subscription, sub_type)
            .await
            .map_err(|e| ConsumeError::Subscribe {
                topic: names.join(","),
                reason: e.to_string(),
            })?;
        Ok(EventConsumer {
            consumer,
            cumulative: matches!(sub_type, SubType::Exclusive | SubType::Failover),
            unacked: 0,
            complete: HashMap::new(),
        })
    }

    /// Acknowledges, per topic, every entry handed out whole.
    async fn ack_pending(&mut self) -> Result<(), ConsumeError> {
        self.unacked = 0;
        for (topic, id) in std::mem::take(&mut self.complete) {
            self.consumer
                .cumulative_ack_with_id(&topic, id)
                .await
                .map_err(|e| ConsumeError::Receive(e.to_string()))?;
        }
        Ok(())
    }

    /// The next event, or `None` when nothing arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<ReceivedEvent>, ConsumeError> {
        let message = match tokio::time::timeout(wait, self.consumer.try_next()).await {
            Err(_) => {
                self.ack_pending().await?;
                return Ok(None);
            }
            Ok(Err(e)) => return Err(ConsumeError::Receive(e.to_string())),
            Ok(Ok(None)) => return Err(ConsumeError::Receive("the consumer stream ended".into())),
            Ok(Ok(Some(message))) => message,
        };
        let ends_entry = ends_its_entry(
            message.message_id().batch_index,
            message.message_id.batch_size,
        );
        if self.cumulative {
            if ends_entry {
                self.complete
                    .insert(message.topic.clone(), message.message_id().clone());
            }
            self.unacked += 1;
            if self.unacked >= ACK_EVERY {
                self.ack_pending().await?;
            }
        } else if ends_entry {
            // Acknowledges the whole entry, every member of which is handed out by now.
            self.consumer
                .ack(&message)
                .await
                .map_err(|e| ConsumeError::Receive(e.to_string()))?;
        }

        let properties = properties_of(&message);
        // The id is formatted only for the error: it is costly per message.
        let not_outbox = |reason: &str| ConsumeError::NotAnOutboxEvent {
            message_id: format!("{:?}", message.message_id()),
            reason: reason.to_owned(),
        };
        let seq = properties
            .get(PROPERTY_SEQ)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| not_outbox("no decimal `seq` property"))?;
        let event_id = properties
            .get(PROPERTY_EVENT_ID)
            .cloned()
            .ok_or_else(|| not_outbox("no `event_id` property"))?;
        let event_type = properties
            .get(PROPERTY_EVENT_TYPE)
            .cloned()
            .unwrap_or_default();
        let key = message.key().ok_or_else(|| not_outbox("no key"))?;
        Ok(Some(ReceivedEvent {
            topic: message.topic.clone(),
            key,
            seq,
            event_id,
            event_type,
            payload: message.payload.data.clone(),
            properties,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_member_of_a_batch_ends_its_entry() {
        assert!(ends_its_entry(None, None), "a message outside a batch");
        assert!(ends_its_entry(Some(0), Some(1)));
        assert!(!ends_its_entry(Some(0), Some(3)));
        assert!(!ends_its_entry(Some(1), Some(3)));
        assert!(ends_its_entry(Some(2), Some(3)));
    }
}
