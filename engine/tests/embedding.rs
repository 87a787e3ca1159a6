//! The embedding API against the real services: a relay that uses the service's own
//! database pool and Pulsar client, one that runs on an arbiter of the service's actix
//! system, and the handle's health, status and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::AsyncConnection;
use outbox_engine::store::{self, SessionKind};
use outbox_engine::{enqueue, NewEvent, Relay, RelayError};
use support::*;

async fn enqueue_some(db: &TestDb, topic: &str, count: usize) -> HashSet<i64> {
    let mut conn = db.connect().await;
    let mut committed = HashSet::new();
    for i in 0..count {
        let topic = topic.to_owned();
        let seq = conn
            .transaction(async |conn| {
                let event = NewEvent::new(format!("key-{}", i % 5), topic, "Made", vec![1]);
                enqueue(conn, &event).await
            })
            .await
            .unwrap();
        committed.insert(seq);
    }
    committed
}

async fn wait_ready(relay: &outbox_engine::RelayHandle) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !relay.health().ready {
        assert!(Instant::now() < deadline, "the relay never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_the_services_pool_and_client_delivers_and_reports() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("embed_pool");
    let mut consumer = subscribe(&[&topic]).await;
    // The service's own pool (more connections than the relay needs) and client.
    let pool = store::pool(&db.url, 16, SessionKind::Plain).await.unwrap();
    let client = pulsar().await;
    let mut config = db.relay_config();
    // Not used when a pool is given: an unreachable URL proves it.
    config.database_url = "postgres://nobody@127.0.0.1:9/nowhere".into();
    let relay = Relay::builder(config)
        .database_pool(pool.clone())
        .pulsar_client(client)
        .start()
        .expect("relay start");
    assert!(relay.health().live);
    wait_ready(&relay).await;

    let committed = enqueue_some(&db, &topic, 30).await;
    consumer
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    consumer.assert_exactly_committed_in_order(&committed);

    let mut conn = db.connect().await;
    wait_until_drained(&mut conn).await;
    let status = relay.status().await.expect("status through the relay");
    assert_eq!(status.pending, 0);
    assert_eq!(status.ranges.len(), 4, "one progress row per range");
    assert!(
        relay
            .metrics_text()
            .contains("outbox_events_published_total"),
        "metrics without the published counter"
    );
    assert!(relay.published() >= committed.len() as u64);
    relay.shutdown().await.expect("graceful shutdown");
    // The service's pool is still the service's.
    assert!(
        pool.get().await.is_ok(),
        "the relay closed the service's pool"
    );
    drop(pool);
    db.drop_now().await;
}

#[test]
fn a_relay_runs_on_an_arbiter_of_the_services_actix_system() {
    init_tracing();
    actix_rt::System::new().block_on(async {
        let db = TestDb::create().await;
        let topic = unique("embed_actix");
        let mut consumer = subscribe(&[&topic]).await;
        let relay = Relay::builder(db.relay_config())
            .start_in_current_system()
            .expect("relay start in the current system");
        wait_ready(&relay).await;
        let committed = enqueue_some(&db, &topic, 20).await;
        consumer
            .collect_until_seen(&committed, Duration::from_secs(60))
            .await;
        consumer.assert_exactly_committed_in_order(&committed);
        let status = relay.status().await.expect("status");
        assert!(
            status.relays.len() == 1,
            "one live relay: {:?}",
            status.relays
        );
        relay.shutdown().await.expect("graceful shutdown");
        db.drop_now().await;
    });
}

#[tokio::test]
async fn starting_in_the_current_system_outside_one_says_what_to_do() {
    let error = Relay::builder(outbox_engine::RelayConfig::default())
        .start_in_current_system()
        .expect_err("no actix system here");
    assert!(
        matches!(&error, RelayError::Start(message) if message.contains("no actix system") && message.contains("start()")),
        "{error}"
    );
}
