//! Everything the engine says to PostgreSQL: the pool, migrations, the relay's reads and
//! acknowledgements, parking, and status. SQL lives here and nowhere else.
//!
//! Contract of the relay queries (storage v2, see `relay_queries`):
//! - `read_page` returns the next events of a range's batch in sequence order: the
//!   events whose transaction became visible between two snapshots. A transaction that
//!   commits late simply lands in a later batch, so nothing is skipped.
//! - `save_progress` records the range's position in one fenced statement. Its commit
//!   is asynchronous (`synchronous_commit = off` on relay connections): losing it in a
//!   database crash only republishes those events.
//! - Published rows are never updated or deleted one by one; [`retention`] retires whole
//!   partitions.

pub mod audit;
pub mod dead_letters;
mod error;
// The relay's membership and lease queries, public only for the engine's tests.
#[doc(hidden)]
pub mod leases;
mod migrate;
pub mod pause;
pub(crate) mod prepared;
mod probe;
mod relay_queries;
pub mod replay;
pub mod retention;
mod status;
pub mod tls;

use std::time::Duration;

use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures::FutureExt;

pub use error::StoreError;
pub use migrate::{check_schema, migrate};
pub use probe::probe;
pub use relay_queries::{
    activity_mark, load_progress, park, read_keys, read_page, record_deduplication,
    record_range_error, save_progress, ActivityMark, BatchPage, CompletedBatch, EventRow,
    ProgressUpdate, SnapshotText, StoredProgress, EMPTY_SNAPSHOT,
};
pub use status::{status, status_counting_up_to, RangeProgress, Status, PENDING_COUNT_CAP};

/// A pool of PostgreSQL connections.
pub type Pool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// Session settings of relay connections. Asynchronous commit is safe here: the relay
/// only commits acknowledgements, and losing one in a crash only republishes events.
/// JIT is off: the relay's statements are short, and a plan over many partitions whose
/// estimate passes `jit_above_cost` (tables without statistics yet) would spend hundreds
/// of milliseconds compiling each one.
/// The idle-in-transaction limit ends a transaction left open by a relay that stopped
/// in its middle (paused, cut off): its lease tick holds the group's advisory lock, and
/// the other relays must get it back long before their own leases run out.
fn relay_session_setup(idle_in_transaction_ms: u64, statement_timeout_ms: u64) -> String {
    format!(
        "SET synchronous_commit = off; SET application_name = 'outbox-relay'; \
         SET idle_in_transaction_session_timeout = {idle_in_transaction_ms}; \
         SET statement_timeout = {statement_timeout_ms}; SET jit = off"
    )
}

/// Longest wait for a pooled connection.
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// How relay connections are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// The relay's own: asynchronous commit for acknowledgements (a lost ack only
    /// republishes), a recognisable application name, and transactions left idle for
    /// longer than this ended by the server.
    Relay {
        /// `idle_in_transaction_session_timeout`, in milliseconds: the server ends a
        /// transaction left idle for longer.
        idle_in_transaction_ms: u64,
        /// No statement runs longer (a hung one fails its cycle, which is retried).
        statement_timeout_ms: u64,
    },
    /// The relay's, through a transaction-pooling proxy: no session settings (they would
    /// stay on the shared server connection and reach other clients); the relay's role
    /// carries them instead. The watchdog still bounds every cycle.
    Pooled,
    /// Plain connections, for tools and tests.
    Plain,
}

/// Builds a pool after opening one connection the same way, so that a bad URL,
/// credentials or setup fail here with the driver's own message (the pool would only
/// report a timeout). TLS is configured in the URL ([`tls`]). `size` is the most
/// connections the pool opens; they are opened on demand.
///
/// A service that enqueues can use it for its own connections, and hand it to the relay
/// ([`crate::RelayBuilder`]):
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::StoreError> {
/// use outbox_engine::store::{self, SessionKind};
///
/// let pool = store::pool("postgres://app:secret@db:5432/orders", 8, SessionKind::Plain).await?;
/// let mut conn = pool.get().await?;
/// # let _ = &mut conn;
/// # Ok(())
/// # }
/// ```
pub async fn pool(url: &str, size: u32, kind: SessionKind) -> Result<Pool, StoreError> {
    let target = tls::Target::parse(url)?;
    let mut probe = target.connect().await?;
    let setup = match kind {
        SessionKind::Relay {
            idle_in_transaction_ms,
            statement_timeout_ms,
        } => Some(relay_session_setup(
            idle_in_transaction_ms,
            statement_timeout_ms,
        )),
        SessionKind::Pooled | SessionKind::Plain => None,
    };
    if let Some(setup) = &setup {
        probe.batch_execute(setup).await?;
    }
    drop(probe);
    let mut config = ManagerConfig::default();
    // Every connection is opened through the target (TLS as the URL says), then set up.
    config.custom_setup = Box::new(move |_url| {
        let target = target.clone();
        let setup = setup.clone();
        async move {
            let mut conn = target.connect().await?;
            if let Some(setup) = setup {
                conn.batch_execute(&setup)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    let pool = bb8::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        // No `SELECT 1` before every checkout: it doubled the relay's round trips (2,900
        // in a 5 s drain). A broken connection fails the statement instead, which every
        // caller already treats as a transient error, and bb8 drops it.
        .test_on_check_out(false)
        // Short: a caller waiting for a connection during an outage should fail and retry
        // on its own schedule (the relay's backoff, the lease tick), not sit in the pool
        // long after the database is back.
        .connection_timeout(POOL_CONNECTION_TIMEOUT)
        .build(manager)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(pool)
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    value: Option<String>,
}

/// The session's `statement_timeout` as PostgreSQL shows it (`0` when unset).
pub async fn statement_timeout(conn: &mut AsyncPgConnection) -> Result<Option<String>, StoreError> {
    let setting: Setting = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT current_setting('statement_timeout') AS value"),
        conn,
    )
    .await?;
    Ok(setting.value)
}

/// Opens one connection, for callers that do not need a pool.
pub async fn connect(url: &str) -> Result<AsyncPgConnection, StoreError> {
    Ok(tls::Target::parse(url)?.connect().await?)
}

/// Hides the password of a database URL, for logs and errors: in `user:password@` and
/// in the `password` / `sslpassword` query parameters.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword");
                        let v = if secret {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        let shown = redact_url("postgres://outbox:secret@127.0.0.1:5432/outbox");
        assert!(!shown.contains("secret"));
        assert!(shown.contains("127.0.0.1:5432"));
        assert_eq!(redact_url("not a url"), "<unparsable url>");
        let query = redact_url("postgres://outbox@db/outbox?password=hunter2&sslmode=require");
        assert!(!query.contains("hunter2"), "{query}");
        assert!(query.contains("sslmode=require"), "{query}");
    }
}
