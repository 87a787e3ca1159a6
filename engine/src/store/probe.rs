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
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            // The connection ends once the client is gone.
            let _ = connection.await;
            Ok(())
        }
        Err(error) => Err(classify(url, &error)),
    }
}

fn classify(url: &str, error: &tokio_postgres::Error) -> StoreError {
    let shown = redact_url(url);
    let Some(code) = error.code() else {
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
