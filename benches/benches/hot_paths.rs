//! Hot paths of the relay, each beside a raw baseline doing the irreducible part of the
//! same work, so every figure reads as a ratio (see docs/benchmarks.md).
//!
//! - slots: range split and read rotation vs plain integer arithmetic;
//! - batch: rows -> events -> Pulsar messages -> batch encoding (the per-message
//!   metadata the producer writes) vs moving / concatenating the payloads alone;
//! - progress: the acknowledged prefix's keys and the consumer-side ledger vs collecting
//!   the sequence numbers / a bare hash-set insert.

use std::collections::HashSet;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use outbox_adapters::pulsar::to_message;
use outbox_adapters::pulsar_client::message::proto::{KeyValue, SingleMessageMetadata};
use outbox_adapters::verify::{Delivery, DeliveryLedger};
use outbox_benches::rows;
use outbox_engine::relay::batch::{done_prefix, to_events};
use outbox_engine::slots;
use prost::Message as _;

const BATCH: usize = 1_000;
const PAYLOAD: usize = 256;

fn slot_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("slots");
    group.bench_function("split_16_ranges", |b| {
        b.iter(|| slots::split(black_box(16)))
    });
    group.bench_function("raw_16_divisions", |b| {
        b.iter(|| {
            let n = black_box(16i32);
            (0..n).map(|i| i * (1024 / n)).sum::<i32>()
        })
    });
    group.finish();
}

/// What the producer writes per batched message: its metadata, length-delimited, then
/// the payload (the pulsar crate's batch format).
fn encode_batch(messages: &[outbox_adapters::pulsar_client::producer::Message]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.len() * (PAYLOAD + 128));
    for message in messages {
        let metadata = SingleMessageMetadata {
            properties: message
                .properties
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            partition_key: message.partition_key.clone(),
            ordering_key: message.ordering_key.clone(),
            payload_size: message.payload.len() as i32,
            ..Default::default()
        };
        out.extend_from_slice(&(metadata.encoded_len() as u32).to_be_bytes());
        metadata.encode(&mut out).expect("vec has room");
        out.extend_from_slice(&message.payload);
    }
    out
}

fn batch_paths(c: &mut Criterion) {
    let input = rows(BATCH, 100, PAYLOAD);
    let mut group = c.benchmark_group("batch_1000x256B");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("rows_to_events", |b| {
        b.iter_batched(|| input.clone(), to_events, BatchSize::SmallInput)
    });
    group.bench_function("raw_move_payloads", |b| {
        b.iter_batched(
            || input.clone(),
            |rows| rows.into_iter().map(|r| r.payload).collect::<Vec<_>>(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("events_to_messages", |b| {
        b.iter_batched(
            || to_events(input.clone()).events,
            |events| events.into_iter().map(to_message).collect::<Vec<_>>(),
            BatchSize::SmallInput,
        )
    });
    let messages: Vec<_> = to_events(input.clone())
        .events
        .into_iter()
        .map(to_message)
        .collect();
    group.bench_function("encode_batch", |b| {
        b.iter(|| encode_batch(black_box(&messages)))
    });
    group.bench_function("raw_concat_payloads", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(BATCH * PAYLOAD);
            for message in black_box(&messages) {
                out.extend_from_slice(&message.payload);
            }
            out
        })
    });
    group.finish();
}

fn progress_paths(c: &mut Criterion) {
    let input = rows(BATCH, 100, 16);
    let keys = to_events(input.clone()).keys;
    let mut group = c.benchmark_group("progress_1000");
    group.throughput(Throughput::Elements(BATCH as u64));
    let done: std::collections::HashSet<i64> = keys.iter().map(|k| k.seq).collect();
    group.bench_function("done_prefix", |b| {
        b.iter(|| done_prefix(black_box(&keys), black_box(&done)))
    });
    group.bench_function("raw_collect_seqs", |b| {
        b.iter(|| black_box(&input).iter().map(|r| r.seq).collect::<Vec<_>>())
    });
    let deliveries: Vec<Delivery> = input
        .iter()
        .map(|r| Delivery {
            key: r.key.clone(),
            seq: r.seq,
        })
        .collect();
    group.bench_function("ledger_record", |b| {
        b.iter_batched(
            || deliveries.clone(),
            |deliveries| {
                let mut ledger = DeliveryLedger::default();
                for delivery in deliveries {
                    ledger.record(delivery);
                }
                ledger
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("raw_hashset_insert", |b| {
        b.iter(|| {
            let mut seen = HashSet::new();
            for delivery in black_box(&deliveries) {
                seen.insert(delivery.seq);
            }
            seen
        })
    });
    group.finish();
}

criterion_group!(benches, slot_paths, batch_paths, progress_paths);
criterion_main!(benches);
