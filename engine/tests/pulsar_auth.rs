//! Pulsar token authentication against a broker that checks tokens:
//! `scripts/services/pulsar.sh` turns the test broker's token authentication on (HS256,
//! its own secret) with clients that present no token let in as "anonymous", and makes
//! a valid token and one signed with another key. Both producers publish with the valid
//! one; the forged one is refused by the broker, and the relay says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use outbox_adapters::pulsar::{ProducerKind, PublishError, PulsarPublisher, Secret};
use outbox_adapters::OutgoingEvent;
use support::*;

fn token(name: &str) -> String {
    let path = service_file("OUTBOX_PULSAR_AUTH_DIR", "pulsar-auth", name);
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_publish_with_a_valid_token() {
    init_tracing();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        relay_delivers_in_order(|config| {
            config.pulsar.auth_token = Some(Secret::new(token("relay.token")));
            config.pulsar.producer = producer;
        })
        .await;
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
    relay_waits_without_dead_letters(|config| {
        config.pulsar.auth_token = Some(Secret::new(token("forged.token")));
    })
    .await;
}
