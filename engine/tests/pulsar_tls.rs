//! TLS to Pulsar against the real broker: `scripts/services/pulsar.sh` opens a TLS port
//! (6651) with a certificate of its own CA naming 127.0.0.1 and localhost. Both
//! producers deliver over `pulsar+ssl://` trusting that CA; a broker signed by a CA the
//! relay does not trust is refused, with an error that says what to check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use outbox_adapters::pulsar::{ProducerKind, PulsarPublisher};
use outbox_adapters::OutgoingEvent;
use support::*;

fn tls_file(name: &str) -> String {
    service_file("OUTBOX_PULSAR_TLS_DIR", "pulsar-tls", name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn tls_url() -> String {
    std::env::var("OUTBOX_PULSAR_TLS_URL").unwrap_or_else(|_| "pulsar+ssl://127.0.0.1:6651".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_deliver_over_tls_trusting_the_brokers_ca() {
    init_tracing();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        // The consumer reads on the plain port: the broker is one.
        relay_delivers_in_order(|config| {
            config.pulsar.url = tls_url();
            config.pulsar.tls_trust_certs_file = Some(tls_file("ca.crt"));
            config.pulsar.producer = producer;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_signed_by_an_untrusted_ca_is_refused_naming_what_to_check() {
    init_tracing();
    let other_ca = tls_file("other-ca.crt");
    let mut config = outbox_adapters::PulsarConfig {
        url: tls_url(),
        tls_trust_certs_file: Some(other_ca),
        producer: ProducerKind::Engine,
        operation_timeout_ms: 5_000,
        ..Default::default()
    };
    config.validate().expect("a valid configuration");
    let client = pulsar().await; // plain port: the stock client is not what is tested here
    let mut publisher = PulsarPublisher::with_client(client, config.clone())
        .with_producer_name(unique("tls-producer"));
    let topic = unique("tls_refused");
    let event = OutgoingEvent {
        seq: 1,
        event_id: "00000000-0000-0000-0000-000000000001".into(),
        key: "k".into(),
        topic,
        event_type: "Sent".into(),
        payload: vec![1],
        headers: Default::default(),
        sequence_id: 1,
    };
    let outcome = publisher.publish(vec![event], || true).await;
    assert_eq!(outcome.acknowledged, 0);
    let message = outcome
        .failure
        .expect("an untrusted broker must be refused")
        .to_string();
    assert!(
        message.contains("TLS handshake failed") && message.contains("tls_trust_certs_file"),
        "unclear error: {message}"
    );

    // The stock client refuses it as well, when it connects.
    config.producer = ProducerKind::Stock;
    let refused = outbox_adapters::pulsar::connect(&config).await;
    assert!(
        refused.is_err(),
        "the stock client accepted an untrusted broker"
    );

    // A trust file that is not there is refused at validation, naming the key.
    config.tls_trust_certs_file = Some("/nonexistent/ca.crt".into());
    let invalid = config.validate().expect_err("a missing CA file");
    assert!(invalid.contains("pulsar.tls_trust_certs_file"), "{invalid}");
}
