//! Replay: republishing published events that are still retained, by range, key or
//! topic, from a sequence number or a time (`outbox-relay replay`).
//!
//! Contract:
//! - only events already published (not pending) are selected: pending ones are the
//!   relay's, and replaying them could overtake their own first publication;
//! - events come in sequence order (per key, commit order), unchanged: same `event_id`
//!   and `seq`, so consumers treat them as duplicates unless they ask otherwise;
//! - a start before the retention window (older than the oldest retained event) is an
//!   error naming the window, never a silent partial replay.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{EventRow, StoreError};
use crate::slots::SlotRange;

/// What to replay: the conditions given all apply. At least one of `range`, `key` and
/// `topic` must be given ([`crate::replay::replay`] refuses otherwise).
///
/// ```
/// use outbox_engine::store::replay::ReplayFilter;
///
/// // Everything of key `order-42` from seq 1000 on.
/// let filter = ReplayFilter {
///     key: Some("order-42".into()),
///     from_seq: Some(1_000),
///     ..ReplayFilter::default()
/// };
/// # assert!(filter.range.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Events whose key's slot lies in this range; `None`: any slot.
    pub range: Option<SlotRange>,
    /// Events of this key only; `None`: any key.
    pub key: Option<String>,
    /// As enqueued: a short name or a full `persistent://` name.
    pub topic: Option<String>,
    /// First sequence number, included; `None`: from the oldest retained event. Before
    /// the retention window it is an error, not a partial replay.
    pub from_seq: Option<i64>,
    /// An RFC 3339 time: events of transactions started at or after it.
    pub since: Option<String>,
    /// Last sequence number, included; `None`: up to the newest published event.
    pub to_seq: Option<i64>,
}

// `Window`, `window`, `pending_seqs` and `page` are `#[doc(hidden)]`: the steps of
// `crate::replay::replay`, public only for the engine's tests. Call `replay` instead.

/// The oldest event still retained: the replay window starts there.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
#[doc(hidden)]
pub struct Window {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub oldest_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub oldest_created_at: Option<String>,
    /// True when `since` is older than the oldest retained event.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub since_before_window: bool,
}

#[doc(hidden)]
pub async fn window(
    conn: &mut AsyncPgConnection,
    since: Option<&str>,
) -> Result<Window, StoreError> {
    Ok(diesel::sql_query(
        "SELECT min(seq) AS oldest_seq, \
                to_char(min(created_at), 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS oldest_created_at, \
                coalesce($1::timestamptz < min(created_at), false) AS since_before_window \
           FROM outbox_event",
    )
    .bind::<Nullable<Text>, _>(since)
    .get_result(conn)
    .await?)
}

#[derive(diesel::QueryableByName)]
struct PendingSeq {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Sequence numbers not yet published: excluded from a replay.
#[doc(hidden)]
pub async fn pending_seqs(
    conn: &mut AsyncPgConnection,
) -> Result<std::collections::HashSet<i64>, StoreError> {
    let rows: Vec<PendingSeq> = diesel::sql_query("SELECT seq FROM outbox_pending")
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| row.seq).collect())
}

/// The next page of matching retained events after `after_seq`, in sequence order
/// (pending ones included: the caller drops them with [`pending_seqs`]).
#[doc(hidden)]
pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &ReplayFilter,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let short_topic = filter.topic.as_deref().map(|t| {
        t.strip_prefix("persistent://public/default/")
            .unwrap_or(t)
            .to_owned()
    });
    Ok(diesel::sql_query(
        "SELECT slot, seq, key, topic, event_type, payload, headers::text AS headers, \
                event_id::text AS event_id, tx::text::bigint AS tx, \
                extract(epoch FROM created_at)::float8 AS created_s \
           FROM outbox_event \
          WHERE ($1::int IS NULL OR slot BETWEEN $1 AND $2) \
            AND ($3::text IS NULL OR key = $3) \
            AND ($4::text IS NULL OR topic = $4 OR topic = 'persistent://public/default/' || $4) \
            AND seq >= coalesce($5, 0) AND seq <= coalesce($6, 9223372036854775807) \
            AND ($7::timestamptz IS NULL OR created_at >= $7::timestamptz) \
            AND seq > $8 \
          ORDER BY seq LIMIT $9",
    )
    .bind::<Nullable<Integer>, _>(filter.range.map(|r| r.start))
    .bind::<Nullable<Integer>, _>(filter.range.map(|r| r.end))
    .bind::<Nullable<Text>, _>(filter.key.as_deref())
    .bind::<Nullable<Text>, _>(short_topic.as_deref())
    .bind::<Nullable<BigInt>, _>(filter.from_seq)
    .bind::<Nullable<BigInt>, _>(filter.to_seq)
    .bind::<Nullable<Text>, _>(filter.since.as_deref())
    .bind::<BigInt, _>(after_seq)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
