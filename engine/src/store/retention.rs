//! Retention without per-row deletes: the outbox is partitioned by writer transaction id,
//! and whole partitions are retired once every range has published past them and the
//! retention window has passed (docs/operations.md, "Retention").
//!
//! Contract of [`maintain`] (safe to run from every relay at once; an advisory lock lets
//! one of them work per round):
//! - partitions exist ahead of the current transaction id (writers never depend on it:
//!   the default partition catches anything beyond);
//! - a partition is *sealed* when every range's done snapshot has passed its upper bound:
//!   it holds only published or parked events and can never receive a row again;
//! - a sealed partition is truncated `retention` after it was sealed (only that
//!   partition is locked, never the table writers insert into), then dropped when the
//!   short lock that needs can be had;
//! - the default partition is emptied only while holding its lock, after checking that
//!   every row in it is published and older than the retention;
//! - audit rows of batches older than the retention are deleted (one row per batch).
//!
//! The DDL (create, attach, truncate, drop) goes through the outbox's functions
//! (migrations 6 and 13), never statements built here: `outbox_grant_relay` lets a relay
//! role that does not own the tables run them with the owner's rights, and each acts only
//! on a partition the outbox's bookkeeping lists in the state that allows it.
//!
//! Every lock is taken with a short `lock_timeout`: a round that cannot get one skips that
//! step and the next round tries again, so maintenance never queues writers behind it
//! for long.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::Serialize;

use super::StoreError;

/// Advisory lock serialising maintenance rounds across relays.
pub const MAINTENANCE_LOCK_ID: i64 = 0x6f75_7462_6d61_696e; // "outbmain"

/// Longest a maintenance step waits for a lock before giving the round up.
const LOCK_TIMEOUT: Duration = Duration::from_millis(200);
/// Dropping a partition briefly locks the whole table: wait even less.
const DROP_LOCK_TIMEOUT: Duration = Duration::from_millis(20);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// False when another relay held the maintenance lock.
    pub ran: bool,
    /// Partitions created ahead of the current transaction id.
    pub created: i64,
    /// Partitions sealed: every range published past them.
    pub sealed: i64,
    /// Names of the partitions truncated (sealed longer ago than the retention).
    pub truncated: Vec<String>,
    /// Names of the truncated partitions dropped.
    pub dropped: Vec<String>,
    /// Whether the default partition (rows beyond the partitions ahead) was emptied.
    pub default_emptied: bool,
    /// Audit rows (one per completed batch) older than the retention, deleted.
    pub audit_rows_deleted: i64,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    yes: bool,
}

async fn set_lock_timeout(
    conn: &mut AsyncPgConnection,
    timeout: Duration,
) -> Result<(), StoreError> {
    conn.batch_execute(&format!("SET LOCAL lock_timeout = {}", timeout.as_millis()))
        .await?;
    Ok(())
}

/// True when the error is a lock timeout (or another contention the server reports as
/// such): the step is retried by the next round.
fn lock_not_available(error: &StoreError) -> bool {
    matches!(error, StoreError::Busy(_))
}

/// One maintenance round; see the module contract.
pub async fn maintain(
    conn: &mut AsyncPgConnection,
    retention: Duration,
) -> Result<MaintenanceReport, StoreError> {
    let mut report = MaintenanceReport::default();
    let span_seconds = (retention.as_secs_f64() / 4.0).clamp(1.0, 3600.0);
    let retention_s = retention.as_secs_f64();
    // Step 1: partitions ahead, seal what every range passed (one short transaction).
    let locked = conn
        .transaction::<_, StoreError, _>(async |conn| {
            set_lock_timeout(conn, LOCK_TIMEOUT).await?;
            let got: Flag = diesel::sql_query(format!(
                "SELECT pg_try_advisory_xact_lock({MAINTENANCE_LOCK_ID}) AS yes"
            ))
            .get_result(conn)
            .await?;
            if !got.yes {
                return Ok(false);
            }
            let created: Count =
                diesel::sql_query("SELECT outbox_extend_partitions($1)::bigint AS n")
                    .bind::<Double, _>(span_seconds)
                    .get_result(conn)
                    .await?;
            let sealed: Count = diesel::sql_query("SELECT outbox_seal_partitions()::bigint AS n")
                .get_result(conn)
                .await?;
            report.created = created.n;
            report.sealed = sealed.n;
            Ok(true)
        })
        .await;
    match locked {
        Ok(false) => return Ok(report),
        Ok(true) => report.ran = true,
        Err(error) if lock_not_available(&error) => {
            tracing::debug!(%error, "maintenance: partitions not extended this round");
            report.ran = true;
        }
        Err(error) => return Err(error),
    }

    // Step 2: truncate partitions sealed longer ago than the retention.
    let due: Vec<Name> = diesel::sql_query(
        "SELECT name FROM outbox_partition WHERE truncated_at IS NULL \
           AND sealed_at < now() - $1 * interval '1 second' ORDER BY hi",
    )
    .bind::<Double, _>(retention_s)
    .load(conn)
    .await?;
    for Name { name } in due {
        let result = conn
            .transaction::<_, StoreError, _>(async |conn| {
                set_lock_timeout(conn, LOCK_TIMEOUT).await?;
                let done: Flag = diesel::sql_query("SELECT outbox_truncate_partition($1) AS yes")
                    .bind::<Text, _>(&name)
                    .get_result(conn)
                    .await?;
                Ok(done.yes)
            })
            .await;
        match result {
            Ok(true) => report.truncated.push(name),
            Ok(false) => {}
            Err(error) if lock_not_available(&error) => {
                tracing::debug!(partition = %name, "maintenance: partition busy, truncated next round");
            }
            Err(error) => return Err(error),
        }
    }

    // Step 3: drop truncated partitions when the brief table lock is free.
    let empty: Vec<Name> = diesel::sql_query(
        "SELECT name FROM outbox_partition WHERE truncated_at IS NOT NULL ORDER BY hi",
    )
    .load(conn)
    .await?;
    for Name { name } in empty {
        let result = conn
            .transaction::<_, StoreError, _>(async |conn| {
                set_lock_timeout(conn, DROP_LOCK_TIMEOUT).await?;
                let done: Flag = diesel::sql_query("SELECT outbox_drop_partition($1) AS yes")
                    .bind::<Text, _>(&name)
                    .get_result(conn)
                    .await?;
                Ok(done.yes)
            })
            .await;
        match result {
            Ok(true) => report.dropped.push(name),
            Ok(false) => {}
            Err(error) if lock_not_available(&error) => break,
            Err(error) => return Err(error),
        }
    }

    // Step 4: the default partition, checked under its own lock.
    let stray: Flag =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM outbox_event_default) AS yes")
            .get_result(conn)
            .await?;
    if stray.yes {
        let result = conn
            .transaction::<_, StoreError, _>(async |conn| {
                set_lock_timeout(conn, LOCK_TIMEOUT).await?;
                let emptied: Flag =
                    diesel::sql_query("SELECT outbox_empty_default_partition($1) AS yes")
                        .bind::<Double, _>(retention_s)
                        .get_result(conn)
                        .await?;
                Ok(emptied.yes)
            })
            .await;
        match result {
            Ok(emptied) => report.default_emptied = emptied,
            Err(error) if lock_not_available(&error) => {}
            Err(error) => return Err(error),
        }
    }

    // Step 5: the audit trail of batches follows the same window.
    let deleted: Count = diesel::sql_query(
        "WITH gone AS (DELETE FROM outbox_batch WHERE finished_at < now() - $1 * interval '1 second' \
         RETURNING 1) SELECT count(*) AS n FROM gone",
    )
    .bind::<Double, _>(retention_s)
    .get_result(conn)
    .await?;
    report.audit_rows_deleted = deleted.n;

    // Step 6: dead letters an operator resolved (replayed or skipped) keep their record
    // for the same window; unresolved ones stay until someone decides.
    diesel::sql_query(
        "DELETE FROM outbox_parked WHERE resolution IS NOT NULL \
            AND resolved_at < now() - $1 * interval '1 second'",
    )
    .bind::<Double, _>(retention_s)
    .execute(conn)
    .await?;
    Ok(report)
}

/// Table and index sizes of the outbox, for the soak and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, diesel::QueryableByName)]
pub struct StorageSize {
    /// Partitions of the outbox table (the default one included).
    #[diesel(sql_type = BigInt)]
    pub partitions: i64,
    /// Bytes of their tables (TOAST included, indexes not).
    #[diesel(sql_type = BigInt)]
    pub table_bytes: i64,
    /// Bytes of their indexes.
    #[diesel(sql_type = BigInt)]
    pub index_bytes: i64,
    /// Bytes of the batch audit table (`outbox_batch`), indexes included.
    #[diesel(sql_type = BigInt)]
    pub batch_audit_bytes: i64,
}

/// Reads the [`StorageSize`]: steady under a steady load once retention retires
/// partitions; growing without end means something holds retention back (see
/// [`horizon_holder`]).
pub async fn storage_size(conn: &mut AsyncPgConnection) -> Result<StorageSize, StoreError> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS partitions, \
                coalesce(sum(pg_table_size(c.oid)), 0)::bigint AS table_bytes, \
                coalesce(sum(pg_indexes_size(c.oid)), 0)::bigint AS index_bytes, \
                (pg_total_relation_size('outbox_batch'))::bigint AS batch_audit_bytes \
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
          WHERE i.inhparent = 'outbox_event'::regclass",
    )
    .get_result(conn)
    .await?)
}

/// The session holding back the visibility horizon the most: while it stays open, no
/// partition above its transaction id can be sealed, so nothing newer can be retired.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct HorizonHolder {
    /// Its backend pid (`pg_terminate_backend(pid)` ends it).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub pid: i32,
    /// Seconds since its transaction started.
    #[diesel(sql_type = Double)]
    pub transaction_age_s: f64,
    /// Seconds since its current (or last) statement started.
    #[diesel(sql_type = Double)]
    pub query_age_s: f64,
    /// Its `application_name` (empty when unset): who to ask.
    #[diesel(sql_type = Text)]
    pub application_name: String,
}

/// The oldest open transaction (by the horizon it holds: its snapshot's xmin or its own
/// id) of any session but this one, if any.
pub async fn horizon_holder(
    conn: &mut AsyncPgConnection,
) -> Result<Option<HorizonHolder>, StoreError> {
    let rows: Vec<HorizonHolder> = diesel::sql_query(
        "SELECT pid, extract(epoch FROM now() - xact_start)::float8 AS transaction_age_s, \
                coalesce(extract(epoch FROM now() - query_start), 0)::float8 AS query_age_s, \
                coalesce(application_name, '') AS application_name \
           FROM pg_stat_activity \
          WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL \
            AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) \
          ORDER BY age(coalesce(backend_xmin, backend_xid)) DESC, xact_start \
          LIMIT 1",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}
