//! The consumer's idempotent inbox against the real services: exactly-once handler
//! effects through a consumer crash, a restart and an operator's replay; per-key order;
//! a failing handler retried in place and dead-lettered while other keys flow; a
//! message without `event_id` dead-lettered; a missing inbox table refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::future::BoxFuture;
use futures::TryStreamExt;
use outbox_adapters::inbox::{
    self, Handler, HandlerError, Inbox, InboxConfig, InboxError, InboxMessage, InboxPool,
};
use outbox_engine::store::{self, SessionKind};
use outbox_engine::{enqueue, NewEvent, Relay};
use support::*;

/// Records each handled event; fails on payload `fail`, and on `flaky` until attempt 3.
struct Recorder;

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        message: &'a InboxMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match message.payload.as_slice() {
                b"fail" => return Err("the test refuses this event".into()),
                b"flaky" if message.attempt < 3 => return Err("flaky, not yet".into()),
                _ => {}
            }
            diesel::sql_query(
                "INSERT INTO handled (event_id, key, seq, attempt) VALUES ($1, $2, $3, $4)",
            )
            .bind::<Nullable<Text>, _>(&message.event_id)
            .bind::<Text, _>(&message.key)
            .bind::<Nullable<BigInt>, _>(message.seq)
            .bind::<BigInt, _>(i64::from(message.attempt))
            .execute(conn)
            .await?;
            Ok(())
        })
    }
}

#[derive(diesel::QueryableByName, Debug)]
struct Handled {
    #[diesel(sql_type = Nullable<Text>)]
    event_id: Option<String>,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = BigInt)]
    attempt: i64,
}

async fn consumer_database() -> (TestDb, InboxPool) {
    let db = TestDb::create().await;
    let pool = store::pool(&db.url, 8, SessionKind::Plain).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    inbox::install(&mut conn).await.unwrap();
    conn.batch_execute(
        "CREATE TABLE handled (id bigserial PRIMARY KEY, event_id text, key text NOT NULL, \
         seq bigint, attempt bigint NOT NULL)",
    )
    .await
    .unwrap();
    drop(conn);
    (db, pool)
}

async fn handled(conn: &mut AsyncPgConnection) -> Vec<Handled> {
    diesel::sql_query("SELECT event_id, key, seq, attempt FROM handled ORDER BY id")
        .load(conn)
        .await
        .unwrap()
}

async fn wait_for_handled(conn: &mut AsyncPgConnection, count: usize) -> Vec<Handled> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = handled(conn).await;
        if rows.len() >= count || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per key, handled in increasing seq order; returns the keys out of order.
fn out_of_order(rows: &[Handled]) -> Vec<String> {
    let mut last: HashMap<&str, i64> = HashMap::new();
    let mut bad = Vec::new();
    for row in rows {
        let seq = row.seq.unwrap_or(0);
        if let Some(previous) = last.insert(&row.key, seq) {
            if previous >= seq {
                bad.push(row.key.clone());
            }
        }
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_handled_once_through_a_crash_a_restart_and_a_replay() {
    init_tracing();
    let outbox = TestDb::create().await;
    let (consumer_db, pool) = consumer_database().await;
    let topic = unique("inbox");
    let mut conn = outbox.connect().await;
    let mut committed = HashSet::new();
    for i in 0..300 {
        committed.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{}", i % 10), topic.as_str(), "T", vec![1]),
            )
            .await
            .unwrap(),
        );
    }
    let relay = Relay::start(outbox.relay_config()).expect("relay start");
    let client = pulsar().await;
    let config = InboxConfig::new(&[&topic], &unique("inbox-sub"));
    let mut check = consumer_db.connect().await;

    // A consumer that crashes (dropped mid-flight, nothing graceful) after 100 events:
    // events committed but not acknowledged are delivered again.
    // Its own client: dropping it closes the connection, as a crashed process would.
    let crash_client = pulsar().await;
    let crashing = Inbox::start(&crash_client, pool.clone(), config.clone())
        .await
        .unwrap();
    let crash = async {
        wait_for_handled(&mut check, 100).await;
    };
    tokio::select! {
        _ = crashing.run(Recorder, std::future::pending()) => panic!("the inbox stopped on its own"),
        _ = crash => {}
    }
    drop(crash_client);
    // A restart, stopped gracefully once everything is handled.
    let restarted = Inbox::start(&client, pool.clone(), config.clone())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(restarted.run(Recorder, async {
        let _ = stopped.await;
    }));
    let rows = wait_for_handled(&mut check, 300).await;
    assert_eq!(rows.len(), 300, "events handled once each");

    // An operator replays everything: same event_ids, so the inbox skips them all.
    let filter = outbox_engine::store::replay::ReplayFilter {
        topic: Some(topic.clone()),
        ..Default::default()
    };
    let replayed = outbox_engine::replay::replay(&outbox.relay_config(), &filter, false)
        .await
        .unwrap();
    assert_eq!(replayed.published, 300);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.send(()).unwrap();
    let report = running.await.unwrap().unwrap();
    assert!(
        report.duplicates >= 300,
        "the replay was not recognised: {report:?}"
    );

    let rows = handled(&mut check).await;
    assert_eq!(rows.len(), 300, "a duplicate ran the handler again");
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r.event_id.as_deref()).collect();
    assert_eq!(ids.len(), 300);
    let seqs: HashSet<i64> = rows.iter().filter_map(|r| r.seq).collect();
    assert_eq!(seqs, committed);
    assert!(out_of_order(&rows).is_empty(), "per-key order broken");
    relay.shutdown().await.unwrap();
    outbox.drop_now().await;
    consumer_db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_retried_in_place_then_dead_lettered_while_other_keys_flow() {
    init_tracing();
    let outbox = TestDb::create().await;
    let (consumer_db, pool) = consumer_database().await;
    let topic = unique("inbox-fail");
    let full = outbox_engine::full_topic_name(&topic).unwrap();
    let client = pulsar().await;
    let mut dead_letters: outbox_adapters::pulsar_client::Consumer<
        Vec<u8>,
        outbox_adapters::pulsar_client::TokioExecutor,
    > = client
        .consumer()
        .with_topic(format!("{full}-DLQ"))
        .with_subscription(unique("dlq"))
        .with_options(
            outbox_adapters::pulsar_client::consumer::ConsumerOptions::default()
                .with_initial_position(
                    outbox_adapters::pulsar_client::consumer::InitialPosition::Earliest,
                ),
        )
        .build()
        .await
        .unwrap();

    let mut conn = outbox.connect().await;
    let poison = enqueue(
        &mut conn,
        &NewEvent::new("bad", topic.as_str(), "T", b"fail".to_vec()),
    )
    .await
    .unwrap();
    let behind = enqueue(
        &mut conn,
        &NewEvent::new("bad", topic.as_str(), "T", b"ok".to_vec()),
    )
    .await
    .unwrap();
    let flaky = enqueue(
        &mut conn,
        &NewEvent::new("shaky", topic.as_str(), "T", b"flaky".to_vec()),
    )
    .await
    .unwrap();
    for i in 0..20 {
        enqueue(
            &mut conn,
            &NewEvent::new(format!("good{i}"), topic.as_str(), "T", vec![1]),
        )
        .await
        .unwrap();
    }
    // Something not published by the outbox: no event_id.
    let mut producer = client.producer().with_topic(&full).build().await.unwrap();
    producer
        .send_non_blocking(outbox_adapters::pulsar_client::producer::Message {
            payload: b"foreign".to_vec(),
            partition_key: Some("foreign".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .await
        .unwrap();

    let relay = Relay::start(outbox.relay_config()).expect("relay start");
    let mut config = InboxConfig::new(&[&topic], &unique("inbox-sub"));
    config.max_attempts = 3;
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    let inbox = Inbox::start(&client, pool, config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(inbox.run(Recorder, async {
        let _ = stopped.await;
    }));
    let mut check = consumer_db.connect().await;
    let rows = wait_for_handled(&mut check, 22).await;

    // Two messages reach the dead-letter topic: the poison event after 3 attempts, and
    // the foreign message at once.
    let mut reasons = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reasons.len() < 2 && Instant::now() < deadline {
        if let Ok(Ok(Some(message))) =
            tokio::time::timeout(Duration::from_secs(1), dead_letters.try_next()).await
        {
            let properties: HashMap<String, String> = message
                .metadata()
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect();
            dead_letters.ack(&message).await.unwrap();
            reasons.insert(message.key().unwrap_or_default(), properties);
        }
    }
    stop.send(()).unwrap();
    let report = running.await.unwrap().unwrap();
    assert_eq!(report.dead_lettered, 2, "{report:?}");
    let bad = &reasons["bad"];
    assert_eq!(bad["outbox-inbox-attempts"], "3");
    assert_eq!(bad["seq"], poison.to_string());
    assert!(bad["outbox-inbox-error"].contains("refuses"));
    assert!(reasons["foreign"]["outbox-inbox-error"].contains("event_id"));

    assert_eq!(
        rows.len(),
        22,
        "20 good, the flaky one and the one behind the poison"
    );
    let seqs: Vec<i64> = rows.iter().filter_map(|r| r.seq).collect();
    assert!(!seqs.contains(&poison));
    assert!(seqs.contains(&behind));
    let shaky = rows.iter().find(|r| r.seq == Some(flaky)).unwrap();
    assert_eq!(
        shaky.attempt, 3,
        "the flaky event succeeds on its third attempt"
    );
    relay.shutdown().await.unwrap();
    outbox.drop_now().await;
    consumer_db.drop_now().await;
}

#[tokio::test]
async fn a_missing_or_misshapen_inbox_table_is_refused_naming_the_fix() {
    let db = TestDb::create().await;
    let pool = store::pool(&db.url, 2, SessionKind::Plain).await.unwrap();
    let client = pulsar().await;
    let config = InboxConfig::new(&[&unique("t")], "s");
    let error = Inbox::start(&client, pool.clone(), config.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, InboxError::Table(_)), "{error}");
    assert!(error.to_string().contains("install"), "{error}");
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("CREATE TABLE outbox_inbox (consumer text, event_id uuid)")
        .await
        .unwrap();
    drop(conn);
    let error = Inbox::start(&client, pool, config).await.unwrap_err();
    assert!(error.to_string().contains("event_id"), "{error}");
    db.drop_now().await;
}
