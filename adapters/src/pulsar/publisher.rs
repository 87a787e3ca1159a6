//! Publishing one read batch in order, chunk by chunk, reporting the acknowledged prefix.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use pulsar::producer::{Message, SendFuture};
use pulsar::{
    ConnectionRetryOptions, OperationRetryOptions, Producer, ProducerOptions, Pulsar, TokioExecutor,
};

use super::admin::{self, Deduplication};
use super::config::{Compression, ProducerKind, PulsarConfig};
use super::engine::{BatchItem, Dial, EngineProducer, WireError};
use super::error::PublishError;
use super::topic::full_topic_name;
use super::{PROPERTY_EVENT_ID, PROPERTY_EVENT_TYPE, PROPERTY_SEQ};
use crate::event::OutgoingEvent;

/// What happened to a batch handed to [`PulsarPublisher::publish`].
#[derive(Debug, Default)]
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
    /// Set with [`PulsarPublisher::with_producer_name`]: with `producer = "engine"`,
    /// events go through the engine's own producers under this name.
    producer_name: Option<String>,
    engine: HashMap<String, EngineProducer>,
    /// How the engine producers connect (token or OAuth2 provider, TLS), built at the
    /// first engine producer and kept: the OAuth2 token is cached in it.
    dial: Option<Dial>,
    /// Whether the broker deduplicates, per topic this publisher has produced to; filled
    /// in the background ([`super::admin`]) so publishing never waits for the admin API.
    deduplication: Arc<DashMap<String, Deduplication>>,
}

impl std::fmt::Debug for PulsarPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarPublisher")
            .field("url", &self.config.url)
            .field("producers", &self.producers.len())
            .finish()
    }
}

/// How the engine producer reaches the broker: the token or OAuth2 provider, and TLS for
/// `pulsar+ssl://`. Built once per publisher (the OAuth2 token is cached in it).
async fn engine_dial(config: &PulsarConfig) -> Result<Dial, String> {
    let token = config.token()?.map(|t| t.expose().as_bytes().to_vec());
    let oauth2 = super::oauth2::provider(config).await?;
    let tls = if super::engine::tls::is_tls(&config.url) {
        Some(super::engine::tls::connector(config)?)
    } else {
        None
    };
    let tls_authentication = super::engine::tls::read_client_identity(config)?.is_some()
        && token.is_none()
        && oauth2.is_none();
    Ok(Dial {
        token,
        oauth2,
        tls,
        tls_authentication,
    })
}

/// Pulsar's authentication method that takes the role from the client certificate
/// (the broker's `AuthenticationProviderTls`); its data is empty.
pub(crate) const TLS_AUTH_METHOD: &str = "tls";

/// Builds a client. Must run inside the tokio runtime that will drive the client's tasks.
pub async fn connect(config: &PulsarConfig) -> Result<Pulsar<TokioExecutor>, PublishError> {
    let token = config.token().map_err(|reason| PublishError::Connect {
        url: config.url.clone(),
        reason,
    })?;
    let mut builder = Pulsar::builder(config.url.clone(), TokioExecutor)
        .with_tls_hostname_verification_enabled(config.tls_hostname_verification);
    if let Some(path) = &config.tls_trust_certs_file {
        builder = builder
            .with_certificate_chain_file(path)
            .map_err(|e| PublishError::Connect {
                url: config.url.clone(),
                reason: format!("pulsar.tls_trust_certs_file {path:?}: {e}"),
            })?;
    }
    let identity = super::engine::tls::read_client_identity(config).map_err(|reason| {
        PublishError::Connect {
            url: config.url.clone(),
            reason,
        }
    })?;
    let client_certificate = identity.is_some();
    if let Some(identity) = identity {
        builder = builder.with_client_identity(identity.certificate_chain, identity.private_key);
    }
    let oauth2 = super::oauth2::stock_provider(config).map_err(|reason| PublishError::Connect {
        url: config.url.clone(),
        reason,
    })?;
    if let Some(provider) = oauth2 {
        builder = builder.with_auth_provider(provider);
    } else if let Some(token) = token {
        builder = builder.with_auth(pulsar::Authentication {
            name: "token".into(),
            data: token.expose().as_bytes().to_vec(),
        });
    } else if client_certificate {
        builder = builder.with_auth(pulsar::Authentication {
            name: TLS_AUTH_METHOD.into(),
            data: Vec::new(),
        });
    }
    builder
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
            producer_name: None,
            engine: HashMap::new(),
            dial: None,
            deduplication: Arc::default(),
        }
    }

    /// Publishes under a stable producer name (one per relay range) with the events'
    /// own sequence ids, when the config asks for the engine producer; see
    /// [`super::engine`]. Without this call the stock producer is used.
    pub fn with_producer_name(mut self, name: String) -> Self {
        self.producer_name = Some(name);
        self
    }

    fn uses_engine(&self) -> bool {
        self.config.producer == ProducerKind::Engine && self.producer_name.is_some()
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
        if self.config.batching && self.config.batch_max_messages > 1 {
            // Only the publisher's own flush ends a broker batch: the crate's count limit
            // is reached at the chunk's last message at the earliest, and neither its byte
            // limit nor its timer can cut a chunk in two (chunks are sized here).
            options.batch_size = Some(self.config.batch_max_messages);
            options.batch_byte_size = Some(usize::MAX);
            options.batch_timeout = None;
        }
        options
    }

    fn batching(&self) -> bool {
        self.config.batching && self.config.batch_max_messages > 1
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

    /// Publishes `events` in order and reports the acknowledged prefix.
    ///
    /// Stop-and-wait by chunk, the next chunk leaving only after the broker acknowledged
    /// the previous one. With the stock producer a chunk is a run of consecutive events
    /// of one topic that fits one broker batch (count and bytes), sent as exactly one
    /// broker batch; a broker batch is stored whole or not at all. With the engine
    /// producer a chunk is a whole run of one topic, cut into broker batches that all
    /// leave before the first receipt is awaited: the broker stores one producer's
    /// batches in arrival order and fails every later write after a failed one. Either
    /// way, whatever failure happens (an expiry during an outage, a failed write, a
    /// dropped connection) the broker holds a prefix of what was sent, and nothing of a
    /// later chunk can be stored ahead of an earlier one that failed. After a failure
    /// the chunk's producer is closed and discarded, so nothing it still holds is sent
    /// again behind the events the caller will resend.
    ///
    /// Callers wanting several topics to share few round trips should group the events by
    /// topic first (per key and topic, order is kept by any stable grouping).
    ///
    /// `may_send` is asked before every chunk; when it says no, publishing stops there
    /// with [`PublishError::Halted`] (the relay asks whether its range lease still holds).
    pub async fn publish(
        &mut self,
        events: Vec<OutgoingEvent>,
        may_send: impl Fn() -> bool,
    ) -> PublishOutcome {
        let mut acknowledged = 0;
        let mut events = events.into_iter().peekable();
        // The engine producer splits a chunk into broker batches itself and keeps several
        // in flight (see `send_chunk_engine`): its chunk is a whole run of one topic.
        let (limit, most) = if self.uses_engine() {
            (usize::MAX, usize::MAX)
        } else if self.batching() {
            (
                self.chunk_byte_limit(),
                self.config.batch_max_messages as usize,
            )
        } else {
            (self.chunk_byte_limit(), 1)
        };
        while let Some(first) = events.peek() {
            if !may_send() {
                return PublishOutcome {
                    acknowledged,
                    failure: Some(PublishError::Halted),
                };
            }
            let topic = match full_topic_name(&first.topic) {
                Ok(topic) => topic,
                Err(error) => {
                    return PublishOutcome {
                        acknowledged,
                        failure: Some(error.into()),
                    }
                }
            };
            let short_topic = first.topic.clone();
            let mut chunk = Vec::new();
            let mut bytes = 0usize;
            while let Some(next) = events.peek() {
                let size = encoded_size(next);
                if size > self.config.max_message_bytes {
                    if chunk.is_empty() {
                        // The event alone is too large: never sent, reported for parking.
                        return PublishOutcome {
                            acknowledged,
                            failure: Some(PublishError::TooLarge {
                                topic,
                                bytes: size,
                                limit: self.config.max_message_bytes,
                            }),
                        };
                    }
                    break; // send what precedes it first
                }
                let full = chunk.len() >= most
                    || (!chunk.is_empty() && bytes.saturating_add(size) > limit);
                if next.topic != short_topic || full {
                    break;
                }
                bytes = bytes.saturating_add(size);
                chunk.push(events.next().expect("peeked just above"));
            }
            let sent = chunk.len();
            match self.send_chunk(&topic, chunk).await {
                Ok(()) => acknowledged += sent,
                Err((prefix, error)) => {
                    self.discard_producer(&topic);
                    return PublishOutcome {
                        acknowledged: acknowledged + prefix,
                        failure: Some(error),
                    };
                }
            }
        }
        PublishOutcome {
            acknowledged,
            failure: None,
        }
    }

    /// Most bytes of one chunk: a broker batch is one message for the broker's size limit.
    fn chunk_byte_limit(&self) -> usize {
        self.config
            .batch_max_bytes
            .min(
                self.config
                    .max_message_bytes
                    .saturating_sub(BATCH_ENVELOPE_BYTES),
            )
            .max(1)
    }

    /// Sends one chunk and waits for the broker's receipts, bounded by the operation
    /// timeout. On failure, also says how many of the chunk's first events the broker
    /// acknowledged.
    async fn send_chunk(
        &mut self,
        topic: &str,
        chunk: Vec<OutgoingEvent>,
    ) -> Result<(), (usize, PublishError)> {
        if self.uses_engine() {
            // Boxed: each path's state machine is large, and futures nest deeply in callers.
            return Box::pin(self.send_chunk_engine(topic, chunk)).await;
        }
        self.send_chunk_stock(topic, chunk)
            .await
            .map_err(|error| (0, error))
    }

    /// The stock producer's chunk: one broker batch (or, without batching, one message).
    async fn send_chunk_stock(
        &mut self,
        topic: &str,
        chunk: Vec<OutgoingEvent>,
    ) -> Result<(), PublishError> {
        let deadline = self.config.operation_timeout() + RECEIPT_GRACE;
        let operation_timeout_ms = self.config.operation_timeout_ms;
        let batching = self.batching();
        let producer = self.producer(topic).await?;
        let work = async {
            let mut receipts: Vec<SendFuture> = Vec::with_capacity(chunk.len());
            for event in chunk {
                let receipt = producer
                    .send_non_blocking(to_message(event))
                    .await
                    .map_err(|e| PublishError::from_send(topic, e))?;
                receipts.push(receipt);
            }
            if batching {
                // Answered once the batch's receipt is in (or it failed; the receipts say).
                producer
                    .send_batch()
                    .await
                    .map_err(|e| PublishError::from_send(topic, e))?;
            }
            for receipt in receipts {
                receipt
                    .await
                    .map_err(|e| PublishError::from_send(topic, e))?;
            }
            Ok(())
        };
        tokio::pin!(work);
        // Say early that the broker is slow to answer, and when it answers again: the
        // failure itself only comes at the operation timeout.
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(SLOW_ACK_WARNING, &mut work).await {
            Ok(result) => Ok(result),
            Err(_) => {
                tracing::warn!(%topic, waited_ms = SLOW_ACK_WARNING.as_millis() as u64, operation_timeout_ms,
                    "no acknowledgement from Pulsar yet; still waiting (broker down or slow?)");
                let outcome =
                    tokio::time::timeout(deadline.saturating_sub(SLOW_ACK_WARNING), &mut work)
                        .await;
                if let Ok(Ok(())) = &outcome {
                    tracing::info!(%topic, waited_ms = started.elapsed().as_millis() as u64, "Pulsar acknowledged again");
                }
                outcome
            }
        };
        match result {
            Ok(result) => result,
            Err(_) => Err(PublishError::Timeout {
                topic: topic.to_owned(),
                timeout: deadline,
            }),
        }
    }

    /// The engine producer's chunk, a run of one topic: events the broker already holds
    /// under this producer name (id at or below what it reported) count as acknowledged
    /// and are not sent. The rest leave as broker batches (cut by count and bytes, and by
    /// key with `batch_by_key`), all sent before the first receipt is awaited: one
    /// producer's batches are stored in the order they arrive and a failed one fails
    /// every later one, so the broker still holds a prefix of the chunk, and the round
    /// trip is paid once per chunk instead of once per batch.
    async fn send_chunk_engine(
        &mut self,
        topic: &str,
        chunk: Vec<OutgoingEvent>,
    ) -> Result<(), (usize, PublishError)> {
        let timeout = self.config.operation_timeout();
        if !self.engine.contains_key(topic) {
            let producer = self
                .create_engine_producer(topic, timeout)
                .await
                .map_err(|error| (0, error))?;
            self.engine.insert(topic.to_owned(), producer);
        }
        let most = if self.batching() {
            self.config.batch_max_messages as usize
        } else {
            1
        };
        let limit = self.chunk_byte_limit();
        let by_key = self.config.batch_by_key;
        let producer = self.engine.get_mut(topic).expect("inserted just above");
        let last = producer.last_persisted;
        let ids: Vec<u64> = chunk.iter().map(|event| event.sequence_id).collect();
        let mut batches: Vec<Vec<BatchItem>> = Vec::new();
        let mut bytes = 0usize;
        for event in chunk
            .into_iter()
            .filter(|event| event.sequence_id as i64 > last)
        {
            let size = encoded_size(&event);
            let item = to_batch_item(event);
            match batches.last_mut() {
                Some(run)
                    if run.len() < most
                        && bytes.saturating_add(size) <= limit
                        && (!by_key || run.last().is_some_and(|last| last.key == item.key)) =>
                {
                    bytes = bytes.saturating_add(size);
                    run.push(item)
                }
                _ => {
                    bytes = size;
                    batches.push(vec![item])
                }
            }
        }
        match producer.send_batches(batches).await {
            Ok(()) => Ok(()),
            Err(error) => {
                // Ids increase along the chunk: those the broker confirmed are a prefix.
                let persisted = producer.last_persisted;
                let prefix = ids.iter().take_while(|&&id| id as i64 <= persisted).count();
                self.engine.remove(topic);
                Err((
                    prefix,
                    match error {
                        WireError::Timeout(timeout) => PublishError::Timeout {
                            topic: topic.to_owned(),
                            timeout,
                        },
                        other => PublishError::Send {
                            topic: topic.to_owned(),
                            reason: other.to_string(),
                        },
                    },
                ))
            }
        }
    }

    /// Connects an engine producer for `topic` under this publisher's producer name.
    async fn create_engine_producer(
        &mut self,
        topic: &str,
        timeout: std::time::Duration,
    ) -> Result<EngineProducer, PublishError> {
        let name = self.producer_name.clone().unwrap_or_default();
        if self.dial.is_none() {
            let dial = engine_dial(&self.config)
                .await
                .map_err(|reason| PublishError::Connect {
                    url: self.config.url.clone(),
                    reason,
                })?;
            self.dial = Some(dial);
        }
        let dial = self.dial.as_ref().expect("set just above");
        let producer = EngineProducer::create(&self.config.url, topic, &name, timeout, dial)
            .await
            .map_err(|error| engine_creation_error(topic, error))?;
        tracing::debug!(%topic, producer = %name, last_persisted = producer.last_persisted, "engine producer ready");
        self.check_deduplication(topic, &name);
        Ok(producer)
    }

    /// Learns, in the background, whether the broker deduplicates `topic`, and says so
    /// once per topic: a warning when the operator required it and it is not in force.
    fn check_deduplication(&self, topic: &str, producer: &str) {
        if self.deduplication.contains_key(topic) {
            return;
        }
        let Some(admin_url) = self.config.admin_url.clone() else {
            self.deduplication.insert(
                topic.to_owned(),
                Deduplication::Unknown("no pulsar.admin_url".into()),
            );
            if self.config.require_deduplication {
                tracing::warn!(%topic, "deduplication is required but cannot be checked: set pulsar.admin_url (PULSAR_ADMIN_URL); publishing is at-least-once unless the broker deduplicates");
            }
            return;
        };
        let (map, topic, producer) = (
            self.deduplication.clone(),
            topic.to_owned(),
            producer.to_owned(),
        );
        let required = self.config.require_deduplication;
        tokio::spawn(async move {
            let state = admin::deduplication(&admin_url, &topic).await;
            match (&state, required) {
                (Deduplication::On, _) => {
                    tracing::info!(%topic, %producer, "broker deduplication is on: a crash, restart or takeover publishes nothing twice");
                }
                (_, true) => {
                    tracing::warn!(%topic, %producer, deduplication = %state.label(), "deduplication is required but the broker does not have it in force for this topic: publishing goes on at-least-once; enable it with `pulsar-admin namespaces set-deduplication <tenant/namespace> --enable`");
                }
                (_, false) => {
                    tracing::info!(%topic, %producer, deduplication = %state.label(), "broker deduplication is not in force: at-least-once (duplicates after a crash or takeover)");
                }
            }
            map.insert(topic, state);
        });
    }

    /// How many topics [`Self::deduplication`] would report: it grows whenever a state is
    /// learned (each topic's state is learned once), so callers rebuild their report only
    /// when this changes.
    pub fn deduplication_known(&self) -> usize {
        if self.uses_engine() {
            self.deduplication.len()
        } else {
            self.producers.len()
        }
    }

    /// Whether the broker deduplicates, per topic produced to so far (topics still being
    /// checked are absent). The stock producer is reported as such: it cannot set
    /// sequence ids, so deduplication cannot help it.
    pub fn deduplication(&self) -> Vec<(String, Deduplication)> {
        if !self.uses_engine() {
            return self
                .producers
                .keys()
                .map(|topic| {
                    let state = Deduplication::Unknown("stock producer: at-least-once".into());
                    (topic.clone(), state)
                })
                .collect();
        }
        let mut states: Vec<(String, Deduplication)> = self
            .deduplication
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// Drops a producer after a failure; it is closed in the background, so that it stops
    /// re-creating itself and resending, without holding up the caller during an outage.
    fn discard_producer(&mut self, topic: &str) {
        if let Some(mut producer) = self.producers.remove(topic) {
            tokio::spawn(async move {
                let _ = producer.close().await;
            });
        }
    }

    /// Closes every producer, waiting for what they still hold.
    pub async fn close(&mut self) {
        for (_, producer) in self.engine.drain() {
            producer.close().await;
        }
        for (_, mut producer) in self.producers.drain() {
            let _ = producer.close().await;
        }
    }
}

impl Drop for PulsarPublisher {
    /// A producer dropped outside a tokio runtime (a relay torn down after its shutdown
    /// limit ran out) panics in the crate's own drop, which spawns a close task. There is
    /// nothing left to close then: the process or runtime is going away, so such producers
    /// are let go without running their drop.
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            for (_, producer) in self.producers.drain() {
                std::mem::forget(producer);
            }
        }
    }
}

/// What the broker's batch envelope and command framing add to a chunk, at most.
const BATCH_ENVELOPE_BYTES: usize = 16 * 1024;
/// How long a chunk waits for its acknowledgement before the publisher says so.
const SLOW_ACK_WARNING: Duration = Duration::from_secs(5);
/// Past the crate's own operation timeout (which fails the message by itself), how long
/// the publisher still waits before giving the chunk up.
const RECEIPT_GRACE: Duration = Duration::from_secs(1);

/// An upper estimate of one event's bytes inside a broker batch: payload, the key twice
/// (partition and ordering key), properties, and per-message metadata.
pub fn encoded_size(event: &OutgoingEvent) -> usize {
    let headers: usize = event
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    event.payload.len()
        + 2 * event.key.len()
        + headers
        + event.event_id.len()
        + event.event_type.len()
        + 20 // seq in decimal
        + 3 * 8 // the three property names' framing
        + 64 // single-message metadata
}

fn engine_creation_error(topic: &str, error: WireError) -> PublishError {
    let code = match &error {
        WireError::Server { code, .. } => Some(*code),
        _ => None,
    };
    PublishError::producer_refused(topic, code, error.to_string())
}

/// One event as an item of the engine producer's batch: the same public message contract
/// as [`to_message`].
fn to_batch_item(event: OutgoingEvent) -> BatchItem {
    use pulsar::proto::KeyValue;
    let mut properties: Vec<KeyValue> = Vec::with_capacity(event.headers.len() + 3);
    properties.push(KeyValue {
        key: PROPERTY_EVENT_ID.to_owned(),
        value: event.event_id,
    });
    properties.push(KeyValue {
        key: PROPERTY_SEQ.to_owned(),
        value: event.seq.to_string(),
    });
    properties.push(KeyValue {
        key: PROPERTY_EVENT_TYPE.to_owned(),
        value: event.event_type,
    });
    properties.extend(
        event
            .headers
            .into_iter()
            .map(|(key, value)| KeyValue { key, value }),
    );
    BatchItem {
        sequence_id: event.sequence_id,
        key: event.key,
        payload: event.payload,
        properties,
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
            sequence_id: 0,
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
