//! Operator pauses: slot ranges the relays leave pending until resumed.
//!
//! Contract: [`pause`] is idempotent (pausing a paused range keeps the first record);
//! [`resume`] removes exactly the given range and says whether it was paused; relays
//! read [`paused`] once per lease round and skip the cycles of every range that overlaps
//! a paused one. Nothing is lost or reordered: paused events stay pending.

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::StoreError;
use crate::slots::SlotRange;

/// One paused range, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, diesel::QueryableByName)]
pub struct Paused {
    /// First slot of the paused range.
    #[diesel(sql_type = Integer)]
    pub lo: i32,
    /// Last slot of the paused range, included.
    #[diesel(sql_type = Integer)]
    pub hi: i32,
    /// When it was paused (RFC 3339, the database's clock).
    #[diesel(sql_type = Text)]
    pub paused_at: String,
    /// Who paused it, as given to [`pause`] (the CLI records `user@host`).
    #[diesel(sql_type = Text)]
    pub paused_by: String,
}

impl Paused {
    /// Whether any slot of `range` is paused by this record: the relays skip such a
    /// range whole.
    pub fn overlaps(&self, range: SlotRange) -> bool {
        self.lo <= range.end && range.start <= self.hi
    }
}

#[derive(diesel::QueryableByName)]
struct Changed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    changed: bool,
}

/// Pauses `range`; returns false when it was paused already. `by` is recorded as who
/// paused it. Every relay reads the pauses once per lease round
/// (`lease_renew_interval_ms`) and skips the cycles of ranges overlapping one, so within
/// about that long nothing of these slots is published; their events stay pending, in
/// order, until [`resume`].
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::StoreError> {
/// use outbox_engine::slots::SlotRange;
/// use outbox_engine::store::{self, pause};
///
/// let mut conn = store::connect("postgres://ops:secret@db:5432/orders").await?;
/// let range = SlotRange { start: 0, end: 255 };
/// if !pause::pause(&mut conn, range, "alice@ops-1").await? {
///     println!("slots {range} were paused already");
/// }
/// // ... later, the same range exactly:
/// pause::resume(&mut conn, range).await?;
/// # Ok(())
/// # }
/// ```
pub async fn pause(
    conn: &mut AsyncPgConnection,
    range: SlotRange,
    by: &str,
) -> Result<bool, StoreError> {
    let row: Changed = diesel::sql_query(
        "WITH added AS (INSERT INTO outbox_pause (lo, hi, paused_by) VALUES ($1, $2, $3) \
                        ON CONFLICT (lo, hi) DO NOTHING RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM added) AS changed",
    )
    .bind::<Integer, _>(range.start)
    .bind::<Integer, _>(range.end)
    .bind::<Text, _>(by)
    .get_result(conn)
    .await?;
    Ok(row.changed)
}

/// Resumes `range`; returns false when it was not paused (nothing changed). It must be
/// the range exactly as paused (see [`paused`]): resuming part of a paused range, or a
/// larger one, changes nothing.
pub async fn resume(conn: &mut AsyncPgConnection, range: SlotRange) -> Result<bool, StoreError> {
    let row: Changed = diesel::sql_query(
        "WITH removed AS (DELETE FROM outbox_pause WHERE lo = $1 AND hi = $2 RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM removed) AS changed",
    )
    .bind::<Integer, _>(range.start)
    .bind::<Integer, _>(range.end)
    .get_result(conn)
    .await?;
    Ok(row.changed)
}

/// Every paused range, in slot order.
pub async fn paused(conn: &mut AsyncPgConnection) -> Result<Vec<Paused>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT lo, hi, to_char(paused_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS paused_at, paused_by \
           FROM outbox_pause ORDER BY lo, hi",
    )
    .load(conn)
    .await?)
}
