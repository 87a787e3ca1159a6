//! Errors of the storage layer. Every diesel and bb8 error is translated here, and only here.

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out, connection
    /// lost): transient, retried with backoff.
    #[error("PostgreSQL is unreachable: {0}")]
    Unavailable(String),
    /// The database refused input (a check in `outbox_validate`, for instance): permanent
    /// for that input; the message names the field.
    #[error("{message}{}", hint.as_deref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Rejected {
        /// PostgreSQL's message, starting with `outbox: ` and naming the field.
        message: String,
        /// What to do instead, when the function gives a hint.
        hint: Option<String>,
    },
    /// The server answered and refused this relay for good (wrong password, unknown
    /// role or database, no permission to connect): retrying cannot help.
    #[error("PostgreSQL refused the connection: {0}")]
    Refused(String),
    /// Schema missing or different from what this build expects.
    #[error("outbox schema problem: {0}")]
    Schema(String),
    /// This relay no longer holds the range's lease (taken over, or released): nothing
    /// was written, and the partition must stop.
    #[error("lease of range {range} at epoch {epoch} is no longer held: another relay took the range over")]
    Fenced {
        /// The slot range, as `start-end`.
        range: String,
        /// The lease epoch this relay held, now superseded.
        epoch: i64,
    },
    /// Any other query failure.
    #[error("query failed: {0}")]
    Query(String),
}

impl StoreError {
    /// True for [`StoreError::Unavailable`] and [`StoreError::Query`]: the same call may
    /// succeed later (retry with backoff). The other variants need a change of input,
    /// configuration, credentials or schema first.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Query(_))
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, info) => {
                let message = info.message().to_owned();
                if message.starts_with("outbox: ") {
                    StoreError::Rejected {
                        message,
                        hint: info.hint().map(str::to_owned),
                    }
                } else if message.contains("does not exist") {
                    StoreError::Schema(format!(
                        "{message}: run `outbox-relay migrate` (or outbox_engine::migrate) first"
                    ))
                } else {
                    StoreError::Query(message)
                }
            }
            other => StoreError::Query(other.to_string()),
        }
    }
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(error: diesel::ConnectionError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl From<bb8::RunError<diesel_async::pooled_connection::PoolError>> for StoreError {
    fn from(error: bb8::RunError<diesel_async::pooled_connection::PoolError>) -> Self {
        match error {
            bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
            bb8::RunError::TimedOut => {
                StoreError::Unavailable("timed out waiting for a database connection".into())
            }
        }
    }
}
