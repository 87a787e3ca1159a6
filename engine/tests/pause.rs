//! `outbox-relay pause` / `resume`: a paused relay leaves events pending; after the
//! resume they go out, in order; resuming what is not paused changes nothing, exit 3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

fn cli(db: &TestDb, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &db.url])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn scrape(address: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", &format!("http://{address}/metrics")])
        .output()
        .expect("curl is needed (installed by scripts/services)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_relay_holds_events_and_publishes_them_in_order_after_resume() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = format!("persistent://public/default/{}", unique("pause"));
    let mut subscription = subscribe(&[&topic]).await;
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut command = relay_binary(&db);
    command.args(["--metrics-listen", &address, "run"]);
    let relay = KilledOnDrop::spawn(command);

    let (code, out) = cli(&db, &["pause", "--all", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"state\":\"paused\""), "{out}");
    // The relay has read the pause once its metrics say so.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !scrape(&address).contains("outbox_paused_ranges 1") {
        assert!(Instant::now() < deadline, "the relay never saw the pause");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, status) = cli(&db, &["status"]);
    assert!(status.contains("PAUSED slots 0-1023"), "{status}");

    let mut conn = db.connect().await;
    let events: Vec<NewEvent> = (0..60)
        .map(|i| NewEvent::new(format!("k{}", i % 6), &topic, "E", vec![i as u8]))
        .collect();
    let committed: HashSet<i64> = enqueue_batch(&mut conn, &events)
        .await
        .unwrap()
        .into_iter()
        .collect();
    // Several lease rounds later, everything is still pending and nothing arrived.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pending_count(&mut conn).await,
        60,
        "a paused relay published"
    );
    subscription.drain(Duration::from_millis(500)).await;
    assert_eq!(subscription.ledger.received, 0, "a paused relay published");

    let (code, out) = cli(&db, &["resume", "--all"]);
    assert_eq!(code, 0, "{out}");
    subscription
        .collect_until_seen(&committed, Duration::from_secs(30))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    // Resuming again: nothing to do, exit 3, nothing changed.
    let (code, out) = cli(&db, &["resume", "--all"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not paused"), "{out}");
    drop(relay);
    db.drop_now().await;
}
