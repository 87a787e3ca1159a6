//! Start and stop: the binary drains on SIGTERM and exits 0 with everything it published
//! recorded; a relay whose database is unreachable waits (retrying) instead of failing,
//! and still stops cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outbox_engine::{enqueue_batch, NewEvent, Relay, RelayConfig};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_binary_gracefully_with_progress_recorded() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("lifecycle");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    let events: Vec<NewEvent> = (0..2_000)
        .map(|i| NewEvent::new(format!("k{}", i % 50), topic.as_str(), "E", vec![b'z'; 64]))
        .collect();
    let committed: HashSet<i64> = enqueue_batch(&mut conn, &events)
        .await
        .unwrap()
        .into_iter()
        .collect();

    let mut relay = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args([
            "--database-url",
            &db.url,
            "--pulsar-url",
            &pulsar_url(),
            "run",
        ])
        .env("RUST_LOG", "warn,pulsar=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start outbox-relay");
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);

    let pid = relay.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = relay.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not stop within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "graceful stop must exit 0, got {exit:?}");
    assert_eq!(
        pending_count(&mut conn).await,
        0,
        "published events must be recorded before exit"
    );
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_at_start_is_waited_for_and_shutdown_still_works() {
    init_tracing();
    let mut config = RelayConfig {
        database_url: "postgres://outbox:outbox@127.0.0.1:1/outbox".into(),
        retry_backoff_min_ms: 50,
        ..Default::default()
    };
    config.pulsar.url = pulsar_url();
    let relay =
        Relay::start(config).expect("start returns at once; connecting happens in the background");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !relay.is_ready(),
        "the relay cannot be ready without its database"
    );
    let partitions = relay.partitions().await.unwrap();
    assert!(
        partitions.iter().all(|p| !p.running),
        "no partition may run before the database answers"
    );
    relay
        .shutdown()
        .await
        .expect("shutdown while waiting for the database");
}
