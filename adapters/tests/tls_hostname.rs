//! Hostname verification of the engine producer's TLS: a TLS server on 127.0.0.1 whose
//! certificate is signed by the trusted CA but names another host
//! (`scripts/services/pulsar.sh` makes it) is refused; with
//! `tls_hostname_verification = false` the handshake goes through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use outbox_adapters::pulsar::engine::{tls, Dial, Wire, WireError};
use outbox_adapters::PulsarConfig;

fn tls_file(name: &str) -> PathBuf {
    let dir = std::env::var("OUTBOX_PULSAR_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/outbox-engine/pulsar-tls")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make services` (scripts/services/pulsar.sh makes it), or set OUTBOX_PULSAR_TLS_DIR",
        path.display()
    );
    path
}

/// Serves TLS with the "elsewhere.example" certificate on a free port; every connection
/// is closed right after its handshake.
async fn impostor() -> u16 {
    let cert = std::fs::read(tls_file("elsewhere.crt")).unwrap();
    let key = std::fs::read(tls_file("elsewhere.key")).unwrap();
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).unwrap();
    let acceptor: tokio_native_tls::TlsAcceptor =
        native_tls::TlsAcceptor::new(identity).unwrap().into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    port
}

async fn open(port: u16, verify_hostname: bool) -> Result<Wire, WireError> {
    let config = PulsarConfig {
        url: format!("pulsar+ssl://127.0.0.1:{port}"),
        tls_trust_certs_file: Some(tls_file("ca.crt").to_str().unwrap().to_owned()),
        tls_hostname_verification: verify_hostname,
        ..Default::default()
    };
    let dial = Dial {
        tls: Some(tls::connector(&config).unwrap()),
        ..Default::default()
    };
    Wire::open(&config.url, Duration::from_secs(5), &dial).await
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_unless_verification_is_off() {
    let port = impostor().await;
    let refused = open(port, true)
        .await
        .expect_err("a certificate for another host");
    let message = refused.to_string();
    assert!(
        message.contains("TLS handshake failed") && message.contains("127.0.0.1"),
        "{message}"
    );

    // Without verification the handshake succeeds; the impostor then hangs up before
    // answering CONNECT, which is reported as a closed connection, not a TLS error.
    let outcome = open(port, false).await;
    match outcome {
        Err(WireError::Lost) | Err(WireError::Timeout(_)) => {}
        Err(WireError::Connect { reason, .. })
            if reason.contains("closed the connection before accepting it")
                && !reason.contains("TLS handshake failed") => {}
        other => panic!("expected the handshake to pass and the connection to end: {other:?}"),
    }
}
