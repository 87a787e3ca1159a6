//! What `outbox-relay status` shows: backlog, its age, per-range progress.

use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct RangeProgress {
    #[diesel(sql_type = Integer)]
    pub range_start: i32,
    #[diesel(sql_type = Integer)]
    pub range_end: i32,
    #[diesel(sql_type = BigInt)]
    pub last_seq: i64,
    #[diesel(sql_type = BigInt)]
    pub published_total: i64,
    #[diesel(sql_type = BigInt)]
    pub parked_total: i64,
    #[diesel(sql_type = Text)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
struct Backlog {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Nullable<Double>)]
    oldest_pending_age_s: Option<f64>,
    #[diesel(sql_type = BigInt)]
    parked: i64,
}

/// A snapshot of the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub pending: i64,
    pub oldest_pending_age_s: Option<f64>,
    pub parked: i64,
    pub ranges: Vec<RangeProgress>,
}

pub async fn status(conn: &mut AsyncPgConnection) -> Result<Status, StoreError> {
    let backlog: Backlog = diesel::sql_query(
        "SELECT (SELECT count(*) FROM outbox_event) AS pending, \
                (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox_event) AS oldest_pending_age_s, \
                (SELECT count(*) FROM outbox_parked) AS parked",
    )
    .get_result(conn)
    .await?;
    let ranges: Vec<RangeProgress> = diesel::sql_query(
        "SELECT range_start, range_end, last_seq, published_total, parked_total, \
                to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS updated_at \
         FROM outbox_progress ORDER BY range_start, range_end",
    )
    .load(conn)
    .await?;
    Ok(Status {
        pending: backlog.pending,
        oldest_pending_age_s: backlog.oldest_pending_age_s,
        parked: backlog.parked,
        ranges,
    })
}
