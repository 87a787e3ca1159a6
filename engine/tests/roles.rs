//! Least privilege for writers against the real server: a role given only
//! `outbox_grant_writer` enqueues (from Rust and from SQL) and can neither read nor change
//! any outbox table; its events are published like any other. `scripts/services/pg.sh`
//! creates the login role `outbox_writer` with no other rights.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue, enqueue_batch, NewEvent, Relay};
use support::*;

fn as_writer(db: &TestDb) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username("outbox_writer").unwrap();
    url.set_password(Some("outbox")).unwrap();
    url.to_string()
}

async fn denied(conn: &mut AsyncPgConnection, statement: &str) {
    let error = diesel::sql_query(statement)
        .execute(conn)
        .await
        .expect_err(statement);
    assert!(
        error.to_string().contains("permission denied"),
        "{statement}: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_role_may_enqueue_and_nothing_else() {
    init_tracing();
    let db = TestDb::create().await;
    let mut owner = db.connect().await;
    diesel::sql_query("SELECT outbox_grant_writer('outbox_writer')")
        .execute(&mut owner)
        .await
        .unwrap();
    let mut writer = AsyncPgConnection::establish(&as_writer(&db))
        .await
        .unwrap_or_else(|e| panic!("cannot connect as outbox_writer ({e}): run `make services`"));

    let topic = unique("writer");
    let mut subscription = subscribe(&[&topic]).await;
    let mut committed = HashSet::new();
    committed.insert(
        enqueue(
            &mut writer,
            &NewEvent::new("w1", topic.as_str(), "T", b"a".to_vec()),
        )
        .await
        .unwrap(),
    );
    let batch: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent::new(format!("w{i}"), topic.as_str(), "T", vec![i]))
        .collect();
    committed.extend(enqueue_batch(&mut writer, &batch).await.unwrap());
    #[derive(diesel::QueryableByName)]
    struct Seq {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let row: Seq = diesel::sql_query(format!(
        "SELECT outbox_enqueue('w9', '{topic}', 'T', '\\x01'::bytea) AS seq"
    ))
    .get_result(&mut writer)
    .await
    .unwrap();
    committed.insert(row.seq);

    for statement in [
        "SELECT count(*) FROM outbox_event",
        "DELETE FROM outbox_event",
        "INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload) VALUES (0, 1, 'k', 't', 'T', '\\x00')",
        "UPDATE outbox_progress SET done_snapshot = '1:1:'",
        "SELECT * FROM outbox_parked",
        "SELECT nextval('outbox_seq')",
        "DELETE FROM outbox_lease",
    ] {
        denied(&mut writer, statement).await;
    }

    // The relay (the owner) publishes what the writer enqueued.
    let relay = Relay::start(db.relay_config()).expect("relay start");
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}
