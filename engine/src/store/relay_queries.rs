//! The relay's hot queries: read a batch, acknowledge it, park a poison event.

use diesel::sql_types::{Array, BigInt, Bytea, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::prepared::prepared;
use super::StoreError;
use crate::lease::Lease;
use crate::slots::SlotRange;

/// One pending outbox row.
#[derive(Debug, Clone, diesel::QueryableByName)]
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
}

const READ_SQL: &str =
    "SELECT slot, seq, key, topic, event_type, payload, headers::text AS headers, \
     event_id::text AS event_id FROM outbox_event \
     WHERE slot >= $1 AND slot <= $2 ORDER BY slot, seq LIMIT $3";

async fn read_slots(
    conn: &mut AsyncPgConnection,
    first: i32,
    last: i32,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(prepared(READ_SQL)
        .bind::<Integer, _>(first)
        .bind::<Integer, _>(last)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// Reads up to `limit` pending events of `range`, visiting slots from `start` to the end
/// of the range, then from its beginning: per slot in sequence order, which per key is
/// commit order.
pub async fn read_batch(
    conn: &mut AsyncPgConnection,
    range: SlotRange,
    start: i32,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    let start = if range.contains(start) {
        start
    } else {
        range.start
    };
    let mut rows = read_slots(conn, start, range.end, limit as i64).await?;
    if rows.len() < limit && start > range.start {
        let rest = read_slots(conn, range.start, start - 1, (limit - rows.len()) as i64).await?;
        rows.extend(rest);
    }
    Ok(rows)
}

#[derive(diesel::QueryableByName)]
struct Fence {
    #[diesel(sql_type = BigInt)]
    held: i64,
}

fn fenced(fence: Fence, lease: &Lease) -> Result<(), StoreError> {
    if fence.held == 1 {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            range: lease.range.to_string(),
            epoch: lease.epoch,
        })
    }
}

/// Deletes published rows and advances the progress of the lease's range, in one
/// statement, only while the lease still has its epoch (the lease row is share-locked, so
/// a takeover waits for this statement or this statement sees the new epoch). Fails with
/// [`StoreError::Fenced`], changing nothing, after a takeover.
pub async fn acknowledge(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    slots: &[i32],
    seqs: &[i64],
) -> Result<(), StoreError> {
    if seqs.is_empty() {
        return Ok(());
    }
    let fence: Fence = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $3 AND epoch = $5 FOR SHARE), \
         gone AS ( \
           DELETE FROM outbox_event e USING unnest($1::int[], $2::bigint[]) AS a(slot, seq) \
           WHERE e.slot = a.slot AND e.seq = a.seq AND EXISTS (SELECT 1 FROM lease) RETURNING e.seq) \
         INSERT INTO outbox_progress AS p (range_start, range_end, last_seq, published_total, updated_at) \
         SELECT $3, $4, coalesce(max(seq), 0), count(*), now() FROM gone \
         ON CONFLICT (range_start, range_end) DO UPDATE SET \
           last_seq = greatest(p.last_seq, excluded.last_seq), \
           published_total = p.published_total + excluded.published_total, \
           updated_at = now() \
         RETURNING (SELECT count(*) FROM lease) AS held",
    )
    .bind::<Array<Integer>, _>(slots)
    .bind::<Array<BigInt>, _>(seqs)
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .get_result(conn)
    .await?;
    fenced(fence, lease)
}

/// Moves one event that can never be published to `outbox_parked`, with the reason;
/// fenced like [`acknowledge`].
pub async fn park(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    slot: i32,
    seq: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let fence: Fence = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $4 AND epoch = $6 FOR SHARE), \
         moved AS ( \
           DELETE FROM outbox_event WHERE slot = $1 AND seq = $2 AND EXISTS (SELECT 1 FROM lease) RETURNING *), \
         parked AS ( \
           INSERT INTO outbox_parked (slot, seq, key, topic, event_type, payload, headers, event_id, created_at, reason) \
           SELECT slot, seq, key, topic, event_type, payload, headers, event_id, created_at, $3 FROM moved \
           RETURNING seq) \
         INSERT INTO outbox_progress AS p (range_start, range_end, parked_total, updated_at) \
         SELECT $4, $5, count(*), now() FROM parked \
         ON CONFLICT (range_start, range_end) DO UPDATE SET \
           parked_total = p.parked_total + excluded.parked_total, updated_at = now() \
         RETURNING (SELECT count(*) FROM lease) AS held",
    )
    .bind::<Integer, _>(slot)
    .bind::<BigInt, _>(seq)
    .bind::<Text, _>(reason)
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .get_result(conn)
    .await?;
    fenced(fence, lease)
}

/// What the wake-up watcher polls: two values that change without reading the table.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
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
pub async fn activity_mark(conn: &mut AsyncPgConnection) -> Result<ActivityMark, StoreError> {
    Ok(prepared(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last_value, \
                pg_current_snapshot()::text AS snapshot FROM outbox_seq",
    )
    .get_result(conn)
    .await?)
}
