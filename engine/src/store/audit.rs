//! Checking the batch audit trail for events a range passed without publishing them
//! (`outbox-relay audit`).
//!
//! Every batch that published or parked something leaves one `outbox_batch` row
//! (`from_snapshot` → `to_snapshot`); a batch that found nothing leaves none, so two
//! consecutive rows of a range need not join up. Between them the range's progress moved
//! only through empty batches, so no event of the range may have become visible there.
//! The same holds after the last row, up to the range's current done snapshot. And a
//! batch's row counts every event of the range that became visible between its two
//! snapshots (published or parked), except in the first batch of a range after a re-cut,
//! which skips what the old ranges had published. This module lists every stretch where
//! more events became visible than were recorded: events recorded as done (`status`
//! does not count them as pending) that no batch published. On a correct relay
//! the list is empty; a non-empty list is a delivery failure to replay
//! (`outbox-relay replay --range ... --from-seq ... --to-seq ...`) and to report.
//!
//! Contract:
//! - read-only, one statement; it covers the retained trail (audit rows and events older
//!   than the retention are gone) and each range of the current and earlier layouts
//!   separately (a re-cut range starts a new chain, ordered by `to_snapshot`'s `xmax`);
//! - the candidate events of a stretch are found through the `(tx, slot)` index, between
//!   the earlier snapshot's `xmin` and the later one's `xmax`.

use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;

/// Events of one range that became visible between two of its recorded positions with
/// no batch publishing them: between two batches, or inside one batch that recorded
/// fewer events than became visible in it.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct SkippedEvents {
    /// The range's first slot.
    #[diesel(sql_type = Integer)]
    pub range_start: i32,
    /// The range's last slot.
    #[diesel(sql_type = Integer)]
    pub range_end: i32,
    /// The range's position before the stretch (a batch's `to_snapshot`).
    #[diesel(sql_type = Text)]
    pub done_before: String,
    /// Its position after (the next batch's `from_snapshot`, or the current done one).
    #[diesel(sql_type = Text)]
    pub done_after: String,
    /// When the later position was recorded (RFC 3339).
    #[diesel(sql_type = Text)]
    pub recorded_at: String,
    /// How many events were passed (visible in the stretch, minus those recorded).
    #[diesel(sql_type = BigInt)]
    pub events: i64,
    /// The lowest and highest sequence numbers of the stretch's events (published ones
    /// among them too, when a batch recorded only some).
    #[diesel(sql_type = BigInt)]
    pub first_seq: i64,
    /// See `first_seq`.
    #[diesel(sql_type = BigInt)]
    pub last_seq: i64,
}

/// Every stretch of the retained audit trail where a range passed events without
/// publishing or parking them, in range and sequence order. Empty on a correct relay.
pub async fn skipped_events(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<SkippedEvents>, StoreError> {
    Ok(diesel::sql_query(
        "WITH chain AS ( \
           SELECT range_start, range_end, batch_id, from_snapshot, to_snapshot, finished_at, \
                  events + parked AS recorded, \
                  lag(to_snapshot) OVER (PARTITION BY range_start, range_end ORDER BY to_xmax, batch_id) AS prev_to \
             FROM outbox_batch), \
         steps AS ( \
           SELECT range_start, range_end, prev_to AS before, from_snapshot AS after, finished_at AS at, \
                  0 AS recorded \
             FROM chain WHERE prev_to IS NOT NULL AND prev_to::text <> from_snapshot::text \
           UNION ALL \
           SELECT range_start, range_end, from_snapshot, to_snapshot, finished_at, recorded \
             FROM chain WHERE prev_to IS NOT NULL \
           UNION ALL \
           SELECT p.range_start, p.range_end, last.to_snapshot, p.done_snapshot, p.updated_at, 0 \
             FROM outbox_progress p \
             JOIN LATERAL (SELECT b.to_snapshot FROM outbox_batch b \
                            WHERE b.range_start = p.range_start AND b.range_end = p.range_end \
                            ORDER BY b.to_xmax DESC, b.batch_id DESC LIMIT 1) last ON true \
            WHERE last.to_snapshot::text <> p.done_snapshot::text) \
         SELECT s.range_start, s.range_end, s.before::text AS done_before, s.after::text AS done_after, \
                to_char(s.at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS recorded_at, \
                count(*) - s.recorded AS events, min(e.seq) AS first_seq, max(e.seq) AS last_seq \
           FROM steps s \
           JOIN outbox_event e ON e.slot BETWEEN s.range_start AND s.range_end \
            AND e.tx >= pg_snapshot_xmin(s.before) AND e.tx < pg_snapshot_xmax(s.after) \
            AND pg_visible_in_snapshot(e.tx, s.after) AND NOT pg_visible_in_snapshot(e.tx, s.before) \
          GROUP BY s.range_start, s.range_end, s.before::text, s.after::text, s.at, s.recorded \
         HAVING count(*) > s.recorded \
          ORDER BY s.range_start, min(e.seq)",
    )
    .get_results(conn)
    .await?)
}
