//! Mutual TLS to Pulsar against the real broker: `scripts/services/pulsar.sh` makes the
//! broker ask TLS clients for a certificate, check any they present against its CA, and
//! accept Pulsar's `tls` authentication method (the role is the certificate's CN). The
//! relay presents `client.crt` (signed by that CA) and authenticates with it, through
//! both producers; the broker refuses the `tls` method from a client that presents no
//! certificate (so the deliveries prove the certificate was presented and checked), and
//! refuses a certificate of a CA it does not trust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use outbox_adapters::pulsar::engine::{tls, Dial, Wire};
use outbox_adapters::pulsar::{ProducerKind, PulsarConfig};
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

/// A TLS configuration trusting the broker's CA and presenting the client certificate
/// `name` (`client`: the broker's CA; `stranger`: another CA).
fn mtls_config(name: &str) -> PulsarConfig {
    PulsarConfig {
        url: tls_url(),
        tls_trust_certs_file: Some(tls_file("ca.crt")),
        tls_cert_file: Some(tls_file(&format!("{name}.crt"))),
        tls_key_file: Some(tls_file(&format!("{name}.key"))),
        operation_timeout_ms: 5_000,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_deliver_authenticated_by_their_client_certificate() {
    init_tracing();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        // The consumer reads on the plain port: the broker is one.
        relay_delivers_in_order(|config| {
            config.pulsar = PulsarConfig {
                producer,
                ..mtls_config("client")
            };
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_refuses_the_tls_method_without_a_certificate() {
    init_tracing();
    let config = mtls_config("client");
    let timeout = Duration::from_secs(5);

    // The relay's own wire, with the certificate: connected and authenticated.
    let dial = Dial {
        tls: Some(tls::connector(&config).unwrap()),
        tls_authentication: true,
        ..Default::default()
    };
    let wire = Wire::open(&config.url, timeout, &dial)
        .await
        .expect("the broker refused the relay's client certificate");
    assert!(!wire.is_broken());
    wire.break_off();

    // The same, presenting no certificate: the broker has nothing to authenticate, so
    // the deliveries above cannot have passed without the certificate.
    let without = PulsarConfig {
        tls_cert_file: None,
        tls_key_file: None,
        ..config
    };
    let dial = Dial {
        tls: Some(tls::connector(&without).unwrap()),
        tls_authentication: true,
        ..Default::default()
    };
    let Err(refused) = Wire::open(&without.url, timeout, &dial).await else {
        panic!("the broker authenticated a client that presented no certificate");
    };
    assert!(
        refused.to_string().contains("Failed to authenticate"),
        "unexpected refusal: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_a_ca_the_broker_does_not_trust_is_refused() {
    init_tracing();
    let config = mtls_config("stranger");
    config.validate().expect("a well-formed identity");
    let dial = Dial {
        tls: Some(tls::connector(&config).unwrap()),
        tls_authentication: true,
        ..Default::default()
    };
    let Err(refused) = Wire::open(&config.url, Duration::from_secs(5), &dial).await else {
        panic!("the broker accepted a certificate of a CA it does not trust");
    };
    let message = refused.to_string();
    assert!(
        message.contains("pulsar.tls_cert_file"),
        "the error does not say what to check: {message}"
    );

    // The stock client is refused as well.
    let stock = PulsarConfig {
        producer: ProducerKind::Stock,
        ..config
    };
    assert!(
        outbox_adapters::pulsar::connect(&stock).await.is_err(),
        "the stock client got in with a stranger's certificate"
    );
}

#[test]
fn a_bad_client_identity_is_refused_at_validation_naming_the_field() {
    let refused = |config: PulsarConfig, expected: &[&str]| {
        let error = config.validate().expect_err("an invalid identity");
        for part in expected {
            assert!(error.contains(part), "{part:?} missing from: {error}");
        }
        // Never the key itself.
        assert!(!error.contains("PRIVATE KEY"), "{error}");
    };
    refused(
        PulsarConfig {
            tls_key_file: None,
            ..mtls_config("client")
        },
        &["pulsar.tls_key_file"],
    );
    refused(
        PulsarConfig {
            tls_cert_file: None,
            ..mtls_config("client")
        },
        &["pulsar.tls_cert_file"],
    );
    refused(
        PulsarConfig {
            tls_key_file: Some("/nonexistent/client.key".into()),
            ..mtls_config("client")
        },
        &["pulsar.tls_key_file", "/nonexistent/client.key"],
    );
    // A key of another pair.
    refused(
        PulsarConfig {
            tls_key_file: Some(tls_file("stranger.key")),
            ..mtls_config("client")
        },
        &["do not form a client identity"],
    );
    // A client certificate on a plain connection would never be presented.
    refused(
        PulsarConfig {
            url: "pulsar://127.0.0.1:6650".into(),
            tls_trust_certs_file: None,
            ..mtls_config("client")
        },
        &["pulsar.tls_cert_file", "not TLS"],
    );
}
