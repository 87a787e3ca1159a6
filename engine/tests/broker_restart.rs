//! The broker restarted while the relay publishes: the relay recovers by itself, nothing
//! is lost and per-key order holds. Restarts the project's own Pulsar standalone through
//! `scripts/services/pulsar.sh restart`; a broker of your own (PULSAR_URL set) cannot be
//! restarted by the test, which then fails saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use outbox_engine::{enqueue_batch, NewEvent, Relay};
use support::*;

const EVENTS: usize = 20_000;
const PER_TRANSACTION: usize = 100;
const KEYS: usize = 200;

fn restart_broker() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services/pulsar.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg("restart")
        .status()
        .expect("cannot run scripts/services/pulsar.sh");
    assert!(
        status.success(),
        "restarting Pulsar with {} failed (a broker you run yourself cannot be restarted by this test)",
        script.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing_and_keeps_order() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("restart");
    let mut subscription = subscribe(&[&topic]).await;
    let mut config = db.relay_config();
    config.pulsar.operation_timeout_ms = 10_000;
    let relay = Relay::start(config).expect("relay start");

    let writer = {
        let url = db.url.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut conn =
                <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
                    .await
                    .unwrap();
            let mut committed = Vec::with_capacity(EVENTS);
            for chunk in 0..EVENTS / PER_TRANSACTION {
                let events: Vec<NewEvent> = (0..PER_TRANSACTION)
                    .map(|i| {
                        let n = chunk * PER_TRANSACTION + i;
                        NewEvent::new(
                            format!("k{}", n % KEYS),
                            topic.as_str(),
                            "Tick",
                            vec![b'y'; 100],
                        )
                    })
                    .collect();
                committed.extend(enqueue_batch(&mut conn, &events).await.expect("enqueue"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            committed
        })
    };

    subscription
        .collect_at_least(EVENTS / 10, Duration::from_secs(60))
        .await;
    let before = relay.published();
    tokio::task::spawn_blocking(restart_broker).await.unwrap();

    let committed: HashSet<i64> = writer.await.unwrap().into_iter().collect();
    subscription
        .collect_until_seen(&committed, Duration::from_secs(120))
        .await;
    subscription.drain(Duration::from_secs(2)).await;

    subscription.assert_exactly_committed_in_order(&committed);
    let ledger = &subscription.ledger;
    assert!(
        relay.published() > before,
        "the relay published nothing after the restart"
    );
    println!(
        "broker restart: {} events, {} received, {} duplicates, {} failed cycles, {} consumer resubscribes",
        committed.len(),
        ledger.received,
        ledger.duplicates,
        relay.stats().failed_cycles.load(std::sync::atomic::Ordering::Relaxed),
        subscription.resubscribes
    );
    relay.shutdown().await.expect("graceful shutdown");
    db.drop_now().await;
}
