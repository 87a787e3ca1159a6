//! The hot statements are prepared once per connection, not parsed and planned on every
//! call (diesel's `sql_query` never caches): enqueue and the relay's read and delete.

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
async fn enqueue_read_and_acknowledge_are_prepared_once() {
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
    for i in 0..3 {
        enqueue(
            &mut conn,
            &NewEvent::new(format!("k{i}"), "orders", "E", b"x".to_vec()),
        )
        .await
        .unwrap();
        let rows = store::read_batch(&mut conn, range, 0, 10).await.unwrap();
        let slots: Vec<i32> = rows.iter().map(|r| r.slot).collect();
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        store::acknowledge(&mut conn, &lease, &slots, &seqs)
            .await
            .unwrap();
    }
    let statements: Vec<PreparedStatement> = diesel::sql_query(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
    )
    .load(&mut conn)
    .await
    .unwrap();
    for needle in [
        "outbox_enqueue(",
        "ORDER BY slot, seq LIMIT",
        "DELETE FROM outbox_event e USING unnest",
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
