//! First end to end: a committed event reaches Pulsar with the message contract; a
//! rolled-back one never does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::AsyncConnection;
use outbox_engine::{enqueue, NewEvent, Relay};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_event_arrives_and_rolled_back_one_never_does() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("e2e");
    let mut consumer = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;

    // Rolled back: enqueued, then the transaction fails.
    let rolled_back_seq = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seen = rolled_back_seq.clone();
    let topic_rb = topic.clone();
    let rollback: Result<(), outbox_engine::EnqueueError> = conn
        .transaction(async |conn| {
            let event = NewEvent::new("order-1", topic_rb, "Cancelled", b"never".to_vec());
            let seq = enqueue(conn, &event).await?;
            seen.store(seq, std::sync::atomic::Ordering::SeqCst);
            Err(outbox_engine::EnqueueError::Invalid {
                field: "test",
                reason: "forced rollback".into(),
            })
        })
        .await;
    assert!(rollback.is_err());

    // Committed, with a header.
    let topic_ok = topic.clone();
    let committed_seq = conn
        .transaction(async |conn| {
            let event = NewEvent::new("order-1", topic_ok, "Placed", b"{\"total\":42}".to_vec())
                .with_header("trace_id", "t-1");
            enqueue(conn, &event).await
        })
        .await
        .expect("enqueue failed");
    assert!(committed_seq > rolled_back_seq.load(std::sync::atomic::Ordering::SeqCst));

    let relay = Relay::start(db.relay_config()).expect("relay start");
    let expected: HashSet<i64> = [committed_seq].into_iter().collect();
    consumer
        .collect_until_seen(&expected, Duration::from_secs(60))
        .await;
    consumer.drain(Duration::from_secs(2)).await;
    let (ledger, events) = (&consumer.ledger, &consumer.events);

    assert!(
        ledger.missing(&expected).is_empty(),
        "the committed event never arrived"
    );
    assert_eq!(
        ledger.unexpected(&expected),
        Vec::<i64>::new(),
        "a rolled-back event arrived"
    );
    let event = &events[0];
    assert_eq!(event.key, "order-1");
    assert_eq!(event.event_type, "Placed");
    assert_eq!(event.payload, b"{\"total\":42}");
    assert_eq!(event.properties["trace_id"], "t-1");
    assert_eq!(event.properties["seq"], committed_seq.to_string());
    assert_eq!(event.event_id.len(), 36, "event_id is a UUID");
    assert!(event.topic.ends_with(&topic));

    relay.shutdown().await.expect("graceful shutdown");
    assert_eq!(
        pending_count(&mut conn).await,
        0,
        "published rows must be removed"
    );
    db.drop_now().await;
}
