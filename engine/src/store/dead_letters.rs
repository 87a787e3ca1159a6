//! Dead letters and per-key quarantine (migration 000009, docs/operations.md).
//!
//! Contract:
//! - the relay side (`quarantined`, `hold`, `release_entries`, `finish_release`,
//!   `release_failed`) is used by the partition that owns the key's slot; every write is
//!   fenced by the range's lease epoch, like progress. A key is quarantined by the
//!   relay's `park` together with its dead letter;
//! - the operator side ([`entries`], [`request_release`], [`skip`]) never publishes and
//!   never deletes an event: it marks entries and asks the owning relay to release the
//!   key, so the key's events still leave in sequence order through one partition;
//! - an entry is resolved at most once (`replayed` or `skipped`, with who and when) and
//!   then kept as the record of what happened.

use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::prepared::prepared;
use super::relay_queries::{still_held, Held};
use super::{EventRow, StoreError};
use crate::lease::Lease;
use crate::slots::SlotRange;

// The relay side below (`QuarantinedKey` .. `release_failed`) is `#[doc(hidden)]`: it is
// called by the partition that holds the range's lease, public only for the engine's
// tests. Operators use the operator side further down.

/// A quarantined key of a range, as the owning relay sees it.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
#[doc(hidden)]
pub struct QuarantinedKey {
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = Bool)]
    pub release_requested: bool,
}

/// The quarantined keys of `range`. One index probe; the relay asks only while some key
/// of its range is quarantined, and once when it takes the range.
#[doc(hidden)]
pub async fn quarantined(
    conn: &mut AsyncPgConnection,
    range: SlotRange,
) -> Result<Vec<QuarantinedKey>, StoreError> {
    Ok(prepared(
        "SELECT key, release_requested_at IS NOT NULL AS release_requested \
           FROM outbox_quarantine WHERE slot BETWEEN $1 AND $2",
    )
    .bind::<Integer, _>(range.start)
    .bind::<Integer, _>(range.end)
    .load(conn)
    .await?)
}

/// Copies events of quarantined keys to `outbox_parked`, each held behind its key's dead
/// letter; fenced. The range then moves past them like past published events.
#[doc(hidden)]
pub async fn hold(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    rows: &[(i64, i64)],
) -> Result<(), StoreError> {
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let txs: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
    let held: Held = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $3 AND range_end = $4 AND epoch = $5 FOR SHARE), \
         held AS ( \
           INSERT INTO outbox_parked (slot, seq, key, topic, event_type, payload, headers, event_id, \
                                      created_at, reason, held_behind) \
           SELECT e.slot, e.seq, e.key, e.topic, e.event_type, e.payload, e.headers, e.event_id, \
                  e.created_at, 'held: key quarantined behind dead letter seq ' || q.since_seq, q.since_seq \
             FROM unnest($1::bigint[], $2::text[]) AS r(seq, tx) \
             JOIN outbox_event e ON e.seq = r.seq AND e.tx = r.tx::xid8 \
             JOIN outbox_quarantine q ON q.key = e.key \
            WHERE EXISTS (SELECT 1 FROM lease) \
           ON CONFLICT (seq) DO NOTHING RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM lease) AS held",
    )
    .bind::<Array<BigInt>, _>(&seqs)
    .bind::<Array<Text>, _>(&txs)
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .get_result(conn)
    .await?;
    still_held(held.held, lease)
}

/// The unresolved entries of `key` in sequence order, as events to publish.
#[doc(hidden)]
pub async fn release_entries(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(prepared(
        "SELECT slot, seq, key, topic, event_type, payload, headers::text AS headers, \
                event_id::text AS event_id, 0::bigint AS tx, \
                extract(epoch FROM created_at)::float8 AS created_s \
           FROM outbox_parked WHERE key = $1 AND resolution IS NULL ORDER BY seq",
    )
    .bind::<Text, _>(key)
    .load(conn)
    .await?)
}

/// Marks `seqs` (published by a release) as replayed; when `lift`, the key leaves
/// quarantine. Fenced.
#[doc(hidden)]
pub async fn finish_release(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    relay_id: &str,
    key: &str,
    seqs: &[i64],
    lift: bool,
) -> Result<(), StoreError> {
    let held: Held = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $1 AND range_end = $2 AND epoch = $3 FOR SHARE), \
         done AS ( \
           UPDATE outbox_parked SET resolution = 'replayed', resolved_by = $4, resolved_at = now() \
            WHERE seq = ANY ($5) AND resolution IS NULL AND EXISTS (SELECT 1 FROM lease) RETURNING 1), \
         lifted AS ( \
           DELETE FROM outbox_quarantine WHERE key = $6 AND $7 AND EXISTS (SELECT 1 FROM lease) RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM lease) AS held",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .bind::<Text, _>(relay_id)
    .bind::<Array<BigInt>, _>(seqs)
    .bind::<Text, _>(key)
    .bind::<Bool, _>(lift)
    .get_result(conn)
    .await?;
    still_held(held.held, lease)
}

/// A released entry failed for good again: count the attempt, keep the key quarantined
/// and withdraw the release request (the operator decides again). Fenced.
#[doc(hidden)]
pub async fn release_failed(
    conn: &mut AsyncPgConnection,
    lease: &Lease,
    key: &str,
    seq: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let held: Held = prepared(
        "WITH lease AS ( \
           SELECT 1 FROM outbox_lease WHERE range_start = $1 AND range_end = $2 AND epoch = $3 FOR SHARE), \
         counted AS ( \
           UPDATE outbox_parked SET attempts = attempts + 1, reason = $5 \
            WHERE seq = $4 AND EXISTS (SELECT 1 FROM lease) RETURNING 1), \
         kept AS ( \
           UPDATE outbox_quarantine SET release_requested_at = NULL, release_requested_by = NULL, reason = $5 \
            WHERE key = $6 AND EXISTS (SELECT 1 FROM lease) RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM lease) AS held",
    )
    .bind::<Integer, _>(lease.range.start)
    .bind::<Integer, _>(lease.range.end)
    .bind::<BigInt, _>(lease.epoch)
    .bind::<BigInt, _>(seq)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(key)
    .get_result(conn)
    .await?;
    still_held(held.held, lease)
}

/// One entry of `outbox_parked`, for `outbox-relay dlq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, diesel::QueryableByName)]
pub struct Entry {
    /// The event's sequence number ([`Selection::Seq`], `dlq ... --seq`).
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// The event's ordering key: quarantined while it has unresolved entries.
    #[diesel(sql_type = Text)]
    pub key: String,
    /// The key's slot (see [`crate::slots`]).
    #[diesel(sql_type = Integer)]
    pub slot: i32,
    /// The topic as enqueued (short or full name).
    #[diesel(sql_type = Text)]
    pub topic: String,
    /// The event type as enqueued.
    #[diesel(sql_type = Text)]
    pub event_type: String,
    /// The event's unique id, which it keeps when released.
    #[diesel(sql_type = Text)]
    pub event_id: String,
    /// `dead` (it failed) or `held` (waits behind the key's dead letter).
    #[diesel(sql_type = Text)]
    pub state: String,
    /// For a held entry, the `seq` of the key's dead letter it waits behind; `None` for a
    /// dead letter.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub held_behind: Option<i64>,
    /// Failed publish attempts: those before it was parked, plus releases that failed.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// Why it was parked: the last error (the broker's refusal, the size limit, ...), or
    /// for a held entry the dead letter it waits behind.
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// When the writer's transaction started (RFC 3339).
    #[diesel(sql_type = Text)]
    pub created_at: String,
    /// When the relay parked it (RFC 3339).
    #[diesel(sql_type = Text)]
    pub parked_at: String,
    /// Size of the payload in bytes (the payload itself is not read).
    #[diesel(sql_type = Integer)]
    pub payload_bytes: i32,
    /// The event's headers as JSON text.
    #[diesel(sql_type = Text)]
    pub headers: String,
    /// `replayed` or `skipped` once resolved.
    #[diesel(sql_type = Nullable<Text>)]
    pub resolution: Option<String>,
    /// Who resolved it: the operator for `skipped`, the publishing relay's id for
    /// `replayed`; `None` while unresolved.
    #[diesel(sql_type = Nullable<Text>)]
    pub resolved_by: Option<String>,
    /// When it was resolved (RFC 3339); `None` while unresolved.
    #[diesel(sql_type = Nullable<Text>)]
    pub resolved_at: Option<String>,
    /// Whether the key is quarantined now (its new events are held).
    #[diesel(sql_type = Bool)]
    pub key_quarantined: bool,
    /// A release ([`request_release`] or [`skip`]) waits for the relay that owns the key.
    #[diesel(sql_type = Bool)]
    pub release_requested: bool,
}

/// Which entries an operator command means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The entry with this sequence number; releases act on its whole key.
    Seq(i64),
    /// The entries of this key.
    Key(String),
    /// As enqueued: a short name or a full `persistent://` name (both forms match).
    Topic(String),
    /// Every entry.
    All,
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Seq(seq) => write!(f, "--seq {seq}"),
            Selection::Key(key) => write!(f, "--key {key:?}"),
            Selection::Topic(topic) => write!(f, "--topic {topic}"),
            Selection::All => write!(f, "--all"),
        }
    }
}

impl Selection {
    fn matches(&self, entry: &Entry) -> bool {
        let full = |topic: &str| {
            outbox_adapters::full_topic_name(topic).unwrap_or_else(|_| topic.to_owned())
        };
        match self {
            Selection::Seq(seq) => entry.seq == *seq,
            Selection::Key(key) => entry.key == *key,
            Selection::Topic(topic) => full(&entry.topic) == full(topic),
            Selection::All => true,
        }
    }
}

const ENTRY_COLUMNS: &str = "p.seq, p.key, p.slot, p.topic, p.event_type, p.event_id::text AS event_id, \
     CASE WHEN p.held_behind IS NULL THEN 'dead' ELSE 'held' END AS state, p.held_behind, \
     p.attempts, p.reason, \
     to_char(p.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS created_at, \
     to_char(p.parked_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS parked_at, \
     octet_length(p.payload) AS payload_bytes, p.headers::text AS headers, p.resolution, p.resolved_by, \
     to_char(p.resolved_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') AS resolved_at, \
     q.key IS NOT NULL AS key_quarantined, q.release_requested_at IS NOT NULL AS release_requested";

/// The entries `selection` names, in sequence order: unresolved ones, or with
/// `resolved` also the record of those replayed or skipped (`outbox-relay dlq list`).
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::StoreError> {
/// use outbox_engine::store::{self, dead_letters::{self, Selection}};
///
/// let mut conn = store::connect("postgres://ops:secret@db:5432/orders").await?;
/// for entry in dead_letters::entries(&mut conn, &Selection::All, false).await? {
///     println!("seq {} key {} ({}): {}", entry.seq, entry.key, entry.state, entry.reason);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn entries(
    conn: &mut AsyncPgConnection,
    selection: &Selection,
    resolved: bool,
) -> Result<Vec<Entry>, StoreError> {
    let query = format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox_parked p LEFT JOIN outbox_quarantine q ON q.key = p.key \
          WHERE ($1 OR p.resolution IS NULL) \
            AND ($2::bigint IS NULL OR p.seq = $2) AND ($3::text IS NULL OR p.key = $3) \
          ORDER BY p.seq"
    );
    let (seq, key) = match selection {
        Selection::Seq(seq) => (Some(*seq), None),
        Selection::Key(key) => (None, Some(key.as_str())),
        Selection::Topic(_) | Selection::All => (None, None),
    };
    let rows: Vec<Entry> = diesel::sql_query(query)
        .bind::<Bool, _>(resolved)
        .bind::<Nullable<BigInt>, _>(seq)
        .bind::<Nullable<Text>, _>(key)
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter(|e| selection.matches(e)).collect())
}

/// What an operator command changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Keys whose release the owning relay will carry out (in order, then lift).
    pub released_keys: Vec<String>,
    /// Entries the releases will publish.
    pub to_publish: Vec<i64>,
    /// Dead letters marked skipped now.
    pub skipped: Vec<i64>,
}

/// Why an operator command changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// No unresolved entry matches (for [`skip`]: no dead letter); [`entries`] lists them.
    #[error("no unresolved dead letter matches {0} (`outbox-relay dlq list` shows them): nothing changed")]
    NothingMatches(Selection),
    /// [`skip`] of a held entry, which is never dropped: skip its dead letter, or
    /// release the key with [`request_release`].
    #[error("seq {seq} is not a dead letter but held behind dead letter seq {behind} of the same key: skip {behind}, or replay the key; nothing changed")]
    HeldNotDead {
        /// The held entry asked for.
        seq: i64,
        /// The dead letter it waits behind.
        behind: i64,
    },
    /// The database failed; the command's transaction rolled back.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for DlqError {
    fn from(error: diesel::result::Error) -> Self {
        DlqError::Store(error.into())
    }
}

async fn request(
    conn: &mut AsyncPgConnection,
    keys: &[String],
    by: &str,
) -> Result<(), StoreError> {
    // A key without a quarantine row (parked before quarantine existed) gets one, so that
    // its relay carries the release out like any other.
    diesel::sql_query(
        "INSERT INTO outbox_quarantine (key, slot, since_seq, reason, release_requested_at, release_requested_by) \
         SELECT p.key, min(p.slot), min(p.seq), 'release requested', now(), $2 \
           FROM outbox_parked p WHERE p.key = ANY ($1) AND p.resolution IS NULL GROUP BY p.key \
         ON CONFLICT (key) DO UPDATE SET release_requested_at = now(), release_requested_by = $2",
    )
    .bind::<Array<Text>, _>(keys)
    .bind::<Text, _>(by)
    .execute(conn)
    .await?;
    Ok(())
}

fn keys_of(entries: &[Entry]) -> Vec<String> {
    let mut keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `dlq replay`: asks the owning relays to publish the unresolved entries of every key
/// the selection touches, in sequence order starting with its dead letter, and then to
/// lift the key's quarantine. `by` is recorded as who asked. Returns at once: the relay
/// carries it out in its next cycle for the range (about a second); if the dead letter
/// fails for good again, the key stays quarantined and the request is withdrawn.
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::store::dead_letters::DlqError> {
/// use outbox_engine::store::{self, dead_letters::{self, Selection}};
///
/// let mut conn = store::connect("postgres://ops:secret@db:5432/orders").await?;
/// let change =
///     dead_letters::request_release(&mut conn, &Selection::Key("order-42".into()), "alice").await?;
/// println!("{} entries of {:?} will be published", change.to_publish.len(), change.released_keys);
/// # Ok(())
/// # }
/// ```
pub async fn request_release(
    conn: &mut AsyncPgConnection,
    selection: &Selection,
    by: &str,
) -> Result<Change, DlqError> {
    let selection = selection.clone();
    let by = by.to_owned();
    conn.transaction::<_, DlqError, _>(async move |conn| {
        let matched = entries(conn, &selection, false).await?;
        if matched.is_empty() {
            return Err(DlqError::NothingMatches(selection));
        }
        let keys = keys_of(&matched);
        request(conn, &keys, &by).await?;
        let mut to_publish = Vec::new();
        for key in &keys {
            let all = entries(conn, &Selection::Key(key.clone()), false).await?;
            to_publish.extend(all.iter().map(|e| e.seq));
        }
        Ok(Change {
            released_keys: keys,
            to_publish,
            skipped: Vec::new(),
        })
    })
    .await
}

/// `dlq skip`: marks the selected dead letters skipped (by whom, when) and releases what
/// their keys hold behind them; held entries are never dropped (they did nothing wrong).
/// `by` is recorded as who skipped. A skipped event is never published.
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::store::dead_letters::DlqError> {
/// use outbox_engine::store::{self, dead_letters::{self, DlqError, Selection}};
///
/// let mut conn = store::connect("postgres://ops:secret@db:5432/orders").await?;
/// match dead_letters::skip(&mut conn, &Selection::Seq(1234), "alice").await {
///     Ok(change) => println!("skipped {:?}; releasing {:?}", change.skipped, change.to_publish),
///     Err(DlqError::HeldNotDead { behind, .. }) => println!("skip its dead letter {behind} instead"),
///     Err(other) => return Err(other),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn skip(
    conn: &mut AsyncPgConnection,
    selection: &Selection,
    by: &str,
) -> Result<Change, DlqError> {
    let selection = selection.clone();
    let by = by.to_owned();
    conn.transaction::<_, DlqError, _>(async move |conn| {
        let matched = entries(conn, &selection, false).await?;
        if let (Selection::Seq(seq), [entry]) = (&selection, matched.as_slice()) {
            if let Some(behind) = entry.held_behind {
                return Err(DlqError::HeldNotDead { seq: *seq, behind });
            }
        }
        let dead: Vec<i64> = matched
            .iter()
            .filter(|e| e.held_behind.is_none())
            .map(|e| e.seq)
            .collect();
        if dead.is_empty() {
            return Err(DlqError::NothingMatches(selection));
        }
        diesel::sql_query(
            "UPDATE outbox_parked SET resolution = 'skipped', resolved_by = $2, resolved_at = now() \
              WHERE seq = ANY ($1) AND resolution IS NULL",
        )
        .bind::<Array<BigInt>, _>(&dead)
        .bind::<Text, _>(&by)
        .execute(conn)
        .await?;
        let keys = keys_of(&matched);
        let mut to_publish = Vec::new();
        for key in &keys {
            let left = entries(conn, &Selection::Key(key.clone()), false).await?;
            to_publish.extend(left.iter().map(|e| e.seq));
        }
        // Keys with nothing left still need their relay to lift the quarantine.
        diesel::sql_query(
            "UPDATE outbox_quarantine SET release_requested_at = now(), release_requested_by = $2 \
              WHERE key = ANY ($1)",
        )
        .bind::<Array<Text>, _>(&keys)
        .bind::<Text, _>(&by)
        .execute(conn)
        .await?;
        request(conn, &keys, &by).await?;
        Ok(Change {
            released_keys: keys,
            to_publish,
            skipped: dead,
        })
    })
    .await
}

/// Counts for metrics and `status`: quarantined keys and unresolved entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, diesel::QueryableByName)]
pub struct Counts {
    /// Keys whose new events are held behind a dead letter.
    #[diesel(sql_type = BigInt)]
    pub quarantined_keys: i64,
    /// Unresolved dead letters: events that failed for good.
    #[diesel(sql_type = BigInt)]
    pub dead_letters: i64,
    /// Unresolved events waiting behind their key's dead letter.
    #[diesel(sql_type = BigInt)]
    pub held: i64,
}

/// Small by design (a partial index over unresolved entries; quarantine is rare).
pub async fn counts(conn: &mut AsyncPgConnection) -> Result<Counts, StoreError> {
    Ok(prepared(
        "SELECT (SELECT count(*) FROM outbox_quarantine) AS quarantined_keys, \
                count(*) FILTER (WHERE held_behind IS NULL) AS dead_letters, \
                count(*) FILTER (WHERE held_behind IS NOT NULL) AS held \
           FROM outbox_parked WHERE resolution IS NULL",
    )
    .get_result(conn)
    .await?)
}
