//! The inbox table: install, shape check, record, retention. SQL lives here.

use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{InboxError, InboxMessage};

/// The table's definition (`CREATE ... IF NOT EXISTS`, safe to run again).
pub const INBOX_SQL: &str = include_str!("inbox.sql");

/// Creates the inbox table on the consumer's database if it is not there. Safe to call
/// from several instances at once: `CREATE ... IF NOT EXISTS` alone is not (two
/// sessions can both find the table missing and one fails on the catalog), so the
/// creation runs under a transaction-scoped advisory lock.
///
/// ```no_run
/// # async fn f(conn: &mut diesel_async::AsyncPgConnection) -> Result<(), outbox_adapters::inbox::InboxError> {
/// // `conn`: a connection to the consumer's database, before `Inbox::start`.
/// outbox_adapters::inbox::install(conn).await?;
/// # Ok(())
/// # }
/// ```
pub async fn install(conn: &mut AsyncPgConnection) -> Result<(), InboxError> {
    use diesel_async::AsyncConnection;
    conn.transaction::<(), InboxError, _>(async |conn| {
        conn.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('outbox_inbox install', 0))",
        )
        .await?;
        conn.batch_execute(INBOX_SQL).await?;
        Ok(())
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Shape {
    #[diesel(sql_type = Bool)]
    exists: bool,
    #[diesel(sql_type = Nullable<Text>)]
    columns: Option<String>,
    #[diesel(sql_type = Bool)]
    unique: bool,
}

const NEEDED: [(&str, &str); 6] = [
    ("consumer", "text"),
    ("event_id", "text"),
    ("key", "text"),
    ("topic", "text"),
    ("seq", "bigint"),
    ("processed_at", "timestamp with time zone"),
];

/// Fails, naming what is wrong, unless `outbox_inbox` has the columns and the unique
/// (consumer, event_id) index the inbox relies on.
pub(crate) async fn check(conn: &mut AsyncPgConnection) -> Result<(), InboxError> {
    let shape: Shape = diesel::sql_query(
        "SELECT to_regclass('outbox_inbox') IS NOT NULL AS exists, \
                (SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY column_name) \
                   FROM information_schema.columns \
                  WHERE table_name = 'outbox_inbox' AND table_schema = current_schema()) AS columns, \
                EXISTS (SELECT 1 FROM pg_index i \
                         WHERE i.indrelid = to_regclass('outbox_inbox') AND i.indisunique \
                           AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a \
                                 WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) \
                               = ARRAY['consumer', 'event_id']) AS unique",
    )
    .get_result(conn)
    .await?;
    if !shape.exists {
        return Err(InboxError::Table(
            "table outbox_inbox does not exist".into(),
        ));
    }
    let columns = shape.columns.unwrap_or_default();
    let have: Vec<&str> = columns.split(',').collect();
    for (name, kind) in NEEDED {
        if !have.contains(&format!("{name} {kind}").as_str()) {
            return Err(InboxError::Table(format!(
                "outbox_inbox has no column {name} of type {kind} (it has: {columns})"
            )));
        }
    }
    if !shape.unique {
        return Err(InboxError::Table(
            "outbox_inbox has no unique index on (consumer, event_id)".into(),
        ));
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Fresh {
    #[diesel(sql_type = Bool)]
    fresh: bool,
}

/// Records the message's `event_id` for `consumer`; false when it was already there (a
/// duplicate). Runs inside the handler's transaction: a concurrent duplicate waits on
/// the unique index until the first commits or rolls back.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    event_id: &str,
    message: &InboxMessage,
) -> Result<bool, diesel::result::Error> {
    let fresh: Fresh = diesel::sql_query(
        "WITH added AS (INSERT INTO outbox_inbox (consumer, event_id, key, topic, seq) \
                        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer, event_id) DO NOTHING RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM added) AS fresh",
    )
    .bind::<Text, _>(consumer)
    .bind::<Text, _>(event_id)
    .bind::<Text, _>(&message.key)
    .bind::<Text, _>(&message.topic)
    .bind::<Nullable<BigInt>, _>(message.seq)
    .get_result(conn)
    .await?;
    Ok(fresh.fresh)
}

#[derive(diesel::QueryableByName)]
struct Deleted {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Forgets `consumer`'s records older than `retention_s`, in slices of 5,000 rows
/// (short transactions, found through the `processed_at` index); returns how many.
pub(crate) async fn expire(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    retention_s: f64,
) -> Result<i64, diesel::result::Error> {
    let mut total = 0;
    loop {
        let deleted: Deleted = diesel::sql_query(
            "WITH gone AS (DELETE FROM outbox_inbox WHERE ctid IN ( \
                 SELECT ctid FROM outbox_inbox WHERE consumer = $1 \
                    AND processed_at < now() - $2 * interval '1 second' LIMIT 5000) RETURNING 1) \
             SELECT count(*) AS n FROM gone",
        )
        .bind::<Text, _>(consumer)
        .bind::<Double, _>(retention_s)
        .get_result(conn)
        .await?;
        total += deleted.n;
        if deleted.n < 5000 {
            return Ok(total);
        }
    }
}
