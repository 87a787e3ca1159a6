//! Least privilege for writers against the real server: a role given only
//! `outbox_grant_writer` enqueues (from Rust and from SQL) and can neither read nor change
//! any outbox table; its events are published like any other. `scripts/services/pg.sh`
//! creates the login role `outbox_writer` with no other rights.
//!
//! Least privilege for the relay: a role given only `outbox_grant_relay` runs the relay,
//! its partition upkeep (create, seal, truncate, drop) and `status`, and can neither
//! write nor remove events nor enqueue. `scripts/services/pg.sh` creates the login role
//! `outbox_relay` with no other rights.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue, enqueue_batch, NewEvent, Relay};
use support::*;

fn as_role(db: &TestDb, role: &str) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some("outbox")).unwrap();
    url.to_string()
}

fn as_writer(db: &TestDb) -> String {
    as_role(db, "outbox_writer")
}

async fn connect_as(url: &str, role: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect as {role} ({e}): run `make services`"))
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

/// Uses up transaction ids (one per committed transaction) so that partitions fill up
/// without writing events.
async fn burn_transaction_ids(conn: &mut AsyncPgConnection, how_many: u32) {
    diesel::sql_query(format!(
        "DO $$ BEGIN FOR i IN 1..{how_many} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
    ))
    .execute(conn)
    .await
    .unwrap();
}

async fn enqueue_round(
    writer: &mut AsyncPgConnection,
    topic: &str,
    round: u8,
    committed: &mut HashSet<i64>,
) {
    let batch: Vec<NewEvent> = (0..20u8)
        .map(|i| NewEvent::new(format!("k{}", i % 7), topic, "T", vec![round, i]))
        .collect();
    committed.extend(enqueue_batch(writer, &batch).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_role_runs_the_relay_and_its_upkeep_and_nothing_else() {
    init_tracing();
    let db = TestDb::create().await;
    let mut owner = db.connect().await;
    for grant in [
        "SELECT outbox_grant_writer('outbox_writer')",
        "SELECT outbox_grant_relay('outbox_relay')",
    ] {
        diesel::sql_query(grant).execute(&mut owner).await.unwrap();
    }
    let relay_url = as_role(&db, "outbox_relay");
    let mut as_relay = connect_as(&relay_url, "outbox_relay").await;
    let mut writer = connect_as(&as_writer(&db), "outbox_writer").await;

    // What the relay role may not do: write, remove or enqueue events, change the schema,
    // or use the upkeep functions on anything but a partition in the right state.
    for statement in [
        "INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload) VALUES (0, 1, 'k', 't', 'T', '\\x00')",
        "UPDATE outbox_event SET payload = '\\x00'",
        "DELETE FROM outbox_event",
        "TRUNCATE outbox_event_default",
        "SELECT outbox_enqueue('k', 't', 'T', '\\x01'::bytea)",
        "SELECT nextval('outbox_seq')",
    ] {
        denied(&mut as_relay, statement).await;
    }
    for statement in [
        "DROP TABLE outbox_event_default",
        "ALTER TABLE outbox_event ADD COLUMN x int",
    ] {
        let error = diesel::sql_query(statement)
            .execute(&mut as_relay)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("must be owner"),
            "{statement}: {error}"
        );
    }
    let misused = count(
        &mut as_relay,
        "SELECT (outbox_truncate_partition('outbox_lease')::int \
               + outbox_drop_partition('outbox_progress')::int)::bigint AS n",
    )
    .await;
    assert_eq!(
        misused, 0,
        "an upkeep function acted on a table that is no partition"
    );
    // Nor through a temporary table of its own standing in for the bookkeeping: the
    // functions run with the owner's rights under a search_path with pg_temp last.
    diesel::sql_query(
        "CREATE TEMP TABLE outbox_partition AS \
         SELECT 'outbox_event'::text AS name, now() AS sealed_at, NULL::timestamptz AS truncated_at",
    )
    .execute(&mut as_relay)
    .await
    .unwrap();
    let spoofed = count(
        &mut as_relay,
        "SELECT outbox_truncate_partition('outbox_event')::int::bigint AS n",
    )
    .await;
    assert_eq!(spoofed, 0, "a temporary table steered an upkeep function");
    drop(as_relay);

    // The relay on that role: publishes, and retires partitions as the owner would.
    let topic = unique("relay-role");
    let mut subscription = subscribe(&[&topic]).await;
    let mut config = db.relay_config();
    config.database_url = relay_url;
    config.database_refusal_grace_ms = 0;
    config.lease_ms = 2_000;
    config.lease_renew_interval_ms = 500;
    config.pulsar.operation_timeout_ms = 2_000;
    config.cycle_timeout_ms = 3_000;
    config.retention_ms = 4_000;
    config.maintenance_interval_ms = 250;
    let relay = Relay::start(config).expect("relay start");
    let mut committed = HashSet::new();
    enqueue_round(&mut writer, &topic, 0, &mut committed).await;
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    let partitions = count(&mut owner, "SELECT count(*) AS n FROM outbox_partition").await;
    assert!(partitions > 0, "no partition is listed");

    // Fill the first partition with transaction ids, publish past it, and wait for it to
    // be sealed, truncated once the retention has passed, and dropped: all by the relay.
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let oldest: Name = diesel::sql_query("SELECT name FROM outbox_partition ORDER BY hi LIMIT 1")
        .get_result(&mut owner)
        .await
        .unwrap();
    let gone = format!(
        "SELECT (NOT EXISTS (SELECT 1 FROM outbox_partition WHERE name = '{0}') \
                 AND to_regclass('\"{0}\"') IS NULL)::int::bigint AS n",
        oldest.name
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut round = 1;
    while count(&mut owner, &gone).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "partition {} was not retired within 120 s by the relay role (its log says why; relay failure: {:?})",
            oldest.name,
            relay.failure()
        );
        burn_transaction_ids(&mut owner, 5_000).await;
        enqueue_round(&mut writer, &topic, round, &mut committed).await;
        round = round.wrapping_add(1);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    wait_until_drained(&mut owner).await;
    // The relay role's view of the outbox: `status` works, nothing is pending, every
    // range has a lease.
    let status = relay.status().await.expect("status as the relay role");
    assert_eq!(status.pending, 0, "{status:?}");
    assert!(!status.leases.is_empty(), "{status:?}");
    subscription.assert_exactly_committed_in_order(&committed);
    assert_eq!(relay.failure(), None);
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}
