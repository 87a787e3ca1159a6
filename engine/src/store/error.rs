//! Errors of the storage layer. Every diesel and bb8 error is translated here, and only
//! here, by SQLSTATE (never by message text, which the server translates):
//!
//! | SQLSTATE | variant | policy |
//! |---|---|---|
//! | class 08, 57P01-57P03, 25006, no code (I/O) | [`StoreError::Unavailable`] | retried with backoff |
//! | 55P03, 57014, 40001, 40P01 | [`StoreError::Busy`] | retried with backoff |
//! | class 28, 42501, 3D000 | [`StoreError::Refused`] | retried for `database_refusal_grace_ms`, then the relay stops |
//! | 42P01, 42883, 42703, 42704, 3F000 | [`StoreError::Schema`] | as `Refused` (a migration may lag a deploy) |
//! | an `outbox: ` message (the engine's own checks) | [`StoreError::Rejected`] | permanent for that input |
//! | any other | [`StoreError::Query`] | retried with backoff |

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out, connection
    /// lost, server shutting down or read-only): transient, retried with backoff.
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
    /// The server answered and refused this role (wrong password, unknown role or
    /// database, no permission on an outbox table or function): retrying cannot help
    /// until someone changes credentials or grants.
    #[error("PostgreSQL refused the role: {0}")]
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
    /// A lock or statement timeout, a deadlock or a serialization failure: the same
    /// statement may succeed when tried again.
    #[error("PostgreSQL was busy: {0}")]
    Busy(String),
    /// Any other query failure.
    #[error("query failed: {0}")]
    Query(String),
}

impl StoreError {
    /// True for [`StoreError::Unavailable`], [`StoreError::Busy`] and
    /// [`StoreError::Query`]: the same call may succeed later (retry with backoff). The
    /// other variants need a change of input, configuration, credentials, grants or
    /// schema first.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Busy(_) | StoreError::Query(_)
        )
    }

    /// True for a refusal that a grant or a migration can heal while the relay waits
    /// ([`StoreError::Refused`], [`StoreError::Schema`]).
    pub fn is_refusal(&self) -> bool {
        matches!(self, StoreError::Refused(_) | StoreError::Schema(_))
    }
}

/// The variant for a SQLSTATE (see the module documentation).
fn classify(code: &str, message: String, hint: Option<String>) -> StoreError {
    let shown = format!("{message} (SQLSTATE {code})");
    match code {
        _ if message.starts_with("outbox: ") => StoreError::Rejected { message, hint },
        _ if code.starts_with("08") => StoreError::Unavailable(shown),
        "57P01" | "57P02" | "57P03" | "25006" => StoreError::Unavailable(shown),
        "55P03" | "57014" | "40001" | "40P01" => StoreError::Busy(shown),
        _ if code.starts_with("28") => {
            StoreError::Refused(format!("{shown}: check the user and password"))
        }
        "3D000" => StoreError::Refused(format!(
            "{shown}: check the database name in the URL"
        )),
        "42501" => StoreError::Refused(format!(
            "{shown}: as the outbox's owner, grant the relay's role with SELECT outbox_grant_relay('<role>') (again after a migration), or run the relay as the owner (docs/operations.md, \"Security\")"
        )),
        "42P01" | "42883" | "42703" | "42704" | "3F000" => StoreError::Schema(format!(
            "{shown}: run `outbox-relay migrate` (or outbox_engine::migrate) first"
        )),
        _ => StoreError::Query(shown),
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            Error::DatabaseError(_, info) => match info.sql_state() {
                Some(code) => classify(
                    code,
                    info.message().to_owned(),
                    info.hint().map(str::to_owned),
                ),
                None => StoreError::Query(info.message().to_owned()),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(code: &str) -> StoreError {
        classify(code, "some message".into(), None)
    }

    #[test]
    fn sqlstates_map_to_their_policy() {
        assert!(matches!(of("42501"), StoreError::Refused(_)));
        assert!(matches!(of("28P01"), StoreError::Refused(_)));
        assert!(matches!(of("42P01"), StoreError::Schema(_)));
        assert!(matches!(of("42883"), StoreError::Schema(_)));
        assert!(matches!(of("57014"), StoreError::Busy(_)));
        assert!(matches!(of("55P03"), StoreError::Busy(_)));
        assert!(matches!(of("40P01"), StoreError::Busy(_)));
        assert!(matches!(of("08006"), StoreError::Unavailable(_)));
        assert!(matches!(of("57P01"), StoreError::Unavailable(_)));
        assert!(matches!(of("XX000"), StoreError::Query(_)));
        for code in ["42501", "42P01", "57014", "08006", "XX000"] {
            assert!(of(code).to_string().contains(code), "{code} not shown");
        }
        assert!(of("42501").is_refusal() && !of("42501").is_transient());
        assert!(of("57014").is_transient() && of("XX000").is_transient());
    }

    #[test]
    fn the_engines_own_checks_are_rejections_whatever_their_code() {
        let error = classify(
            "22023",
            "outbox: topic is empty".into(),
            Some("name a topic".into()),
        );
        assert!(
            matches!(&error, StoreError::Rejected { message, hint: Some(_) } if message == "outbox: topic is empty")
        );
    }
}
