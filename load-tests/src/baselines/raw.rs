//! Raw producer ceiling: the same `pulsar` crate, the same producer options as the
//! relay (batching, batch limits, compression, operation timeout), messages of the same
//! shape (key, ordering key, the three outbox properties, same payload size), no
//! database at all.
//!
//! Contract: `producers` producers on one topic (the relay has one producer per
//! partition on the topic) each send their share of `events` with `send_non_blocking`,
//! pipelined (at most [`WINDOW`] receipts outstanding per producer), flush, and await
//! every receipt. The clock runs from the first send to the last receipt; producer
//! creation is excluded. Any failed receipt fails the baseline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outbox_adapters::pulsar::Compression;
use outbox_adapters::pulsar_client::producer::Message;
use outbox_adapters::pulsar_client::{Producer, ProducerOptions, Pulsar, TokioExecutor};
use outbox_adapters::PulsarConfig;
use rand::SeedableRng;
use serde::Serialize;

use super::BaselineError;
use crate::keys::{key_name, KeySampler, PayloadPool};

/// Receipts outstanding per producer before the loop waits for the oldest.
pub const WINDOW: usize = 20_000;

#[derive(Debug, Clone, Serialize)]
pub struct RawResult {
    pub events: u64,
    pub producers: usize,
    pub seconds: f64,
    pub events_per_s: f64,
    pub batching: bool,
}

/// The relay's producer options (see outbox_adapters::pulsar::publisher).
pub fn producer_options(config: &PulsarConfig) -> ProducerOptions {
    use outbox_adapters::pulsar_client::compression;
    let compression = match config.compression {
        Compression::None => None,
        Compression::Lz4 => Some(compression::Compression::Lz4(Default::default())),
        Compression::Zstd => Some(compression::Compression::Zstd(Default::default())),
    };
    let mut options = ProducerOptions {
        compression,
        block_queue_if_full: true,
        ..Default::default()
    };
    if config.batching {
        options.batch_size = Some(config.batch_max_messages);
        options.batch_byte_size = Some(config.batch_max_bytes);
        options.batch_timeout = Some(Duration::from_millis(config.batch_max_delay_ms));
    }
    options
}

/// A message shaped like the relay's.
pub fn outbox_like_message(key: String, seq: u64, payload: Vec<u8>) -> Message {
    let mut properties = HashMap::with_capacity(3);
    properties.insert(
        "event_id".to_owned(),
        format!("00000000-0000-4000-8000-{seq:012x}"),
    );
    properties.insert("seq".to_owned(), seq.to_string());
    properties.insert("event_type".to_owned(), "LoadTick".to_owned());
    Message {
        payload,
        properties,
        ordering_key: Some(key.clone().into_bytes()),
        partition_key: Some(key),
        ..Default::default()
    }
}

async fn send_all(
    mut producer: Producer<TokioExecutor>,
    first: u64,
    count: u64,
    keys: Arc<KeySampler>,
    payloads: Arc<PayloadPool>,
    batching: bool,
) -> Result<(), BaselineError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(first);
    let mut receipts = VecDeque::with_capacity(WINDOW);
    let fail = |e: outbox_adapters::pulsar_client::Error| BaselineError::Pulsar(e.to_string());
    for seq in first..first + count {
        let message = outbox_like_message(
            key_name(keys.index(&mut rng)),
            seq,
            payloads.get(seq).to_vec(),
        );
        receipts.push_back(producer.send_non_blocking(message).await.map_err(fail)?);
        if receipts.len() >= WINDOW {
            if let Some(receipt) = receipts.pop_front() {
                receipt.await.map_err(fail)?;
            }
        }
    }
    if batching {
        producer.send_batch().await.map_err(fail)?;
    }
    for receipt in receipts {
        receipt.await.map_err(fail)?;
    }
    let _ = producer.close().await;
    Ok(())
}

pub async fn run(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    events: u64,
    producers: usize,
    config: &PulsarConfig,
    keys: Arc<KeySampler>,
    payload_bytes: usize,
) -> Result<RawResult, BaselineError> {
    let full_topic = outbox_adapters::full_topic_name(topic)
        .map_err(|e| BaselineError::Pulsar(e.to_string()))?;
    let payloads = Arc::new(PayloadPool::new(payload_bytes, 1024));
    let mut built = Vec::with_capacity(producers);
    for _ in 0..producers {
        built.push(
            client
                .producer()
                .with_topic(&full_topic)
                .with_options(producer_options(config))
                .build()
                .await
                .map_err(|e| BaselineError::Pulsar(e.to_string()))?,
        );
    }
    let share = events / producers as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, producer) in built.into_iter().enumerate() {
        let count = if i + 1 == producers {
            events - share * (producers as u64 - 1)
        } else {
            share
        };
        tasks.push(tokio::spawn(send_all(
            producer,
            i as u64 * share,
            count,
            keys.clone(),
            payloads.clone(),
            config.batching,
        )));
    }
    for task in tasks {
        task.await
            .map_err(|e| BaselineError::Pulsar(e.to_string()))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(RawResult {
        events,
        producers,
        seconds,
        events_per_s: events as f64 / seconds.max(1e-9),
        batching: config.batching,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_relay_config() {
        let batching = producer_options(&PulsarConfig::default());
        assert_eq!(batching.batch_size, Some(1000));
        assert!(batching.block_queue_if_full);
        let plain = producer_options(&PulsarConfig {
            batching: false,
            ..Default::default()
        });
        assert_eq!(plain.batch_size, None);
        assert!(plain.batch_timeout.is_none());
    }

    #[test]
    fn messages_carry_the_outbox_contract() {
        let message = outbox_like_message("k1".into(), 42, vec![0; 256]);
        assert_eq!(message.partition_key.as_deref(), Some("k1"));
        assert_eq!(message.properties["seq"], "42");
        assert_eq!(message.properties["event_id"].len(), 36);
        assert_eq!(message.payload.len(), 256);
    }
}
