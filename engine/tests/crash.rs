//! The relay process killed with SIGKILL in the middle of a stream, then started again,
//! twice: nothing lost, per-key order holds; duplicates are counted and reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

const EVENTS: usize = 60_000;
const PER_TRANSACTION: usize = 250;
const KEYS: usize = 500;

fn chunk_events(topic: &str, chunk: usize) -> Vec<NewEvent> {
    (0..PER_TRANSACTION)
        .map(|i| {
            let n = chunk * PER_TRANSACTION + i;
            NewEvent::new(format!("k{}", n % KEYS), topic, "Tick", vec![b'x'; 128])
        })
        .collect()
}

fn start_relay(db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args([
            "--database-url",
            &db.url,
            "--pulsar-url",
            &pulsar_url(),
            "--partitions",
            "4",
            "run",
        ])
        .env("RUST_LOG", "warn,pulsar=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start outbox-relay")
}

fn kill(child: &mut Child) {
    // Child::kill sends SIGKILL: no shutdown hook runs.
    child.kill().expect("kill failed");
    child.wait().expect("wait failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream_loses_nothing_and_keeps_order() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("crash");
    let mut subscription = subscribe(&[&topic]).await;

    // Half the events wait as a backlog, so the relay is busy (batches in flight) when
    // it is killed; the other half is written while it runs.
    let backlog_chunks = EVENTS / PER_TRANSACTION / 2;
    let mut conn = db.connect().await;
    let mut backlog = Vec::with_capacity(EVENTS);
    for chunk in 0..backlog_chunks {
        backlog.extend(
            enqueue_batch(&mut conn, &chunk_events(&topic, chunk))
                .await
                .expect("enqueue"),
        );
    }
    let writer = {
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut committed = backlog;
            for chunk in backlog_chunks..EVENTS / PER_TRANSACTION {
                committed.extend(
                    enqueue_batch(&mut conn, &chunk_events(&topic, chunk))
                        .await
                        .expect("enqueue"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            committed
        })
    };

    let mut relay = start_relay(&db);
    subscription
        .collect_at_least(EVENTS / 4, Duration::from_secs(60))
        .await;
    kill(&mut relay);
    let after_first_kill = subscription.ledger.distinct();

    let mut relay = start_relay(&db);
    subscription
        .collect_at_least(after_first_kill + EVENTS / 4, Duration::from_secs(60))
        .await;
    kill(&mut relay);

    let committed: HashSet<i64> = writer.await.unwrap().into_iter().collect();
    let mut relay = start_relay(&db);
    subscription
        .collect_until_seen(&committed, Duration::from_secs(90))
        .await;
    subscription.drain(Duration::from_secs(2)).await;
    kill(&mut relay);

    subscription.assert_exactly_committed_in_order(&committed);
    let ledger = &subscription.ledger;
    println!(
        "crash: {} events, 2 SIGKILLs, {} received, {} duplicates ({:.2}%)",
        committed.len(),
        ledger.received,
        ledger.duplicates,
        100.0 * ledger.duplicates as f64 / committed.len() as f64
    );
    assert_audit_trail_clean(&db).await;
    db.drop_now().await;
}
