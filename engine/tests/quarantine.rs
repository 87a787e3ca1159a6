//! Per-key quarantine against the real services: an event that fails for good holds
//! back only its key; `outbox-relay dlq replay` resumes the key in order, `dlq skip`
//! drops the dead letter and releases what it held; a topic refusal that heals within
//! the grace period loses and reorders nothing, with the alert metric up meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use outbox_engine::store::dead_letters::{self, Entry, Selection};
use outbox_engine::{enqueue, NewEvent, Relay};
use support::*;

fn admin_url() -> String {
    std::env::var("PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

fn admin(method: &str, path: &str, body: Option<&str>) {
    let url = format!("{}{path}", admin_url());
    let mut command = Command::new("curl");
    command.args(["-sf", "-X", method, &url]);
    if let Some(body) = body {
        command.args(["-H", "Content-Type: application/json", "-d", body]);
    }
    let status = command
        .status()
        .expect("curl is needed (installed by scripts/services)");
    assert!(status.success(), "Pulsar admin {method} {url} failed");
}

/// A namespace where topics are not created on first use: a topic there is refused
/// (topic not found) until it is created.
fn namespace_without_auto_creation() -> String {
    let namespace = unique("noauto");
    admin(
        "PUT",
        &format!("/admin/v2/namespaces/public/{namespace}"),
        None,
    );
    admin(
        "POST",
        &format!("/admin/v2/namespaces/public/{namespace}/autoTopicCreation"),
        Some(r#"{"allowAutoTopicCreation": false}"#),
    );
    namespace
}

fn create_topic(topic: &str) {
    let path = topic.trim_start_matches("persistent://");
    admin("PUT", &format!("/admin/v2/persistent/{path}"), None);
}

async fn event(conn: &mut AsyncPgConnection, key: &str, topic: &str, payload: Vec<u8>) -> i64 {
    enqueue(conn, &NewEvent::new(key, topic, "T", payload))
        .await
        .unwrap()
}

async fn entries(conn: &mut AsyncPgConnection, selection: Selection) -> Vec<Entry> {
    dead_letters::entries(conn, &selection, true).await.unwrap()
}

/// Waits (bounded) until `key` has `count` entries.
async fn wait_for_entries(conn: &mut AsyncPgConnection, key: &str, count: usize) -> Vec<Entry> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = entries(conn, Selection::Key(key.into())).await;
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `outbox-relay dlq ...`; returns (exit code, stdout, stderr).
fn dlq(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &db.url, "dlq"])
        .args(args)
        .output()
        .expect("cannot run outbox-relay");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn wait_for_quarantine_lifted(conn: &mut AsyncPgConnection, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = entries(conn, Selection::Key(key.into())).await;
        if found
            .iter()
            .all(|e| e.resolution.is_some() && !e.key_quarantined)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "key {key} still quarantined: {:?}",
            found
                .iter()
                .map(|e| (e.seq, &e.resolution))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sequence numbers received on `topic`, first deliveries, in arrival order.
fn received_on(subscription: &Subscription, topic: &str) -> Vec<i64> {
    let mut seen = HashSet::new();
    subscription
        .events
        .iter()
        .filter(|e| e.topic.ends_with(topic.trim_start_matches("persistent://")))
        .filter(|e| seen.insert(e.seq))
        .map(|e| e.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_quarantines_only_its_key_and_replay_resumes_it_in_order() {
    init_tracing();
    let db = TestDb::create().await;
    let namespace = namespace_without_auto_creation();
    let missing = format!("persistent://public/{namespace}/not-yet");
    let open = unique("open");
    let mut subscription = subscribe(&[&open]).await;
    let mut conn = db.connect().await;

    // The poison key: its first event goes to a topic the broker refuses, its second to
    // the same topic; other keys flow around it.
    let poisoned = "poisoned-key";
    let dead = event(&mut conn, poisoned, &missing, b"first".to_vec()).await;
    let mut others = HashSet::new();
    let mut held = Vec::new();
    for i in 0..40 {
        others.insert(event(&mut conn, &format!("k{}", i % 8), &open, vec![1]).await);
        if i == 10 {
            held.push(event(&mut conn, poisoned, &missing, b"second".to_vec()).await);
        }
    }

    let mut config = db.relay_config();
    config.partitions = 1;
    config.topic_refusal_grace_ms = 0;
    config.pulsar.operation_timeout_ms = 5_000;
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&others, Duration::from_secs(90))
        .await;
    assert!(
        subscription.ledger.missing(&others).is_empty(),
        "a quarantined key held back other keys"
    );
    assert_eq!(wait_for_entries(&mut conn, poisoned, 2).await.len(), 2);

    // A later event of the key on a topic that works waits too; other keys still flow.
    held.push(event(&mut conn, poisoned, &open, b"third".to_vec()).await);
    let mut more = HashSet::new();
    for i in 0..10 {
        more.insert(event(&mut conn, &format!("k{i}"), &open, vec![2]).await);
    }
    subscription
        .collect_until_seen(&more, Duration::from_secs(60))
        .await;
    assert!(subscription.ledger.missing(&more).is_empty());
    let found = wait_for_entries(&mut conn, poisoned, 3).await;
    let states: Vec<(i64, &str)> = found.iter().map(|e| (e.seq, e.state.as_str())).collect();
    assert_eq!(
        states,
        vec![(dead, "dead"), (held[0], "held"), (held[1], "held")],
        "the dead letter and the key's later events, held behind it in order"
    );
    assert!(found[0].reason.contains("not-yet"), "{}", found[0].reason);
    assert!(found.iter().all(|e| e.key_quarantined));
    subscription.drain(Duration::from_secs(2)).await;
    assert!(
        !subscription.ledger.has_seen(held[1]),
        "an event of a quarantined key went out ahead of its dead letter"
    );
    wait_until_drained(&mut conn).await;

    // Bad input: nothing matches, nothing changes.
    let (code, _, stderr) = dlq(&db, &["replay", "--key", "no-such-key"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no-such-key"), "{stderr}");
    let (code, _, stderr) = dlq(&db, &["skip", "--seq", &held[0].to_string()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("held behind"), "{stderr}");
    let (code, _, _) = dlq(&db, &["show", "--seq", "999999999"]);
    assert_eq!(code, 3);
    let (code, stdout, _) = dlq(&db, &["list", "--json"]);
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 3);

    // The topic arrives; the operator replays the key: dead letter first, then what it
    // held, then the key's new events.
    create_topic(&missing);
    let mut refused_topic = subscribe(&[&missing]).await;
    let (code, stdout, stderr) = dlq(&db, &["replay", "--key", poisoned]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    wait_for_quarantine_lifted(&mut conn, poisoned).await;
    let after = event(&mut conn, poisoned, &missing, b"fourth".to_vec()).await;
    let expected: HashSet<i64> = [dead, held[0], after].into();
    refused_topic
        .collect_until_seen(&expected, Duration::from_secs(60))
        .await;
    assert_eq!(
        received_on(&refused_topic, &missing),
        vec![dead, held[0], after],
        "the key resumed out of order"
    );
    subscription
        .collect_until_seen(&[held[1]].into(), Duration::from_secs(60))
        .await;
    assert!(subscription.ledger.has_seen(held[1]));
    let resolved = entries(&mut conn, Selection::Key(poisoned.into())).await;
    assert!(resolved
        .iter()
        .all(|e| e.resolution.as_deref() == Some("replayed")));
    assert!(subscription.ledger.reorders.is_empty());
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_drops_the_dead_letter_with_a_record_and_releases_what_it_held() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("skip");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    let key = "too-big-key";
    let dead = event(&mut conn, key, &topic, vec![7; 100_000]).await;
    let behind = event(&mut conn, key, &topic, b"small".to_vec()).await;
    let other = event(&mut conn, "other", &topic, b"x".to_vec()).await;

    let mut config = db.relay_config();
    config.partitions = 1;
    config.pulsar.max_message_bytes = 65_536;
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&[other].into(), Duration::from_secs(60))
        .await;
    let found = wait_for_entries(&mut conn, key, 2).await;
    assert_eq!(found.len(), 2);
    assert!(found[0].reason.contains("exceeds"), "{}", found[0].reason);
    assert!(!subscription.ledger.has_seen(behind));

    let (code, stdout, stderr) = dlq(&db, &["skip", "--seq", &dead.to_string(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let change: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(change["skipped"], serde_json::json!([dead]));
    subscription
        .collect_until_seen(&[behind].into(), Duration::from_secs(60))
        .await;
    assert!(
        subscription.ledger.has_seen(behind),
        "the held event was not released"
    );
    assert!(!subscription.ledger.has_seen(dead));
    wait_for_quarantine_lifted(&mut conn, key).await;
    let record = entries(&mut conn, Selection::Seq(dead)).await;
    assert_eq!(record[0].resolution.as_deref(), Some("skipped"));
    assert!(record[0]
        .resolved_by
        .as_deref()
        .is_some_and(|by| by.contains('@')));
    // Skipping it again changes nothing.
    let (code, _, stderr) = dlq(&db, &["skip", "--seq", &dead.to_string()]);
    assert_eq!(code, 3, "{stderr}");
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}

/// The value of the sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_arrives_within_the_grace_period_loses_and_reorders_nothing() {
    init_tracing();
    let db = TestDb::create().await;
    let namespace = namespace_without_auto_creation();
    let topic = format!("persistent://public/{namespace}/late");
    let mut conn = db.connect().await;
    let mut committed = HashSet::new();
    for i in 0..60 {
        committed.insert(event(&mut conn, &format!("k{}", i % 6), &topic, vec![i as u8]).await);
    }
    let mut config = db.relay_config();
    config.partitions = 1;
    config.topic_refusal_grace_ms = 600_000;
    let relay = Relay::start(config).expect("relay start");
    let alert = format!("outbox_topic_refused{{topic=\"{topic}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample(&relay.metrics_text(), &alert) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "no refusal alert for {topic}:\n{}",
            relay.metrics_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending_count(&mut conn).await, 60, "something left early");
    // `status` says why the range is not moving.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = outbox_engine::store::status(&mut conn).await.unwrap();
        let reasons: Vec<String> = status
            .ranges
            .iter()
            .filter_map(|r| r.last_error.clone())
            .collect();
        if reasons.iter().any(|r| r.contains("refuses topic")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status shows no reason: {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    create_topic(&topic);
    let mut subscription = subscribe(&[&topic]).await;
    subscription
        .collect_until_seen(&committed, Duration::from_secs(90))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    assert!(entries(&mut conn, Selection::All).await.is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    while sample(&relay.metrics_text(), &alert) != Some(0.0) {
        assert!(Instant::now() < deadline, "the refusal alert stayed up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = outbox_engine::store::status(&mut conn).await.unwrap();
        if status.ranges.iter().all(|r| r.last_error.is_none()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the range's failure was not cleared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.shutdown().await.unwrap();
    db.drop_now().await;
}
