//! What `outbox-relay status` shows: backlog, its age, per-range progress, the relays
//! and their range leases, and writers holding a key's lock open.

use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::Serialize;

use super::StoreError;

/// Where one slot range stands: what is published, who last wrote its progress, and
/// why it is stuck, if it is.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct RangeProgress {
    /// First slot of the range.
    #[diesel(sql_type = Integer)]
    pub range_start: i32,
    /// Last slot of the range, included.
    #[diesel(sql_type = Integer)]
    pub range_end: i32,
    /// Everything visible in this snapshot is published (`xmin:xmax:in-progress`).
    #[diesel(sql_type = Text)]
    pub done_snapshot: String,
    /// The batch being published, if one is open, and its cursor.
    #[diesel(sql_type = Nullable<Text>)]
    pub batch_snapshot: Option<String>,
    /// Highest sequence number of the open batch already published (0: no batch open).
    #[diesel(sql_type = BigInt)]
    pub batch_seq: i64,
    /// Lease epoch of the last progress write; `None` until a relay first recorded
    /// progress for the range.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub epoch: Option<i64>,
    /// The relay that last recorded progress; `None` until one has.
    #[diesel(sql_type = Nullable<Text>)]
    pub relay_id: Option<String>,
    /// Events published from this range since it was laid out (a change of the
    /// partition count starts new ranges at 0).
    #[diesel(sql_type = BigInt)]
    pub published_total: i64,
    /// Events of this range dead-lettered or held (`outbox_parked`), counted the same way.
    #[diesel(sql_type = BigInt)]
    pub parked_total: i64,
    /// When progress was last written (RFC 3339, the database's clock). An old value
    /// with events pending means the range is not moving.
    #[diesel(sql_type = Text)]
    pub updated_at: String,
    /// Whether the broker deduplicates each topic the range published to (JSON object
    /// topic -> "on" | "off" | "unknown (reason)"), as the owner last learned it.
    #[diesel(sql_type = Nullable<Text>)]
    pub deduplication: Option<String>,
    /// Why the range is not moving: its cycles' last failure, until one succeeds.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// When [`Self::last_error`] was recorded (RFC 3339); `None` with it.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error_at: Option<String>,
}

/// `status` counts at most this many pending events, overall and per range, so that it
/// stays cheap on a large backlog (it reads only pending events, through the
/// `(tx, slot)` index, never the published ones kept for the audit trail).
pub const PENDING_COUNT_CAP: i64 = 100_000;

#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
struct Backlog {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Bool)]
    pending_capped: bool,
    #[diesel(sql_type = Nullable<Double>)]
    oldest_pending_age_s: Option<f64>,
    #[diesel(sql_type = BigInt)]
    parked: i64,
}

/// One range lease: who owns it, under which epoch, until when, and what waits in it.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct LeaseStatus {
    #[diesel(sql_type = Integer)]
    pub range_start: i32,
    #[diesel(sql_type = Integer)]
    pub range_end: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub epoch: i64,
    /// Seconds until the lease expires by the database's clock (negative: expired).
    #[diesel(sql_type = Nullable<Double>)]
    pub expires_in_s: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub oldest_pending_age_s: Option<f64>,
    /// More events wait than [`PENDING_COUNT_CAP`]: `pending` and the age are lower
    /// bounds.
    #[diesel(sql_type = Bool)]
    pub pending_capped: bool,
}

/// One relay process of the group.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct RelayStatus {
    #[diesel(sql_type = Text)]
    pub relay_id: String,
    #[diesel(sql_type = Text)]
    pub host: String,
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Double)]
    pub heartbeat_age_s: f64,
    #[diesel(sql_type = Bool)]
    pub leaving: bool,
}

/// A writer transaction holding a key's enqueue lock: the key's later events (and, while
/// it stays open, this event) wait for it.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct KeyLockHolder {
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Nullable<Double>)]
    pub transaction_age_s: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub application_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub keys_locked: i64,
}

/// A snapshot of the outbox: what [`crate::RelayHandle::status`] returns and
/// `outbox-relay status --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Events committed and not yet published (those of paused ranges included).
    pub pending: i64,
    /// Age in seconds of the oldest pending event, from its writer's transaction start;
    /// `None` when nothing is pending. Growing: the relays are behind or stopped.
    pub oldest_pending_age_s: Option<f64>,
    /// More than [`PENDING_COUNT_CAP`] events are pending: counting stopped there, and
    /// `pending` and `oldest_pending_age_s` are lower bounds.
    pub pending_capped: bool,
    /// Rows of `outbox_parked`: dead letters and events held behind them, resolved ones
    /// included (the unresolved are in [`Self::quarantine`]).
    pub parked: i64,
    /// Progress of every slot range, in slot order.
    pub ranges: Vec<RangeProgress>,
    /// Every range lease: owner, epoch, seconds to expiry, and its pending backlog.
    pub leases: Vec<LeaseStatus>,
    /// The live relay processes of the group (id, host, pid, heartbeat age, leaving).
    pub relays: Vec<RelayStatus>,
    /// Open writer transactions holding key locks for longer than a second.
    pub key_locks: Vec<KeyLockHolder>,
    /// Slot ranges an operator paused (`outbox-relay pause`).
    pub paused: Vec<super::pause::Paused>,
    /// Quarantined keys and unresolved dead letters / held events (`outbox-relay dlq`).
    pub quarantine: super::dead_letters::Counts,
}

/// Reads the [`Status`] on any connection (a few small queries; no lock taken). A
/// running relay gives the same through [`crate::RelayHandle::status`].
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::StoreError> {
/// use outbox_engine::store;
///
/// let mut conn = store::connect("postgres://ops:secret@db:5432/orders").await?;
/// let status = store::status(&mut conn).await?;
/// if let Some(age) = status.oldest_pending_age_s {
///     println!("{} pending, oldest {age:.1} s", status.pending);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn status(conn: &mut AsyncPgConnection) -> Result<Status, StoreError> {
    status_counting_up_to(conn, PENDING_COUNT_CAP).await
}

/// [`status`], counting at most `cap` pending events overall and per range.
#[doc(hidden)] // `status` with the cap of a test.
pub async fn status_counting_up_to(
    conn: &mut AsyncPgConnection,
    cap: i64,
) -> Result<Status, StoreError> {
    // JIT off for these statements only (whatever the session, a pooled one included):
    // the per-range count is planned over every partition, and while the tables have no
    // statistics yet its estimate passes `jit_above_cost`, which once made compiling it
    // take most of a second, past the relay's statement timeout.
    conn.transaction::<_, StoreError, _>(async |conn| {
        conn.batch_execute("SET LOCAL jit = off").await?;
        read_status(conn, cap).await
    })
    .await
}

async fn read_status(conn: &mut AsyncPgConnection, cap: i64) -> Result<Status, StoreError> {
    let backlog: Backlog = diesel::sql_query(
        "SELECT least(count(*), $1) AS pending, count(*) > $1 AS pending_capped, \
                extract(epoch FROM now() - min(created_at))::float8 AS oldest_pending_age_s, \
                (SELECT count(*) FROM outbox_parked) AS parked \
         FROM (SELECT created_at FROM outbox_pending LIMIT $1 + 1) counted",
    )
    .bind::<BigInt, _>(cap)
    .get_result(conn)
    .await?;
    let ranges: Vec<RangeProgress> = diesel::sql_query(
        "SELECT range_start, range_end, done_snapshot::text AS done_snapshot, \
                batch_snapshot::text AS batch_snapshot, batch_seq, epoch, relay_id, published_total, parked_total, \
                to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS updated_at, \
                deduplication::text AS deduplication, last_error, \
                to_char(last_error_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS last_error_at \
         FROM outbox_progress ORDER BY range_start, range_end",
    )
    .load(conn)
    .await?;
    let leases: Vec<LeaseStatus> = diesel::sql_query(
        "SELECT l.range_start, l.range_end, l.owner, l.epoch, \
                CASE WHEN l.owner IS NULL THEN NULL \
                     ELSE extract(epoch FROM l.expires_at - now())::float8 END AS expires_in_s, \
                least(e.pending, $1) AS pending, e.pending > $1 AS pending_capped, \
                extract(epoch FROM now() - e.oldest)::float8 AS oldest_pending_age_s \
         FROM outbox_lease l CROSS JOIN LATERAL ( \
              SELECT count(*) AS pending, min(p.created_at) AS oldest FROM ( \
                SELECT created_at FROM outbox_pending p \
                 WHERE p.slot BETWEEN l.range_start AND l.range_end LIMIT $1 + 1) p) e \
         ORDER BY l.range_start",
    )
    .bind::<BigInt, _>(cap)
    .load(conn)
    .await?;
    let relays: Vec<RelayStatus> = diesel::sql_query(
        "SELECT relay_id, host, pid, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s, \
                leaving FROM outbox_relay WHERE expires_at >= now() ORDER BY relay_id",
    )
    .load(conn)
    .await?;
    let key_locks: Vec<KeyLockHolder> = diesel::sql_query(
        "SELECT a.pid, extract(epoch FROM now() - a.xact_start)::float8 AS transaction_age_s, \
                a.state, a.application_name, count(*) AS keys_locked \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
               (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND a.pid <> pg_backend_pid() AND a.xact_start < now() - interval '1 second' \
         GROUP BY a.pid, a.xact_start, a.state, a.application_name ORDER BY a.xact_start",
    )
    .load(conn)
    .await?;
    let paused = super::pause::paused(conn).await?;
    let quarantine = super::dead_letters::counts(conn).await?;
    Ok(Status {
        quarantine,
        paused,
        leases,
        relays,
        key_locks,
        pending: backlog.pending,
        pending_capped: backlog.pending_capped,
        oldest_pending_age_s: backlog.oldest_pending_age_s,
        parked: backlog.parked,
        ranges,
    })
}
