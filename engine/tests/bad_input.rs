//! Bad input gets a clear error naming what was wrong, and loses or half-writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use diesel::sql_types::{Bytea, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use outbox_engine::enqueue::MAX_PAYLOAD_BYTES;
use outbox_engine::{enqueue, enqueue_batch, EnqueueError, NewEvent, Relay, StoreError};
use support::*;

#[derive(diesel::QueryableByName)]
struct Parked {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    reason: String,
}

async fn parked_events(conn: &mut diesel_async::AsyncPgConnection) -> Vec<Parked> {
    diesel::sql_query("SELECT seq, reason FROM outbox_parked ORDER BY seq")
        .load(conn)
        .await
        .unwrap()
}

fn invalid_field(result: Result<i64, EnqueueError>) -> &'static str {
    match result {
        Err(EnqueueError::Invalid { field, .. }) => field,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[tokio::test]
async fn rust_enqueue_rejects_each_bad_field_and_writes_nothing() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let good = NewEvent::new("k", "orders", "Placed", b"x".to_vec());
    let cases = [
        (
            NewEvent {
                key: String::new(),
                ..good.clone()
            },
            "key",
        ),
        (
            NewEvent {
                topic: "no spaces allowed".into(),
                ..good.clone()
            },
            "topic",
        ),
        (
            NewEvent {
                topic: "persistent://only-two/parts".into(),
                ..good.clone()
            },
            "topic",
        ),
        (
            NewEvent {
                topic: "non-persistent://public/default/orders".into(),
                ..good.clone()
            },
            "topic",
        ),
        (
            NewEvent {
                event_type: String::new(),
                ..good.clone()
            },
            "event_type",
        ),
        (
            NewEvent {
                payload: vec![0; MAX_PAYLOAD_BYTES + 1],
                ..good.clone()
            },
            "payload",
        ),
        (good.clone().with_header("event_id", "mine"), "headers"),
    ];
    for (event, field) in cases {
        assert_eq!(invalid_field(enqueue(&mut conn, &event).await), field);
    }
    let batch = vec![
        good.clone(),
        NewEvent {
            key: String::new(),
            ..good.clone()
        },
    ];
    assert!(matches!(
        enqueue_batch(&mut conn, &batch).await,
        Err(EnqueueError::Invalid { field: "key", .. })
    ));
    assert_eq!(
        pending_count(&mut conn).await,
        0,
        "a rejected event was written"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn sql_function_rejects_bad_input_with_named_field() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let call = |key: &str, topic: &str, payload: Vec<u8>| {
        diesel::sql_query("SELECT outbox_enqueue($1, $2, 'Placed', $3)")
            .bind::<Text, _>(key.to_owned())
            .bind::<Text, _>(topic.to_owned())
            .bind::<Bytea, _>(payload)
    };
    let cases = [
        (call("", "orders", vec![1]), "key must not be empty"),
        (
            call("k", "bad topic", vec![1]),
            "is not a valid Pulsar topic name",
        ),
        (
            call("k", "orders", vec![0; MAX_PAYLOAD_BYTES + 1]),
            "exceeds the limit",
        ),
        (
            call("k", "non-persistent://public/default/orders", vec![1]),
            "is non-persistent",
        ),
    ];
    for (query, expected) in cases {
        let error = StoreError::from(query.execute(&mut conn).await.unwrap_err());
        assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    // Inside a transaction, the failure takes the business write down with it.
    let result: Result<(), diesel::result::Error> = conn
        .transaction(async |conn| {
            diesel::sql_query("CREATE TABLE biz (id int)")
                .execute(conn)
                .await?;
            diesel::sql_query("SELECT outbox_enqueue('', 'orders', 'Placed', '\\x00'::bytea)")
                .execute(conn)
                .await?;
            Ok(())
        })
        .await;
    assert!(result.is_err());
    assert!(
        diesel::sql_query("SELECT * FROM biz")
            .execute(&mut conn)
            .await
            .is_err(),
        "half-written transaction"
    );
    assert_eq!(pending_count(&mut conn).await, 0);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_the_broker_refuses_is_parked_without_blocking_other_keys() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("parking");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    // Same partition as the good events (one partition), enqueued before them.
    let refused = enqueue(
        &mut conn,
        &NewEvent::new(
            "poison",
            "persistent://no-such-tenant/no-such-ns/t",
            "X",
            b"p".to_vec(),
        ),
    )
    .await
    .unwrap();
    let mut good = HashSet::new();
    for i in 0..50 {
        good.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{i}"), topic.as_str(), "Y", b"g".to_vec()),
            )
            .await
            .unwrap(),
        );
    }
    let mut config = db.relay_config();
    config.partitions = 1;
    config.pulsar.operation_timeout_ms = 5_000;
    // A refusal that may heal is retried for the grace period (the range waits, nothing
    // is reordered); once it ends, the event is dead-lettered and the others go on.
    config.topic_refusal_grace_ms = 2_000;
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&good, Duration::from_secs(90))
        .await;
    assert!(
        subscription.ledger.missing(&good).is_empty(),
        "a refused topic blocked other keys past its grace period"
    );

    // Events are grouped by topic within a batch, so the refused one may be tried (and
    // parked) after the others went out: wait for it, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let parked: Vec<Parked> = loop {
        let parked = parked_events(&mut conn).await;
        if !parked.is_empty() || std::time::Instant::now() > deadline {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].seq, refused);
    assert!(
        parked[0].reason.contains("no-such-tenant"),
        "reason: {}",
        parked[0].reason
    );
    wait_until_drained(&mut conn).await;
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

fn relay_command(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PULSAR_URL")
        .output()
        .expect("cannot run outbox-relay");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn binary_rejects_bad_configuration_naming_the_field() {
    let dir = std::env::temp_dir().join(unique("cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "partitons = 4\n").unwrap();
    let (ok, stderr) = relay_command(&["--config", unknown.to_str().unwrap(), "status"]);
    assert!(!ok && stderr.contains("partitons"), "{stderr}");

    let (ok, stderr) = relay_command(&["--partitions", "0", "status"]);
    assert!(!ok && stderr.contains("partitions"), "{stderr}");
    let (ok, stderr) = relay_command(&["--partitions", "100000", "status"]);
    assert!(!ok && stderr.contains("partitions"), "{stderr}");
    let (ok, stderr) = relay_command(&["--database-url", "not a url", "status"]);
    assert!(!ok && stderr.contains("database_url"), "{stderr}");
    let (ok, stderr) = relay_command(&["--pulsar-url", "http://x:1", "status"]);
    assert!(!ok && stderr.contains("pulsar.url"), "{stderr}");
    let (ok, stderr) = relay_command(&["--config", "/no/such/file.toml", "status"]);
    assert!(!ok && stderr.contains("/no/such/file.toml"), "{stderr}");
}

#[test]
fn migrate_against_unreachable_database_exits_non_zero_with_reason() {
    let (ok, stderr) = relay_command(&[
        "--database-url",
        "postgres://u:secret@127.0.0.1:1/db",
        "migrate",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("unreachable") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
}

#[test]
fn contradicting_lease_timings_are_rejected_naming_the_field() {
    let dir = std::env::temp_dir().join(unique("cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lease.toml");
    std::fs::write(&file, "lease_ms = 2000\nlease_renew_interval_ms = 1000\n").unwrap();
    let (ok, stderr) = relay_command(&["--config", file.to_str().unwrap(), "run"]);
    assert!(
        !ok && stderr.contains("lease_renew_interval_ms"),
        "{stderr}"
    );
    std::fs::write(
        &file,
        "cycle_timeout_ms = 5000\n[pulsar]\noperation_timeout_ms = 30000\n",
    )
    .unwrap();
    let (ok, stderr) = relay_command(&["--config", file.to_str().unwrap(), "run"]);
    assert!(!ok && stderr.contains("cycle_timeout_ms"), "{stderr}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_at_start_not_retried_as_unreachable() {
    let db = TestDb::create().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("not-the-password")).unwrap();
    let (ok, stderr) = relay_command(&[
        "--database-url",
        url.as_str(),
        "--pulsar-url",
        &pulsar_url(),
        "run",
    ]);
    assert!(!ok, "the relay must refuse to start");
    assert!(
        stderr.contains("refused") && stderr.contains("28P01"),
        "the refusal does not say why: {stderr}"
    );
    assert!(!stderr.contains("unreachable"), "{stderr}");
    assert!(
        !stderr.contains("not-the-password"),
        "password leaked: {stderr}"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_relay_refuses_a_database_whose_schema_version_differs() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')")
        .execute(&mut conn)
        .await
        .unwrap();
    let (ok, stderr) = relay_command(&[
        "--database-url",
        &db.url,
        "--pulsar-url",
        &pulsar_url(),
        "run",
    ]);
    assert!(!ok, "the relay must refuse to start");
    assert!(
        stderr.contains("29991231000000") && stderr.contains("upgrade the relay"),
        "{stderr}"
    );
    db.drop_now().await;
}

#[tokio::test]
async fn a_whole_message_over_the_broker_limit_is_refused_at_enqueue() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    // The payload alone is within its limit; with a long key (sent twice) the message is not.
    let event = NewEvent::new(
        "k".repeat(40_000),
        "orders",
        "E",
        vec![b'x'; MAX_PAYLOAD_BYTES - 1_000],
    );
    assert_eq!(invalid_field(enqueue(&mut conn, &event).await), "event");
    let error = diesel::sql_query("SELECT outbox_enqueue($1, 'orders', 'E', $2)")
        .bind::<Text, _>(&event.key)
        .bind::<Bytea, _>(&event.payload)
        .execute(&mut conn)
        .await
        .unwrap_err();
    let error = StoreError::from(error).to_string();
    assert!(
        error.contains("message") && error.contains("broker limit"),
        "{error}"
    );
    assert_eq!(pending_count(&mut conn).await, 0);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_larger_than_the_broker_accepts_is_parked_and_blocks_nothing() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("too_big");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    // The broker here is configured (for this relay) to take at most 64 KiB.
    let big = enqueue(
        &mut conn,
        &NewEvent::new("big", topic.as_str(), "E", vec![b'x'; 100_000]),
    )
    .await
    .unwrap();
    let mut good = HashSet::new();
    for i in 0..20 {
        good.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{i}"), topic.as_str(), "E", b"g".to_vec()),
            )
            .await
            .unwrap(),
        );
    }
    let mut config = db.relay_config();
    config.partitions = 1;
    config.pulsar.max_message_bytes = 64 * 1024;
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&good, Duration::from_secs(60))
        .await;
    assert!(
        subscription.ledger.missing(&good).is_empty(),
        "the large event blocked its range"
    );
    wait_until_drained(&mut conn).await;
    let parked = parked_events(&mut conn).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].seq, big);
    assert!(
        parked[0].reason.contains("max_message_bytes"),
        "{}",
        parked[0].reason
    );
    assert!(!subscription.ledger.has_seen(big));
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_keeps_failing_is_parked_and_its_range_goes_on() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("keeps_failing");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    // Written around outbox_enqueue's checks, as a writer of another language might:
    // larger than the broker's 5 MiB limit, and the relay told the broker takes 100 MB,
    // so only the broker's refusals can stop it.
    #[derive(diesel::QueryableByName)]
    struct Seq {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let poison: Seq = diesel::sql_query(
        "INSERT INTO outbox_event (slot, seq, key, topic, event_type, payload) \
         VALUES (outbox_slot('poison'), nextval('outbox_seq'), 'poison', $1, 'E', $2) RETURNING seq",
    )
    .bind::<Text, _>(&topic)
    .bind::<Bytea, _>(vec![b'x'; 6 * 1024 * 1024])
    .get_result(&mut conn)
    .await
    .unwrap();
    let mut good = HashSet::new();
    for i in 0..50 {
        good.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{i}"), topic.as_str(), "E", b"g".to_vec()),
            )
            .await
            .unwrap(),
        );
    }
    let mut config = db.relay_config();
    config.partitions = 1;
    config.pulsar.max_message_bytes = 100 * 1024 * 1024;
    config.pulsar.operation_timeout_ms = 2_000;
    config.cycle_timeout_ms = 15_000;
    config.max_event_attempts = 3;
    config.retry_backoff_max_ms = 500;
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&good, Duration::from_secs(120))
        .await;
    assert!(
        subscription.ledger.missing(&good).is_empty(),
        "the failing event blocked its range for good"
    );
    wait_until_drained(&mut conn).await;
    let parked = parked_events(&mut conn).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].seq, poison.seq);
    assert!(
        parked[0].reason.contains("failed 3 times in a row"),
        "{}",
        parked[0].reason
    );
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulsar_token_is_used_but_never_printed_and_an_empty_token_file_is_refused() {
    let db = TestDb::create().await;
    // An empty token file: refused at start, naming the path.
    let empty = std::env::temp_dir().join(unique("token"));
    std::fs::write(&empty, "  \n").unwrap();
    let config = std::env::temp_dir().join(format!("{}.toml", unique("token-config")));
    std::fs::write(
        &config,
        format!(
            "[pulsar]\nauth_token_file = {:?}\n",
            empty.to_str().unwrap()
        ),
    )
    .unwrap();
    let (ok, stderr) = relay_command(&["--config", config.to_str().unwrap(), "status"]);
    assert!(
        !ok && stderr.contains(empty.to_str().unwrap()) && stderr.contains("empty"),
        "{stderr}"
    );

    // A valid token from the environment (the test broker checks tokens; see
    // pulsar_auth.rs): the relay publishes, and the token is in no output.
    let token_file = service_file("OUTBOX_PULSAR_AUTH_DIR", "pulsar-auth", "relay.token");
    let token = std::fs::read_to_string(token_file).unwrap();
    let secret = token.trim();
    let signature = secret.rsplit('.').next().unwrap().to_owned();
    let topic = unique("token");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    let mut committed = HashSet::new();
    for i in 0..10 {
        committed.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{i}"), topic.as_str(), "T", vec![i]),
            )
            .await
            .unwrap(),
        );
    }
    let log = std::env::temp_dir().join(unique("token-log"));
    let mut command = relay_binary(&db);
    command
        .env("PULSAR_AUTH_TOKEN", secret)
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .arg("run");
    let relay = KilledOnDrop::spawn(command);
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    drop(relay);
    let status = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &db.url, "status", "--json"])
        .env("PULSAR_AUTH_TOKEN", secret)
        .output()
        .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.is_empty(), "no debug log to check");
    for (what, text) in [
        ("relay log", logged),
        (
            "status",
            String::from_utf8_lossy(&status.stdout).into_owned(),
        ),
        (
            "status stderr",
            String::from_utf8_lossy(&status.stderr).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(&signature),
            "the token leaked into the {what}"
        );
    }
    let _ = std::fs::remove_file(log);
    db.drop_now().await;
}
