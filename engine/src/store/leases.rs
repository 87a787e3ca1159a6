//! Membership and range leases in PostgreSQL (see `crate::lease` for the rules).
//!
//! Contract:
//! - [`tick`] is one transaction under one advisory lock: the relay's heartbeat, removal
//!   of members whose heartbeat expired (by this database's clock), a step towards the
//!   target layout, the plan, and this relay's claims and renewals. It returns every range
//!   this relay owns afterwards, and whether the plan wants it to keep each one.
//! - A claim only takes a range nobody holds a live lease on, and draws a new epoch.
//! - [`release`] and every fenced write match the epoch they were granted: after a
//!   takeover they change nothing.

use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::StoreError;
use crate::lease::layout::{self, LayoutStep};
use crate::lease::planner::{self, RangeView};
use crate::slots::SlotRange;

/// Advisory lock serialising ticks of every relay on this database ("lease" in ASCII).
pub const LEASE_LOCK_ID: i64 = 0x006c_6561_7365;

/// Who this relay is and how long its leases last.
#[derive(Debug, Clone)]
pub struct Member {
    pub relay_id: String,
    pub host: String,
    pub pid: i32,
    pub lease_ms: i64,
}

/// A range this relay owns after a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub range: SlotRange,
    pub epoch: i64,
    /// False when the plan gives the range to another relay (or the layout changes): the
    /// partition finishes its batch, then the range is released.
    pub keep: bool,
}

/// What a tick saw and did.
#[derive(Debug, Clone)]
pub struct TickOutcome {
    pub owned: Vec<Owned>,
    /// Live relays, leaving ones excluded.
    pub live_relays: usize,
    pub ranges: usize,
}

#[derive(diesel::QueryableByName)]
struct LeaseRow {
    #[diesel(sql_type = Integer)]
    range_start: i32,
    #[diesel(sql_type = Integer)]
    range_end: i32,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
    #[diesel(sql_type = Bool)]
    live_lease: bool,
    #[diesel(sql_type = Nullable<Text>)]
    avoid: Option<String>,
}

impl LeaseRow {
    fn range(&self) -> SlotRange {
        SlotRange {
            start: self.range_start,
            end: self.range_end,
        }
    }

    fn is_free(&self) -> bool {
        self.owner.is_none() || !self.live_lease
    }
}

#[derive(diesel::QueryableByName)]
struct RelayRow {
    #[diesel(sql_type = Text)]
    relay_id: String,
    #[diesel(sql_type = Bool)]
    leaving: bool,
}

#[derive(diesel::QueryableByName)]
struct Target {
    #[diesel(sql_type = Integer)]
    target_ranges: i32,
}

#[derive(diesel::QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Integer)]
    range_start: i32,
    #[diesel(sql_type = Integer)]
    range_end: i32,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

async fn read_leases(conn: &mut AsyncPgConnection) -> Result<Vec<LeaseRow>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT range_start, range_end, owner, expires_at > now() AS live_lease, \
                CASE WHEN avoid_until > now() THEN avoid_owner END AS avoid \
         FROM outbox_lease ORDER BY range_start",
    )
    .load(conn)
    .await?)
}

/// One membership tick; see the module contract. `target_ranges` (the relay's configured
/// partition count) becomes the layout target when given.
pub async fn tick(
    conn: &mut AsyncPgConnection,
    me: &Member,
    leaving: bool,
    target_ranges: Option<u32>,
    lock_timeout: std::time::Duration,
) -> Result<TickOutcome, StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        // Bounded: a member stopped in the middle of its own tick holds this lock until
        // the server ends its idle transaction (idle_in_transaction_session_timeout).
        diesel::sql_query(format!(
            "SET LOCAL lock_timeout = {}",
            lock_timeout.as_millis()
        ))
        .execute(conn)
        .await?;
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({LEASE_LOCK_ID})"))
            .execute(conn)
            .await?;
        diesel::sql_query(
            "INSERT INTO outbox_relay (relay_id, host, pid, expires_at, leaving) \
             VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond', $5) \
             ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = now(), \
               expires_at = excluded.expires_at, leaving = outbox_relay.leaving OR excluded.leaving",
        )
        .bind::<Text, _>(&me.relay_id)
        .bind::<Text, _>(&me.host)
        .bind::<Integer, _>(me.pid)
        .bind::<BigInt, _>(me.lease_ms)
        .bind::<Bool, _>(leaving)
        .execute(conn)
        .await?;
        diesel::sql_query("DELETE FROM outbox_relay WHERE expires_at < now()")
            .execute(conn)
            .await?;
        if let Some(target) = target_ranges {
            diesel::sql_query(
                "INSERT INTO outbox_lease_layout (target_ranges) VALUES ($1) \
                 ON CONFLICT (singleton) DO UPDATE SET target_ranges = excluded.target_ranges, updated_at = now() \
                 WHERE outbox_lease_layout.target_ranges <> excluded.target_ranges",
            )
            .bind::<Integer, _>(target as i32)
            .execute(conn)
            .await?;
        }
        let target: Option<Target> =
            diesel::sql_query("SELECT target_ranges FROM outbox_lease_layout")
                .get_result(conn)
                .await
                .map(Some)
                .or_else(|e| match e {
                    diesel::result::Error::NotFound => Ok(None),
                    other => Err(other),
                })?;
        let target = target.map(|t| t.target_ranges.max(1) as u32).unwrap_or(1);

        let mut leases = read_leases(conn).await?;
        let current: Vec<SlotRange> = leases.iter().map(LeaseRow::range).collect();
        let free: Vec<SlotRange> = leases
            .iter()
            .filter(|l| l.is_free())
            .map(LeaseRow::range)
            .collect();
        let draining = match layout::next_step(&current, target, |r| free.contains(r)) {
            LayoutStep::Settled => Vec::new(),
            LayoutStep::Drain(mismatched) => mismatched,
            LayoutStep::Recut { delete, insert } => {
                let starts: Vec<i32> = delete.iter().map(|r| r.start).collect();
                diesel::sql_query("DELETE FROM outbox_lease WHERE range_start = ANY($1)")
                    .bind::<Array<Integer>, _>(starts)
                    .execute(conn)
                    .await?;
                let starts: Vec<i32> = insert.iter().map(|r| r.start).collect();
                let ends: Vec<i32> = insert.iter().map(|r| r.end).collect();
                diesel::sql_query(
                    "INSERT INTO outbox_lease (range_start, range_end) \
                     SELECT * FROM unnest($1::int[], $2::int[])",
                )
                .bind::<Array<Integer>, _>(starts)
                .bind::<Array<Integer>, _>(ends)
                .execute(conn)
                .await?;
                // Progress rows follow the ranges in the same transaction.
                diesel::sql_query("SELECT outbox_progress_follow_layout()")
                    .execute(conn)
                    .await?;
                tracing::info!(ranges = target, "lease layout re-cut");
                leases = read_leases(conn).await?;
                Vec::new()
            }
        };

        let relays: Vec<RelayRow> =
            diesel::sql_query("SELECT relay_id, leaving FROM outbox_relay WHERE expires_at >= now()")
                .load(conn)
                .await?;
        let live: Vec<String> = relays
            .iter()
            .filter(|r| !r.leaving)
            .map(|r| r.relay_id.clone())
            .collect();
        // Ranges being drained for a layout change are planned for nobody.
        let planned: Vec<usize> = (0..leases.len())
            .filter(|&i| !draining.contains(&leases[i].range()))
            .collect();
        let views: Vec<RangeView> = planned
            .iter()
            .map(|&i| RangeView {
                holder: leases[i]
                    .owner
                    .clone()
                    .filter(|_| leases[i].live_lease)
                    .filter(|o| live.contains(o)),
                avoid: leases[i].avoid.clone(),
            })
            .collect();
        let desired = planner::plan(&views, &live);
        let mine: Vec<SlotRange> = planned
            .iter()
            .zip(&desired)
            .filter(|(_, owner)| owner.as_deref() == Some(me.relay_id.as_str()))
            .map(|(&i, _)| leases[i].range())
            .collect();

        let to_claim: Vec<i32> = leases
            .iter()
            .filter(|l| mine.contains(&l.range()) && l.owner.as_deref() != Some(&me.relay_id))
            .filter(|l| l.is_free())
            .map(|l| l.range_start)
            .collect();
        if !to_claim.is_empty() {
            diesel::sql_query(
                "UPDATE outbox_lease SET owner = $1, epoch = nextval('outbox_lease_epoch'), \
                   expires_at = now() + $2 * interval '1 millisecond', changed_at = now() \
                 WHERE range_start = ANY($3) AND (owner IS NULL OR expires_at <= now())",
            )
            .bind::<Text, _>(&me.relay_id)
            .bind::<BigInt, _>(me.lease_ms)
            .bind::<Array<Integer>, _>(to_claim)
            .execute(conn)
            .await?;
        }
        // Renews what it held before and what it just claimed; ranges the plan gives to
        // others stay renewed until their partition has stopped and released them.
        let owned: Vec<Claimed> = diesel::sql_query(
            "UPDATE outbox_lease SET expires_at = now() + $2 * interval '1 millisecond' \
             WHERE owner = $1 RETURNING range_start, range_end, epoch",
        )
        .bind::<Text, _>(&me.relay_id)
        .bind::<BigInt, _>(me.lease_ms)
        .load(conn)
        .await?;
        let mut owned: Vec<Owned> = owned
            .into_iter()
            .map(|c| {
                let range = SlotRange {
                    start: c.range_start,
                    end: c.range_end,
                };
                Owned {
                    range,
                    epoch: c.epoch,
                    keep: !leaving && mine.contains(&range),
                }
            })
            .collect();
        owned.sort_by_key(|o| o.range.start);
        Ok(TickOutcome {
            owned,
            live_relays: live.len(),
            ranges: leases.len(),
        })
    })
    .await
}

/// Gives a range up. `unhealthy` asks the planner to prefer other relays for a minute.
/// Returns false when the lease was no longer this relay's (taken over meanwhile).
pub async fn release(
    conn: &mut AsyncPgConnection,
    relay_id: &str,
    range: SlotRange,
    epoch: i64,
    unhealthy: bool,
) -> Result<bool, StoreError> {
    let changed = diesel::sql_query(
        "UPDATE outbox_lease SET owner = NULL, expires_at = '-infinity', changed_at = now(), \
           avoid_owner = CASE WHEN $4 THEN owner END, \
           avoid_until = CASE WHEN $4 THEN now() + interval '60 seconds' END \
         WHERE range_start = $1 AND epoch = $2 AND owner = $3",
    )
    .bind::<Integer, _>(range.start)
    .bind::<BigInt, _>(epoch)
    .bind::<Text, _>(relay_id)
    .bind::<Bool, _>(unhealthy)
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// Leaves the group: releases whatever this relay still owns and removes its member row.
pub async fn leave(conn: &mut AsyncPgConnection, relay_id: &str) -> Result<(), StoreError> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::sql_query(
            "UPDATE outbox_lease SET owner = NULL, expires_at = '-infinity', changed_at = now() \
             WHERE owner = $1",
        )
        .bind::<Text, _>(relay_id)
        .execute(conn)
        .await?;
        diesel::sql_query("DELETE FROM outbox_relay WHERE relay_id = $1")
            .bind::<Text, _>(relay_id)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}
