//! Pulsar token authentication against a broker that checks tokens:
//! `scripts/services/pulsar.sh` turns the test broker's token authentication on (HS256,
//! its own secret) with clients that present no token let in as "anonymous", and makes
//! a valid token and one signed with another key. Both producers publish with the valid
//! one; the forged one is refused by the broker, and the relay says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use outbox_adapters::pulsar::{ProducerKind, PublishError, PulsarPublisher, Secret};
use outbox_adapters::OutgoingEvent;
use outbox_engine::{enqueue_batch, NewEvent, Relay};
use support::*;

fn token(name: &str) -> String {
    let dir = std::env::var("OUTBOX_PULSAR_AUTH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/outbox-engine/pulsar-auth")
        });
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!(
                "no test token at {} ({e}): run `make services` (scripts/services/pulsar.sh makes it), or set OUTBOX_PULSAR_AUTH_DIR",
                path.display()
            )
        })
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_publish_with_a_valid_token() {
    init_tracing();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        let db = TestDb::create().await;
        let topic = unique("auth");
        let mut consumer = subscribe(&[&topic]).await;
        let mut conn = db.connect().await;
        let events: Vec<NewEvent> = (0..30)
            .map(|i| NewEvent::new(format!("k{}", i % 3), &topic, "Sent", vec![i as u8]))
            .collect();
        let committed: HashSet<i64> = enqueue_batch(&mut conn, &events)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let mut config = db.relay_config();
        config.pulsar.auth_token = Some(Secret::new(token("relay.token")));
        config.pulsar.producer = producer;
        let relay = Relay::start(config).expect("relay start");
        consumer
            .collect_until_seen(&committed, Duration::from_secs(60))
            .await;
        consumer.assert_exactly_committed_in_order(&committed);
        relay.shutdown().await.expect("graceful shutdown");
        drop(conn);
        db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_is_refused_by_the_broker_and_the_error_says_so() {
    init_tracing();
    let mut config = outbox_adapters::PulsarConfig {
        url: pulsar_url(),
        auth_token: Some(Secret::new(token("forged.token"))),
        operation_timeout_ms: 5_000,
        ..Default::default()
    };
    // The engine producer presents it in its CONNECT: the broker answers with an
    // authentication error.
    let client = pulsar().await; // no token: anonymous, only carries the stock path
    let mut publisher =
        PulsarPublisher::with_client(client, config.clone()).with_producer_name(unique("forged"));
    let event = OutgoingEvent {
        seq: 1,
        event_id: "00000000-0000-0000-0000-000000000002".into(),
        key: "k".into(),
        topic: unique("auth_refused"),
        event_type: "Sent".into(),
        payload: vec![1],
        headers: Default::default(),
        sequence_id: 1,
    };
    let outcome = publisher.publish(vec![event], || true).await;
    assert_eq!(
        outcome.acknowledged, 0,
        "the broker accepted a forged token"
    );
    let failure = outcome.failure.expect("a refusal");
    let message = failure.to_string();
    assert!(
        message.contains("refused the client's credentials")
            && message.contains("PULSAR_AUTH_TOKEN"),
        "the error does not say what to fix: {message}"
    );
    // A connection problem, waited out: not a refusal of the topic, which would
    // dead-letter the events after the grace period.
    assert!(
        matches!(failure, PublishError::ProducerUnavailable { .. }),
        "{failure:?}"
    );

    // The stock client is refused when it connects.
    config.producer = ProducerKind::Stock;
    let refused = outbox_adapters::pulsar::connect(&config).await;
    assert!(
        refused.is_err(),
        "the stock client got in with a forged token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_a_forged_token_waits_and_dead_letters_nothing() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("auth_wait");
    let mut conn = db.connect().await;
    let events: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent::new("k", &topic, "Sent", vec![i as u8]))
        .collect();
    enqueue_batch(&mut conn, &events).await.unwrap();
    let mut config = db.relay_config();
    config.pulsar.auth_token = Some(Secret::new(token("forged.token")));
    // No grace at all: a refusal of the topic would dead-letter at once.
    config.topic_refusal_grace_ms = 0;
    let relay = Relay::start(config).expect("relay start");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !relay.health().ready,
        "ready with credentials the broker refuses"
    );
    relay.shutdown().await.expect("graceful shutdown");
    assert_eq!(pending_count(&mut conn).await, 5, "events left the outbox");
    let status = outbox_engine::store::status(&mut conn).await.unwrap();
    assert_eq!(
        status.parked, 0,
        "events were dead-lettered over credentials"
    );
    drop(conn);
    db.drop_now().await;
}
