//! The start-up probe: one connection, classified by SQLSTATE.
//!
//! diesel-async keeps only the message of a connection error, so the probe connects
//! with `tokio-postgres` (the driver underneath) and reads the code: authentication and
//! authorisation failures, or a database that does not exist, are permanent
//! ([`StoreError::Refused`]); a server that does not answer is [`StoreError::Unavailable`],
//! which the relay waits out.

use tokio_postgres::error::SqlState;

use super::{redact_url, StoreError};

/// Connects once and disconnects.
pub async fn probe(url: &str) -> Result<(), StoreError> {
    let target = super::tls::Target::parse(url)?;
    target.probe().await.map_err(|error| classify(url, &error))
}

fn classify(url: &str, error: &tokio_postgres::Error) -> StoreError {
    let shown = redact_url(url);
    let Some(code) = error.code() else {
        if tls_handshake_failed(error) {
            // A certificate the client does not trust (or that does not name the host),
            // or a server that refuses ours: configuration, not an outage.
            return StoreError::Refused(format!(
                "{shown}: the TLS handshake failed ({error}): check sslmode, sslrootcert, sslcert and sslkey"
            ));
        }
        return StoreError::Unavailable(format!("{shown}: {error}"));
    };
    let reason = error
        .as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| error.to_string());
    let permanent = [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::INVALID_CATALOG_NAME,
        SqlState::INSUFFICIENT_PRIVILEGE,
    ];
    if permanent.contains(code) {
        StoreError::Refused(format!(
            "{shown}: {reason} (SQLSTATE {}): check the user, password and database name",
            code.code()
        ))
    } else {
        StoreError::Unavailable(format!("{shown}: {reason} (SQLSTATE {})", code.code()))
    }
}

/// True when an OpenSSL handshake error is in the error's chain.
fn tls_handshake_failed(error: &tokio_postgres::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(ssl) = current.downcast_ref::<openssl::ssl::Error>() {
            return ssl.code() == openssl::ssl::ErrorCode::SSL;
        }
        source = current.source();
    }
    false
}
