//! The hot statements are prepared once per connection, not parsed and planned on every
//! call (diesel's `sql_query` never caches): enqueue, the relay's batch read and its
//! progress write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use outbox_engine::lease::Lease;
use outbox_engine::slots::SlotRange;
use outbox_engine::{enqueue, store, NewEvent};
use support::*;

#[derive(diesel::QueryableByName)]
struct PreparedStatement {
    #[diesel(sql_type = Text)]
    statement: String,
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

#[tokio::test]
async fn enqueue_read_and_progress_are_prepared_once() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let member = store::leases::Member {
        relay_id: "prepared-test".into(),
        host: "test".into(),
        pid: 1,
        lease_ms: 60_000,
    };
    let owned = store::leases::tick(
        &mut conn,
        &member,
        false,
        Some(1),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap()
    .owned;
    let lease = Lease::new(
        owned[0].range,
        owned[0].epoch,
        std::time::Instant::now() + std::time::Duration::from_secs(60),
    );
    let range = lease.range;
    assert_eq!(
        range,
        SlotRange {
            start: 0,
            end: 1023
        }
    );
    let mut done = store::EMPTY_SNAPSHOT.to_owned();
    for i in 0..3 {
        enqueue(
            &mut conn,
            &NewEvent::new(format!("k{i}"), "orders", "E", b"x".to_vec()),
        )
        .await
        .unwrap();
        let page = store::read_page(&mut conn, &lease, &done, None, 0, 10, None)
            .await
            .unwrap();
        let (snapshot, rows) = (page.snapshot, page.events);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![format!("k{i}")],
            "each batch holds only the new event"
        );
        let update = store::ProgressUpdate {
            done: snapshot.clone(),
            open: None,
            carried: None,
            events_done: 1,
            batch_done: 0,
            published: 1,
            parked: 0,
            completed: Some(store::CompletedBatch {
                from: done.clone(),
                to: snapshot.clone(),
                events: 1,
                parked: 0,
            }),
        };
        store::save_progress(&mut conn, &lease, "prepared-test", &update)
            .await
            .unwrap();
        done = snapshot;
    }
    let statements: Vec<PreparedStatement> = diesel::sql_query(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
    )
    .load(&mut conn)
    .await
    .unwrap();
    for needle in [
        "outbox_enqueue(",
        "k AS MATERIALIZED",
        "UPDATE outbox_progress SET done_snapshot",
    ] {
        let found: Vec<&PreparedStatement> = statements
            .iter()
            .filter(|s| s.statement.contains(needle))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{needle}: expected one prepared statement, found {}",
            found.len()
        );
        assert_eq!(
            found[0].generic_plans + found[0].custom_plans,
            3,
            "{needle}: the prepared statement must serve every call"
        );
    }
    db.drop_now().await;
}
