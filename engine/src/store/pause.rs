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
    #[diesel(sql_type = Integer)]
    pub lo: i32,
    #[diesel(sql_type = Integer)]
    pub hi: i32,
    #[diesel(sql_type = Text)]
    pub paused_at: String,
    #[diesel(sql_type = Text)]
    pub paused_by: String,
}

impl Paused {
    pub fn overlaps(&self, range: SlotRange) -> bool {
        self.lo <= range.end && range.start <= self.hi
    }
}

#[derive(diesel::QueryableByName)]
struct Changed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    changed: bool,
}

/// Pauses `range`; returns false when it was paused already.
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

/// Resumes `range`; returns false when it was not paused (nothing changed).
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

/// Every paused range.
pub async fn paused(conn: &mut AsyncPgConnection) -> Result<Vec<Paused>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT lo, hi, to_char(paused_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS paused_at, paused_by \
           FROM outbox_pause ORDER BY lo, hi",
    )
    .load(conn)
    .await?)
}
