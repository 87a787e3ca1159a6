//! The relay's hot queries on storage v2: read a batch page, record progress, park a
//! poison event.
//!
//! A range publishes in *batches*. A batch is every event of the range whose writer
//! transaction is visible in the batch snapshot and was not visible in the range's
//! `done` snapshot, in sequence order. Published rows are never touched: progress is one
//! row per range ([`save_progress`]), written only under the range's lease epoch.

// Every public item here is `#[doc(hidden)]`: these are the relay's own queries, public
// (through `store`) only so that the engine's tests and benches can drive them. They take
// a range lease and change with the storage layout; a library user has no use for them.

use diesel::sql_types::{Array, BigInt, Bool, Bytea, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::TryStreamExt;

use super::prepared::prepared;
use super::StoreError;
use crate::lease::Lease;

/// A `pg_snapshot` in its text form (`xmin:xmax:xip,...`), as PostgreSQL prints it.
#[doc(hidden)]
pub type SnapshotText = String;

/// Nothing is visible in it: a range that never published starts here.
#[doc(hidden)]
pub const EMPTY_SNAPSHOT: &str = "1:1:";

/// One outbox row of a batch.
#[derive(Debug, Clone, diesel::QueryableByName)]
#[doc(hidden)]
pub struct EventRow {
    #[diesel(sql_type = Integer)]
    pub slot: i32,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = Text)]
    pub topic: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Bytea)]
    pub payload: Vec<u8>,
    /// The headers object as JSON text.
    #[diesel(sql_type = Text)]
    pub headers: String,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    /// The writer's transaction id (xid8 as a number).
    #[diesel(sql_type = BigInt)]
    pub tx: i64,
    /// When the writer's transaction started (`created_at`), in Unix seconds: the start
    /// of the publish latency the relay measures.
    #[diesel(sql_type = Double)]
    pub created_s: f64,
}

/// Where a range stands, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
#[doc(hidden)]
pub struct StoredProgress {
    #[diesel(sql_type = Text)]
    pub done_snapshot: SnapshotText,
    #[diesel(sql_type = Nullable<Text>)]
    pub batch_snapshot: Option<SnapshotText>,
    #[diesel(sql_type = BigInt)]
    pub batch_seq: i64,
    /// Positions of the old ranges after a re-cut (JSON), until the first batch is done.
    #[diesel(sql_type = Nullable<Text>)]
    pub carried: Option<String>,
    /// Events of the completed batches, and of the open batch up to `batch_seq`.
    #[diesel(sql_type = BigInt)]
    pub events_done: i64,
    #[diesel(sql_type = BigInt)]
    pub batch_done: i64,
}

/// Loads the range's progress row. A missing row means the layout changed under the
/// lease: reported as [`StoreError::Fenced`].
#[doc(hidden)]
pub async fn load_progress(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
) -> Result<StoredProgress, StoreError> {
    let rows: Vec<StoredProgress> = prepared(
        "SELECT done_snapshot::text AS done_snapshot, batch_snapshot::text AS batch_snapshot, \
         batch_seq, carried::text AS carried, events_done, batch_done FROM outbox_progress \
         WHERE range_start = $1 AND range_end = $2",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .load(conn)
    .await?;
    rows.into_iter().next().ok_or_else(|| fenced(lease))
}

#[derive(Debug, diesel::QueryableByName)]
struct PageRow {
    /// On the page's rows (and the single row of an empty batch), not on listed keys.
    #[diesel(sql_type = Nullable<Text>)]
    snapshot: Option<SnapshotText>,
    /// The key of a batch event: null only on the single row of an empty batch.
    #[diesel(sql_type = Nullable<BigInt>)]
    key_seq: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    key_tx: Option<i64>,
    /// The event itself: null beyond the page (those events are only listed).
    #[diesel(sql_type = Nullable<Integer>)]
    slot: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    topic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    event_type: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    payload: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Text>)]
    headers: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    event_id: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    created_s: Option<f64>,
}

impl PageRow {
    fn into_event(self) -> Result<EventRow, (i64, i64)> {
        let (seq, tx) = (self.key_seq.unwrap_or(0), self.key_tx.unwrap_or(0));
        let event = || {
            Some(EventRow {
                slot: self.slot?,
                seq,
                key: self.key?,
                topic: self.topic?,
                event_type: self.event_type?,
                payload: self.payload?,
                headers: self.headers?,
                event_id: self.event_id?,
                tx,
                created_s: self.created_s?,
            })
        };
        event().ok_or((seq, tx))
    }
}

/// The candidates of a batch come from the (tx, slot) index: transactions that started
/// after the done snapshot, plus the few that were running when it was taken. A
/// transaction open for minutes costs each read one index probe, not a scan from it on.
/// `$3` is the done snapshot; `s.snap` the batch snapshot. The carried positions of a
/// re-cut are tested only when there are any: the test is a SQL function with a
/// subquery, which PostgreSQL cannot inline, and cost 6 µs per candidate (a 75,000-event
/// batch spent 0.5 s in it). No candidate is visible in the done snapshot (an id at or
/// above its `xmax`, or one of its running ones), so only the batch snapshot is tested.
macro_rules! batch_keys_sql {
    () => {
        "\
    SELECT c.seq, c.tx FROM ( \
      SELECT e.seq, e.tx, e.slot FROM outbox_event e \
       WHERE e.tx >= pg_snapshot_xmax($3::pg_snapshot) AND e.tx < pg_snapshot_xmax((SELECT snap FROM s)) \
         AND e.slot BETWEEN $1 AND $2 \
      UNION ALL \
      SELECT e.seq, e.tx, e.slot FROM outbox_event e \
       WHERE e.tx = ANY (ARRAY(SELECT pg_snapshot_xip($3::pg_snapshot))) \
         AND e.tx < pg_snapshot_xmax((SELECT snap FROM s)) AND e.slot BETWEEN $1 AND $2) c \
    WHERE pg_visible_in_snapshot(c.tx, (SELECT snap FROM s)) AND c.seq > $4 \
      AND ($6::jsonb IS NULL OR NOT outbox_carried_done($6::jsonb, c.slot, c.seq, c.tx))"
    };
}

/// A page of a batch: its first events, and the keys of the rest.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct BatchPage {
    /// The batch snapshot (taken by the read when no batch was open).
    pub snapshot: SnapshotText,
    /// The first `limit` events after `after_seq`, in sequence order.
    pub events: Vec<EventRow>,
    /// (seq, tx) of the batch's remaining events, in sequence order: read once, so that
    /// the next pages of a large batch are fetched by key ([`read_keys`]) instead of
    /// scanning the batch again for each page.
    pub rest: Vec<(i64, i64)>,
}

/// Reads a batch after `after_seq`: the first `limit` events whole, the rest as keys,
/// in one scan of the candidates. With `batch = None` the batch snapshot is taken by
/// this very statement (its own snapshot, so every row it can see is committed) and
/// returned; otherwise the given open batch is continued.
#[doc(hidden)]
pub async fn read_page(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    done: &str,
    batch: Option<&str>,
    after_seq: i64,
    limit: usize,
    carried: Option<&str>,
) -> Result<BatchPage, StoreError> {
    let rows = prepared(concat!(
        "WITH s AS MATERIALIZED (SELECT coalesce($7::pg_snapshot, pg_current_snapshot()) AS snap), \
         k AS MATERIALIZED (SELECT b.seq, b.tx, row_number() OVER (ORDER BY b.seq) AS n \
                              FROM (",
        batch_keys_sql!(),
        ") b) \
         SELECT CASE WHEN p.key_seq IS NULL OR p.slot IS NOT NULL THEN (SELECT snap::text FROM s) END \
                AS snapshot, p.* FROM (SELECT 1) one LEFT JOIN ( \
           SELECT k.seq AS key_seq, k.tx::text::bigint AS key_tx, e.slot, e.key, e.topic, \
                  e.event_type, e.payload, e.headers::text AS headers, e.event_id::text AS event_id, \
                  extract(epoch FROM e.created_at)::float8 AS created_s \
             FROM k JOIN outbox_event e ON e.seq = k.seq AND e.tx = k.tx WHERE k.n <= $5 \
           UNION ALL \
           SELECT k.seq, k.tx::text::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
             FROM k WHERE k.n > $5) p ON true"
    ))
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<Text, _>(done)
    .bind::<BigInt, _>(after_seq)
    .bind::<BigInt, _>(limit as i64)
    .bind::<Nullable<Text>, _>(carried)
    .bind::<Nullable<Text>, _>(batch)
    .load_stream::<PageRow>(conn)
    .await?;
    // Streamed and sorted out row by row: a backlog's first read lists every key of the
    // batch, and holding them all as full rows first took ~230 bytes per key.
    let mut rows = std::pin::pin!(rows);
    let mut snapshot = None;
    let mut page = BatchPage::default();
    while let Some(row) = rows.try_next().await? {
        if snapshot.is_none() {
            snapshot = row.snapshot.clone();
        }
        if row.key_seq.is_none() {
            continue;
        }
        match row.into_event() {
            Ok(event) => page.events.push(event),
            Err(key) => page.rest.push(key),
        }
    }
    page.snapshot =
        snapshot.ok_or_else(|| StoreError::Query("batch read returned no snapshot".into()))?;
    // Sorted here rather than by the statement: cheaper than a sort of every listed key.
    page.events.sort_unstable_by_key(|event| event.seq);
    page.rest.sort_unstable();
    Ok(page)
}

/// How much wider than the page a run of listed keys may spread over sequence numbers and
/// still be fetched by one range scan of the `(seq, tx)` index rather than a probe per
/// key. Measured on a 300,000-event batch, 1,000 keys: the probes took 7.3 ms, the range
/// scan 2.1 ms when the keys were dense and 4.8 ms when they were a quarter of the span
/// (the other three quarters belonging to other ranges).
const RANGE_SCAN_MAX_SPREAD: i64 = 8;

/// Fetches the events of the given keys (listed by [`read_page`] for `lease`), in
/// sequence order.
///
/// The keys of one page of a large batch are usually dense in sequence numbers (a
/// backlog), so they are fetched by one scan of their sequence span and the rows of that
/// span that are not listed (other ranges, other batches) are dropped; keys spread wider
/// than [`RANGE_SCAN_MAX_SPREAD`] times their count (a transaction that stayed open
/// among newer ones) are probed one by one, so that no read scans far more than it
/// returns.
#[doc(hidden)]
pub async fn read_keys(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    keys: &[(i64, i64)],
) -> Result<Vec<EventRow>, StoreError> {
    let Some(bounds) = KeyBounds::of(keys) else {
        return Ok(Vec::new());
    };
    if bounds.seq_span() > RANGE_SCAN_MAX_SPREAD.saturating_mul(keys.len() as i64) {
        return read_keys_one_by_one(conn, keys, &bounds).await;
    }
    let mut rows: Vec<EventRow> = prepared(
        "SELECT e.slot, e.seq, e.key, e.topic, e.event_type, e.payload, e.headers::text AS headers, \
                e.event_id::text AS event_id, e.tx::text::bigint AS tx, \
                extract(epoch FROM e.created_at)::float8 AS created_s \
           FROM outbox_event e \
          WHERE e.seq BETWEEN $1 AND $2 AND e.tx >= $3::text::xid8 AND e.tx <= $4::text::xid8 \
            AND e.slot BETWEEN $5 AND $6 \
          ORDER BY e.seq",
    )
    .bind::<BigInt, _>(bounds.low_seq)
    .bind::<BigInt, _>(bounds.high_seq)
    .bind::<Text, _>(bounds.low_tx.to_string())
    .bind::<Text, _>(bounds.high_tx.to_string())
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .load(conn)
    .await?;
    let mut listed = keys.to_vec();
    listed.sort_unstable();
    rows.retain(|row| listed.binary_search(&(row.seq, row.tx)).is_ok());
    Ok(rows)
}

/// The sequence and transaction bounds of a set of keys.
struct KeyBounds {
    low_seq: i64,
    high_seq: i64,
    low_tx: i64,
    high_tx: i64,
}

impl KeyBounds {
    fn of(keys: &[(i64, i64)]) -> Option<Self> {
        let (&(seq, tx), rest) = keys.split_first()?;
        let mut bounds = KeyBounds {
            low_seq: seq,
            high_seq: seq,
            low_tx: tx,
            high_tx: tx,
        };
        for &(seq, tx) in rest {
            bounds.low_seq = bounds.low_seq.min(seq);
            bounds.high_seq = bounds.high_seq.max(seq);
            bounds.low_tx = bounds.low_tx.min(tx);
            bounds.high_tx = bounds.high_tx.max(tx);
        }
        Some(bounds)
    }

    fn seq_span(&self) -> i64 {
        self.high_seq.saturating_sub(self.low_seq).saturating_add(1)
    }
}

/// One index probe per key: for keys spread over a wide span of sequence numbers.
async fn read_keys_one_by_one(
    conn: &mut AsyncPgConnection,
    keys: &[(i64, i64)],
    bounds: &KeyBounds,
) -> Result<Vec<EventRow>, StoreError> {
    let seqs: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let txs: Vec<i64> = keys.iter().map(|k| k.1).collect();
    Ok(prepared(
        "SELECT e.slot, e.seq, e.key, e.topic, e.event_type, e.payload, e.headers::text AS headers, \
                e.event_id::text AS event_id, e.tx::text::bigint AS tx, \
                extract(epoch FROM e.created_at)::float8 AS created_s \
           FROM unnest($1::bigint[], $2::bigint[]) AS k(seq, tx) \
           JOIN outbox_event e ON e.seq = k.seq AND e.tx = k.tx::text::xid8 \
          WHERE e.tx >= $3::text::xid8 AND e.tx <= $4::text::xid8 \
          ORDER BY e.seq",
    )
    .bind::<Array<BigInt>, _>(seqs)
    .bind::<Array<BigInt>, _>(txs)
    .bind::<Text, _>(bounds.low_tx.to_string())
    .bind::<Text, _>(bounds.high_tx.to_string())
    .load(conn)
    .await?)
}

/// What one progress write records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct ProgressUpdate {
    pub done: SnapshotText,
    /// The open batch and its highest published sequence number, if one is open.
    pub open: Option<(SnapshotText, i64)>,
    /// Old ranges' positions still in force (until this range's first batch is done).
    pub carried: Option<String>,
    /// Events of the completed batches, and of the open batch so far.
    pub events_done: i64,
    pub batch_done: i64,
    /// Events published and parked since the last successful write.
    pub published: i64,
    pub parked: i64,
    /// When a batch was completed by this update: its snapshots and size, for the audit
    /// trail.
    pub completed: Option<CompletedBatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct CompletedBatch {
    pub from: SnapshotText,
    pub to: SnapshotText,
    pub events: i64,
    pub parked: i64,
}

#[derive(diesel::QueryableByName)]
pub(super) struct Held {
    #[diesel(sql_type = Bool)]
    pub(super) held: bool,
}

#[derive(diesel::QueryableByName)]
struct ParkedKey {
    #[diesel(sql_type = Bool)]
    held: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    key: Option<String>,
}

/// Ok when a fenced statement found the lease still held with its epoch; otherwise the
/// range was taken over and the statement changed nothing.
pub(super) fn still_held(held: bool, lease: &Lease) -> Result<(), StoreError> {
    if held {
        Ok(())
    } else {
        Err(fenced(lease))
    }
}

pub(super) fn fenced(lease: &Lease) -> StoreError {
    StoreError::Fenced {
        range: lease.range.to_string(),
        epoch: lease.epoch,
    }
}

/// Records the range's progress (and, for a completed batch, its audit row) in one
/// statement, only while the lease still has its epoch: the lease row is share-locked,
/// so a takeover waits for this statement or this statement sees the new epoch. Fails
/// with [`StoreError::Fenced`], changing nothing, after a takeover.
#[doc(hidden)]
pub async fn save_progress(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    relay_id: &str,
    update: &ProgressUpdate,
) -> Result<(), StoreError> {
    let (open_snapshot, open_seq) = match &update.open {
        Some((snapshot, seq)) => (Some(snapshot.as_str()), *seq),
        None => (None, 0),
    };
    let completed = update.completed.as_ref();
    let held: Held = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $1 AND range_end = $2 AND epoch = $3 FOR SHARE), \
         moved AS ( \
           UPDATE outbox_progress SET done_snapshot = $4::pg_snapshot, batch_snapshot = $5::pg_snapshot, \
                  batch_seq = $6, published_total = published_total + $7, parked_total = parked_total + $8, \
                  epoch = $3, relay_id = $9, carried = $13::jsonb, \
                  events_done = $14, batch_done = $15, updated_at = now() \
            WHERE range_start = $1 AND range_end = $2 AND EXISTS (SELECT 1 FROM lease) RETURNING 1), \
         audit AS ( \
           INSERT INTO outbox_batch (range_start, range_end, epoch, relay_id, from_snapshot, to_snapshot, \
                                     to_xmax, events, parked) \
           SELECT $1, $2, $3, $9, $10::pg_snapshot, $4::pg_snapshot, pg_snapshot_xmax($4::pg_snapshot), $11, $12 \
            WHERE $10 IS NOT NULL AND EXISTS (SELECT 1 FROM moved)) \
         SELECT EXISTS (SELECT 1 FROM moved) AS held",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .bind::<Text, _>(&update.done)
    .bind::<Nullable<Text>, _>(open_snapshot)
    .bind::<BigInt, _>(open_seq)
    .bind::<BigInt, _>(update.published)
    .bind::<BigInt, _>(update.parked)
    .bind::<Text, _>(relay_id)
    .bind::<Nullable<Text>, _>(completed.map(|c| c.from.as_str()))
    .bind::<Integer, _>(completed.map(|c| c.events as i32).unwrap_or(0))
    .bind::<Integer, _>(completed.map(|c| c.parked as i32).unwrap_or(0))
    .bind::<Nullable<Text>, _>(update.carried.as_deref())
    .bind::<BigInt, _>(update.events_done)
    .bind::<BigInt, _>(update.batch_done)
    .get_result(conn)
    .await?;
    still_held(held.held, lease)
}

/// Copies one event that can never be published to `outbox_parked` as a dead letter,
/// with the reason and attempts, and quarantines its key (its later events are held
/// behind it, see [`super::dead_letters`]); fenced like [`save_progress`]. The range's
/// progress then moves past it like past a published event. Parking twice (after a
/// crash) keeps the first copy. Returns the event's key.
#[doc(hidden)]
pub async fn park(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    seq: i64,
    tx: i64,
    reason: &str,
    attempts: i32,
) -> Result<Option<String>, StoreError> {
    let parked: ParkedKey = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $3 AND range_end = $4 AND epoch = $5 FOR SHARE), \
         event AS ( \
           SELECT * FROM outbox_event WHERE seq = $1 AND tx = $2::text::xid8 AND EXISTS (SELECT 1 FROM lease)), \
         parked AS ( \
           INSERT INTO outbox_parked (slot, seq, key, topic, event_type, payload, headers, event_id, created_at, reason, attempts) \
           SELECT slot, seq, key, topic, event_type, payload, headers, event_id, created_at, $6, $7 FROM event \
           ON CONFLICT (seq) DO NOTHING RETURNING seq), \
         quarantined AS ( \
           INSERT INTO outbox_quarantine (key, slot, since_seq, reason) \
           SELECT key, slot, seq, $6 FROM event ON CONFLICT (key) DO NOTHING RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM lease) AS held, (SELECT key FROM event) AS key",
    )
    .bind::<BigInt, _>(seq)
    .bind::<Text, _>(tx.to_string())
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .bind::<Text, _>(reason)
    .bind::<Integer, _>(attempts)
    .get_result(conn)
    .await?;
    if parked.held {
        Ok(parked.key)
    } else {
        Err(fenced(lease))
    }
}

/// Records whether the broker deduplicates each topic the range publishes to (JSON
/// object topic -> state), for `status`. Informational: written by the owner without
/// fencing; a stale owner's write is replaced by the new owner's.
#[doc(hidden)]
pub async fn record_deduplication(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    states: &str,
) -> Result<(), StoreError> {
    prepared(
        "UPDATE outbox_progress SET deduplication = $3::jsonb \
          WHERE range_start = $1 AND range_end = $2",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<Text, _>(states)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records why the range's cycles fail (`None`: they succeed again), for `status`.
/// Informational: written by the owner without fencing.
#[doc(hidden)]
pub async fn record_range_error(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    error: Option<&str>,
) -> Result<(), StoreError> {
    prepared(
        "UPDATE outbox_progress SET last_error = $3, \
                last_error_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END \
          WHERE range_start = $1 AND range_end = $2",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the wake-up watcher polls: two values that change without reading the table.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
#[doc(hidden)]
pub struct ActivityMark {
    /// The last sequence number handed out, committed or not.
    #[diesel(sql_type = BigInt)]
    pub last_value: i64,
    /// The current snapshot (`xmin:xmax:xip...`): it changes when any transaction
    /// commits, which is when a drawn number becomes readable.
    #[diesel(sql_type = Text)]
    pub snapshot: String,
}

/// Reads the outbox sequence and the current snapshot: one tuple, no table scan.
#[doc(hidden)]
pub async fn activity_mark(conn: &mut AsyncPgConnection) -> Result<ActivityMark, StoreError> {
    Ok(prepared(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last_value, \
                pg_current_snapshot()::text AS snapshot FROM outbox_seq",
    )
    .get_result(conn)
    .await?)
}
