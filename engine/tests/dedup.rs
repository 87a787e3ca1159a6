//! Effectively-once into Pulsar: with broker deduplication enabled on the namespace and
//! the engine producer (`pulsar.producer = "engine"`), a relay killed mid-stream (twice)
//! publishes no event twice, loses none and keeps every key's order. Without
//! deduplication on the broker, the same run is at-least-once: its duplicates are
//! printed beside, for docs/guarantees.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::{Child, Command};
use std::time::Duration;

use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

const EVENTS: usize = 30_000;
const PER_TRANSACTION: usize = 250;
const KEYS: usize = 500;

fn admin_url() -> String {
    std::env::var("PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

/// Creates namespace `public/<name>`, with deduplication on or off.
fn create_namespace(name: &str, deduplication: bool) {
    let base = format!("{}/admin/v2/namespaces/public/{name}", admin_url());
    let status = Command::new("curl")
        .args(["-sf", "-X", "PUT", &base])
        .status()
        .expect("curl is needed (installed by scripts/services)");
    assert!(
        status.success(),
        "cannot create namespace public/{name} at {}",
        admin_url()
    );
    let status = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            if deduplication { "true" } else { "false" },
            &format!("{base}/deduplication"),
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cannot set deduplication on public/{name}"
    );
}

fn chunk_events(topic: &str, chunk: usize) -> Vec<NewEvent> {
    (0..PER_TRANSACTION)
        .map(|i| {
            let n = chunk * PER_TRANSACTION + i;
            NewEvent::new(format!("k{}", n % KEYS), topic, "Tick", vec![b'x'; 128])
        })
        .collect()
}

fn start_relay(db: &TestDb, config: &std::path::Path) -> Child {
    relay_binary(db)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--partitions",
            "4",
            "run",
        ])
        .spawn()
        .expect("cannot start outbox-relay")
}

fn kill(child: &mut Child) {
    child.kill().expect("kill failed");
    child.wait().expect("wait failed");
}

/// Writes a backlog and a tail, kills the relay twice while it publishes, and returns
/// the subscription after everything arrived, with the committed events.
async fn killed_twice(
    namespace: &str,
    deduplication: bool,
) -> (Subscription, HashSet<i64>, Vec<String>) {
    create_namespace(namespace, deduplication);
    let db = TestDb::create().await;
    let topic = format!("persistent://public/{namespace}/events");
    let mut subscription = subscribe(&[&topic]).await;
    let config = std::env::temp_dir().join(format!("{namespace}.toml"));
    std::fs::write(
        &config,
        format!(
            "[pulsar]\nproducer = \"engine\"\nadmin_url = \"{}\"\nrequire_deduplication = true\n",
            admin_url()
        ),
    )
    .unwrap();

    let mut conn = db.connect().await;
    let mut committed = Vec::new();
    for chunk in 0..EVENTS / PER_TRANSACTION / 2 {
        committed.extend(
            enqueue_batch(&mut conn, &chunk_events(&topic, chunk))
                .await
                .unwrap(),
        );
    }
    let writer = {
        let topic = topic.clone();
        tokio::spawn(async move {
            for chunk in EVENTS / PER_TRANSACTION / 2..EVENTS / PER_TRANSACTION {
                committed.extend(
                    enqueue_batch(&mut conn, &chunk_events(&topic, chunk))
                        .await
                        .unwrap(),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            committed
        })
    };
    for round in 1..=2 {
        let mut relay = start_relay(&db, &config);
        subscription
            .collect_at_least(round * EVENTS / 4, Duration::from_secs(60))
            .await;
        kill(&mut relay);
    }
    let committed: HashSet<i64> = writer.await.unwrap().into_iter().collect();
    let mut relay = start_relay(&db, &config);
    subscription
        .collect_until_seen(&committed, Duration::from_secs(90))
        .await;
    subscription.drain(Duration::from_secs(2)).await;
    let reported = reported_deduplication(&db).await;
    kill(&mut relay);
    let _ = std::fs::remove_file(&config);
    db.drop_now().await;
    (subscription, committed, reported)
}

/// What the ranges recorded for `status`: each range's state for the topic, once every
/// range that published has learned it from the broker's admin API (waits up to 20 s).
async fn reported_deduplication(db: &TestDb) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = outbox_engine::store::status(&mut db.connect().await)
            .await
            .unwrap();
        let states: Vec<String> = status
            .ranges
            .iter()
            .filter(|range| range.published_total > 0)
            .map(|range| range.deduplication.clone().unwrap_or_default())
            .collect();
        if states.iter().all(|s| !s.is_empty()) || std::time::Instant::now() > deadline {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_broker_deduplication_a_killed_relay_publishes_nothing_twice() {
    init_tracing();
    let (with, committed, reported_on) = killed_twice(&unique("dedup_on"), true).await;
    with.assert_exactly_committed_in_order(&committed);
    println!(
        "dedup-report | deduplication on, engine producer | {} events, 2 SIGKILLs | received {} | duplicates {}",
        committed.len(),
        with.ledger.received,
        with.ledger.duplicates
    );
    let (without, committed_off, reported_off) = killed_twice(&unique("dedup_off"), false).await;
    without.assert_exactly_committed_in_order(&committed_off);
    println!(
        "dedup-report | deduplication off, engine producer | {} events, 2 SIGKILLs | received {} | duplicates {}",
        committed_off.len(),
        without.ledger.received,
        without.ledger.duplicates
    );
    assert_eq!(
        with.ledger.duplicates, 0,
        "with deduplication on, a crash published events twice"
    );
    // Each range reports, for `status`, what the broker does for its topic.
    assert!(!reported_on.is_empty() && !reported_off.is_empty());
    for state in &reported_on {
        assert!(
            state.contains("\"on\""),
            "dedup namespace reported as {state}"
        );
    }
    for state in &reported_off {
        assert!(
            state.contains("\"off\""),
            "plain namespace reported as {state}"
        );
    }
}
