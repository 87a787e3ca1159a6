//! TLS to the broker (`pulsar+ssl://`) for the engine producer's wire.
//!
//! Contract: [`connector`] trusts the certificate authorities of
//! `pulsar.tls_trust_certs_file` only (else the system's roots), requires TLS 1.2 or
//! later, and verifies the broker's host name unless `tls_hostname_verification` is off.
//! With `pulsar.tls_cert_file` and `tls_key_file` it presents that client certificate
//! to brokers that ask for one (mutual TLS).
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

/// The client certificate and key of `pulsar.tls_cert_file` / `pulsar.tls_key_file`
/// (PEM; the key in PKCS#8), checked to form a usable identity; `None` when neither is
/// set. One without the other, or a file that cannot be read or parsed, is an error
/// naming the field and path.
pub fn read_client_identity(
    config: &PulsarConfig,
) -> Result<Option<pulsar::ClientIdentity>, String> {
    let (certificate_path, key_path) = match (&config.tls_cert_file, &config.tls_key_file) {
        (None, None) => return Ok(None),
        (Some(certificate), Some(key)) => (certificate, key),
        (Some(_), None) => {
            return Err("pulsar.tls_cert_file is set without pulsar.tls_key_file: give both (PEM certificate chain and PEM PKCS#8 private key)".into())
        }
        (None, Some(_)) => {
            return Err("pulsar.tls_key_file is set without pulsar.tls_cert_file: give both (PEM certificate chain and PEM PKCS#8 private key)".into())
        }
    };
    let read = |field: &str, path: &str| {
        std::fs::read(path).map_err(|e| {
            format!("pulsar.{field} {path:?} cannot be read ({e}): give the path of a PEM file")
        })
    };
    let certificate_chain = read("tls_cert_file", certificate_path)?;
    let private_key = read("tls_key_file", key_path)?;
    // Errors of the TLS stack name no secret; they say which half is wrong.
    // Building a connector checks that the key belongs to the certificate.
    native_tls::Identity::from_pkcs8(&certificate_chain, &private_key)
        .and_then(|identity| native_tls::TlsConnector::builder().identity(identity).build())
        .map_err(|e| {
            format!("pulsar.tls_cert_file {certificate_path:?} and pulsar.tls_key_file {key_path:?} do not form a client identity ({e}): the certificate must be PEM and the key PEM PKCS#8 (`openssl pkcs8 -topk8 -nocrypt` converts one), of the same pair")
        })?;
    Ok(Some(pulsar::ClientIdentity {
        certificate_chain,
        private_key,
    }))
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
    if let Some(identity) = read_client_identity(config)? {
        let identity =
            native_tls::Identity::from_pkcs8(&identity.certificate_chain, &identity.private_key)
                .map_err(|e| format!("pulsar.tls_cert_file / tls_key_file: {e}"))?;
        builder.identity(identity);
    }
    builder.danger_accept_invalid_hostnames(!config.tls_hostname_verification);
    builder
        .build()
        .map(Into::into)
        .map_err(|e| format!("cannot set up TLS to the broker: {e}"))
}
