//! One partition cycle: read a batch, publish it, record what the broker acknowledged
//! (in the background, see [`super::acker`]).
//!
//! The rule that keeps order and loses nothing: only the acknowledged *prefix* of a
//! batch is deleted. After a transient failure the rest stays pending and the next
//! cycle reads it again from its lowest sequence number. A permanent failure (the
//! broker refuses the topic, unreadable headers) parks that one event with the reason
//! and the cycle counts as a success, so a poison event never blocks the range forever.

use std::sync::Arc;

use outbox_adapters::{PublishError, PulsarPublisher};

use super::acker::Acker;
use super::batch::{acknowledged_keys, group_by_topic, to_events};

use crate::lease::Lease;
use crate::store::{self, Pool, StoreError};

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub read: usize,
    pub published: usize,
    pub parked: usize,
    pub last_seq: i64,
    /// Where the next read should start.
    pub next_start: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Publishing failed at this row (events before it were acknowledged).
    #[error("{error} (first unacknowledged event: slot {slot}, seq {seq})")]
    FailedAt {
        slot: i32,
        seq: i64,
        error: PublishError,
    },
    /// The lease's local deadline passed (not renewed in time) or it was revoked: the
    /// partition must not publish for the range any more.
    #[error("lease of range {0} is no longer valid; publishing stopped")]
    LeaseExpired(String),
}

impl CycleError {
    /// True when the range is no longer this relay's: stop, do not retry.
    pub fn is_lease_lost(&self) -> bool {
        matches!(
            self,
            CycleError::LeaseExpired(_) | CycleError::Store(StoreError::Fenced { .. })
        )
    }
}

fn check_lease(lease: &Lease) -> Result<(), CycleError> {
    if lease.is_valid() {
        Ok(())
    } else {
        Err(CycleError::LeaseExpired(lease.range.to_string()))
    }
}

/// What a partition hands to each cycle and gets back: its producers and its
/// acknowledgements in flight.
#[derive(Debug)]
pub(crate) struct Worker {
    pub publisher: PulsarPublisher,
    pub acker: Acker,
}

/// Runs one cycle. Returns the worker so the caller keeps its producers and acks.
/// An event that failed too many times in a row, to be parked before the next read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poison {
    pub slot: i32,
    pub seq: i64,
    pub reason: String,
}

pub(crate) async fn run_cycle(
    pool: Pool,
    lease: Arc<Lease>,
    start: i32,
    batch_size: usize,
    poison: Option<Poison>,
    mut worker: Worker,
) -> (Worker, Result<CycleReport, CycleError>) {
    let result = async {
        let parked = match poison {
            Some(poison) => {
                check_lease(&lease)?;
                tracing::error!(range = %lease.range, slot = poison.slot, seq = poison.seq, reason = %poison.reason, "parking an event that keeps failing; its range goes on without it");
                let mut conn = pool.get().await.map_err(StoreError::from)?;
                store::park(&mut conn, &lease, poison.slot, poison.seq, &poison.reason).await?;
                1
            }
            None => 0,
        };
        let mut report = cycle(&pool, &lease, start, batch_size, &mut worker).await?;
        report.parked += parked;
        Ok(report)
    }
    .await;
    (worker, result)
}

/// Waits for the acknowledgement in flight; call before stopping.
pub(crate) async fn finish(mut worker: Worker) {
    if let Err(error) = worker.acker.wait().await {
        tracing::warn!(%error, "last acknowledgement failed; those events will be published again");
    }
    worker.publisher.close().await;
}

async fn cycle(
    pool: &Pool,
    lease: &Arc<Lease>,
    start: i32,
    batch_size: usize,
    worker: &mut Worker,
) -> Result<CycleReport, CycleError> {
    let range = lease.range;
    let started = std::time::Instant::now();
    worker.acker.reap().await?;
    check_lease(lease)?;
    let mut rows = {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        store::read_batch(&mut conn, range, start, batch_size).await?
    };
    let read_count = rows.len();
    // Published already; only their delete is still running.
    rows.retain(|row| !worker.acker.is_pending(row.seq));
    let Some(last_slot) = rows.last().map(|row| row.slot) else {
        return Ok(CycleReport {
            next_start: start,
            ..Default::default()
        });
    };
    let next_start = if read_count >= batch_size {
        range.next_start(last_slot)
    } else {
        start
    };
    let read_at = started.elapsed();
    let read = rows.len();
    let mut converted = to_events(rows);
    group_by_topic(&mut converted);
    // Checked before every chunk: the deadline is set well inside the lease's expiry, so
    // nobody can have taken the range over yet when a chunk leaves.
    let outcome = worker
        .publisher
        .publish(converted.events, || lease.is_valid())
        .await;
    let published_at = started.elapsed();
    let acknowledged = acknowledged_keys(&converted.keys, outcome.acknowledged);
    let mut report = CycleReport {
        read,
        published: acknowledged.seqs.len(),
        parked: 0,
        last_seq: acknowledged.seqs.last().copied().unwrap_or(0),
        next_start,
    };
    worker.acker.submit(pool, lease, acknowledged).await?;
    tracing::debug!(
        range = %range,
        rows = read,
        read_us = read_at.as_micros() as u64,
        publish_us = (published_at - read_at).as_micros() as u64,
        ack_wait_us = (started.elapsed() - published_at).as_micros() as u64,
        "cycle"
    );
    let failed = converted.keys.get(outcome.acknowledged);
    match (outcome.failure, converted.unreadable) {
        (Some(error), _) if error.is_permanent() => {
            if let Some(row) = failed {
                tracing::error!(slot = row.slot, seq = row.seq, %error, "parking event the broker will never accept");
                let mut conn = pool.get().await.map_err(StoreError::from)?;
                store::park(&mut conn, lease, row.slot, row.seq, &error.to_string()).await?;
                report.parked = 1;
            }
        }
        (Some(PublishError::Halted), _) => {
            return Err(CycleError::LeaseExpired(range.to_string()));
        }
        (Some(error), _) => {
            return Err(match failed {
                Some(row) => CycleError::FailedAt {
                    slot: row.slot,
                    seq: row.seq,
                    error,
                },
                None => error.into(),
            })
        }
        (None, Some((index, reason))) if index == outcome.acknowledged => {
            let row = converted.keys[index];
            tracing::error!(slot = row.slot, seq = row.seq, %reason, "parking unreadable event");
            let mut conn = pool.get().await.map_err(StoreError::from)?;
            store::park(&mut conn, lease, row.slot, row.seq, &reason).await?;
            report.parked = 1;
        }
        (None, _) => {}
    }
    Ok(report)
}
