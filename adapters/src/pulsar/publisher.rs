//! Pipelined publishing of one read batch, reporting the acknowledged prefix.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use pulsar::producer::{Message, SendFuture};
use pulsar::{
    ConnectionRetryOptions, OperationRetryOptions, Producer, ProducerOptions, Pulsar, TokioExecutor,
};

use super::config::{Compression, PulsarConfig};
use super::error::PublishError;
use super::topic::full_topic_name;
use super::{PROPERTY_EVENT_ID, PROPERTY_EVENT_TYPE, PROPERTY_SEQ};
use crate::event::OutgoingEvent;

/// What happened to a batch handed to [`PulsarPublisher::publish`].
#[derive(Debug)]
pub struct PublishOutcome {
    /// Events `0..acknowledged` were acknowledged by the broker, in order.
    pub acknowledged: usize,
    /// Set when event `acknowledged` failed; events after it count as not sent.
    pub failure: Option<PublishError>,
}

/// Publishes events to Pulsar; one producer per topic, created on first use.
///
/// Not shared: each relay partition owns its publisher, so one key always goes through
/// one producer, which keeps the broker-side order equal to the send order.
pub struct PulsarPublisher {
    client: Pulsar<TokioExecutor>,
    config: PulsarConfig,
    producers: HashMap<String, Producer<TokioExecutor>>,
}

impl std::fmt::Debug for PulsarPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarPublisher")
            .field("url", &self.config.url)
            .field("producers", &self.producers.len())
            .finish()
    }
}

/// Builds a client. Must run inside the tokio runtime that will drive the client's tasks.
pub async fn connect(config: &PulsarConfig) -> Result<Pulsar<TokioExecutor>, PublishError> {
    Pulsar::builder(config.url.clone(), TokioExecutor)
        .with_operation_retry_options(OperationRetryOptions {
            operation_timeout: config.operation_timeout(),
            ..Default::default()
        })
        .with_connection_retry_options(ConnectionRetryOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_retries: 3,
            connection_timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .build()
        .await
        .map_err(|e| PublishError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        })
}

impl PulsarPublisher {
    /// Connects to the broker named in `config`.
    pub async fn connect(config: PulsarConfig) -> Result<Self, PublishError> {
        let client = connect(&config).await?;
        Ok(Self::with_client(client, config))
    }

    /// Uses an existing client (several publishers may share one connection pool).
    pub fn with_client(client: Pulsar<TokioExecutor>, config: PulsarConfig) -> Self {
        PulsarPublisher {
            client,
            config,
            producers: HashMap::new(),
        }
    }

    fn producer_options(&self) -> ProducerOptions {
        let compression = match self.config.compression {
            Compression::None => None,
            Compression::Lz4 => Some(pulsar::compression::Compression::Lz4(Default::default())),
            Compression::Zstd => Some(pulsar::compression::Compression::Zstd(Default::default())),
        };
        let mut options = ProducerOptions {
            compression,
            block_queue_if_full: true,
            ..Default::default()
        };
        if self.config.batching {
            options.batch_size = Some(self.config.batch_max_messages);
            options.batch_byte_size = Some(self.config.batch_max_bytes);
            options.batch_timeout = Some(Duration::from_millis(self.config.batch_max_delay_ms));
        }
        options
    }

    async fn producer(
        &mut self,
        topic: &str,
    ) -> Result<&mut Producer<TokioExecutor>, PublishError> {
        if !self.producers.contains_key(topic) {
            let producer = self
                .client
                .producer()
                .with_topic(topic)
                .with_options(self.producer_options())
                .build()
                .await
                .map_err(|e| PublishError::from_producer_creation(topic, e))?;
            self.producers.insert(topic.to_owned(), producer);
        }
        Ok(self
            .producers
            .get_mut(topic)
            .expect("producer inserted just above"))
    }

    /// Publishes `events` in order, pipelined, and waits for every acknowledgement.
    ///
    /// The outcome names the longest acknowledged prefix. After a failure the producers
    /// this batch used are closed, so messages still queued in them cannot reach the
    /// broker later, behind the events the caller will send again.
    pub async fn publish(&mut self, events: Vec<OutgoingEvent>) -> PublishOutcome {
        let mut receipts: Vec<(String, SendFuture)> = Vec::with_capacity(events.len());
        let mut touched: HashSet<String> = HashSet::new();
        let mut enqueue_failure: Option<PublishError> = None;
        for event in events {
            match self.send_one(event).await {
                Ok((topic, receipt)) => {
                    touched.insert(topic.clone());
                    receipts.push((topic, receipt));
                }
                Err((topic, error)) => {
                    touched.extend(topic);
                    enqueue_failure = Some(error);
                    break;
                }
            }
        }
        if self.config.batching {
            for topic in &touched {
                if let Some(producer) = self.producers.get_mut(topic) {
                    // A failed flush shows up as failed receipts below.
                    let _ = producer.send_batch().await;
                }
            }
        }
        let results = join_all(receipts.into_iter().map(|(topic, receipt)| async move {
            receipt
                .await
                .map_err(|e| PublishError::from_send(&topic, e))
        }))
        .await;
        let mut acknowledged = 0;
        let mut failure = None;
        for result in results {
            match result {
                Ok(_) => acknowledged += 1,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let failure = failure.or(enqueue_failure);
        if failure.is_some() {
            self.discard_producers(&touched).await;
        }
        PublishOutcome {
            acknowledged,
            failure,
        }
    }

    async fn send_one(
        &mut self,
        event: OutgoingEvent,
    ) -> Result<(String, SendFuture), (Option<String>, PublishError)> {
        let topic = full_topic_name(&event.topic).map_err(|e| (None, e.into()))?;
        let message = to_message(event);
        let producer = self
            .producer(&topic)
            .await
            .map_err(|e| (Some(topic.clone()), e))?;
        match producer.send_non_blocking(message).await {
            Ok(receipt) => Ok((topic, receipt)),
            Err(e) => {
                let error = PublishError::from_send(&topic, e);
                Err((Some(topic), error))
            }
        }
    }

    async fn discard_producers(&mut self, topics: &HashSet<String>) {
        for topic in topics {
            if let Some(mut producer) = self.producers.remove(topic) {
                let _ = producer.close().await;
            }
        }
    }

    /// Closes every producer, waiting for what they still hold.
    pub async fn close(&mut self) {
        for (_, mut producer) in self.producers.drain() {
            let _ = producer.close().await;
        }
    }
}

/// The Pulsar message for one event: the public message contract in one place.
pub fn to_message(event: OutgoingEvent) -> Message {
    let mut properties: HashMap<String, String> = event.headers.into_iter().collect();
    properties.insert(PROPERTY_EVENT_ID.to_owned(), event.event_id);
    properties.insert(PROPERTY_SEQ.to_owned(), event.seq.to_string());
    properties.insert(PROPERTY_EVENT_TYPE.to_owned(), event.event_type);
    Message {
        payload: event.payload,
        properties,
        ordering_key: Some(event.key.clone().into_bytes()),
        partition_key: Some(event.key),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn message_carries_the_public_properties_and_key() {
        let mut headers = BTreeMap::new();
        headers.insert("trace".to_owned(), "abc".to_owned());
        let message = to_message(OutgoingEvent {
            seq: 42,
            event_id: "id-1".into(),
            key: "order-7".into(),
            topic: "orders".into(),
            event_type: "OrderPlaced".into(),
            payload: b"{}".to_vec(),
            headers,
        });
        assert_eq!(message.partition_key.as_deref(), Some("order-7"));
        assert_eq!(message.ordering_key.as_deref(), Some(&b"order-7"[..]));
        assert_eq!(message.properties["seq"], "42");
        assert_eq!(message.properties["event_id"], "id-1");
        assert_eq!(message.properties["event_type"], "OrderPlaced");
        assert_eq!(message.properties["trace"], "abc");
        assert_eq!(message.payload, b"{}");
    }
}
