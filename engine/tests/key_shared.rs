//! `Key_Shared` consumers with batching on: with `pulsar.batch_by_key`, every broker
//! batch carries its key, so the broker spreads keys over the subscription's consumers,
//! each key to one consumer, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use outbox_adapters::pulsar::EventConsumer;
use outbox_adapters::pulsar_client::SubType;
use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

const TRANSACTIONS: usize = 200;
const KEYS: usize = 40;

/// Ten events per transaction: five of one key, then five of the next, so keys come in
/// short runs and interleave across transactions.
fn transaction(topic: &str, n: usize) -> Vec<NewEvent> {
    (0..10)
        .map(|i| {
            let key = format!("k{}", (n + i / 5) % KEYS);
            NewEvent::new(key, topic, "Tick", format!("{n}-{i}").into_bytes())
        })
        .collect()
}

fn start_relay(db: &TestDb, config: &std::path::Path) -> KilledOnDrop {
    let mut command = relay_binary(db);
    command.args(["--config", config.to_str().unwrap(), "run"]);
    KilledOnDrop::spawn(command)
}

/// Receives until `total` events arrived over all consumers or nothing came for `idle`;
/// returns (consumer index, key, seq) in arrival order per consumer.
async fn receive_all(
    consumers: Vec<EventConsumer>,
    total: usize,
    idle: Duration,
) -> Vec<Vec<(String, i64)>> {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = consumers
        .into_iter()
        .map(|mut consumer| {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut last = Instant::now();
                while seen.load(std::sync::atomic::Ordering::SeqCst) < total
                    && last.elapsed() < idle
                {
                    if let Some(event) = consumer.next(Duration::from_millis(300)).await.unwrap() {
                        got.push((event.key, event.seq));
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        last = Instant::now();
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_key_shared_consumers_each_get_whole_keys_in_order() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = format!("persistent://public/default/{}", unique("keyshared"));
    let subscription = unique("ks");
    // Both consumers attach before anything is published, so the key ranges are split
    // between them from the first message on.
    let client = pulsar().await;
    let mut consumers = Vec::new();
    for _ in 0..2 {
        consumers.push(
            EventConsumer::subscribe_as(&client, &[&topic], &subscription, SubType::KeyShared)
                .await
                .expect("cannot subscribe"),
        );
    }

    // The relay runs while the writers commit, so batches are small and start with
    // different keys: a batch of mixed keys would go whole to the consumer of its first
    // key, and keys would end up at both consumers.
    let config = std::env::temp_dir().join(format!("{subscription}.toml"));
    std::fs::write(&config, "[pulsar]\nbatch_by_key = true\n").unwrap();
    let relay = start_relay(&db, &config);
    let mut conn = db.connect().await;
    let mut committed: Vec<(String, i64)> = Vec::new();
    for n in 0..TRANSACTIONS {
        let events = transaction(&topic, n);
        let seqs = enqueue_batch(&mut conn, &events).await.unwrap();
        committed.extend(events.iter().map(|e| e.key.clone()).zip(seqs));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let received = receive_all(consumers, committed.len(), Duration::from_secs(30)).await;
    drop(relay);
    let _ = std::fs::remove_file(&config);

    let counts: Vec<usize> = received.iter().map(Vec::len).collect();
    println!(
        "key-shared-report | {KEYS} keys, {} events | per consumer {counts:?}",
        committed.len()
    );
    // Nothing lost (at-least-once: a redelivery is counted, not failed).
    let delivered: HashSet<i64> = received.iter().flatten().map(|(_, seq)| *seq).collect();
    let missing = committed
        .iter()
        .filter(|(_, seq)| !delivered.contains(seq))
        .count();
    let duplicates = counts.iter().sum::<usize>() - delivered.len();
    println!("key-shared-report | missing {missing} | duplicates {duplicates}");
    assert_eq!(missing, 0, "{missing} committed events never arrived");
    // Both consumers got keys, and no key went to both.
    assert!(
        counts.iter().all(|&n| n > 0),
        "one consumer got every key: {counts:?}"
    );
    let keys_of =
        |got: &Vec<(String, i64)>| got.iter().map(|(k, _)| k.clone()).collect::<HashSet<_>>();
    let (first, second) = (keys_of(&received[0]), keys_of(&received[1]));
    let shared: Vec<&String> = first.intersection(&second).collect();
    assert!(
        shared.is_empty(),
        "keys delivered to both consumers: {shared:?}"
    );
    // Each key in commit order at its consumer (first deliveries).
    for got in &received {
        let mut last: HashMap<&str, i64> = HashMap::new();
        let mut first_time = HashSet::new();
        for (key, seq) in got.iter().filter(|(_, seq)| first_time.insert(*seq)) {
            if let Some(previous) = last.insert(key, *seq) {
                assert!(previous < *seq, "key {key}: seq {seq} after {previous}");
            }
        }
    }
    db.drop_now().await;
}
