//! Retention without bloat: under a constant load the outbox keeps only what the
//! retention window asks for. Whole partitions are retired; no published row is deleted
//! one by one, and nothing unpublished is ever retired.
//!
//! Short here (`make test`); `make soak` runs it for 30 minutes (OUTBOX_SOAK_SECS,
//! OUTBOX_SOAK_RATE, OUTBOX_SOAK_RETENTION_MS) and its `soak-report` lines go into
//! docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use outbox_engine::store::retention::storage_size;
use outbox_engine::{enqueue_batch, NewEvent, Relay};
use support::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn storage_levels_off_under_constant_load() {
    init_tracing();
    let seconds = env_u64("OUTBOX_SOAK_SECS", 24);
    let rate = env_u64("OUTBOX_SOAK_RATE", 1_000);
    // Events per transaction: partitions are sized in transaction ids.
    let per_tx = env_u64("OUTBOX_SOAK_BATCH", 1) as i64;
    let retention_ms = env_u64("OUTBOX_SOAK_RETENTION_MS", 4_000);
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let topic = unique("soak");
    let mut config = db.relay_config();
    config.lease_ms = 2_000;
    config.lease_renew_interval_ms = 500;
    config.pulsar.operation_timeout_ms = 2_000;
    config.cycle_timeout_ms = 3_000;
    config.retention_ms = retention_ms;
    config.maintenance_interval_ms = 250;
    let relay = Relay::start(config).expect("relay start");

    // A constant rate, `per_tx` events per transaction.
    let started = Instant::now();
    let mut written: i64 = 0;
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let payload = vec![b'p'; 256];
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as i64;
        if written < due {
            let events: Vec<NewEvent> = (0..per_tx)
                .map(|i| {
                    NewEvent::new(
                        format!("k{}", (written + i) % 500),
                        topic.as_str(),
                        "E",
                        payload.clone(),
                    )
                })
                .collect();
            enqueue_batch(&mut conn, &events).await.unwrap();
            written += per_tx;
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if started.elapsed() >= next_sample {
            let size = storage_size(&mut conn).await.unwrap();
            let rows = count(&mut conn, "SELECT count(*) AS n FROM outbox_event").await;
            println!(
                "soak-report | t={:>5.1}s written={written} retained_rows={rows} partitions={} table_kb={} index_kb={} audit_kb={}",
                started.elapsed().as_secs_f64(),
                size.partitions,
                size.table_bytes / 1024,
                size.index_bytes / 1024,
                size.batch_audit_bytes / 1024
            );
            samples.push((started.elapsed(), rows, size));
            next_sample += Duration::from_secs((seconds / 12).max(1));
        }
    }
    wait_until_drained(&mut conn).await;
    let published = count(
        &mut conn,
        "SELECT coalesce(sum(published_total), 0)::bigint AS n FROM outbox_progress",
    )
    .await;
    assert!(
        published >= written,
        "{published} events recorded as published of {written} written"
    );
    // Let the window pass once more so the last partitions retire too.
    tokio::time::sleep(Duration::from_millis(retention_ms * 2 + 1_000)).await;
    let oldest_kept = count(
        &mut conn,
        "SELECT coalesce(min(seq), 0) AS n FROM outbox_event",
    )
    .await;
    let retained = count(&mut conn, "SELECT count(*) AS n FROM outbox_event").await;
    let size = storage_size(&mut conn).await.unwrap();
    println!(
        "soak-report | end written={written} published={published} retained_rows={retained} partitions={} table_kb={} index_kb={}",
        size.partitions,
        size.table_bytes / 1024,
        size.index_bytes / 1024
    );
    // Storage follows the window, not the history: what is kept is at most what the
    // load writes in a few windows, whatever the test's length.
    let per_window = rate as i64 * retention_ms as i64 / 1_000;
    assert!(
        retained * 2 < written,
        "too little was retired: {retained} of {written} rows still stored"
    );
    assert!(
        oldest_kept > 1,
        "the oldest events were never retired (oldest kept: seq {oldest_kept})"
    );
    let peak_late = samples
        .iter()
        .filter(|(at, _, _)| *at > Duration::from_secs(seconds / 2))
        .map(|(_, rows, _)| *rows)
        .max()
        .unwrap_or(0);
    println!(
        "soak-report | peak_rows_second_half={peak_late} rows_per_window={per_window} oldest_kept_seq={oldest_kept}"
    );
    // Every event still stored is published: retention never retires pending ones, and
    // the pending view agrees.
    assert_eq!(pending_count(&mut conn).await, 0);
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

/// Partition bounds are whole transaction ids, and so are the names made from them, also
/// for a span sized by the transaction rate (a power of two computed in `numeric`, which
/// once gave names like `outbox_event_p125723.0000000000000000`).
#[tokio::test]
async fn partitions_are_bounded_and_named_by_whole_transaction_ids() {
    init_tracing();
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    count(&mut conn, "SELECT outbox_extend_partitions(1)::bigint AS n").await;
    // A long span for the rate seen since: far above the 4096 minimum, so the span is
    // the rate-sized power of two.
    let made = count(
        &mut conn,
        "SELECT outbox_extend_partitions(1000000)::bigint AS n",
    )
    .await;
    assert!(made > 0, "the rate-sized round made no partition");
    let odd = count(
        &mut conn,
        "SELECT count(*) AS n FROM outbox_partition \
          WHERE name !~ '^outbox_event_p[0-9]+$' OR hi::text !~ '^[0-9]+$' OR lo::text !~ '^[0-9]+$'",
    )
    .await;
    assert_eq!(odd, 0, "a partition bound or name is not a whole number");
    let spans = count(
        &mut conn,
        "SELECT count(DISTINCT hi::text::numeric - lo::text::numeric) AS n FROM outbox_partition",
    )
    .await;
    assert!(spans >= 2, "no rate-sized span was made");
    drop(conn);
    db.drop_now().await;
}
