//! TLS to the broker (`pulsar+ssl://`) for the engine producer's wire.
//!
//! Contract: [`connector`] trusts the certificate authorities of
//! `pulsar.tls_trust_certs_file` only (else the system's roots), requires TLS 1.2 or
//! later, and verifies the broker's host name unless `tls_hostname_verification` is off.
//! A handshake failure is a configuration error, reported with what to check.

use super::super::PulsarConfig;

/// The certificates of a PEM bundle; an unreadable, empty or malformed file is an error
/// naming the path.
pub fn read_trust_certs(path: &str) -> Result<Vec<native_tls::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!("pulsar.tls_trust_certs_file {path:?} cannot be read ({e}): give the path of a PEM file of CA certificates")
    })?;
    let certificates = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
        format!("pulsar.tls_trust_certs_file {path:?} is not a PEM certificate bundle ({e})")
    })?;
    if certificates.is_empty() {
        return Err(format!(
            "pulsar.tls_trust_certs_file {path:?} holds no certificate"
        ));
    }
    Ok(certificates)
}

/// Whether `url` asks for TLS (`pulsar+ssl://`).
pub fn is_tls(url: &str) -> bool {
    url.starts_with("pulsar+ssl://")
}

/// The TLS connector for `config`'s broker.
pub fn connector(config: &PulsarConfig) -> Result<tokio_native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if let Some(path) = &config.tls_trust_certs_file {
        builder.disable_built_in_roots(true);
        for certificate in read_trust_certs(path)? {
            builder.add_root_certificate(certificate);
        }
    }
    builder.danger_accept_invalid_hostnames(!config.tls_hostname_verification);
    builder
        .build()
        .map(Into::into)
        .map_err(|e| format!("cannot set up TLS to the broker: {e}"))
}
