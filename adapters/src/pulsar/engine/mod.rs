//! The engine's own producer: sequence ids chosen by the relay, stable producer names.
//!
//! With broker deduplication enabled on the namespace, the broker keeps per producer name
//! the highest sequence id it persisted and drops anything at or below it. The relay
//! numbers every event deterministically (its range's event counter, see the engine's
//! `relay::cycle`) and names its producer after the range, so an event sent again after
//! a crash, a restart or a takeover carries the same name and id and is not stored twice.
//!
//! Contract of [`EngineProducer`]:
//! - [`EngineProducer::create`] looks the topic up (following redirects), opens a
//!   producer under the given name and learns `last_persisted`, the highest id the
//!   broker holds for that name (-1 when none, or when deduplication is off);
//! - [`EngineProducer::send_batch`] sends one broker batch and waits for its receipt;
//!   [`EngineProducer::send_batches`] sends several back to back on the one connection
//!   and then waits for their receipts in order. Ids must increase; events at or below
//!   `last_persisted` are the caller's to skip (they are on the broker). Any failure
//!   leaves the producer unusable: the caller drops it and creates a new one, which learns
//!   again where the broker stands. The broker persists one producer's sends in arrival
//!   order and fails every later pending write after a failed one, so what it persisted
//!   is always a prefix of what was sent, which is what makes "drop at or below the
//!   highest id" safe.

pub mod tls;
mod wire;

use std::time::Duration;

use prost::Message as _;
use pulsar::message::{Message as Frame, Payload};
use pulsar::proto::{self, base_command::Type as CommandType};

pub use wire::{Dial, Wire, WireError};

/// Most redirects a topic lookup follows.
const MAX_REDIRECTS: usize = 5;

/// One message of a batch.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// The message's sequence id: above the previous item's, and above `last_persisted`.
    pub sequence_id: u64,
    /// The message key, also sent as its ordering key.
    pub key: String,
    /// The message payload.
    pub payload: Vec<u8>,
    /// The message properties.
    pub properties: Vec<proto::KeyValue>,
}

/// A producer on one topic, under a name of the caller's choosing, that sends the
/// caller's sequence ids; see the module contract.
pub struct EngineProducer {
    wire: Wire,
    producer_id: u64,
    name: String,
    topic: String,
    timeout: Duration,
    /// The highest sequence id the broker holds for this producer name (-1: none known).
    pub last_persisted: i64,
}

impl std::fmt::Debug for EngineProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineProducer")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .field("last_persisted", &self.last_persisted)
            .finish()
    }
}

fn base(r#type: CommandType) -> proto::BaseCommand {
    proto::BaseCommand {
        r#type: r#type as i32,
        ..Default::default()
    }
}

impl EngineProducer {
    /// Opens a producer named `name` on `topic` (a full topic name).
    pub async fn create(
        service_url: &str,
        topic: &str,
        name: &str,
        timeout: Duration,
        dial: &Dial,
    ) -> Result<EngineProducer, WireError> {
        let mut url = service_url.to_owned();
        let mut wire = Wire::open(&url, timeout, dial).await?;
        let mut authoritative = false;
        let mut redirects = 0;
        loop {
            let request_id = wire.request_id();
            let mut lookup = base(CommandType::Lookup);
            lookup.lookup_topic = Some(proto::CommandLookupTopic {
                topic: topic.to_owned(),
                request_id,
                authoritative: Some(authoritative),
                ..Default::default()
            });
            let answer = wire.request(request_id, lookup, timeout).await?;
            let response = answer
                .lookup_topic_response
                .ok_or_else(|| WireError::Protocol("lookup answered without a response".into()))?;
            use proto::command_lookup_topic_response::LookupType;
            let kind = response.response.unwrap_or(LookupType::Failed as i32);
            if kind == LookupType::Failed as i32 {
                return Err(WireError::Server {
                    code: response.error.unwrap_or(0),
                    message: response
                        .message
                        .unwrap_or_else(|| format!("lookup of {topic} failed")),
                });
            }
            // Over TLS, the broker's TLS address; else its plain one.
            let target = if tls::is_tls(&url) {
                response.broker_service_url_tls
            } else {
                response.broker_service_url
            }
            .unwrap_or_else(|| url.clone());
            let same = wire::socket_address(&target)? == wire::socket_address(&url)?;
            if response.proxy_through_service_url == Some(true) && !same {
                return Err(WireError::Protocol(
                    "the broker asks to connect through a proxy, which the engine producer does not support"
                        .into(),
                ));
            }
            if !same {
                url = target;
                wire = Wire::open(&url, timeout, dial).await?;
            }
            if kind == LookupType::Connect as i32 {
                break;
            }
            authoritative = response.authoritative.unwrap_or(false);
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(WireError::Protocol(format!(
                    "lookup of {topic} redirected more than {MAX_REDIRECTS} times"
                )));
            }
        }
        let producer_id = 1;
        let request_id = wire.request_id();
        let mut create = base(CommandType::Producer);
        create.producer = Some(proto::CommandProducer {
            topic: topic.to_owned(),
            producer_id,
            request_id,
            producer_name: Some(name.to_owned()),
            user_provided_producer_name: Some(true),
            ..Default::default()
        });
        let answer = wire.request(request_id, create, timeout).await?;
        let success = answer.producer_success.ok_or_else(|| {
            WireError::Protocol("producer creation answered without success".into())
        })?;
        Ok(EngineProducer {
            wire,
            producer_id,
            name: success.producer_name,
            topic: topic.to_owned(),
            timeout,
            last_persisted: success.last_sequence_id.unwrap_or(-1),
        })
    }

    /// The producer name the broker confirmed (the one asked for).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `items` (increasing ids, all above `last_persisted`) as one broker batch and
    /// waits for its receipt. The batch envelope carries the key when all items share it,
    /// so `Key_Shared` subscriptions route it like its messages.
    pub async fn send_batch(&mut self, items: Vec<BatchItem>) -> Result<(), WireError> {
        self.send_batches(vec![items]).await
    }

    /// Sends several batches back to back on the producer's connection, then waits for
    /// their receipts in order (ids increase across them). The broker persists one
    /// producer's messages in the order they arrive and fails every later pending write
    /// after a failed one, so what it holds is still a prefix of what was sent. Any
    /// failure leaves the producer unusable, as for [`EngineProducer::send_batch`].
    pub async fn send_batches(&mut self, batches: Vec<Vec<BatchItem>>) -> Result<(), WireError> {
        let mut pending = Vec::with_capacity(batches.len());
        for items in batches {
            match self.start(items).await {
                Ok(Some(started)) => pending.push(started),
                Ok(None) => {}
                Err(error) => {
                    self.wire.break_off();
                    return Err(error);
                }
            }
        }
        for (receipt, last_id) in pending {
            match self.wire.wait(receipt, self.timeout).await {
                Ok(answer) => {
                    if let Some(error) = answer.send_error {
                        self.wire.break_off();
                        return Err(WireError::Server {
                            code: error.error,
                            message: error.message,
                        });
                    }
                    self.last_persisted = last_id as i64;
                }
                Err(error) => {
                    // A late receipt must not be believed, nor the batch resent on this wire.
                    self.wire.break_off();
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Encodes and sends one batch; returns its receipt and highest id.
    async fn start(
        &mut self,
        items: Vec<BatchItem>,
    ) -> Result<Option<(tokio::sync::oneshot::Receiver<proto::BaseCommand>, u64)>, WireError> {
        let (Some(first), Some(last)) = (items.first(), items.last()) else {
            return Ok(None);
        };
        let (first_id, last_id) = (first.sequence_id, last.sequence_id);
        let one_key = items
            .iter()
            .all(|item| item.key == first.key)
            .then(|| first.key.clone());
        let count = items.len();
        let mut data = Vec::with_capacity(items.iter().map(|i| i.payload.len() + 64).sum());
        for item in items {
            let metadata = proto::SingleMessageMetadata {
                properties: item.properties,
                ordering_key: Some(item.key.clone().into_bytes()),
                partition_key: Some(item.key),
                payload_size: item.payload.len() as i32,
                sequence_id: Some(item.sequence_id),
                ..Default::default()
            };
            data.extend_from_slice(&(metadata.encoded_len() as u32).to_be_bytes());
            metadata
                .encode(&mut data)
                .map_err(|e| WireError::Protocol(e.to_string()))?;
            data.extend_from_slice(&item.payload);
        }
        let mut send = base(CommandType::Send);
        send.send = Some(proto::CommandSend {
            producer_id: self.producer_id,
            sequence_id: first_id,
            num_messages: Some(count as i32),
            highest_sequence_id: Some(last_id),
            ..Default::default()
        });
        let metadata = proto::MessageMetadata {
            producer_name: self.name.clone(),
            sequence_id: first_id,
            highest_sequence_id: Some(last_id),
            publish_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            num_messages_in_batch: Some(count as i32),
            uncompressed_size: Some(data.len() as u32),
            ordering_key: one_key.as_ref().map(|k| k.clone().into_bytes()),
            partition_key: one_key,
            ..Default::default()
        };
        let frame = Frame {
            command: send,
            payload: Some(Payload { metadata, data }),
        };
        let receipt = self
            .wire
            .send_message(self.producer_id, first_id, frame)
            .await?;
        Ok(Some((receipt, last_id)))
    }

    /// True once a failure made the producer unusable: drop it and create a new one.
    pub fn is_broken(&self) -> bool {
        self.wire.is_broken()
    }

    /// Closes the producer on the broker (best effort) so its name is free at once.
    pub async fn close(self) {
        let request_id = self.wire.request_id();
        let mut close = base(CommandType::CloseProducer);
        close.close_producer = Some(proto::CommandCloseProducer {
            producer_id: self.producer_id,
            request_id,
        });
        let _ = self
            .wire
            .request(request_id, close, Duration::from_secs(2))
            .await;
    }
}
