//! TLS to Pulsar against the real broker: `scripts/services/pulsar.sh` opens a TLS port
//! (6651) with a certificate of its own CA naming 127.0.0.1 and localhost. Both
//! producers deliver over `pulsar+ssl://` trusting that CA; a broker signed by a CA the
//! relay does not trust is refused, with an error that says what to check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use outbox_adapters::pulsar::{ProducerKind, PulsarPublisher};
use outbox_adapters::OutgoingEvent;
use outbox_engine::{enqueue_batch, NewEvent, Relay};
use support::*;

fn tls_dir() -> PathBuf {
    let dir = std::env::var("OUTBOX_PULSAR_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/outbox-engine/pulsar-tls")
        });
    assert!(
        dir.join("ca.crt").is_file(),
        "no broker TLS material in {}: run `make services` (scripts/services/pulsar.sh makes it), or set OUTBOX_PULSAR_TLS_DIR and OUTBOX_PULSAR_TLS_URL",
        dir.display()
    );
    dir
}

fn tls_url() -> String {
    std::env::var("OUTBOX_PULSAR_TLS_URL").unwrap_or_else(|_| "pulsar+ssl://127.0.0.1:6651".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_deliver_over_tls_trusting_the_brokers_ca() {
    init_tracing();
    let ca = tls_dir().join("ca.crt").to_str().unwrap().to_owned();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        let db = TestDb::create().await;
        let topic = unique("tls");
        // The consumer reads on the plain port: the broker is one.
        let mut consumer = subscribe(&[&topic]).await;
        let mut conn = db.connect().await;
        let events: Vec<NewEvent> = (0..40)
            .map(|i| NewEvent::new(format!("k{}", i % 4), &topic, "Sent", vec![i as u8]))
            .collect();
        let committed: HashSet<i64> = enqueue_batch(&mut conn, &events)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let mut config = db.relay_config();
        config.pulsar.url = tls_url();
        config.pulsar.tls_trust_certs_file = Some(ca.clone());
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
async fn a_broker_signed_by_an_untrusted_ca_is_refused_naming_what_to_check() {
    init_tracing();
    let other_ca = tls_dir().join("other-ca.crt").to_str().unwrap().to_owned();
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
