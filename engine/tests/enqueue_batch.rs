//! `outbox_enqueue_batch` (set-based since migration 5): numbers drawn in array order,
//! the same checks and messages as `outbox_enqueue`, all or nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Text};
use diesel_async::RunQueryDsl;
use outbox_engine::{enqueue_batch, NewEvent, StoreError};
use support::*;

#[derive(diesel::QueryableByName)]
struct KeySeq {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

#[tokio::test]
async fn numbers_follow_array_order_and_every_row_lands_in_its_slot() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let events: Vec<NewEvent> = (0..300)
        .map(|i| {
            NewEvent::new(
                format!("k{}", i % 7),
                "orders",
                "E",
                format!("{i}").into_bytes(),
            )
        })
        .collect();
    let seqs = enqueue_batch(&mut conn, &events).await.unwrap();
    assert_eq!(seqs.len(), 300);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "numbers must follow array order"
    );
    let rows: Vec<KeySeq> = diesel::sql_query(
        "SELECT key, seq FROM outbox_event WHERE slot = outbox_slot(key) ORDER BY seq",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 300, "every row in the slot its key hashes to");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.key, format!("k{}", i % 7));
        assert_eq!(row.seq, seqs[i]);
    }
    db.drop_now().await;
}

#[tokio::test]
async fn one_bad_event_rejects_the_batch_with_outbox_enqueues_message() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let call = |topics: Vec<&str>| {
        let n = topics.len();
        diesel::sql_query("SELECT outbox_enqueue_batch($1, $2, $3, $4, $5)")
            .bind::<Array<Text>, _>((0..n).map(|i| format!("k{i}")).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(topics.iter().map(|t| t.to_string()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(vec!["E".to_owned(); n])
            .bind::<Array<Bytea>, _>(vec![b"x".to_vec(); n])
            .bind::<Array<Jsonb>, _>(vec![serde_json::json!({}); n])
    };
    let error = call(vec!["orders", "bad topic", "orders"])
        .execute(&mut conn)
        .await
        .unwrap_err();
    let error = StoreError::from(error).to_string();
    assert!(
        error.contains("is not a valid Pulsar topic name"),
        "{error}"
    );
    // One topic for the whole batch takes a shorter path (migration 14): same check.
    let error = call(vec!["bad topic", "bad topic"])
        .execute(&mut conn)
        .await
        .unwrap_err();
    let error = StoreError::from(error).to_string();
    assert!(
        error.contains("'bad topic' is not a valid Pulsar topic name"),
        "{error}"
    );
    let error = call(vec!["orders", "non-persistent://public/default/x"])
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(StoreError::from(error)
        .to_string()
        .contains("non-persistent"));
    assert_eq!(
        pending_count(&mut conn).await,
        0,
        "nothing of a rejected batch is written"
    );
    call(vec![]).execute(&mut conn).await.unwrap();
    db.drop_now().await;
}

#[derive(diesel::QueryableByName)]
struct Limit {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// More distinct keys than the lock table safely holds: refused before any lock is taken,
/// naming the limit; nothing written. The same keys repeated stay within it.
#[tokio::test]
async fn a_batch_with_too_many_distinct_keys_is_refused_naming_the_limit() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let limit = diesel::sql_query("SELECT outbox_max_batch_keys() AS n")
        .get_result::<Limit>(&mut conn)
        .await
        .unwrap()
        .n as usize;
    let too_many: Vec<NewEvent> = (0..=limit)
        .map(|i| NewEvent::new(format!("k{i}"), "orders", "E", vec![1]))
        .collect();
    let error = enqueue_batch(&mut conn, &too_many).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("{} distinct keys", limit + 1))
            && message.contains(&format!("limit of {limit}")),
        "{message}"
    );
    assert_eq!(
        pending_count(&mut conn).await,
        0,
        "a refused batch wrote rows"
    );
    // As many events, fewer keys: accepted.
    let repeated: Vec<NewEvent> = (0..=limit)
        .map(|i| NewEvent::new(format!("k{}", i % 100), "orders", "E", vec![1]))
        .collect();
    assert_eq!(
        enqueue_batch(&mut conn, &repeated).await.unwrap().len(),
        limit + 1
    );
    db.drop_now().await;
}
