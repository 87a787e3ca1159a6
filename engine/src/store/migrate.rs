//! Embedded, versioned migrations. Safe to run from several processes at once, and
//! through a transaction-pooling proxy: all pending migrations run in one transaction
//! that first takes a transaction-scoped advisory lock (a session lock would be taken
//! and released on whichever server connection the proxy picks), and applied versions
//! are skipped.

use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::StoreError;
use crate::slots::SLOT_COUNT;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
/// Advisory lock id held while migrating ("outbox" in ASCII).
const MIGRATION_LOCK_ID: i64 = 0x6f75_7462_6f78;

/// Applies every pending migration; returns the versions applied now (empty when the
/// schema was up to date). Idempotent and safe to run from every replica at once; run it
/// (or `outbox-relay migrate`) before writers enqueue and before the relay starts, which
/// refuses a schema older or newer than its own.
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::StoreError> {
/// let applied = outbox_engine::migrate("postgres://owner:secret@db:5432/orders").await?;
/// println!("applied {} migrations", applied.len());
/// # Ok(())
/// # }
/// ```
pub async fn migrate(database_url: &str) -> Result<Vec<String>, StoreError> {
    // Connected here (TLS as the URL says), migrated on a blocking thread: diesel's
    // migration harness is synchronous.
    let conn = super::connect(database_url).await?;
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        conn.transaction(|conn| {
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")),
                conn,
            )?;
            // Each migration runs in a savepoint of this transaction.
            conn.run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(|v| v.to_string()).collect())
                .map_err(|e| StoreError::Schema(format!("migration failed: {e}")))
        })
    })
    .await
    .map_err(|e| StoreError::Query(format!("migration task failed: {e}")))?
}

#[derive(diesel::QueryableByName)]
struct SlotCount {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    slots: i32,
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    version: Option<String>,
}

/// The newest migration this build carries.
fn newest_known_version() -> Option<String> {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .ok()?
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
}

/// Fails unless the schema is migrated to exactly this build's newest version (a relay
/// older or newer than the database refuses to run, saying which side to upgrade) and
/// agrees with this build on the slot count.
pub async fn check_schema(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    use diesel_async::RunQueryDsl;
    let applied: AppliedVersion =
        diesel::sql_query("SELECT max(version)::text AS version FROM __diesel_schema_migrations")
            .get_result(conn)
            .await?;
    let known = newest_known_version();
    match (applied.version, known) {
        (Some(applied), Some(known)) if applied > known => {
            return Err(StoreError::Schema(format!(
                "the database schema is at version {applied}, newer than this relay knows ({known}): upgrade the relay"
            )))
        }
        (Some(applied), Some(known)) if applied < known => {
            return Err(StoreError::Schema(format!(
                "the database schema is at version {applied}, older than this relay needs ({known}): run `outbox-relay migrate`"
            )))
        }
        _ => {}
    }
    let found: SlotCount = diesel::sql_query("SELECT outbox_slot_count() AS slots")
        .get_result(conn)
        .await?;
    if found.slots != SLOT_COUNT {
        return Err(StoreError::Schema(format!(
            "the database uses {} slots but this build expects {SLOT_COUNT}",
            found.slots
        )));
    }
    Ok(())
}
