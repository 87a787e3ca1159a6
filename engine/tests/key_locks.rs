//! Guarantee 7: writers of different keys never wait for each other; a second writer of
//! the same key waits until the first commits. `lock_timeout` turns a wait into an error
//! instead of a hang, so the test cannot block.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use outbox_engine::{enqueue, EnqueueError, NewEvent, StoreError};
use support::*;

#[tokio::test]
async fn different_keys_do_not_wait_and_the_same_key_does() {
    let db = TestDb::create().await;
    let mut holder = db.connect().await;
    let mut other = db.connect().await;
    other
        .batch_execute("SET lock_timeout = '2s'")
        .await
        .unwrap();

    holder.batch_execute("BEGIN").await.unwrap();
    enqueue(
        &mut holder,
        &NewEvent::new("key-a", "orders", "E", b"1".to_vec()),
    )
    .await
    .unwrap();

    // Another key while key-a's transaction is open: no wait.
    let other_key: Result<i64, EnqueueError> = other
        .transaction(async |conn| {
            enqueue(conn, &NewEvent::new("key-b", "orders", "E", b"2".to_vec())).await
        })
        .await;
    assert!(
        other_key.is_ok(),
        "a writer of another key waited: {other_key:?}"
    );

    // The same key: waits for the holder's commit (here: times out after 2 s).
    let same_key: Result<i64, EnqueueError> = other
        .transaction(async |conn| {
            enqueue(conn, &NewEvent::new("key-a", "orders", "E", b"3".to_vec())).await
        })
        .await;
    match same_key {
        Err(EnqueueError::Store(StoreError::Busy(message))) => {
            assert!(message.contains("55P03"), "{message}")
        }
        other => panic!("a second writer of key-a must wait for the first, got {other:?}"),
    }

    holder.batch_execute("COMMIT").await.unwrap();
    let after_commit: Result<i64, EnqueueError> = other
        .transaction(async |conn| {
            enqueue(conn, &NewEvent::new("key-a", "orders", "E", b"4".to_vec())).await
        })
        .await;
    assert!(
        after_commit.is_ok(),
        "after the commit key-a must be free: {after_commit:?}"
    );
    db.drop_now().await;
}
