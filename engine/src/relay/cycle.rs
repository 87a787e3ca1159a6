//! One partition cycle: read a batch, publish it, record what the broker acknowledged.
//!
//! The rule that keeps order and loses nothing: only the acknowledged *prefix* of a
//! batch is deleted. After a transient failure the rest stays pending and the next
//! cycle reads it again from its lowest sequence number. A permanent failure (the
//! broker refuses the topic, unreadable headers) parks that one event with the reason
//! and the cycle counts as a success, so a poison event never blocks the range forever.

use outbox_adapters::{PublishError, PulsarPublisher};

use super::batch::{acknowledged_keys, to_events};

use crate::slots::SlotRange;
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
}

/// Runs one cycle. Returns the publisher so the caller keeps its producers.
pub(crate) async fn run_cycle(
    pool: Pool,
    range: SlotRange,
    start: i32,
    batch_size: usize,
    mut publisher: PulsarPublisher,
) -> (PulsarPublisher, Result<CycleReport, CycleError>) {
    let result = cycle(&pool, range, start, batch_size, &mut publisher).await;
    (publisher, result)
}

async fn cycle(
    pool: &Pool,
    range: SlotRange,
    start: i32,
    batch_size: usize,
    publisher: &mut PulsarPublisher,
) -> Result<CycleReport, CycleError> {
    let started = std::time::Instant::now();
    let rows = {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        store::read_batch(&mut conn, range, start, batch_size).await?
    };
    let Some(last_row) = rows.last() else {
        return Ok(CycleReport {
            next_start: start,
            ..Default::default()
        });
    };
    let next_start = if rows.len() >= batch_size {
        range.next_start(last_row.slot)
    } else {
        start
    };
    let read_at = started.elapsed();
    let (events, unreadable) = to_events(&rows);
    let outcome = publisher.publish(events).await;
    let published_at = started.elapsed();
    let acknowledged = acknowledged_keys(&rows, outcome.acknowledged);
    let mut report = CycleReport {
        read: rows.len(),
        published: acknowledged.seqs.len(),
        parked: 0,
        last_seq: acknowledged.seqs.last().copied().unwrap_or(0),
        next_start,
    };
    let mut conn = pool.get().await.map_err(StoreError::from)?;
    store::acknowledge(&mut conn, range, &acknowledged.slots, &acknowledged.seqs).await?;
    tracing::debug!(
        range = %range,
        rows = rows.len(),
        read_us = read_at.as_micros() as u64,
        publish_us = (published_at - read_at).as_micros() as u64,
        ack_us = (started.elapsed() - published_at).as_micros() as u64,
        "cycle"
    );
    let failed = &rows.get(outcome.acknowledged);
    match (outcome.failure, unreadable) {
        (Some(error), _) if error.is_permanent() => {
            if let Some(row) = failed {
                tracing::error!(slot = row.slot, seq = row.seq, key = %row.key, topic = %row.topic, %error, "parking event the broker will never accept");
                store::park(&mut conn, range, row.slot, row.seq, &error.to_string()).await?;
                report.parked = 1;
            }
        }
        (Some(error), _) => return Err(error.into()),
        (None, Some((index, reason))) if index == outcome.acknowledged => {
            let row = &rows[index];
            tracing::error!(slot = row.slot, seq = row.seq, key = %row.key, %reason, "parking unreadable event");
            store::park(&mut conn, range, row.slot, row.seq, &reason).await?;
            report.parked = 1;
        }
        (None, _) => {}
    }
    Ok(report)
}
