//! PostgreSQL refusing the relay's role at query time (SQLSTATE 42501 "permission
//! denied"), classified by code: retried for `database_refusal_grace_ms` with the
//! `outbox_database_refused` alert up, then the relay stops with the reason (the binary
//! exits 1). Against the real PostgreSQL and Pulsar.
//!
//! The refusal is made by revoking the test role's SELECT on `outbox_event` (it owns
//! the table, and an owner's own privileges can be revoked), keeping SELECT on `seq` so
//! that enqueueing (`INSERT ... RETURNING seq`) still works.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use support::*;

async fn revoke_reads(conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "REVOKE SELECT ON outbox_event FROM CURRENT_USER; \
         GRANT SELECT (seq) ON outbox_event TO CURRENT_USER",
    )
    .await
    .expect("revoke");
}

async fn grant_reads(conn: &mut AsyncPgConnection) {
    conn.batch_execute("GRANT SELECT ON outbox_event TO CURRENT_USER")
        .await
        .expect("grant");
}

async fn enqueue_40(conn: &mut AsyncPgConnection, topic: &str) -> HashSet<i64> {
    let events: Vec<outbox_engine::NewEvent> = (0..40)
        .map(|i| outbox_engine::NewEvent::new(format!("k{}", i % 4), topic, "Sent", vec![i as u8]))
        .collect();
    outbox_engine::enqueue_batch(conn, &events)
        .await
        .expect("enqueue while the relay is refused")
        .into_iter()
        .collect()
}

/// A database whose owner may no longer read the events, with 40 of them pending.
async fn refused_with_40_pending() -> (TestDb, AsyncPgConnection) {
    init_tracing();
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    revoke_reads(&mut conn).await;
    enqueue_40(&mut conn, &unique("refused_db")).await;
    (db, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_granted_back_within_the_grace_period_loses_and_reorders_nothing() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("refused_db");
    let mut consumer = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    revoke_reads(&mut conn).await;
    let committed = enqueue_40(&mut conn, &topic).await;

    let mut config = db.relay_config();
    config.database_refusal_grace_ms = 600_000;
    let relay = outbox_engine::Relay::start(config).expect("relay start");
    let metrics = &relay.stats().metrics;
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.database_refused.get() != 1 {
        assert!(
            Instant::now() < deadline,
            "the refusal never raised outbox_database_refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        relay.metrics_text().contains("outbox_database_refused 1"),
        "the alert is not exported"
    );
    assert!(relay.failure().is_none() && relay.health().live);

    grant_reads(&mut conn).await;
    consumer
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    consumer.assert_exactly_committed_in_order(&committed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics.database_refused.get() != 0 {
        assert!(Instant::now() < deadline, "the alert stayed up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(relay.failure().is_none(), "the relay stopped");
    relay.shutdown().await.expect("graceful shutdown");
    drop(conn);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_outlasting_the_grace_period_stops_the_relay_with_its_sqlstate() {
    let (db, mut conn) = refused_with_40_pending().await;

    let mut config = db.relay_config();
    config.database_refusal_grace_ms = 1_000;
    let relay = outbox_engine::Relay::start(config).expect("relay start");
    let reason = tokio::time::timeout(Duration::from_secs(120), relay.failed())
        .await
        .expect("the relay went on retrying a permanent refusal");
    assert!(
        reason.contains("42501") && reason.contains("database_refusal_grace_ms"),
        "the reason does not name the code and the setting: {reason}"
    );
    assert!(!relay.health().live, "a relay that stopped is still live");
    assert_eq!(relay.failure().as_deref(), Some(reason.as_str()));
    relay.shutdown().await.ok();

    grant_reads(&mut conn).await;
    assert_eq!(pending_count(&mut conn).await, 40, "events left the outbox");
    drop(conn);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_1_naming_the_refusal_once_the_grace_period_is_over() {
    let (db, mut conn) = refused_with_40_pending().await;
    let dir = std::env::temp_dir().join(unique("refusal_cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("relay.toml");
    std::fs::write(&config_file, "database_refusal_grace_ms = 1000\n").unwrap();

    let mut command = relay_binary(&db);
    command
        .args(["--config", config_file.to_str().unwrap(), "run"])
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("cannot start outbox-relay");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the binary went on retrying a permanent refusal")
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("the relay stopped") && stderr.contains("42501"),
        "the exit does not say why: {stderr}"
    );

    grant_reads(&mut conn).await;
    assert_eq!(pending_count(&mut conn).await, 40, "events left the outbox");
    std::fs::remove_dir_all(&dir).ok();
    drop(conn);
    db.drop_now().await;
}
