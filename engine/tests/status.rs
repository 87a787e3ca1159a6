//! `status` stays cheap on a large backlog: it counts pending events only up to a cap,
//! overall and per range, and says when it stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use outbox_engine::store;
use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_pending_events_up_to_a_cap_and_says_so() {
    let db = TestDb::create().await;
    let topic = unique("status");
    let mut conn = db.connect().await;
    // No relay has run: no leases yet, so this checks the overall count (the per-range
    // one, in the lease rows, is the same query per range; embedding.rs reads it).
    let events: Vec<NewEvent> = (0..60)
        .map(|i| NewEvent::new("one-key", &topic, "T", vec![i as u8]))
        .collect();
    enqueue_batch(&mut conn, &events).await.unwrap();

    let exact = store::status_counting_up_to(&mut conn, 100).await.unwrap();
    assert_eq!((exact.pending, exact.pending_capped), (60, false));
    assert!(exact.oldest_pending_age_s.is_some());

    let capped = store::status_counting_up_to(&mut conn, 25).await.unwrap();
    assert_eq!((capped.pending, capped.pending_capped), (25, true));

    // The default cap is far above this backlog.
    let full = store::status(&mut conn).await.unwrap();
    assert_eq!((full.pending, full.pending_capped), (60, false));
    drop(conn);
    db.drop_now().await;
}
